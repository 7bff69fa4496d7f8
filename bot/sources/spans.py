"""Where a run of timestamped pieces (WebM clusters, MP4 fragments) starts and ends, and what a
splicer says when the timestamps are not the stream's."""
from __future__ import annotations


class StreamTimesLie(Exception):
    """A stream's own timestamps (an Ogg's granule positions, an MP4's decode times or media
    timescale) disagree with what its packets play, or place the section where the song has no
    audio. A cut by them is wrong wherever it is made, here or by ffmpeg (which seeks and cuts by
    the same timestamps): the file is to be fetched whole and decoded sample by sample."""


def kept_span(times: list[float], limit: float | None) -> tuple[int, float]:
    """How many of the pieces starting at `times` (sorted) begin less than `limit` after the first
    (all when None), and where the last of those ends: where the next piece starts, else (all
    kept) the last's start plus the pieces' mean length."""
    start = times[0]
    count = sum(1 for time in times if limit is None or time - start < limit)
    if count < len(times):
        return count, times[count]
    if len(times) > 1:
        return count, times[-1] + (times[-1] - start) / (len(times) - 1)
    return count, start
