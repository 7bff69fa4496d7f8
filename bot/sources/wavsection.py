"""Cut a time window out of a WAV file fetched with HTTP Range requests.

A WAV file is a RIFF container: a `fmt ` chunk saying how samples are laid out, other chunks
(LIST tags, `fact`...) and a `data` chunk of raw samples at a fixed number of bytes per second.
So the bytes of any time are known from the header alone: a section is a new RIFF header, the
`fmt ` chunk as it was, and a `data` chunk of the window's bytes, cut at whole sample frames.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

# Formats whose bytes are plain sample frames (block_align bytes each): PCM, IEEE float, A-law,
# mu-law, and the extensible header that wraps them. Compressed ones (ADPCM, MP3 in WAV) are not cut.
PLAIN_FORMATS = {0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE}
CHUNK_HEADER = 8
MAX_CHUNKS = 16  # chunks walked to find `data`
MAX_FMT_BYTES = 1024


@dataclass(frozen=True)
class Layout:
    fmt: bytes  # the whole `fmt ` chunk, header included
    data_start: int  # file offset of the samples
    data_size: int  # bytes of samples (the chunk's stated size, bounded by the file)
    block_align: int  # bytes per sample frame (all channels)
    byte_rate: int  # bytes per second

    def span(self, window: tuple[float, float]) -> tuple[int, int]:
        """The file offsets first..last (inclusive) of the window's whole sample frames."""
        frames = self.data_size // self.block_align
        rate = self.byte_rate // self.block_align
        first = min(round(window[0] * rate), frames)
        stop = min(round(window[1] * rate), frames)
        return self.data_start + first * self.block_align, self.data_start + stop * self.block_align - 1


def is_wav(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def chunk_at(buf: bytes, at: int) -> tuple[bytes, int] | None:
    """(id, payload size) of the chunk whose header is at `at` in `buf`."""
    if at + CHUNK_HEADER > len(buf):
        return None
    kind, size = struct.unpack_from("<4sI", buf, at)
    return kind, size


def parse_fmt(fmt: bytes) -> tuple[int, int] | None:
    """(block_align, byte_rate) of a `fmt ` chunk (header included) whose samples can be cut."""
    if len(fmt) < CHUNK_HEADER + 16:
        return None
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt, CHUNK_HEADER)
    if tag not in PLAIN_FORMATS or not channels or not rate or not block_align:
        return None
    if byte_rate != rate * block_align or bits and block_align < channels * ((bits + 7) // 8):
        return None  # a header whose numbers disagree: leave it to a decoder
    return block_align, byte_rate


def layout_of(read: Callable[[int, int], bytes], size: int) -> Layout | None:
    """The file's sample layout, its chunks walked from the start; `read(first, last)` gives the
    file's bytes first..last. None if it is not a WAV whose samples can be cut."""
    at, fmt = 12, None
    for _ in range(MAX_CHUNKS):
        header = chunk_at(read(at, at + CHUNK_HEADER - 1), 0)
        if header is None:
            return None
        kind, length = header
        if kind == b"fmt ":
            if length > MAX_FMT_BYTES:
                return None
            fmt = read(at, at + CHUNK_HEADER + length - 1)
        elif kind == b"data":
            numbers = parse_fmt(fmt) if fmt else None
            data_start = at + CHUNK_HEADER
            if numbers is None or data_start >= size:
                return None
            return Layout(fmt, data_start, min(length, size - data_start), *numbers)
        at += CHUNK_HEADER + length + (length & 1)  # chunks are padded to even lengths
    return None


def section(layout: Layout, samples: bytes) -> bytes:
    """A playable WAV file of `samples` (whole frames of the original's layout)."""
    data = struct.pack("<4sI", b"data", len(samples))
    body = b"WAVE" + layout.fmt + (b"\0" if len(layout.fmt) % 2 else b"") + data + samples
    return struct.pack("<4sI", b"RIFF", len(body)) + body
