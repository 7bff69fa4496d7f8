"""Runs of self-describing frames (MP3, ADTS AAC): formats with no index, where each frame's
header gives its length, so a decoder can start at any frame. A place counts as a frame start
when CHAIN frames of one stream follow one another from it; a section is the whole frames from
the first such place on.

`read(buf, at)` gives the frame whose header is at `at` (None if there is none): an object with
`length` (bytes, header included), `samples`, `sample_rate` and `same_stream(other)`.
"""
from __future__ import annotations

from typing import Callable, Protocol

CHAIN = 4  # frames that must follow one another for a place to count as a frame start


class Frame(Protocol):
    length: int
    samples: int
    sample_rate: int

    def same_stream(self, other: "Frame") -> bool: ...


Reader = Callable[[bytes, int], "Frame | None"]


def chained(buf: bytes, at: int, frame: Frame, read: Reader) -> bool:
    """Whether CHAIN frames of the same stream follow one another from `at`."""
    current = frame
    for _ in range(CHAIN - 1):
        at += current.length
        current = read(buf, at)
        if current is None or not current.same_stream(frame):
            return False
    return True


def first_frame(buf: bytes, read: Reader, start: int = 0) -> int | None:
    """The first place from `start` where a chain of frames begins."""
    at = buf.find(b"\xff", start)
    while at != -1:
        frame = read(buf, at)
        if frame is not None and chained(buf, at, frame, read):
            return at
        at = buf.find(b"\xff", at + 1)
    return None


def splice_section(middle: bytes, read: Reader, max_seconds: float | None = None) -> tuple[bytes, int, float] | None:
    """(the whole frames found in `middle` from the first chain on, up to `max_seconds`; where they
    start in `middle`; their length in seconds). None if there are none."""
    at = first_frame(middle, read)
    if at is None:
        return None
    first = read(middle, at)
    start = at
    samples = 0
    limit = None if max_seconds is None else max_seconds * first.sample_rate
    while (frame := read(middle, at)) is not None and frame.same_stream(first):
        if at + frame.length > len(middle) or (limit is not None and samples >= limit):
            break
        samples += frame.samples
        at += frame.length
    if not samples:
        return None
    return middle[start:at], start, samples / first.sample_rate


def bytes_per_second(buf: bytes, read: Reader) -> float | None:
    """The bit rate (bytes/s) of the whole frames in `buf` from its first chain on; None if none."""
    cut = splice_section(buf, read)
    if cut is None:
        return None
    data, _, seconds = cut
    return len(data) / seconds
