"""Fetch a short section of a song's audio to a temporary file.

    async with fetcher.fetch(track) as audio:   # TrackInfo, or a TEXT / YOUTUBE Query
        classify(audio.path)
    # the temporary directory is gone here, also after an error

    hit = await fetcher.find(track)             # the search's pick, its video's id, nothing downloaded
    async with fetcher.fetch(hit) as audio:     # that hit, not searched for again
        ...

Where the audio comes from is the operator's AUDIO_SEARCH template (trusted): a yt-dlp search
("ytsearch5:{artists} - {title} audio") or a plain URL ("http://host/audio/{spotify_id}.ogg").
A user's YouTube link goes through the SSRF guard, redirects included, before yt-dlp sees it;
while yt-dlp fetches it, the worker connects to public addresses only, and by the names of the
allowlist's hosts and their sites' media hosts only (`connectguard`).

Only the middle `section_seconds` of a plain file over HTTP are fetched, with Range requests. Ogg
and WebM take two (the header + the byte span of the window, made a valid file by `oggsection` /
`webmsection`); MP4, MP3, WAV and FLAC two to four (`ranged`: the header, an MP4's index after its
audio or what follows cover art, the window's bytes). When the song's length is not known
beforehand (no Spotify), the file states it: a WebM's Info, an Ogg's last page (one more request),
the others' headers. Anything else goes through yt-dlp's `download_ranges` (ffmpeg seeks and
cuts) when the length is known, and is downloaded whole when it is not, bounded by `max_bytes` (and
`max_duration_s` where yt-dlp knows the length). A user's link is never opened by ffmpeg, which
the connection guard cannot watch: yt-dlp downloads such a file whole and ffmpeg cuts the section
from the local copy. An HLS playlist or a DASH manifest from a user's link is cut to the segments
around the section (`hls_section`, `dash_section`) and fetched by yt-dlp's own downloaders; one
that cannot be cut safely is fetched whole.
Nothing is converted: the classifier decodes webm/m4a/ogg itself.

The download itself (Range requests, splicing, yt-dlp) runs in a warm worker process of a
`DownloadPool`, not in a thread: yt-dlp is pure Python and would hold the GIL that the bot's event
loop needs. The link vetting and the temporary directory stay here; a download that overruns
`timeout_s` is killed with its worker before the directory is removed.
"""
from __future__ import annotations

import asyncio
import logging
import math
import re
import subprocess
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Callable
from urllib.parse import quote, urljoin, urlsplit

from bot.config import AUDIO_SEARCH_FIELDS
from bot.sources import oggsection as ogg
from bot.sources import ranged
from bot.sources import webmsection as webm
from bot.sources.connectguard import AWAY_MESSAGE, Watch, public_connections_only, vet_format_url
from bot.sources.downloadpool import DownloadPool, WorkerCrashedError, shared_pool
from bot.sources.lookups import in_lookup_thread
from bot.sources.models import (
    AudioTooLargeError,
    BlockedURLError,
    DownloadError,
    FetchedAudio,
    LiveStreamError,
    Query,
    QueryKind,
    SearchHit,
    SourceError,
    TrackInfo,
    TrackNotFoundError,
    UnsupportedInputError,
)
from bot.sources.query import DEFAULT_ALLOWED, quoted_name
from bot.sources.ranged import RANGE_MARGIN, TOO_SLOW, EmptyFileError, RangeReply, http_range
from bot.sources.spans import StreamTimesLie
from bot.sources.spotify import UNSPACED_RE, normalise, version_tags
from bot.sources.urlguard import BLOCKED_MESSAGE, ConnectPolicy, Resolver, URLGuard, reachable_hosts, system_resolver
from bot.tempfiles import DOWNLOAD_PREFIX, temporary_folder

if TYPE_CHECKING:
    import yt_dlp

# yt-dlp (~0.45 CPU-s to import) is imported where a download runs: in the download workers
# (`DownloadPool`, which preload it), never in the bot's own process, which only hands them jobs.
YTDLP_MODULES = ("yt_dlp",)

log = logging.getLogger(__name__)

DEFAULT_SEARCH = "ytsearch5:{artists} - {title} audio"
SECTION_SECONDS = 30.0
DURATION_TOLERANCE_S = 10.0  # a search hit further than this from Spotify's length is another cut
# Besides Spotify's VERSION_TAGS, what a video upload's title says it is when it is not the song as
# recorded: a mix made from the record (as long as it, to the second: the bass pushed, played
# backwards, a part of the band taken out or left alone, chiptune), live in another language, or
# a video about the song (its length no guide where Spotify gave none); and a cover, karaoke or
# instrumental in the words of the song's own language ("歌ってみた": "I tried singing it", over the
# record's instrumental, as long as it). Words of Chinese, Japanese or Korean are found inside
# others, as those scripts are written without spaces ("夜に駆ける歌ってみた").
UPLOAD_VERSION_TAGS = (
    "bass boosted", "reverse", "reversed", "vocals only", "vocal only", "isolated vocals", "drumless", "no drums",
    "backing track", "minus one", "8 bit", "daycore", "en vivo", "ao vivo", "reaction", "tutorial", "lesson",
    "mashup", "loop", "covered", "off vocal",
    "кавер", "караоке", "минусовка", "инструментал",
    "歌ってみた", "弾いてみた", "叩いてみた", "カバー", "カラオケ", "オフボーカル", "翻唱", "伴奏", "커버", "노래방", "반주",
)
MAX_BYTES = 25 * 1024 * 1024
MAX_DURATION_S = 20 * 60.0
TIMEOUT_S = 90.0
SOCKET_TIMEOUT_S = 15.0
SECTION_PREFIX_BYTES = (16 * 1024, 256 * 1024)  # first try, then room for cover art / a front index
OGG_TAIL_BYTES = 64 * 1024  # an Ogg file's last bytes: its last page, whose granule gives the length
SMALL_FILE_BYTES = 1024 * 1024  # a file of unknown length this small is fetched whole
SECTION_EXTS = ("ogg", "oga", "opus", "webm", "weba", "mka", "mkv", *ranged.EXTENSIONS)
# A song at most this much longer than the section is fetched whole: cutting a 30 s window out of
# a 35 s preview saves little and would hand the classifier a slightly different cut of it.
WHOLE_FILE_SLACK_S = 15.0
# A section's stream may run this far past the song's length (an Opus stream's pre-skip, rounding)
# and is kept, its end put at the song's; further, the stream and the length disagree.
SECTION_OVERRUN_S = 1.0
# A section cut by a length the file states starts at most this factor earlier or later in the
# song than its window: its bytes are the window's share of the file's, which a bit rate that
# varies puts a few seconds off (20 s for a FLAC whose first two minutes are quiet); further, the
# length stated is not the song's.
STATED_SKEW = 2.0
# An Ogg's pages and a WebM's clusters (5 s each, as ffmpeg writes them) are taken whole from the
# window's share of the bytes: where the bit rate varies, or the first and last straddle its edges,
# the section came out short (20-30 s of the test song's Opus WebM over windows 3 s apart, 25 s of
# its Vorbis WebM's middle, 25-30 s of its Ogg), and the classifier filled its 30 s by playing part
# of it twice. A section over SHORT_SECTION_S short has the bytes after the window fetched too, one
# more request, for what it lacks and MORE_SECTION_S more at the file's mean bit rate.
SHORT_SECTION_S = 2.0
MORE_SECTION_S = 5.0
TEMPLATE_FIELDS = AUDIO_SEARCH_FIELDS
PART_SUFFIXES = (".part", ".ytdl", ".temp")

# yt-dlp's words when the site could not be reached at all (DNS, refused or reset connections)
UNREACHABLE_WORDS = ("unable to download api page", "urlopen error", "name resolution", "name or service not known",
                     "connection refused", "connection reset", "network is unreachable", "remote end closed",
                     "httpsconnection", "httpconnection", "failed to resolve", "max retries exceeded")
TOO_LONG_REASON = "longer than the limit of"  # our match_filter's words, found again in yt-dlp's log
MAX_REASON_CHARS = 120  # of the site's words quoted in a refusal
SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
UNAVAILABLE_WHY_RE = re.compile(r"video unavailable\.\s+(\S.*)", re.IGNORECASE | re.DOTALL)
YTDLP_ADVICE_RE = re.compile(r"--\w|https?://|yt-dlp|please report", re.IGNORECASE)
LIVE_STATUSES = ("is_live", "is_upcoming")  # yt-dlp's live_status of a stream that has no end yet
# A search's hits tried in turn where each, once its page is read, is a live stream: the search's
# pick and the next two. Each costs a request or more (a video's page) to tell.
LIVE_HITS_TRIED = 3
# For a user's link, yt-dlp downloads only through its own (Python) downloaders, which the
# connection guard watches, and these protocols only: no rtmpdump or other program.
USER_LINK_PROTOCOLS = ("http", "https", "m3u8_native", "m3u8", "http_dash_segments", "http_dash_segments_generator")
# ffmpeg is a process of its own, whose DNS lookups and redirects the connection guard cannot
# see: for a user's link it never opens a URL. yt-dlp's own downloader fetches the file (whole,
# within max_bytes) and ffmpeg cuts the section from the local copy. yt-dlp is told of no ffmpeg
# (a location that does not exist) so that none of its downloaders hands ffmpeg a URL: the HLS one
# does, for a playlist with features it does not support.
NO_FFMPEG = "/nonexistent/moodbot-user-links-get-no-ffmpeg"
NEEDS_FFMPEG = "ffmpeg could not be found"  # yt-dlp's words when only ffmpeg could have fetched it
# What the section cut may read: the local file only, as a plain audio container (a playlist or
# a concat list saved in its place would have ffmpeg read other files).
USER_AUDIO_FORMATS = "mov,matroska,ogg,mp3,aac,flac,wav"
FFMPEG_LOCAL_CUT_ARGS = ["-protocol_whitelist", "file", "-format_whitelist", USER_AUDIO_FORMATS]
CUT_TIMEOUT_S = 30.0
MAX_PLAYLIST_BYTES = 1024 * 1024
# HLS playlists that cannot be cut to a section safely: a master playlist (variants, not
# segments), byte ranges (one may start where the one before ended) or one without an end (live).
HLS_UNCUTTABLE_TAGS = ("#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-BYTERANGE")
HLS_STATE_TAGS = ("#EXT-X-KEY", "#EXT-X-MAP")  # apply to every segment after them, until the next
DASH_PROTOCOL = "http_dash_segments"  # yt-dlp's, for a DASH format whose fragments are listed in full
# A DASH fragment that is a byte range of a file: one may start where the one before ended, and
# yt-dlp's DASH downloader would fetch the whole file for it anyway.
DASH_RANGE_KEYS = ("range", "byte_range")


def js_runtimes() -> dict:
    """yt-dlp's `js_runtimes`: since 2025.11 YouTube's player answers most formats only to a client
    that solves its JavaScript challenges, which yt-dlp runs in deno (its only runtime on by default),
    found on PATH, so not the venv's when `.venv/bin` is not there. The `deno` package (yt-dlp's
    `deno` extra) carries the binary: its path is given. The solver's scripts come from the
    `yt-dlp-ejs` package (the `default` extra), never fetched (`remote_components` stays empty). deno
    runs them without network or file access (no --allow-* flags): the connection guard, which
    sees only this process's sockets, has nothing to miss there (tests/sources/test_js_runtime.py)."""
    try:
        from deno import find_deno_bin
        return {"deno": {"path": find_deno_bin()}}
    except (ImportError, OSError, RuntimeError):  # not installed: yt-dlp's own default, deno on PATH
        return {"deno": {}}


# -- pure helpers ----------------------------------------------------------------------------

def section_window(duration_s: float, section_s: float = SECTION_SECONDS) -> tuple[float, float]:
    """The `section_s` seconds around the middle of a song (the whole song if it is shorter)."""
    if duration_s <= section_s:
        return 0.0, duration_s
    start = max(duration_s / 2 - section_s / 2, 0.0)
    return start, min(start + section_s, duration_s)


def choose_candidate(durations: list[float | None], target_s: float | None,
                     tolerance_s: float = DURATION_TOLERANCE_S, *, titles: list[str | None] | None = None,
                     song: str = "") -> int | None:
    """Index of the search hit to download: the first one when the song's length is unknown,
    else the one closest to it within `tolerance_s`. None if nothing fits.

    Of the hits, those whose `titles` name a version that `song` (its name as Spotify or the user
    gave it) doesn't ("(Karaoke Version)", "Cover", "Live", "sped up", "8D", "Bass Boosted":
    `upload_versions`) are taken only when no other hit fits: such an upload often matches the song's
    length to the second, and would win over the official one the search found first."""
    if not durations:
        return None
    asked = upload_versions(song)
    other = [bool(upload_versions(t or "") - asked) for t in (titles or [None] * len(durations))]
    for versions_too in (False, True):
        hits = [i for i in range(len(durations)) if versions_too or not other[i]]
        if target_s is None:
            if hits:
                return hits[0]
            continue
        fits = [(abs(durations[i] - target_s), i) for i in hits
                if durations[i] is not None and abs(durations[i] - target_s) <= tolerance_s]
        if fits:
            return min(fits)[1]
    return None


def upload_versions(title: str) -> set[str]:
    """The versions a video's `title` (or a song's name) names: Spotify's VERSION_TAGS and
    UPLOAD_VERSION_TAGS."""
    words = normalise(title)
    return version_tags(title) | {tag for tag in UPLOAD_VERSION_TAGS
                                  if (_TAG_FORMS[tag] in words if UNSPACED_RE.search(tag)
                                      else f" {_TAG_FORMS[tag]} " in f" {words} ")}


_TAG_FORMS = {tag: normalise(tag) for tag in UPLOAD_VERSION_TAGS}  # as `normalise` writes them ("カバー": "カハー")


def is_live(info: dict) -> bool:
    """A stream still on air (or not started): it has no end to take a section from."""
    return bool(info.get("is_live")) or info.get("live_status") in LIVE_STATUSES


def is_http_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def template_values(item: TrackInfo | Query) -> dict[str, str]:
    if isinstance(item, TrackInfo):
        return {"artists": ", ".join(item.artists), "title": item.title,
                "spotify_id": item.spotify_id or "", "isrc": item.isrc or ""}
    return {"artists": "", "title": item.text, "spotify_id": item.spotify_id or "", "isrc": ""}


def render_source(template: str, item: TrackInfo | Query) -> str:
    """Fill the AUDIO_SEARCH template. Values are URL-quoted in URL templates; in a search
    string an empty artist leaves no dangling " - "."""
    values = template_values(item)
    needed = set(re.findall(r"{(\w+)}", template))
    missing = [f for f in needed if f in TEMPLATE_FIELDS and not values.get(f)]
    if is_http_url(template):
        if missing:
            raise TrackNotFoundError(f"No audio found for “{label_of(item)}”.")
        return template.format_map({k: quote(v, safe="") for k, v in values.items()})
    if needed and not set(needed) - set(missing):  # ytsearch1:{isrc} for a song with none: "" searched
        raise TrackNotFoundError(f"No audio found for “{label_of(item)}”.")
    text = template.format_map(values)
    text = re.sub(r"(^|:)\s*-\s+", r"\1", text)  # "ytsearch5: - Creep audio" -> "ytsearch5:Creep audio"
    return " ".join(text.split())


def is_user_link(item: TrackInfo | Query | SearchHit) -> bool:
    """A YouTube video named by the user: a YOUTUBE query, or a track known only by its video id."""
    if isinstance(item, SearchHit):
        return False
    if isinstance(item, Query):
        return item.kind is QueryKind.YOUTUBE
    return bool(item.youtube_id) and not item.spotify_id


def label_of(item: TrackInfo | Query | SearchHit) -> str:
    if isinstance(item, SearchHit):
        return label_of(item.of) if item.of is not None else (item.title or item.url)
    if isinstance(item, TrackInfo):
        return item.display_name
    if item.kind is QueryKind.TEXT:
        return quoted_name(item.text) if item.text else "that song"
    return item.url or "that link"  # a link's trailing words are the user's comment, not its name


def others_words(item: TrackInfo | Query | SearchHit) -> tuple[str, ...]:
    """What an error fetching `item` quotes of others' words (`SourceError.quoted`): its name
    (`label_of`) where Spotify or a video gave it, "“<artists> – <title>” is too long for me to
    listen to."; none where it is the user's typed name or link."""
    if isinstance(item, SearchHit):
        return others_words(item.of) if item.of is not None else ((item.title,) if item.title else ())
    return (label_of(item),) if isinstance(item, TrackInfo) else ()


def searched(source: str) -> bool:
    """`source` (the AUDIO_SEARCH template filled in) is a search or a page listing hits, which
    `AudioFetcher.find` can pick one of before anything is downloaded: not a plain audio file's URL."""
    return not is_http_url(source) or urlsplit(source).path.rpartition(".")[2].lower() not in SECTION_EXTS


def listed_hit(ydl: yt_dlp.YoutubeDL, entry: dict) -> SearchHit | None:
    """A search's entry as a hit to download, as the search listed it; None for one that is no
    link (a playlist's file, downloaded with the playlist's own `fetch`)."""
    if entry.get("_type") not in ("url", "url_transparent") or not entry.get("url"):
        return None
    return SearchHit(url=str(entry["url"]), youtube_id=hit_video_id(ydl, entry), title=entry.get("title"),
                     duration_s=entry.get("duration"))


def hit_video_id(ydl: yt_dlp.YoutubeDL, entry: dict) -> str | None:
    """The YouTube video id of a search hit as the search listed it (a yt-dlp search's entry, an
    RSS item or an embed linking to a video), before its page is read; None for another site's."""
    from yt_dlp.utils import unsmuggle_url

    url = unsmuggle_url(str(entry.get("url") or ""))[0]
    if entry.get("ie_key") == "Youtube" and entry.get("id"):
        return str(entry["id"])
    youtube = ydl.get_info_extractor("Youtube")
    return youtube.get_temp_id(url) if url and youtube.suitable(url) else None


def map_ytdlp_error(message: str, label: str, source_url: str) -> Exception:
    """A user-readable error for one of yt-dlp's DownloadError/ExtractorError messages."""
    text = message.lower()
    site = "YouTube" if "youtu" in urlsplit(source_url).netloc or source_url.startswith("ytsearch") else "The audio host"
    if "timed out" in text or "timeout" in text:
        return DownloadError(TOO_SLOW)
    if "larger than max-filesize" in text or "file is larger" in text:
        return AudioTooLargeError(f"“{label}” is too big to fetch.")
    if any(s in text for s in ("unsupported url", "no video formats", "no entries", "http error 404",
                               "video unavailable", "does not exist", "not found")):
        # YouTube's reason, after "Video unavailable." ("This video has been removed by the uploader")
        why = UNAVAILABLE_WHY_RE.search(message) if site == "YouTube" else None
        return TrackNotFoundError(f"No audio found for “{label}”" + (f" (YouTube: {_short_reason(why.group(1))})."
                                                                    if why else "."))
    if "did not get any data blocks" in text:  # the host answered with an empty body
        return TrackNotFoundError(EMPTY_FILE.format(label=label))
    m = re.search(r"http error (\d{3})", text)
    if m is None and any(words in text for words in UNREACHABLE_WORDS):
        return DownloadError(f"I couldn't reach {'YouTube' if site == 'YouTube' else 'the audio host'} "
                             "to fetch the song — try again in a few minutes.")
    reason = f"HTTP {m.group(1)}" if m else _short_reason(message)
    return DownloadError(f"{site} refused the download ({reason}).")


def _short_reason(message: str) -> str:
    """The site's own words from a yt-dlp error: whole sentences, up to the advice yt-dlp adds for
    its command-line user ("Use --cookies ...", "See https://...") that a chat user can't follow."""
    reason = re.sub(r"^error:\s*", "", message.strip(), flags=re.I)
    reason = re.sub(r"^\[[^\]]+\]\s*[\w-]*:?\s*", "", reason)
    kept: list[str] = []
    for sentence in SENTENCE_END_RE.split(reason.split(";")[0].strip()):
        if YTDLP_ADVICE_RE.search(sentence) or (kept and len(" ".join([*kept, sentence])) > MAX_REASON_CHARS):
            break
        kept.append(sentence)
    reason = " ".join(kept)
    if len(reason) > MAX_REASON_CHARS:  # one long sentence: cut between words
        reason = reason[:MAX_REASON_CHARS].rsplit(" ", 1)[0]
    return reason.rstrip(".") or "unknown error"


def direct_range_url(info: dict) -> str | None:
    """The plain-HTTP URL of the chosen format if it is a file we can cut with Range requests."""
    url = info.get("url")
    if info.get("protocol") in ("http", "https") and url and is_http_url(url) and info.get("ext") in SECTION_EXTS:
        return url
    return None


@dataclass(frozen=True)
class Container:
    name: str
    ext: str
    magic: bytes
    header_ok: Callable[[bytes], bool]  # the codec set-up is complete in these first bytes
    splice: Callable[..., bytes | None]


CONTAINERS = (
    Container("an Ogg", "ogg", b"OggS", lambda data: ogg.header_pages(data) is not None, ogg.splice_section),
    Container("a WebM", "webm", b"\x1a\x45\xdf\xa3", lambda data: webm.parse_header(data) is not None, webm.splice_section),
)


def container_of(first_bytes: bytes) -> Container | None:
    return next((c for c in CONTAINERS if first_bytes.startswith(c.magic)), None)


def cut_local_section(path: Path, window: tuple[float, float], timeout_s: float = CUT_TIMEOUT_S) -> Path | None:
    """`window` of the downloaded file `path`, cut by ffmpeg (a stream copy) into a file beside it;
    None if ffmpeg cannot cut it. ffmpeg may read that file and nothing else."""
    from yt_dlp.postprocessor.ffmpeg import EXT_TO_OUT_FORMATS

    start, end = window
    ext = path.suffix.lstrip(".").lower()
    out = path.with_name(f"section-{path.name}")
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *FFMPEG_LOCAL_CUT_ARGS,
               "-ss", f"{start:.3f}", "-t", f"{end - start:.3f}", "-i", f"file:{path}", "-map", "0:a:0",
               "-c", "copy", "-f", EXT_TO_OUT_FORMATS.get(ext, ext), f"file:{out}"]
    try:
        run = subprocess.run(command, capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        run = None
        log.info("could not cut a section of %s: %s", path.name, error)
    if run is not None and run.returncode != 0:
        log.info("could not cut a section of %s: %s", path.name, run.stderr.decode(errors="replace")[-300:].strip())
    if run is None or run.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        out.unlink(missing_ok=True)
        return None
    return out


@dataclass(frozen=True)
class HlsSegment:
    start_s: float
    duration_s: float
    lines: tuple[str, ...]  # its own tags, #EXTINF last, then its URI
    state: tuple[str, ...]  # the #EXT-X-KEY / #EXT-X-MAP lines in force for it


def hls_section(playlist: str, window: tuple[float, float]) -> tuple[str, tuple[float, float]] | None:
    """A media playlist of only `playlist`'s segments that overlap `window`, and the span of the
    song they cover; None if it cannot be cut safely or nothing would be left out. The media
    sequence number moves on by the segments left out: an AES-128 key without an IV uses it."""
    lines = [line.strip() for line in playlist.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U" or "#EXT-X-ENDLIST" not in lines:
        return None
    if any(line.startswith(HLS_UNCUTTABLE_TAGS) for line in lines):
        return None
    header: list[str] = []
    segments: list[HlsSegment] = []
    state: dict[str, str] = {}
    own: list[str] = []
    sequence, clock, duration = 0, 0.0, None
    try:
        for line in lines[1:]:
            if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                sequence = int(line.split(":", 1)[1])
            elif line == "#EXT-X-ENDLIST":
                continue
            elif line.startswith(HLS_STATE_TAGS):
                state[line.split(":", 1)[0]] = line
            elif line.startswith("#EXTINF:"):
                duration = float(line.split(":", 1)[1].split(",", 1)[0])
                own.append(line)
            elif line.startswith("#"):
                (own if segments or duration is not None else header).append(line)
            elif duration is not None:
                segments.append(HlsSegment(clock, duration, (*own, line), tuple(state.values())))
                clock, duration, own = clock + duration, None, []
            else:
                return None  # a URI without its #EXTINF
    except ValueError:
        return None
    start, end = window
    kept = [i for i, seg in enumerate(segments) if seg.start_s < end and seg.start_s + seg.duration_s > start]
    if not kept or len(kept) == len(segments):
        return None
    out = ["#EXTM3U", *header, f"#EXT-X-MEDIA-SEQUENCE:{sequence + kept[0]}"]
    in_force: tuple[str, ...] = ()
    for seg in (segments[i] for i in kept):
        out += [line for line in seg.state if line not in in_force]
        in_force = seg.state
        out += seg.lines
    out.append("#EXT-X-ENDLIST")
    first, last = segments[kept[0]], segments[kept[-1]]
    return "\n".join(out) + "\n", (first.start_s, last.start_s + last.duration_s)


def dash_media(fragments) -> tuple[list[dict], list[dict]] | None:
    """A DASH format's fragments as (its initialization segment, if any; its media fragments),
    or None unless every media fragment is a file of its own with a stated length. yt-dlp puts the
    initialization segment first, without a length; one further on (a second period) is refused."""
    if not isinstance(fragments, list) or not all(isinstance(f, dict) for f in fragments):
        return None  # a generator: fragments made as the download goes
    init = fragments[:1] if fragments and "duration" not in fragments[0] else []
    media = fragments[len(init):]
    if not media:
        return None
    for fragment in media:
        duration = fragment.get("duration")
        if not isinstance(duration, (int, float)) or not 0 < duration < math.inf:
            return None
        if any(key in fragment for key in DASH_RANGE_KEYS) or not (fragment.get("url") or fragment.get("path")):
            return None
    if len({(f.get("url"), f.get("path")) for f in media}) < len(media):
        return None  # ranges of one file whose ranges yt-dlp dropped: each would be the whole file
    return init, media


def dash_length(fragments) -> float | None:
    """The length of a DASH format, from its fragments' stated lengths; None where one is unknown."""
    parts = dash_media(fragments)
    return sum(f["duration"] for f in parts[1]) if parts else None


def dash_section(fragments, window: tuple[float, float]) -> tuple[list[dict], tuple[float, float]] | None:
    """The initialization segment and the media fragments of a DASH format that overlap `window`,
    and the span of the song they cover; None if it cannot be cut safely or nothing would be left out."""
    parts = dash_media(fragments)
    if parts is None:
        return None
    init, media = parts
    start, end = window
    starts = list(accumulate((f["duration"] for f in media), initial=0.0))  # each fragment's, then the end
    kept = [i for i in range(len(media)) if starts[i] < end and starts[i + 1] > start]
    if not kept or len(kept) == len(media):
        return None
    return [*init, *(media[i] for i in kept)], (starts[kept[0]], starts[kept[-1] + 1])


def fragment_origins(fmt: dict) -> list[str]:
    """One URL for each scheme, host and port a DASH format's fragments are fetched from."""
    fragments = fmt.get("fragments")
    if not isinstance(fragments, list):
        return []  # none, or made as the download goes: the connection guard still sees each
    base = str(fmt.get("fragment_base_url") or "")
    origins: dict[str, str] = {}
    for fragment in fragments:
        if isinstance(fragment, dict):
            url = str(fragment.get("url") or urljoin(base, str(fragment.get("path") or "")))
            parts = urlsplit(url)
            origins.setdefault(f"{parts.scheme}://{parts.netloc}".lower(), url)
    return list(origins.values())


def find_download(workdir: Path) -> Path | None:
    files = [p for p in workdir.iterdir() if p.is_file() and not p.name.endswith(PART_SUFFIXES)]
    return max(files, key=lambda p: p.stat().st_size) if files else None


# -- plain files over HTTP Range -------------------------------------------------------------

EMPTY_FILE = "The audio host sent an empty file for “{label}”."


def section_file(section: ranged.Section | None, name: str, ext: str, url: str, workdir: Path,
                 fetched: int, duration_s: float | None,
                 stated_window: tuple[float, float] | None = None) -> FetchedAudio | None:
    """The cut section written to `workdir`; None (and a log line) if there is none: yt-dlp's turn.
    `stated_window`: the window cut by a length the file states, which the section must be near.
    StreamTimesLie where the stream's timestamps place it elsewhere: the file is fetched whole."""
    if section is None:
        log.info("could not cut %s section from %s; falling back to yt-dlp", name, urlsplit(url).path)
        return None
    data, start, end = section
    if duration_s is not None and not 0 <= start < end <= duration_s + SECTION_OVERRUN_S:
        # The stream's own timestamps (granule positions, frame numbers, decode times) place the
        # section where the length the file states (or the one known) has no song: one of them
        # is wrong, and which one only the whole file can tell.
        log.info("%s section from %s lies at %.1f-%.1f s of a %.1f s song", name, urlsplit(url).path, start, end,
                 duration_s)
        raise StreamTimesLie
    if stated_window and stated_window[0] > 0 and not 1 / STATED_SKEW <= start / stated_window[0] <= STATED_SKEW:
        # The window's share of the bytes holds what the stream places at another share of the
        # length the file states: not the song's length (a 240 s Ogg stating 719 s had its
        # section reported at 111-120 s, and its length at 719 s).
        log.info("%s section from %s starts at %.1f s, its window at %.1f s of the %.1f s the file states",
                 name, urlsplit(url).path, start, stated_window[0], duration_s)
        raise StreamTimesLie
    end = min(end, duration_s) if duration_s is not None else end
    path = workdir / f"section.{ext}"
    path.write_bytes(data)
    return FetchedAudio(path=path, youtube_id=None, source_url=url, bytes_downloaded=fetched,
                        duration_s=duration_s, section_s=(start, end))


class StatedTooLongError(Exception):
    """The file states a length over the limit."""


# -- yt-dlp plumbing -------------------------------------------------------------------------

class _YtdlpLog:
    """Collects yt-dlp's messages (it prints nothing with a logger set)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        self.lines.append(msg)

    info = warning = debug

    def error(self, msg: str) -> None:
        self.lines.append(msg)
        log.info("yt-dlp: %s", msg)

    def said(self, needle: str) -> bool:
        return any(needle in line for line in self.lines)


# -- the fetcher -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DownloadJob:
    """What a download worker needs to fetch one song: plain data, it travels by pickle."""

    source: str  # a URL or a yt-dlp search
    known_s: float | None  # the song's length, if Spotify said
    label: str  # the song's name in error messages
    workdir: Path
    youtube_id: str | None = None
    try_range: bool = False  # a plain file URL: try the two Range requests before yt-dlp
    connections: ConnectPolicy | None = None  # a user's link: where the download may connect


class AudioFetcher:
    def __init__(
        self,
        search_template: str = DEFAULT_SEARCH,
        allowed_hosts: frozenset[str] = DEFAULT_ALLOWED,
        max_bytes: int = MAX_BYTES,
        max_duration_s: float = MAX_DURATION_S,
        section_seconds: float = SECTION_SECONDS,
        timeout_s: float = TIMEOUT_S,
        tmp_dir: Path | str | None = None,
        *,
        resolver: Resolver = system_resolver,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        pool: DownloadPool | None = None,
        public_stand_ins: frozenset[tuple[str, int]] = frozenset(),
    ):
        """`resolver` and `public_stand_ins` (address, port pairs a user's link may reach although
        they are not public) let tests play the internet with local servers."""
        self.search_template = search_template
        # A user link's download reaches the allowlist's hosts (and their sites' media hosts) only.
        self.connections = ConnectPolicy(frozenset(public_stand_ins), hosts=reachable_hosts(allowed_hosts))
        self.guard = URLGuard(allowed_hosts, resolver, self.connections)
        self.downloader = SectionDownloader(max_bytes, max_duration_s, section_seconds,
                                            min(socket_timeout_s, timeout_s))
        self.timeout_s = timeout_s
        self.tmp_dir = Path(tmp_dir) if tmp_dir else None
        self._pool = pool  # None: the process-wide one, started with the first fetch

    @classmethod
    def from_settings(cls, settings, tmp_dir: Path | str | None = None) -> "AudioFetcher":
        return cls(
            search_template=settings.audio_search,
            allowed_hosts=settings.allowed_host_set,
            max_bytes=settings.max_audio_bytes,
            max_duration_s=settings.max_audio_duration_s,
            tmp_dir=tmp_dir,
        )

    @property
    def max_bytes(self) -> int:
        """The largest file a download may leave (a file no section could be cut from)."""
        return self.downloader.max_bytes

    @property
    def pool(self) -> DownloadPool:
        if self._pool is None:
            self._pool = shared_pool(preload=(__name__, *YTDLP_MODULES))
        return self._pool

    async def warm_up(self) -> None:
        """Start the download workers now, so the first songs do not wait for them (call at start-up)."""
        await self.pool.warm_up()

    @asynccontextmanager
    async def fetch(self, item: TrackInfo | Query | SearchHit, *,
                    starting: Callable[[], object] | None = None) -> AsyncIterator[FetchedAudio]:
        """Download a section of `item`'s audio; the file lives until the `async with` ends. A
        `SearchHit` (`find`'s) is downloaded as found, not searched for again. `starting()` is
        called once a download worker takes the download, before a byte is fetched, not while it
        waits for one (all busy): what it raises ends the fetch there (the use case takes the
        download's room in the files held at once there)."""
        async with temporary_folder(DOWNLOAD_PREFIX, self.tmp_dir) as workdir:
            try:
                audio = await self._in_worker(item, download, workdir, starting)
            except SourceError as error:
                error.quoted = others_words(item)
                raise
            if isinstance(item, SearchHit) and item.title:
                audio = replace(audio, title=item.title)  # as the search listed it, not a file's name
            yield audio

    async def find(self, item: TrackInfo | Query) -> SearchHit | None:
        """The video the audio search picks for `item` (a song's name, a Spotify track), found
        without downloading anything, so that the cache can be asked about it first; `fetch(hit)`
        downloads it. None where nothing is searched (a user's link, a plain file's URL) or where
        the search lists files of its own rather than links (an XSPF playlist): `fetch(item)`."""
        if is_user_link(item):
            return None
        try:
            hit = await self._in_worker(item, find_hit, Path())
        except SourceError as error:
            error.quoted = others_words(item)
            raise
        return None if hit is None else replace(hit, of=item)

    async def _in_worker(self, item: TrackInfo | Query | SearchHit, run: Callable, workdir: Path,
                         starting: Callable[[], object] | None = None):
        """`run(downloader, job)` for `item`'s job in a download worker, within `timeout_s`
        (`starting()` called as the worker takes it, `DownloadPool.run`); errors name the song by
        `label_of(item)`."""
        try:
            async with asyncio.timeout(self.timeout_s):
                job = await self.plan(item, workdir)
                if run is find_hit and (job.connections is not None or not searched(job.source)):
                    return None
                # A timeout or a cancellation kills the worker: nothing writes to workdir after.
                return await self.pool.run(run, self.downloader, job, starting=starting)
        except TimeoutError:
            raise DownloadError(TOO_SLOW) from None
        except WorkerCrashedError as error:
            log.warning("download worker crashed: %s", error)
            raise DownloadError(f"The download of “{label_of(item)}” failed.") from None

    async def plan(self, item: TrackInfo | Query | SearchHit, workdir: Path) -> DownloadJob:
        """The download to run for `item`. A user's link is vetted here, redirects included,
        so the worker only ever sees the vetted end of its chain."""
        if isinstance(item, SearchHit):  # the operator's search found it: as trusted as the search
            known = item.of.duration_s if isinstance(item.of, TrackInfo) else None
            return DownloadJob(item.url, known or item.duration_s, label_of(item), workdir, youtube_id=item.youtube_id)
        if is_user_link(item):
            url = item.url if isinstance(item, Query) else item.source_url
            url = url or f"https://www.youtube.com/watch?v={item.youtube_id}"
            final = await in_lookup_thread(self.guard.final_url, url, self.downloader.socket_timeout_s)
            return DownloadJob(final, item.duration_s if isinstance(item, TrackInfo) else None,
                               label_of(item), workdir, youtube_id=item.youtube_id, connections=self.connections)
        if isinstance(item, Query) and item.kind is not QueryKind.TEXT:
            raise ValueError("resolve a Spotify link to a TrackInfo before fetching its audio")
        source = render_source(self.search_template, item)
        known = item.duration_s if isinstance(item, TrackInfo) else None
        if known is not None and known > self.downloader.max_duration_s:
            raise AudioTooLargeError(f"“{label_of(item)}” is too long for me to listen to.")
        return DownloadJob(source, known, label_of(item), workdir, try_range=bool(is_http_url(source) and (
            known or urlsplit(source).path.rpartition(".")[2].lower() in SECTION_EXTS)))


def download(downloader: "SectionDownloader", job: DownloadJob) -> FetchedAudio:
    """Run in a download worker: `job`'s audio section into `job.workdir`."""
    return downloader.download(job)


def find_hit(downloader: "SectionDownloader", job: DownloadJob) -> SearchHit | None:
    """Run in a download worker: the hit `job`'s search picks, nothing downloaded."""
    return downloader.find(job)


@dataclass(frozen=True)
class SectionDownloader:
    """Range requests, container splicing and yt-dlp: the part of a fetch that runs in a worker."""

    max_bytes: int
    max_duration_s: float
    section_seconds: float
    socket_timeout_s: float

    def download(self, job: DownloadJob) -> FetchedAudio:
        if job.connections is not None:
            with public_connections_only(job.connections) as watch:
                try:
                    return self._ytdlp(job.source, job.known_s, job.label, job.workdir, youtube_id=job.youtube_id,
                                       watch=watch)
                except Exception:
                    if watch.refused:  # the refusal, however yt-dlp passed it on ("unable to download", ...)
                        raise BlockedURLError(AWAY_MESSAGE if watch.away else BLOCKED_MESSAGE) from None
                    raise
        whole = False
        if job.try_range:
            try:
                audio = self._range_section(job.source, job.known_s, job.workdir, job.label)
            except StreamTimesLie:
                log.info("the timestamps of %s are not its stream's; fetching it whole", urlsplit(job.source).path)
                audio, whole = None, True
            if audio is not None:
                return audio
        return self._ytdlp(job.source, job.known_s, job.label, job.workdir, youtube_id=job.youtube_id, whole=whole)

    def find(self, job: DownloadJob) -> SearchHit | None:
        """The search hit `download` would fetch for `job` (a search, or a page listing links):
        read from the search's own listing, the hit's page unread, with the next picks to try
        should it turn out a live stream (`SearchHit.then`). None where the source is no list of
        links (a file, or a playlist of files)."""
        import yt_dlp

        messages = _YtdlpLog()
        try:
            with yt_dlp.YoutubeDL(self._ytdlp_options(job.workdir, messages, None)) as ydl:
                info = ydl.extract_info(job.source, download=False)
                if info is None:
                    raise AudioTooLargeError(f"“{job.label}” is too long for me to listen to.")
                if info.get("_type") != "playlist" and "entries" not in info:
                    return None
                hits = [listed_hit(ydl, entry) for entry in self._ranked(info, job.known_s, job.label, messages)]
                if hits[0] is None:
                    return None
                return replace(hits[0], then=tuple(hit for hit in hits[1:] if hit is not None))
        except (yt_dlp.utils.DownloadError, yt_dlp.utils.ExtractorError) as error:
            raise map_ytdlp_error(str(error), job.label, job.source) from None
        except (yt_dlp.networking.exceptions.RequestError, UnicodeError) as error:
            log.info("yt-dlp's search for %s failed: %s", job.label, type(error).__name__)
            raise DownloadError(f"The download of “{job.label}” failed.") from None

    # A plain file: its header, then the window's bytes, by Range requests.
    def _range_section(self, url: str, duration_s: float | None, workdir: Path, label: str,
                       headers: dict[str, str] | None = None) -> FetchedAudio | None:
        """The section, or None to let yt-dlp fetch the file. `duration_s` None: the song's length
        is not known beforehand, and the file states it (its header; an Ogg's last page).
        StreamTimesLie: the stream's own timestamps are not what it plays, and yt-dlp is to fetch
        the file whole (ffmpeg's cut would go by the same timestamps: granule positions three
        times an Opus stream's had it hand over a file no decoder opens, at 0.3 times 1.2 s)."""
        try:
            return self._range_section_or_none(url, duration_s, workdir, headers or {})
        except TrackNotFoundError:
            # The user is told as of a search that found nothing: the log tells the host's 404 apart.
            log.info("audio.not_found: %s answered HTTP 404", urlsplit(url).hostname)
            raise TrackNotFoundError(f"No audio found for “{label}”.") from None
        except EmptyFileError:
            raise TrackNotFoundError(EMPTY_FILE.format(label=label)) from None
        except StatedTooLongError:
            raise AudioTooLargeError(f"“{label}” is too long for me to listen to.") from None

    def _range_section_or_none(self, url: str, duration_s: float | None, workdir: Path,
                               headers: dict[str, str]) -> FetchedAudio | None:
        head = http_range(url, 0, SECTION_PREFIX_BYTES[0] - 1, self.socket_timeout_s, headers)
        if head is None or head.total_size is None:
            return None
        if duration_s is None and head.total_size <= SMALL_FILE_BYTES:
            return None  # a clip, most likely: finding its length would cost about as much as the file
        cutter = ranged.cutter_for(head.data)
        if cutter is not None:
            return self._indexed_section(url, head, duration_s, workdir, headers, cutter)
        container = container_of(head.data)
        if container is None:
            return None
        size = head.total_size
        set_up = self._set_up(container, url, head.data, size, headers)
        if set_up is None:
            return None
        head_data, head_bytes, audio_at = set_up
        tail, stated = b"", duration_s is None
        if duration_s is None:  # what the file says: a WebM's Info, an Ogg's last page
            duration_s, tail = self._stated_length(container, url, head_data, size, headers)
            if duration_s is None:
                return None
            if duration_s > self.max_duration_s:
                raise StatedTooLongError
        start, end = section_window(duration_s, self.section_seconds)
        if duration_s <= self.section_seconds + WHOLE_FILE_SLACK_S or size <= head_bytes:
            return None  # short song: the whole file is the section
        audio = size - audio_at  # the window's share is of the bytes after cover art
        span = (end - start) / duration_s * audio
        first = max(math.floor(audio_at + audio * start / duration_s - RANGE_MARGIN * span), 0)
        last = min(math.ceil(audio_at + audio * end / duration_s + RANGE_MARGIN * span), size - 1)
        if last - first + head_bytes + len(tail) > self.max_bytes:
            raise AudioTooLargeError("That song's audio file is too big to fetch.")
        middle = http_range(url, first, last, self.socket_timeout_s, headers)
        if middle is None:
            return None
        cut = container.splice(head_data, middle.data, max_seconds=self.section_seconds)
        fetched = head_bytes + len(tail) + len(middle.data)
        if cut is not None and cut[1] is not None and cut[2] - cut[1] < self.section_seconds - SHORT_SECTION_S:
            lacking = self.section_seconds - (cut[2] - cut[1]) + MORE_SECTION_S
            more_last = min(last + math.ceil(size * lacking / duration_s), size - 1)
            more = None
            if last < more_last and fetched + more_last - last <= self.max_bytes:
                try:
                    more = http_range(url, last + 1, more_last, self.socket_timeout_s, headers)
                except DownloadError:
                    log.info("could not fetch more of a short section from %s; keeping it", urlsplit(url).path)
            if more is not None:
                fetched += len(more.data)
                cut = container.splice(head_data, middle.data + more.data, max_seconds=self.section_seconds) or cut
        if cut is not None and cut[1] is None:
            cut = (cut[0], start, end)  # a codec whose rate is not known: where the section was meant to be
        return section_file(cut, container.name, container.ext, url, workdir, fetched, duration_s,
                            (start, end) if stated else None)

    def _set_up(self, container: Container, url: str, head: bytes, size: int,
                headers: dict[str, str]) -> tuple[bytes, int, int] | None:
        """(an Ogg's or WebM's first bytes, whole set-up in them — a Matroska file's with the cover
        art attached before its clusters left out —, the bytes fetched for them, where its audio
        begins in the file); None where a request is not answered with the range. A set-up over
        the first 16 kB has the first 256 kB fetched; cover art (a 960 kB PNG went past those, and
        the song to yt-dlp) is stepped over: 16 kB from its end, one more request."""
        fetched = len(head)
        gap = webm.set_up_gap(head) if container.ext == "webm" else None
        if gap is None and not container.header_ok(head) and size > len(head):
            reply = http_range(url, 0, SECTION_PREFIX_BYTES[1] - 1, self.socket_timeout_s, headers)
            if reply is None:
                return None
            head = reply.data
            fetched = len(head)
            gap = webm.set_up_gap(head) if container.ext == "webm" else None
        if gap is None or gap[1] >= size:
            return head, fetched, 0
        rest = http_range(url, gap[1], min(gap[1] + SECTION_PREFIX_BYTES[0], size) - 1, self.socket_timeout_s, headers)
        if rest is None:
            return None
        return head[:gap[0]] + rest.data, fetched + len(rest.data), gap[1]

    def _stated_length(self, container: Container, url: str, head: bytes, size: int,
                       headers: dict[str, str]) -> tuple[float | None, bytes]:
        """(the length an Ogg or WebM file states, the bytes fetched for it): a WebM's in its Info
        element, an Ogg's in the granule position of its last page (one request for the end)."""
        if container.ext == "webm":
            header = webm.parse_header(head)
            return (header.seconds if header else None), b""
        pages = ogg.header_pages(head)
        if pages is None or size <= len(head):
            return None, b""
        tail = http_range(url, max(size - OGG_TAIL_BYTES, len(head)), size - 1, self.socket_timeout_s, headers)
        if tail is None:
            return None, b""
        return ogg.stated_seconds(pages, tail.data), tail.data

    def _indexed_section(self, url: str, head: RangeReply, duration_s: float | None, workdir: Path,
                         headers: dict[str, str], cutter: type[ranged.Cutter]) -> FetchedAudio | None:
        """The section of a file whose header places its audio; its stated length stands in for
        an unknown `duration_s` (and refuses the song when over the limit)."""
        if head.total_size <= len(head.data) or self._short(duration_s):
            return None  # short song: the whole file is the section
        file = ranged.RangedFile(url, head, self.socket_timeout_s, headers, self.max_bytes)
        length, opened = duration_s, None
        try:
            opened = cutter.open(file)
            length = duration_s or (opened.seconds if opened else None)
            if length is not None and length > self.max_duration_s:
                raise StatedTooLongError
            if opened is not None and length is not None and self._short(length):
                return None  # found short only now: the whole file, from yt-dlp
            if not (opened and length):
                section = None
            elif duration_s is None and isinstance(opened, ranged.FramesCut):
                # An MP3's stated length is checked against the frames fetched for its window,
                # and rescaled by them where its header's count lies.
                section, length = opened.cut_stated(lambda s: section_window(s, self.section_seconds), length)
                if length > self.max_duration_s:
                    raise StatedTooLongError
                if self._short(length):
                    return None
            else:
                section = opened.cut(section_window(length, self.section_seconds), length)
        except ranged.RangesRefused:
            section = None
        named = opened or cutter  # an ID3 tag's file is an MP3 or an AAC once opened
        stated_window = section_window(length, self.section_seconds) if duration_s is None and length else None
        return section_file(section, named.name, named.ext, url, workdir, file.fetched, length, stated_window)

    def _short(self, duration_s: float | None) -> bool:
        return duration_s is not None and duration_s <= self.section_seconds + WHOLE_FILE_SLACK_S

    def _ytdlp_options(self, workdir: Path, messages: _YtdlpLog, hook) -> dict:
        max_duration = self.max_duration_s

        def duration_filter(info: dict, *, incomplete: bool = False) -> str | None:
            duration = info.get("duration")
            if duration and duration > max_duration:
                return f"{TOO_LONG_REASON} {max_duration:.0f} s"
            return None

        return {
            "format": "bestaudio/best",
            "noplaylist": True,
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": messages,
            "socket_timeout": self.socket_timeout_s,
            "max_filesize": self.max_bytes,
            "match_filter": duration_filter,
            "extract_flat": "in_playlist",
            "outtmpl": str(workdir / "%(id).40s.%(ext)s"),
            "restrictfilenames": True,
            "cachedir": False,
            "retries": 1,
            "fragment_retries": 1,
            # A fragment that fails ends the download: yt-dlp would skip it and carry on, also when
            # the progress hook stops it for max_bytes, with the next fragment and the next.
            "skip_unavailable_fragments": False,
            "postprocessors": [],  # no conversion: the classifier decodes webm/m4a/ogg itself
            "progress_hooks": [hook] if hook else [],
            "js_runtimes": js_runtimes(),
            "remote_components": [],
        }

    def _ytdlp(self, source: str, known_s: float | None, label: str, workdir: Path,
               youtube_id: str | None = None, watch: Watch | None = None, whole: bool = False) -> FetchedAudio:
        """`watch`: a user's link, whose every connection the connection guard watches. `whole`:
        the file's timestamps are known to lie, and no section is cut by them (nor tried again)."""
        import yt_dlp
        from yt_dlp.utils import download_range_func

        messages = _YtdlpLog()
        progress = {"bytes": 0}

        def hook(status: dict) -> None:
            done = status.get("downloaded_bytes") or 0
            progress["bytes"] = max(progress["bytes"], done)
            if done > self.max_bytes:
                raise yt_dlp.utils.DownloadError("File is larger than max-filesize")

        options = self._ytdlp_options(workdir, messages, hook)
        if watch is not None:
            options["external_downloader"] = {"default": "native"}
            options["ffmpeg_location"] = NO_FFMPEG
            options["proxy"] = ""  # direct, whatever proxy the environment names: the guard sees each address
        try:
            with yt_dlp.YoutubeDL(options) as ydl:
                info = ydl.extract_info(source, download=False)
                info = self._pick(ydl, info, known_s, label, messages)
            if is_live(info):
                raise LiveStreamError(f"“{label}” is a live stream — send me a recorded song instead.")
            duration = info.get("duration") or known_s
            if not duration and watch is not None and self._whole_format(info, DASH_PROTOCOL):
                duration = dash_length(info.get("fragments"))  # yt-dlp leaves a DASH manifest's length unsaid
            if duration and duration > self.max_duration_s:
                raise AudioTooLargeError(f"“{label}” is too long for me to listen to.")
            is_youtube = str(info.get("extractor_key", "")).lower().startswith("youtube")
            video_id = youtube_id or (info.get("id") if is_youtube else None)
            direct = None if whole else direct_range_url(info)
            if direct:  # a file whose length, if not known, its header states
                try:
                    audio = self._range_section(direct, duration, workdir, label, info.get("http_headers"))
                except DownloadError as error:  # the host may want yt-dlp's way; let yt-dlp try
                    log.info("Range section failed (%s); falling back to yt-dlp", error)
                    audio = None
                except StreamTimesLie:
                    log.info("the timestamps of %s are not its stream's; fetching it whole", urlsplit(direct).path)
                    audio, whole = None, True
                if audio is not None:
                    return replace(audio, title=info.get("title"), youtube_id=video_id,
                                   source_url=info.get("webpage_url") or direct)
            # A file whose timestamps lie is fetched whole: the classifier decodes it sample by
            # sample and picks its section from what it plays.
            window = section_window(duration, self.section_seconds) if duration and not whole else None
            if not (window and duration > self.section_seconds + WHOLE_FILE_SLACK_S):
                window = None
            plain_file = watch is None or self._vet_user_link_formats(info, watch)
            cut_here = window if watch is not None and plain_file else None  # from the downloaded copy
            if window and watch is None:  # ffmpeg fetches and cuts the section
                options["download_ranges"] = download_range_func([], [window])
            options["extract_flat"] = False
            with yt_dlp.YoutubeDL(options) as ydl:
                if not plain_file:  # a playlist or manifest: yt-dlp's own downloader, its section's segments if it can
                    window = self._stream_section(ydl, info, window, watch) if window else None
                ydl.process_ie_result(info, download=True)
        except (yt_dlp.utils.DownloadError, yt_dlp.utils.ExtractorError) as error:
            if watch is not None and NEEDS_FFMPEG in str(error):
                raise UnsupportedInputError(f"“{label}” is a kind of stream I can't fetch — "
                                            "send me a link to a plain song instead.") from None
            raise map_ytdlp_error(str(error), label, source) from None
        except yt_dlp.networking.exceptions.RequestError as error:
            # One yt-dlp lets out unwrapped: a redirect to a host no HTTP client reads ("a:1\.b"). It
            # holds yt-dlp's request handler, and could not travel back from the download worker.
            log.info("yt-dlp's request for %s failed: %s", label, type(error).__name__)
            raise DownloadError(f"The download of “{label}” failed.") from None
        except UnicodeError:  # yt-dlp normalising a URL whose host name no resolver looks up ("a..b")
            log.info("yt-dlp could not encode a URL it was given (%s)", label)
            if watch is not None:
                raise BlockedURLError(BLOCKED_MESSAGE) from None
            raise DownloadError(f"The download of “{label}” failed.") from None
        if progress["bytes"] > self.max_bytes:  # however yt-dlp passed the hook's stop on
            raise AudioTooLargeError(f"“{label}” is too big to fetch.")
        path = find_download(workdir)
        if path is None:
            if messages.said("max-filesize"):
                raise AudioTooLargeError(f"“{label}” is too big to fetch.")
            raise DownloadError(f"The download of “{label}” failed.")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise AudioTooLargeError(f"“{label}” is too big to fetch.")
        if cut_here:
            section = cut_local_section(path, cut_here)
            if section is None:  # e.g. a container named by no extension ffmpeg can write: the
                window = None    # classifier decodes the whole file and picks its section itself
            else:
                path.unlink()
                path = section
        return FetchedAudio(
            path=path,
            youtube_id=video_id,
            source_url=info.get("webpage_url") or info.get("url") or source,
            bytes_downloaded=max(progress["bytes"], size),
            duration_s=duration,
            title=info.get("title"),
            section_s=window,
        )

    @staticmethod
    def _whole_format(info: dict, protocol: str) -> bool:
        """The chosen format is one stream of `protocol` (not separate audio and video)."""
        return not info.get("requested_formats") and info.get("protocol") == protocol

    def _stream_section(self, ydl: yt_dlp.YoutubeDL, info: dict, window: tuple[float, float],
                        watch: Watch) -> tuple[float, float] | None:
        """Have yt-dlp's own downloader fetch only the segments of an HLS or DASH stream around
        `window`; the span they cover, or None if the whole stream is to be fetched."""
        if self._whole_format(info, DASH_PROTOCOL):
            return self._dash_section(info, window)
        if self._whole_format(info, "m3u8_native"):
            return self._hls_section(ydl, info, window, watch)
        return None  # separate audio and video, or another protocol: fetched whole

    @staticmethod
    def _dash_section(info: dict, window: tuple[float, float]) -> tuple[float, float] | None:
        """Hand yt-dlp's DASH downloader only the fragments around `window` (after the
        initialization segment); the span they cover, or None if the whole stream is to be fetched."""
        cut = dash_section(info.get("fragments"), window)
        if cut is None:
            return None
        fragments, span = cut
        for fmt in (info, *(f for f in info.get("formats") or () if f.get("format_id") == info.get("format_id"))):
            fmt["fragments"] = list(fragments)  # yt-dlp picks the format again from info["formats"]
        return span

    @staticmethod
    def _hls_section(ydl: yt_dlp.YoutubeDL, info: dict, window: tuple[float, float],
                     watch: Watch) -> tuple[float, float] | None:
        """Have yt-dlp's HLS downloader fetch only the segments around `window`, by handing it the
        playlist cut to them; the span they cover, or None if the whole stream is to be fetched."""
        import yt_dlp

        url = info["url"]
        try:
            with ydl.urlopen(yt_dlp.networking.Request(url, headers=info.get("http_headers"))) as response:
                if response.url != url:  # the downloader would resolve the segments against `url`
                    return None
                playlist = response.read(MAX_PLAYLIST_BYTES + 1)
        except (OSError, yt_dlp.networking.exceptions.RequestError):
            if watch.refused:
                raise
            return None  # the download tries again and says what went wrong
        cut = hls_section(playlist.decode("utf-8", "replace"), window) if len(playlist) <= MAX_PLAYLIST_BYTES else None
        if cut is None:
            return None
        text, span = cut
        for fmt in (info, *(f for f in info.get("formats") or () if f.get("format_id") == info.get("format_id"))):
            fmt["hls_media_playlist_data"] = text  # yt-dlp picks the format again from info["formats"]
        return span

    @staticmethod
    def _vet_user_link_formats(info: dict, watch: Watch) -> bool:
        """Refuse a user link's chosen format unless yt-dlp's own downloaders can fetch it and its
        URL goes to an allowed address. True if it is one plain file over HTTP(S), whose section
        is cut from the downloaded copy. A DASH manifest names its fragments' URLs: each of their
        hosts is vetted too, so that a refusal comes before the first fragment."""
        from yt_dlp.utils import determine_protocol

        formats = info.get("requested_formats") or [info]
        protocols = [f.get("protocol") or determine_protocol(f) for f in formats]
        for fmt, protocol in zip(formats, protocols):
            if protocol not in USER_LINK_PROTOCOLS:
                watch.refuse(f"a {protocol} download")
            for url in (str(fmt.get("url") or ""), *fragment_origins(fmt)):
                vet_format_url(watch, url)
        return all(p in ("http", "https") for p in protocols)

    def _pick(self, ydl: yt_dlp.YoutubeDL, info: dict | None, known_s: float | None, label: str,
              messages: _YtdlpLog) -> dict:
        """The single video to download: the search hit whose length is closest to the song's,
        of those that are no other version than `label` names (`choose_candidate`). A hit that
        turns out to be a live stream once its page is read gives way to the next one, up to
        LIVE_HITS_TRIED hits in all (the caller refuses a live stream it is given)."""
        if info is None:
            raise AudioTooLargeError(f"“{label}” is too long for me to listen to.")
        if info.get("_type") != "playlist" and "entries" not in info:
            return info
        ranked = self._ranked(info, known_s, label, messages)
        for tried, entry in enumerate(ranked, 1):
            if entry.get("_type") in ("url", "url_transparent"):
                entry = ydl.extract_info(entry["url"], download=False)
                if entry is None:
                    raise AudioTooLargeError(f"“{label}” is too long for me to listen to.")
            if not is_live(entry) or tried == len(ranked):
                return entry
            log.info("search hit %s is a live stream; trying the next one", entry.get("id"))
        raise AssertionError("_ranked lists one hit at least")

    @staticmethod
    def _ranked(info: dict, known_s: float | None, label: str, messages: _YtdlpLog) -> list[dict]:
        """The search's hits to try in turn, best first (`choose_candidate`, then again of those
        left), LIVE_HITS_TRIED at most: each costs a request or more once read, and a live stream
        shows as one only then, unless the listing says so (a YouTube search's badge). Those the
        listing calls live are passed over, free; one is kept where no other hit fits, for the
        caller to refuse as a live stream."""
        entries = [e for e in info.get("entries") or [] if e]
        ranked: list[dict] = []
        live: list[dict] = []
        while entries and len(ranked) < LIVE_HITS_TRIED:
            # The label is the song's name as Spotify (artists – title) or the user gave it.
            index = choose_candidate([e.get("duration") for e in entries], known_s,
                                     titles=[e.get("title") for e in entries], song=label)
            if index is None:
                break
            entry = entries.pop(index)
            (live if is_live(entry) else ranked).append(entry)
        if ranked or live:
            return ranked or live[:1]
        if messages.said(TOO_LONG_REASON):
            raise AudioTooLargeError(f"“{label}” is too long for me to listen to.")
        raise TrackNotFoundError(f"No audio found for “{label}”.")
