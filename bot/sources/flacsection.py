"""Cut a time window out of a FLAC file fetched with HTTP Range requests.

A FLAC file is `fLaC`, metadata blocks (STREAMINFO first; maybe a SEEKTABLE, tags, cover art),
then frames that decode on their own. A frame's header has no length, but it starts with a sync
code, carries its own number (or its first sample's) and ends with a CRC-8; so frame starts are
found by scanning, and each is confirmed by its CRC and by numbering on from the one before. A
section is `fLaC` + the STREAMINFO (its total length and MD5 cleared: they were the song's) + the
whole frames of the window. The window's bytes come from the SEEKTABLE when there is one (exact
sample positions), else in proportion to the length.
"""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, replace
from typing import Callable

MAGIC = b"fLaC"
STREAMINFO, SEEKTABLE = 0, 3
MAX_BLOCKS = 32  # metadata blocks walked to find the first frame
MAX_SEEKTABLE_BYTES = 18 * 4096  # a point every 10 s for 11 hours; a longer table is not read
MAX_HEADER_BYTES = 16  # a frame header: sync, codes, a 7-byte number, 2 + 2 more, CRC-8
PLACEHOLDER = 0xFFFFFFFFFFFFFFFF  # a seek point that points nowhere
SAMPLE_RATES = (None, 88200, 176400, 192000, 8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000)


def _crc8_table() -> bytes:
    table = bytearray(256)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[i] = crc
    return bytes(table)


CRC8 = _crc8_table()


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = CRC8[crc ^ byte]
    return crc


@dataclass(frozen=True)
class StreamInfo:
    raw: bytes  # the 34 bytes
    min_block: int
    max_block: int
    sample_rate: int
    channels: int
    total_samples: int

    def cleared(self, block: int | None = None) -> bytes:
        """The block for a section: total samples 0 ("unknown") and no MD5 (they were the song's);
        `block`: the size of its frames, for a stream of one size (a decoder refuses a frame over
        the largest that STREAMINFO states)."""
        head = bytearray(self.raw[:18])
        if block is not None:
            head[0:4] = struct.pack(">HH", block, block)
        head[13] &= 0xF0  # the top 4 bits of the 36-bit total are in this byte's low half
        head[14:18] = bytes(4)
        return bytes(head) + bytes(16)


def parse_streaminfo(raw: bytes) -> StreamInfo | None:
    if len(raw) != 34:
        return None
    min_block, max_block = struct.unpack_from(">HH", raw, 0)
    packed = int.from_bytes(raw[10:18], "big")
    rate, channels, total = packed >> 44, (packed >> 41 & 0x7) + 1, packed & 0xFFFFFFFFF
    if not rate or not 16 <= min_block <= max_block:
        return None
    return StreamInfo(raw, min_block, max_block, rate, channels, total)


@dataclass(frozen=True)
class Metadata:
    info: StreamInfo
    seek_points: tuple[tuple[int, int], ...]  # (sample, byte offset from the first frame), sorted
    audio_start: int  # file offset of the first frame


def metadata_of(read: Callable[[int, int], bytes], size: int) -> Metadata | None:
    """The STREAMINFO, the seek table and where the frames start, the blocks walked from the
    start; `read(first, last)` gives the file's bytes first..last. None if it is not FLAC."""
    if read(0, 3) != MAGIC:
        return None
    at, info, points = 4, None, ()
    for _ in range(MAX_BLOCKS):
        header = read(at, at + 3)
        if len(header) < 4:
            return None
        last, kind, length = header[0] >> 7, header[0] & 0x7F, int.from_bytes(header[1:4], "big")
        if kind == STREAMINFO and info is None and length == 34:
            info = parse_streaminfo(read(at + 4, at + 4 + length - 1))
        elif kind == SEEKTABLE and length % 18 == 0 and length <= MAX_SEEKTABLE_BYTES:
            raw = read(at + 4, at + 4 + length - 1)
            if len(raw) != length:
                return None  # cut short: the file ends inside its metadata
            points = tuple(sorted((s, o) for s, o, _n in struct.iter_unpack(">QQH", raw) if s != PLACEHOLDER))
        at += 4 + length
        if last:
            return Metadata(info, points, at) if info is not None and at < size else None
    return None


@dataclass(frozen=True)
class Frame:
    start: int  # offset in the buffer
    variable: bool  # blocking strategy: numbered by sample, not by frame
    number: int  # frame number, or first sample's number
    block: int | None  # samples, if the header says (None: "as STREAMINFO's")

    def first_sample(self, info: StreamInfo) -> int:
        return self.number if self.variable else self.number * info.min_block


def _coded_number(buf: bytes, at: int) -> tuple[int, int] | None:
    """The UTF-8-like coded number at `at`: (value, bytes)."""
    if at >= len(buf):
        return None
    first = buf[at]
    if first < 0x80:
        return first, 1
    length = 8 - (first ^ 0xFF).bit_length()  # leading ones
    if not 2 <= length <= 7 or at + length > len(buf):
        return None
    value = first & (0x7F >> length)
    for byte in buf[at + 1:at + length]:
        if byte & 0xC0 != 0x80:
            return None
        value = value << 6 | byte & 0x3F
    return value, length


def read_frame(buf: bytes, at: int, info: StreamInfo) -> Frame | None:
    """The frame whose header is at `at`, if its sync code, fields and CRC-8 hold, and it matches
    the stream's rate and channels."""
    if at + 6 > len(buf) or buf[at] != 0xFF or buf[at + 1] & 0xFE != 0xF8:
        return None
    block_code, rate_code = buf[at + 2] >> 4, buf[at + 2] & 0xF
    channel_code, size_code, reserved = buf[at + 3] >> 4, buf[at + 3] >> 1 & 0x7, buf[at + 3] & 1
    if not block_code or rate_code == 15 or channel_code > 10 or size_code == 3 or reserved:
        return None
    channels = 2 if channel_code >= 8 else channel_code + 1
    if channels != info.channels:
        return None
    number = _coded_number(buf, at + 4)
    if number is None:
        return None
    pos = at + 4 + number[1]
    block: int | None
    if block_code == 1:
        block = 192
    elif 2 <= block_code <= 5:
        block = 576 << (block_code - 2)
    elif block_code in (6, 7):
        extra = 1 if block_code == 6 else 2
        if pos + extra > len(buf):
            return None
        block = int.from_bytes(buf[pos:pos + extra], "big") + 1
        pos += extra
    else:
        block = 256 << (block_code - 8)
    if 12 <= rate_code <= 14:
        extra = 1 if rate_code == 12 else 2
        if pos + extra > len(buf):
            return None
        pos += extra
    elif rate_code and SAMPLE_RATES[rate_code] != info.sample_rate:
        return None
    if pos >= len(buf) or crc8(buf[at:pos]) != buf[pos]:
        return None
    return Frame(at, bool(buf[at + 1] & 1), number[0], block)


def frames_in(buf: bytes, info: StreamInfo, start: int = 0) -> list[Frame]:
    """The frames of a run in `buf`: from the first header whose next frame numbers on from it,
    each next one found by scanning (a frame's length is not in its header)."""
    found: list[Frame] = []
    at = buf.find(b"\xff", start)
    while at != -1:
        frame = read_frame(buf, at, info)
        if frame is not None:
            if not found or _follows(found[-1], frame, info):
                found.append(frame)
            elif len(found) == 1:
                found = [frame]  # the first was a false start: begin again from this one
        at = buf.find(b"\xff", at + 1)
    return found if len(found) >= 2 else []


def _follows(before: Frame, frame: Frame, info: StreamInfo) -> bool:
    if frame.variable != before.variable:
        return False
    if not frame.variable:
        return frame.number == before.number + 1
    return frame.number == before.number + (before.block or info.min_block)


def byte_span(window: tuple[float, float], meta: Metadata, size: int, margin: float) -> tuple[int, int]:
    """File offsets (first, last) that hold the window's frames: from the seek table's points
    around it where it has them, else in proportion to the length, `margin` of the span wider on
    each side (a FLAC's bit rate follows the music)."""
    rate, total = meta.info.sample_rate, meta.info.total_samples
    begin, end = round(window[0] * rate), round(window[1] * rate)
    audio = size - meta.audio_start
    guess = [meta.audio_start + round(audio * min(s / total, 1.0)) if total else None for s in (begin, end)]
    if None in guess:
        return meta.audio_start, size - 1
    extra = round(margin * (guess[1] - guess[0]))
    first, last = max(guess[0] - extra, meta.audio_start), min(guess[1] + extra, size - 1)
    samples = [s for s, _ in meta.seek_points]
    before = bisect.bisect_right(samples, begin) - 1
    after = bisect.bisect_right(samples, end)
    if before >= 0:
        first = meta.audio_start + meta.seek_points[before][1]
    if after < len(samples):
        last = min(meta.audio_start + meta.seek_points[after][1] + 2 * MAX_HEADER_BYTES, size - 1)
    return first, last


def splice_section(meta: Metadata, middle: bytes, window: tuple[float, float],
                   max_seconds: float) -> tuple[bytes, float, float] | None:
    """(a playable FLAC file of the whole frames in `middle` from the window's start, up to
    `max_seconds`; its start and end in seconds). The last frame found only marks where the one
    before it ends. None if there are no such frames."""
    info = meta.info
    frames = frames_in(middle, info)
    if not frames:
        return None
    # A stream of one block size numbers its frames; each plays the block its header states.
    # STREAMINFO's may differ (a header that lies): the frames' own is what the decoder plays.
    block = None if frames[0].variable else frames[0].block
    if block is not None and any(f.block != block for f in frames[:-1]):
        return None  # the last one found may be the song's last, shorter one

    def sample(frame: Frame) -> int:
        return frame.number if block is None else frame.number * block

    rate = info.sample_rate
    begin = round(window[0] * rate)
    kept = [f for f, after in zip(frames, frames[1:]) if sample(after) > begin]
    if not kept:
        return None
    first = sample(kept[0])
    limit = first + round(max_seconds * rate)
    ends = {f.start: after for f, after in zip(frames, frames[1:])}
    kept = [f for f in kept if sample(f) < limit]
    end_frame = ends[kept[-1].start]
    streaminfo = replace(info, raw=info.cleared(block))
    data = MAGIC + bytes([0x80 | STREAMINFO]) + len(streaminfo.raw).to_bytes(3, "big") + streaminfo.raw
    return data + middle[kept[0].start:end_frame.start], first / rate, sample(end_frame) / rate
