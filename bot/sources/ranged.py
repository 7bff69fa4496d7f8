"""Sections of files whose own headers place their audio, fetched with HTTP Range requests.

    file = RangedFile(url, http_range(url, 0, 16383, ...), timeout_s, headers, max_bytes)
    cutter = cutter_for(file.head).open(file)      # MP4, MP3, AAC, WAV or FLAC; None: not one we cut
    cutter.seconds                                 # the length the file states, if it does
    cutter.cut(window, duration_s)                 # (bytes of a playable file, start s, end s)

An MP4's index, a FLAC's seek table, a WAV's byte rate and the frame headers of an MP3 (with a
VBR file's table of contents) or an ADTS AAC say where the window's audio is, so only its bytes
are fetched, and the header and the length come with the first 16 kB (an MP4 index after the
audio: one more request for the file's end; cover art at the front: one more for what follows it;
an AAC's length: its middle frames' bit rate). The container surgery is in `mp4section`,
`mp3section`, `adtssection`, `wavsection` and `flacsection`; this module does the requests. `audio.SectionDownloader` falls back to yt-dlp when a cutter gives None or the host
stops answering ranges (`RangesRefused`).
"""
from __future__ import annotations

import http.client
import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from bot.sources import adtssection as adts
from bot.sources import flacsection as flac
from bot.sources import mp3section as mp3
from bot.sources import mp4section as mp4
from bot.sources import wavsection as wav
from bot.sources.models import AudioTooLargeError, DownloadError, TrackNotFoundError

TOO_SLOW = "The download took too long — try again later."
RANGE_MARGIN = 0.05  # extra bytes around the window, as a share of it: bit rates vary
FLAC_RANGE_MARGIN = 0.25  # without a seek table: a lossless bit rate follows the music more
FRAMES_PROBE_BYTES = 8 * 1024  # an MP3's or AAC's first frames: an MP3's Xing table of contents, a chain to check
ADTS_PROBE_BYTES = 64 * 1024  # an AAC's middle frames, whose bit rate gives its length (~8 s at 64 kbit/s)
# An MP4's index may come after its audio: the last this many bytes are then fetched at once, and
# no index or box before the media is fetched if it is longer (a song's moov is ~50 kB).
MAX_MP4_TAIL_BYTES = 4 * 1024 * 1024
MAX_MP4_BOXES = 16  # top-level boxes walked to find the index
MAX_MP4_TRAILER_BYTES = 64 * 1024  # after a fragmented file's last fragment: its random-access index
# A length an MP3's Xing/Info header states is believed if the file's bytes over it come to at
# least this share of the bit rate the header states (the attachment decoder's MIN_STATED_SHARE).
MIN_STATED_SHARE = 0.5
# A length an MP3 states is also checked against the frames fetched for its window: by the
# header's table of contents (or in proportion, at a constant rate) their bytes play for so many
# seconds of that length. Frames that play this factor longer or shorter than that (beyond what
# the table's 1/256 steps can place wrong) mean a wrong count: the length is rescaled by them.
MAX_STATED_MISMATCH = 1.3
# A Xing header's byte count, which its table of contents places the song's percents by, is the
# file's (less an ID3v2 tag at the front; an ID3v1 or APE tag at the end are not counted) within this
# share of it; further off, the header is not this file's, or it lies: the section is not cut by it.
MAX_XING_BYTES_OFF = 0.1
LOOKAHEAD_BYTES = 256  # fetched past an MP4 box, a WAV chunk or FLAC block: the next headers

Section = tuple[bytes, float, float]  # a playable file, and where it starts and ends in the song (s)


class EmptyFileError(Exception):
    """The file at the URL has no bytes (a 416 whose Content-Range is 'bytes */0')."""


class RangesRefused(Exception):
    """The host answered a byte range with the whole file, or with other bytes than asked."""


@dataclass(frozen=True)
class RangeReply:
    data: bytes
    total_size: int | None


def http_range(url: str, first: int, last: int, timeout_s: float,
               headers: dict[str, str] | None = None) -> RangeReply | None:
    """Bytes first..last of `url`; None if the server ignores Range (answers 200)."""
    request = urllib.request.Request(url, headers={**(headers or {}), "Range": f"bytes={first}-{last}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if response.status != 206:
                return None  # close without reading the whole file
            m = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", ""))
            return RangeReply(response.read(last - first + 1), int(m.group(1)) if m else None)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise TrackNotFoundError("No audio found for that song.") from None
        if error.code == 416 and error.headers.get("Content-Range", "").strip() == "bytes */0":
            raise EmptyFileError from None
        raise DownloadError(f"The audio host refused the download (HTTP {error.code}).") from None
    except TimeoutError:
        raise DownloadError(TOO_SLOW) from None
    except (urllib.error.URLError, OSError) as error:
        if "timed out" in str(error):
            raise DownloadError(TOO_SLOW) from None
        raise DownloadError("The audio host could not be reached.") from None
    except (http.client.HTTPException, ValueError):
        # An answer that is no HTTP (a garbled status line, a cut or garbled chunked body), which
        # http.client raises as no OSError; or a host name no resolver looks up (a UnicodeError).
        # A DownloadError all the same, so that yt-dlp is let try the file its own way.
        raise DownloadError("The audio host could not be reached.") from None


class RangedFile:
    """A remote file read through Range requests, its first bytes already fetched; keeps what it
    fetched and counts the bytes."""

    def __init__(self, url: str, head: RangeReply, timeout_s: float, headers: dict[str, str], max_bytes: int):
        self.url, self.timeout_s, self.headers, self.max_bytes = url, timeout_s, headers, max_bytes
        self.size = head.total_size
        self.head = head.data
        self.fetched = len(head.data)
        self.chunks: list[tuple[int, bytes]] = [(0, head.data)]

    def read(self, first: int, last: int, ahead: int = 0) -> bytes:
        """Bytes first..last (inclusive) of the file; a request for them also asks for `ahead`
        more, kept for the next read. None of them past the file's end (a header that points
        there: a file cut short, a size that lies): b"", and no request."""
        last = min(last, self.size - 1)
        if first > last:
            return b""
        for base, data in self.chunks:
            if base <= first and last < base + len(data):
                return data[first - base:last + 1 - base]
        end = min(last + ahead, self.size - 1)
        if self.fetched + end - first + 1 > self.max_bytes:
            raise AudioTooLargeError("That song's audio file is too big to fetch.")
        reply = http_range(self.url, first, end, self.timeout_s, self.headers)
        if reply is None or len(reply.data) != end - first + 1:
            raise RangesRefused  # the whole file, then, through yt-dlp
        self.fetched += len(reply.data)
        self.chunks.append((first, reply.data))
        return reply.data[:last + 1 - first]

    def holds(self, at: int) -> bool:
        return any(base <= at < base + len(data) for base, data in self.chunks)

    def reader(self, first: int, last: int) -> bytes:
        """`read` with look-ahead: for walking headers one after another."""
        return self.read(first, last, ahead=LOOKAHEAD_BYTES)


# -- MP4 -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mp4Index:
    ftyp: bytes
    moov: bytes
    after: list[tuple[int, bytes]]  # (offset, bytes) of the small boxes between moov and the media
    media_at: int | None  # where the first fragment (or the audio after a front index) starts


def mp4_index(file: RangedFile) -> Mp4Index | None:
    """The top-level boxes up to the index (moov) and just after it, walked from the start a
    header at a time; the file's last MAX_MP4_TAIL_BYTES come in one request (an index after
    the audio). None if the walk finds no ftyp first or no moov."""
    at, ftyp, moov, after = 0, None, None, []
    for _ in range(MAX_MP4_BOXES):
        if at >= file.size:
            break
        if moov is None and not file.holds(at) and file.size - at <= MAX_MP4_TAIL_BYTES:
            file.read(at, file.size - 1)
        box = mp4.read_box(file.read(at, at + mp4.HEADER_BYTES - 1), 0)
        if box is None or box.size is None or (at == 0) != (box.type == mp4.FTYP):
            break
        if box.type in (mp4.MOOF, mp4.MDAT) and moov is not None:
            return Mp4Index(ftyp, moov, after, media_at=at)  # a fragment, or the audio after a front index
        if box.type in (mp4.FTYP, mp4.MOOV) or moov is not None:
            if box.size > MAX_MP4_TAIL_BYTES:
                break
            raw = file.reader(at, at + box.size - 1)  # and the next headers
            if len(raw) != box.size:
                break
            if box.type == mp4.FTYP:
                ftyp = raw
            elif box.type == mp4.MOOV:
                moov = raw
            else:
                after.append((at, raw))  # a sidx, free space...
        at += box.size
    return Mp4Index(ftyp, moov, after, media_at=None) if ftyp and moov else None


@dataclass(frozen=True)
class Mp4Cut:
    """MP4/M4A: its index (moov) says where the window's samples are; fetch them and rebuild it."""

    file: RangedFile
    index: Mp4Index
    track: mp4.Track
    name = "an MP4"
    ext = "m4a"

    @classmethod
    def open(cls, file: RangedFile) -> "Mp4Cut | None":
        index = mp4_index(file)
        track = mp4.audio_track(index.moov) if index else None
        return cls(file, index, track) if track else None  # None: no index found, or not one sound track

    @property
    def references(self) -> list[mp4.Reference] | None:
        """The fragments of the sidx after the index, if there is one."""
        return next((mp4.sidx_references(raw, at + len(raw)) for at, raw in self.index.after
                     if raw[4:8] == mp4.SIDX), None)

    @property
    def seconds(self) -> float | None:
        if not self.track.fragmented:
            return sum(self.track.durations) / self.track.timescale
        stated = mp4.fragmented_seconds(self.index.moov)
        if stated:
            return stated
        refs = self.references  # one that indexes the whole file: its fragments end where it does,
        if refs and 0 <= self.file.size - (refs[-1].offset + refs[-1].size) <= MAX_MP4_TRAILER_BYTES:  # or an mfra
            return refs[-1].start_s + refs[-1].duration_s
        return None

    def cut(self, window: tuple[float, float], duration_s: float) -> Section | None:
        if self.track.fragmented:
            return self._fragments(window, duration_s)
        selection = mp4.select_samples(self.track, window)
        if selection is None:
            return None
        span = self.file.read(selection.byte_first, selection.byte_last)
        data = mp4.splice_progressive(self.index.ftyp, self.index.moov, self.track, selection, span)
        return (data, selection.start_s, selection.end_s) if data else None

    def _fragments(self, window: tuple[float, float], duration_s: float) -> Section | None:
        """The fragments the sidx names for the window, else those found in the window's share of
        the bytes after the index."""
        file, index = self.file, self.index
        picked = mp4.pick_references(self.references or [], window)
        if picked and picked[0].start_s <= window[0] + 1 and picked[-1].start_s + picked[-1].duration_s >= window[1] - 1:
            first, last = picked[0].offset, picked[-1].offset + picked[-1].size - 1
            cut = mp4.splice_fragments(index.ftyp, index.moov, self.track, file.read(first, last))
            if cut is None or abs(cut[1] - picked[0].start_s) <= mp4.FRAGMENT_SLACK_S:
                return cut
            # The fragments' own decode times (checked against what they play) place them elsewhere
            # than the sidx does: its times are not theirs (a sidx timescale 0.3 times the stream's
            # had a 240 s song's section taken at 30-45 s, 15 s long). The window's share of the bytes.
        # No index of the fragments (or one that does not reach the window, or lies): by share of bytes
        if index.media_at is None:
            return None
        media = index.media_at
        share = (file.size - media) / duration_s
        span = (window[1] - window[0]) * share
        first = max(math.floor(media + window[0] * share - RANGE_MARGIN * span), media)
        last = min(math.ceil(media + window[1] * share + RANGE_MARGIN * span), file.size - 1)
        return mp4.splice_fragments(index.ftyp, index.moov, self.track, file.read(first, last),
                                    max_seconds=window[1] - window[0])


# -- MP3 and ADTS AAC ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FramesCut:
    """MP3 or ADTS AAC: frames, no index; a VBR MP3's first frame may have a table of contents."""

    file: RangedFile
    first: int  # where the frames start (after an ID3 tag)
    frame: mp3.Frame | adts.Frame  # the first one
    toc: mp3.Toc | None
    name: str = "an MP3 or AAC"  # which, once the frames after any ID3 tag are seen
    ext: str = "mp3"

    @classmethod
    def open(cls, file: RangedFile) -> "FramesCut | None":
        first = mp3.audio_start(file.head)
        if first is None or first >= file.size:
            return None
        probe = file.read(first, first + FRAMES_PROBE_BYTES - 1)  # the first frames, after any ID3 tag (cover art)
        if mp3.first_frame(probe) == 0:
            toc = mp3.xing(probe, 0)
            if toc and toc.bytes and abs(toc.bytes - (file.size - first)) > MAX_XING_BYTES_OFF * (file.size - first):
                return None  # not this file's byte count: a file cut short, or a header that lies
            return cls(file, first, mp3.read_frame(probe, 0), toc, "an MP3", "mp3")
        if adts.first_frame(probe) == 0:
            return cls(file, first, adts.read_frame(probe, 0), None, "an ADTS AAC", "aac")
        return None

    @property
    def seconds(self) -> float | None:
        """An MP3's by its Xing header's frame count, else as if every frame were the first's size
        (a constant bit rate: a VBR file without a Xing header is misjudged), either checked by
        `cut_stated` against the frames fetched for the window; an AAC's by the bit rate of the
        frames in its middle (one more request)."""
        audio = self.file.size - self.first
        if self.ext == "aac":
            middle = self.first + max(audio // 2 - ADTS_PROBE_BYTES // 2, 0)
            rate = adts.bytes_per_second(self.file.read(middle, middle + ADTS_PROBE_BYTES - 1))
            return audio / rate if rate else None
        frame, toc = self.frame, self.toc
        if toc and toc.frames and self._holds(toc.frames * frame.samples / frame.sample_rate):
            return toc.frames * frame.samples / frame.sample_rate
        return audio / frame.length * frame.samples / frame.sample_rate

    def _holds(self, stated_s: float) -> bool:
        """Whether the file's bytes can hold the length its Xing/Info header states: at the bit
        rate they would have over it, no less than the stream's smallest frames take (32 kbit/s
        at 44.1/48 kHz), nor under half the rate the header states (its byte count's; an Info
        header's frame's too: a constant rate), as the attachment decoder judges a stated length.
        A header that counts ten times the frames made a 4-minute song too long to listen to."""
        frame, toc = self.frame, self.toc
        holds = (self.file.size - self.first) * 8 / stated_s
        stated = [toc.bytes * 8 / stated_s] if toc.bytes else []
        if toc.constant:
            stated.append(frame.bit_rate)
        return holds >= max(mp3.lowest_bit_rate(frame), MIN_STATED_SHARE * max(stated, default=0))

    def cut(self, window: tuple[float, float], duration_s: float) -> Section | None:
        found = self._fetch(window, duration_s, measure=False)
        return found.section if found else None

    def cut_stated(self, window_of: Callable[[float], tuple[float, float]],
                   stated_s: float) -> tuple[Section | None, float]:
        """(the section, the song's length) for the length the file states (`seconds`), checked
        against the frames fetched for its window: where they play over MAX_STATED_MISMATCH
        longer or shorter than the header places in their bytes (a frame count that lies, within
        what `_holds` lets through: a 240 s song taken for 479 s, its section said to lie at
        225-240 s), the length is rescaled by what they play and the window fetched again for it
        (one more request). None for a section whose frames disagree again: yt-dlp's turn."""
        found = self._fetch(window_of(stated_s), stated_s)
        if found is None or self.ext == "aac" or not self._linear or _agrees(found):
            return (found.section if found else None), stated_s
        if found.placed_s <= 0:
            return None, stated_s  # frames where the header places no time at all
        measured_s = stated_s * found.plays_s / found.placed_s
        # That length is only as close as the table's steps over the first span: the window's
        # bytes are fetched with more to spare, so that it still holds the window's length.
        again = self._fetch(window_of(measured_s), measured_s, margin=RANGE_MARGIN + MAX_STATED_MISMATCH - 1)
        if again is None or not _agrees(again) or again.placed_s <= 0:
            return None, measured_s
        # The second span is the window's whole length, so its frames tell the length closer
        # (the table's steps are a smaller share of its bytes): the section scaled with it.
        scale = again.plays_s / again.placed_s
        data, start, end = again.section
        return (data, start * scale, start * scale + end - start), measured_s * scale

    @property
    def _linear(self) -> bool:
        """Whether the window's bytes are placed by a mapping that a wrong length only scales: a
        table of contents, or the proportion of a constant bit rate (an Info header's, or the
        first frame's, taken for every frame's). A VBR file's count without a table is placed in
        proportion, which its bit rate's swings make wrong by more than a wrong count would."""
        toc = self.toc
        if toc is None or toc.constant or _valid_points(toc):
            return True
        return not (toc.frames and self._holds(toc.frames * self.frame.samples / self.frame.sample_rate))

    def _fetch(self, window: tuple[float, float], duration_s: float, margin: float = RANGE_MARGIN,
               measure: bool = True) -> "Fetched | None":
        """The section of `window`, and (`measure`) what all the whole frames fetched for it play
        against what the header places in their bytes for `duration_s` (2 ms more for 30 s)."""
        file, first, toc = self.file, self.first, self.toc
        lo, hi = (mp3.byte_at(t / duration_s, toc, first, file.size) for t in window)
        hi = min(hi + math.ceil(margin * (hi - lo)), file.size - 1)  # bit rates vary
        codec = adts if self.ext == "aac" else mp3
        middle = file.read(lo, hi)
        cut = codec.splice_section(middle, window[1] - window[0])
        if cut is None:
            return None
        data, offset, seconds = cut
        start = mp3.time_at(lo + offset, toc, first, file.size, duration_s)
        if not measure:
            return Fetched((data, start, start + seconds), seconds, seconds, 1.0)  # not measured: no say
        whole, _, plays = codec.splice_section(middle)  # from the same frame, with no limit
        placed = mp3.time_at(lo + offset + len(whole), toc, first, file.size, duration_s) - start
        # A table's steps are 1/256 of its bytes: each end of the span may be placed that far off.
        step = 2 * (toc.bytes or file.size - first) / 256 if toc is not None and _valid_points(toc) else 0
        return Fetched((data, start, start + seconds), plays, placed, step / len(whole))


@dataclass(frozen=True)
class Fetched:
    """A section of frames, and what all the whole frames fetched for it play against the seconds
    the header places in their bytes (`placed_s`), which may be off by `slack` of itself."""

    section: Section
    plays_s: float
    placed_s: float
    slack: float


def _agrees(found: Fetched) -> bool:
    """Whether the frames play for about as long as the header says (else it states a wrong
    length); True where its table is too coarse for their bytes to tell."""
    if found.slack >= 1:
        return True
    if found.placed_s <= 0:
        return False
    ratio = found.plays_s / found.placed_s
    return 1 / (MAX_STATED_MISMATCH * (1 + found.slack)) <= ratio <= MAX_STATED_MISMATCH / (1 - found.slack)


def _valid_points(toc: mp3.Toc) -> bool:
    return toc.points is not None and list(toc.points) == sorted(toc.points)


# -- WAV and FLAC --------------------------------------------------------------------------------

@dataclass(frozen=True)
class WavCut:
    """WAV: a fixed number of bytes per second after its header."""

    file: RangedFile
    layout: wav.Layout
    name = "a WAV"
    ext = "wav"

    @classmethod
    def open(cls, file: RangedFile) -> "WavCut | None":
        layout = wav.layout_of(file.reader, file.size)
        return cls(file, layout) if layout else None

    @property
    def seconds(self) -> float:
        return self.layout.data_size / self.layout.byte_rate

    def cut(self, window: tuple[float, float], duration_s: float) -> Section | None:
        layout = self.layout
        first, last = layout.span(window)
        if last <= first:
            return None
        samples = self.file.read(first, last)
        start = (first - layout.data_start) / layout.byte_rate
        return wav.section(layout, samples), start, start + len(samples) / layout.byte_rate


@dataclass(frozen=True)
class FlacCut:
    """FLAC: frames found by their headers, placed by the seek table when there is one."""

    file: RangedFile
    meta: flac.Metadata
    name = "a FLAC"
    ext = "flac"

    @classmethod
    def open(cls, file: RangedFile) -> "FlacCut | None":
        meta = flac.metadata_of(file.reader, file.size)
        return cls(file, meta) if meta else None

    @property
    def seconds(self) -> float | None:
        return self.meta.info.total_samples / self.meta.info.sample_rate or None  # 0: not stated

    def cut(self, window: tuple[float, float], duration_s: float) -> Section | None:
        first, last = flac.byte_span(window, self.meta, self.file.size, FLAC_RANGE_MARGIN)
        return flac.splice_section(self.meta, self.file.read(first, last), window, window[1] - window[0])


Cutter = Mp4Cut | FramesCut | WavCut | FlacCut
EXTENSIONS = ("m4a", "mp4", "m4b", "mp3", "aac", "wav", "flac")  # the file name endings of these formats


def cutter_for(head: bytes) -> type[Cutter] | None:
    """The cutter for a file that starts with `head`, if it is one of these formats."""
    if head[4:8] == mp4.FTYP:
        return Mp4Cut
    if head[:3] == b"ID3" or mp3.first_frame(head) == 0 or adts.first_frame(head) == 0:
        return FramesCut
    if wav.is_wav(head):
        return WavCut
    if head[:4] == flac.MAGIC:
        return FlacCut
    return None
