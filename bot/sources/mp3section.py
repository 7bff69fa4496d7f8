"""Cut a time window out of an MP3 file fetched with HTTP Range requests.

An MP3 file is a run of frames, each with a 4-byte header that gives its length, and no index
(past an ID3 tag at the front). A VBR file's first frame may carry a Xing table of contents:
100 byte positions, one per percent of the song's length. So a section is: the window's byte
span (from that table, else in proportion to the length), from the first place where several
frames follow one another, as many whole frames as the section lasts. No header is needed: a
decoder reads such a run of frames from its first byte, as it does a stream joined midway.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.sources import framerun as frames

ID3_HEADER = 10
# Bit rates (kbit/s) by index 1-14: MPEG-1 layers I, II, III; MPEG-2/2.5 layer I; layers II, III
BIT_RATES = {
    (1, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
SAMPLE_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
VERSIONS = {0b11: 1, 0b10: 2, 0b00: 25}  # 0b01 is reserved
LAYERS = {0b11: 1, 0b10: 2, 0b01: 3}  # 0b00 is reserved


@dataclass(frozen=True)
class Frame:
    version: int  # 1, 2 or 25 (MPEG-2.5)
    layer: int
    sample_rate: int
    length: int  # bytes, header included
    samples: int  # per frame
    channel_mode: int
    bit_rate: int = 0  # bit/s

    def same_stream(self, other: "Frame") -> bool:
        return (self.version, self.layer, self.sample_rate) == (other.version, other.layer, other.sample_rate)


def read_frame(buf: bytes, at: int) -> Frame | None:
    """The frame whose header is at `at`; None if it is not a valid header (free format included)."""
    if at + 4 > len(buf) or buf[at] != 0xFF or buf[at + 1] & 0xE0 != 0xE0:
        return None
    b1, b2, b3 = buf[at + 1], buf[at + 2], buf[at + 3]
    version, layer = VERSIONS.get(b1 >> 3 & 0b11), LAYERS.get(b1 >> 1 & 0b11)
    rate_index, rate_code = b2 >> 4, b2 >> 2 & 0b11
    if version is None or layer is None or not 0 < rate_index < 15 or rate_code == 3 or b3 & 0b11 == 0b10:
        return None
    table = (1, layer) if version == 1 else (2, 1 if layer == 1 else 2)
    bit_rate = BIT_RATES[table][rate_index - 1] * 1000
    sample_rate = SAMPLE_RATES[version][rate_code]
    padding = b2 >> 1 & 1
    if layer == 1:
        samples, length = 384, (12 * bit_rate // sample_rate + padding) * 4
    elif layer == 2 or version == 1:
        samples, length = 1152, 144 * bit_rate // sample_rate + padding
    else:  # layer III of MPEG-2 and 2.5: half the samples per frame
        samples, length = 576, 72 * bit_rate // sample_rate + padding
    return Frame(version, layer, sample_rate, length, samples, b3 >> 6, bit_rate)


def lowest_bit_rate(frame: Frame) -> int:
    """The smallest bit rate (bit/s) a stream of `frame`'s version and layer can have: no frame of
    it is smaller (free format aside, which `read_frame` does not take)."""
    table = (1, frame.layer) if frame.version == 1 else (2, 1 if frame.layer == 1 else 2)
    return BIT_RATES[table][0] * 1000


def audio_start(head: bytes) -> int | None:
    """Where the frames begin: after an ID3v2 tag, if any (None if `head` is too short to tell)."""
    if head[:3] != b"ID3":
        return 0
    if len(head) < ID3_HEADER or any(b & 0x80 for b in head[6:10]):
        return None
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    footer = ID3_HEADER if head[5] & 0x10 else 0
    return ID3_HEADER + size + footer


def first_frame(buf: bytes, start: int = 0) -> int | None:
    """The first place from `start` where a chain of MP3 frames begins."""
    return frames.first_frame(buf, read_frame, start)


@dataclass(frozen=True)
class Toc:
    """A Xing/Info header's table of contents: byte share (of `bytes`) at each percent of the song."""

    frames: int | None
    bytes: int | None
    points: tuple[int, ...] | None  # 100 values, 0-255
    constant: bool = False  # LAME's Info header: a constant bit rate, the first frame's (about)


def xing(buf: bytes, at: int) -> Toc | None:
    """The Xing header of a variable bit rate file in the frame at `at` (the file's first), if any,
    or LAME's Info header of a constant bit rate one. A Xing table places each percent of the song
    within 1/256 of the file's bytes; an Info header's is left out (proportion is exact there),
    its frame count kept: the Info frame may be at a higher bit rate than the rest (it would not
    fit at 48 kbit/s and 22 kHz), so the file's size at its bit rate is no length."""
    frame = read_frame(buf, at)
    if frame is None:
        return None
    mono = frame.channel_mode == 0b11
    side = (17 if mono else 32) if frame.version == 1 else (9 if mono else 17)
    tag = at + 4 + side
    if buf[tag:tag + 4] not in (b"Xing", b"Info") or tag + 8 > len(buf):
        return None
    flags = int.from_bytes(buf[tag + 4:tag + 8], "big")
    pos = tag + 8
    frames = count = points = None
    if flags & 1 and pos + 4 <= len(buf):
        frames, pos = int.from_bytes(buf[pos:pos + 4], "big"), pos + 4
    if flags & 2 and pos + 4 <= len(buf):
        count, pos = int.from_bytes(buf[pos:pos + 4], "big"), pos + 4
    if flags & 4 and pos + 100 <= len(buf) and buf[tag:tag + 4] == b"Xing":
        points = tuple(buf[pos:pos + 100])
    return Toc(frames, count, points, constant=buf[tag:tag + 4] == b"Info")


def byte_at(share: float, toc: Toc | None, first: int, size: int) -> int:
    """The file offset at `share` (0-1) of the song's length: by the table of contents if there is
    one, else in proportion."""
    audio = size - first
    if toc is None or toc.points is None or list(toc.points) != sorted(toc.points):
        return first + round(audio * share)
    percent = min(max(share * 100, 0.0), 99.999)
    low = int(percent)
    a = toc.points[low]
    b = toc.points[low + 1] if low < 99 else 256
    fraction = (a + (b - a) * (percent - low)) / 256
    return first + round((toc.bytes or audio) * fraction)


def time_at(offset: int, toc: Toc | None, first: int, size: int, duration_s: float) -> float:
    """The inverse of `byte_at`: the time (s) at a file offset."""
    low, high = 0.0, 1.0
    for _ in range(40):  # byte_at only grows with the share: bisect
        middle = (low + high) / 2
        if byte_at(middle, toc, first, size) <= offset:
            low = middle
        else:
            high = middle
    return low * duration_s


def splice_section(middle: bytes, max_seconds: float | None = None) -> tuple[bytes, int, float] | None:
    """(the whole frames found in `middle` from the first chain on, up to `max_seconds`; where they
    start in `middle`; their length in seconds). None if there are none."""
    return frames.splice_section(middle, read_frame, max_seconds)
