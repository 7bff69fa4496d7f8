"""Cut a time window out of an ADTS AAC file (`.aac`) fetched with HTTP Range requests.

ADTS is AAC with no container: a run of frames, each with a 7-byte header (9 with a CRC) that
gives its length, its sample rate and its number of 1024-sample blocks, and no index or stated
length. So, as for an MP3 without a table of contents, the window's bytes are found in proportion,
and the song's length, when it is not known beforehand, from the bit rate of frames in the middle
of the file (where the section will come from): AAC encoders vary their frame sizes, and the
first frames of a song (often quiet) say little about the rest.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.sources import framerun as frames

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
BLOCK_SAMPLES = 1024


@dataclass(frozen=True)
class Frame:
    profile: int
    sample_rate: int
    channels: int
    length: int  # bytes, header included
    samples: int

    def same_stream(self, other: "Frame") -> bool:
        return (self.profile, self.sample_rate, self.channels) == (other.profile, other.sample_rate, other.channels)


def read_frame(buf: bytes, at: int) -> Frame | None:
    """The ADTS frame whose header is at `at`; None if there is no valid header there."""
    if at + 7 > len(buf) or buf[at] != 0xFF or buf[at + 1] & 0xF6 != 0xF0:  # 12-bit sync, layer 0
        return None
    b2, b3, b4, b5, b6 = buf[at + 2:at + 7]
    rate_index = b2 >> 2 & 0x0F
    if rate_index >= len(SAMPLE_RATES):
        return None
    header = 7 if buf[at + 1] & 1 else 9  # protection_absent, else a CRC follows
    length = (b3 & 0x03) << 11 | b4 << 3 | b5 >> 5
    if length <= header:
        return None
    channels = (b2 & 1) << 2 | b3 >> 6
    return Frame(b2 >> 6, SAMPLE_RATES[rate_index], channels, length, BLOCK_SAMPLES * ((b6 & 0x03) + 1))


def first_frame(buf: bytes, start: int = 0) -> int | None:
    """The first place from `start` where a chain of ADTS frames begins."""
    return frames.first_frame(buf, read_frame, start)


def splice_section(middle: bytes, max_seconds: float | None = None) -> tuple[bytes, int, float] | None:
    """(the whole frames found in `middle` from the first chain on, up to `max_seconds`; where they
    start in `middle`; their length in seconds). None if there are none."""
    return frames.splice_section(middle, read_frame, max_seconds)


def bytes_per_second(buf: bytes) -> float | None:
    """The bit rate (bytes/s) of the whole frames in `buf`."""
    return frames.bytes_per_second(buf, read_frame)
