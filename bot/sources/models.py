"""Plain data that music sources hand to the use cases."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from enum import Enum


class QueryKind(str, Enum):
    TEXT = "text"
    SPOTIFY_TRACK = "spotify_track"
    SPOTIFY_SHORT_LINK = "spotify_short_link"  # spotify.link/…: the track is known once the link is followed
    YOUTUBE = "youtube"


@dataclass(frozen=True)
class Query:
    kind: QueryKind
    text: str = ""  # free text (for TEXT); the user's trailing words otherwise
    spotify_id: str | None = None
    youtube_id: str | None = None
    url: str | None = None  # canonical URL for links
    # A YouTube link's moment (?t=90, &t=1m30s, #t=90, ?start=90), in seconds: not where the song is
    # heard (its mood is the song's, cached as one), but said to be left aside (LINK_TIME_LEFT_ASIDE).
    start_s: int | None = None
    # Another music service's link (Apple Music, Shazam, SoundCloud), never opened: `text` is the
    # song's name its share text or its slug gave, searched instead, and the answer says so.
    link_service: str | None = None
    # A name typed longer than a search takes (MAX_TEXT_CHARS): `text` is its start, and the answer says so.
    cut: bool = False


@dataclass(frozen=True)
class TrackInfo:
    """A song as resolved. `key` is the cache key shared with storage:
    "spotify:<id>", else "youtube:<id>", else "sha256:<hex of file content>"."""

    key: str
    title: str
    artists: tuple[str, ...] = ()
    album: str | None = None
    duration_s: float | None = None
    isrc: str | None = None
    art_url: str | None = None
    spotify_id: str | None = None
    spotify_url: str | None = None
    youtube_id: str | None = None
    source_url: str | None = None

    @property
    def display_name(self) -> str:
        return f"{', '.join(self.artists)} – {self.title}" if self.artists else self.title


class SourceError(Exception):
    """Base class; str(error) is a message a user can read."""

    # Others' words the message quotes (a song's name as Spotify or a video's uploader gave it, in
    # the fetcher's "No audio found for “…”."): a chat shows them with no link made of them
    # (ErrorReply.quoted); the user's own words are not among them.
    quoted: tuple[str, ...] = ()


class UnsupportedInputError(SourceError):
    pass


class LiveStreamError(UnsupportedInputError):
    """A stream still on air (or not started): it has no end to take a section from. A search
    hit found so gives way to the next (`SearchHit.then`); a link that is one is refused."""


class ManySongsError(UnsupportedInputError):
    """A link to many songs (a playlist, an album, an artist), not one: a journal answer's refusal
    adds that the journal keeps one song a prompt."""


class BlockedURLError(SourceError):
    pass


class TrackNotFoundError(SourceError):
    pass


class NoCloseMatchError(TrackNotFoundError):
    """Spotify answered, but no song it found is close to the name the user typed."""

    closest: tuple[str, ...] = ()  # the nearest songs found, as "artists – title"


class SpotifyBusyError(SourceError):
    retry_after_s: float | None = None  # set when Spotify said how long to wait


class SpotifyUnavailableError(SourceError):
    pass


class DownloadError(SourceError):
    pass


class AudioTooLargeError(SourceError):
    pass


@dataclass(frozen=True)
class SearchHit:
    """The video (or file) the audio search picked for a song, before it is downloaded
    (`AudioFetcher.find`): its video id can be looked up in the cache first, and `fetch(hit)`
    downloads it without searching again."""

    url: str
    youtube_id: str | None  # a YouTube video's id, else None
    title: str | None = None  # as the search listed it
    duration_s: float | None = None  # as the search listed it
    of: TrackInfo | Query | None = None  # what was searched: errors name it, and its length (Spotify's) is known
    # The search's next picks, in turn, should this one turn out a live stream once its page is
    # read (a listing rarely says): LIVE_HITS_TRIED in all at most.
    then: tuple["SearchHit", ...] = ()

    def next_hit(self) -> "SearchHit | None":
        """The hit to try where this one is a live stream: the first of `then`, of the same search."""
        return replace(self.then[0], of=self.of, then=self.then[1:]) if self.then else None


@dataclass(frozen=True)
class FetchedAudio:
    """A downloaded section of a song, alive only inside `AudioFetcher.fetch(...)`'s `async with`."""

    path: Path
    youtube_id: str | None
    source_url: str
    bytes_downloaded: int  # as the downloader counted them (for ffmpeg-cut sections: the section's size)
    duration_s: float | None  # of the whole song, when known
    title: str | None = None  # as the audio host named it
    section_s: tuple[float, float] | None = None  # (start, end) of the window in the song, if cut
