"""Plain data that music sources hand to the use cases."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class QueryKind(str, Enum):
    TEXT = "text"
    SPOTIFY_TRACK = "spotify_track"
    YOUTUBE = "youtube"


@dataclass(frozen=True)
class Query:
    kind: QueryKind
    text: str = ""  # free text (for TEXT); the user's trailing words otherwise
    spotify_id: str | None = None
    youtube_id: str | None = None
    url: str | None = None  # canonical URL for links


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


class UnsupportedInputError(SourceError):
    pass


class BlockedURLError(SourceError):
    pass


class TrackNotFoundError(SourceError):
    pass


class SpotifyBusyError(SourceError):
    pass


class SpotifyUnavailableError(SourceError):
    pass


class DownloadError(SourceError):
    pass


class AudioTooLargeError(SourceError):
    pass
