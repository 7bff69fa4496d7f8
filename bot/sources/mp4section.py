"""Cut a time window out of an MP4/M4A file fetched with HTTP Range requests.

An MP4 file is a run of boxes (size, type, payload). Unlike Ogg pages or Matroska clusters, its
audio has no timestamps of its own: where each sample sits and when it plays is told by an index.
There are two kinds of file:

- **Progressive** (an .m4a as most encoders and shops write it): the `moov` box holds the whole
  sample table (`stbl`: sizes, chunk offsets, durations), at the front ("fast start") or after the
  audio. The section is the table's samples in the window, fetched as one byte span; the new file
  is `ftyp` + a `moov` whose sample table describes those samples only + an `mdat` holding them.
- **Fragmented** (DASH audio, as YouTube serves its .m4a): `moov` only sets the codec up, and the
  audio comes in self-contained `moof` + `mdat` pairs, each with its own decode time (`tfdt`); a
  `sidx` box usually says where each fragment starts and how long it plays. The section is
  `ftyp` + `moov` + the whole fragments covering the window, like WebM clusters.

The functions here are pure (bytes in, bytes out); `audio.SectionDownloader` does the requests.
Anything unexpected (several sound tracks, 64-bit sizes in odd places, absolute data offsets,
compact sample sizes...) gives None, and the fetcher falls back to yt-dlp.
"""
from __future__ import annotations

import bisect
import struct
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate

from bot.sources.spans import StreamTimesLie, kept_span

FTYP = b"ftyp"
MOOV = b"moov"
MOOF = b"moof"
MDAT = b"mdat"
SIDX = b"sidx"
BASE_DATA_OFFSET_PRESENT = 0x000001  # tfhd flag: data offsets are absolute positions in the file
PREROLL_SAMPLES = 2  # AAC frames overlap: the decoder needs the one before the first it outputs
BETWEEN_FRAGMENTS = {b"sidx", b"styp", b"free", b"skip", b"prft", b"emsg"}  # boxes that may sit between
HEADER_BYTES = 16  # enough for any box header (a 64-bit size included)
# Samples in one track: 20 minutes of AAC at 96 kHz is ~110 000 (a frame is 1 024 samples).
MAX_SAMPLES = 500_000
# What an mp4a sample (a frame) plays, in samples at its sample entry's rate: AAC's 1 024 and 960
# (and twice those for HE-AAC at its output rate), AAC-LD's 512 and 480, MPEG audio's 1 152 and 576.
MP4A_FRAME_SAMPLES = (1024, 960, 2048, 1920, 512, 480, 1152, 576)
# An ALAC sample entry's child box ('alac', after the 36 bytes of an audio sample entry, its 8-byte
# header and 4 of version and flags) holds the ALACSpecificConfig: its frame length, ..., its rate.
ALAC_CONFIG_AT, ALAC_CONFIG_BYTES = 36 + 8 + 4, 24
FRAME_TOLERANCE = 0.01  # a frame's stated length off one of those by at most this share
TFHD_DURATION_PRESENT = 0x000008  # tfhd flag: a default sample duration for the fragment
TRUN_DATA_OFFSET_PRESENT, TRUN_FIRST_FLAGS_PRESENT = 0x000001, 0x000004
TRUN_DURATION_PRESENT = 0x000100  # trun flag: each sample's duration is given (then size, flags, offset)
TRUN_SAMPLE_FIELDS = 0x000F00  # trun flags: which 4-byte fields each sample's row has
# What a fragmented section's decode times may say beyond what its samples play (rounding, a gap
# an encoder left); past it, the decode times are not the stream's.
FRAGMENT_SLACK_S = 0.5


@dataclass(frozen=True)
class Box:
    type: bytes
    start: int  # offset of the box (its size field) in the buffer it was read from
    header: int  # 8, or 16 with a 64-bit size
    size: int | None  # None: the box runs to the end of the file

    @property
    def data_start(self) -> int:
        return self.start + self.header

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.start + self.size


def read_box(buf: bytes, at: int) -> Box | None:
    """The box whose header is at `at`; None if the header is cut off or not a box header."""
    if at + 8 > len(buf):
        return None
    size, kind = struct.unpack_from(">I4s", buf, at)
    if not all(0x20 <= c < 0x7F for c in kind):
        return None
    if size == 1:
        if at + 16 > len(buf):
            return None
        (size,) = struct.unpack_from(">Q", buf, at + 8)
        header = 16
    elif size == 0:
        return Box(kind, at, 8, None)
    else:
        header = 8
    if size < header:
        return None
    return Box(kind, at, header, size)


def top_level(buf: bytes, at: int = 0) -> list[Box]:
    """The consecutive boxes from `at` whose headers lie in `buf` (the last may end beyond it)."""
    found = []
    while True:
        box = read_box(buf, at)
        if box is None:
            return found
        found.append(box)
        if box.end is None:
            return found
        at = box.end


def children(buf: bytes, box: Box, skip: int = 0) -> list[Box] | None:
    """The boxes inside `box` (which lies whole in `buf`), after `skip` bytes of its own fields;
    None if they do not fill it exactly."""
    found = []
    at, end = box.data_start + skip, box.end
    if end is None or end > len(buf):
        return None
    while at < end:
        child = read_box(buf, at)
        if child is None or child.end is None or child.end > end:
            return None
        found.append(child)
        at = child.end
    return found


def find(buf: bytes, box: Box, kind: bytes) -> Box | None:
    return next((c for c in children(buf, box) or () if c.type == kind), None)


def payload(buf: bytes, box: Box) -> bytes:
    return buf[box.data_start:box.end]


def make_box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, body: bytes, version: int = 0, flags: int = 0) -> bytes:
    return make_box(kind, struct.pack(">I", version << 24 | flags) + body)


# -- the audio track ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Track:
    trak: Box  # in the moov buffer
    timescale: int  # media ticks per second (mdhd)
    movie_timescale: int  # mvhd's
    fragmented: bool  # no samples in the table: they come in moof fragments
    durations: tuple[int, ...] = ()  # per sample, in media ticks
    sizes: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()  # absolute file positions


def _timescale(body: bytes) -> int | None:
    """The timescale of an mvhd or mdhd payload (both: version, times, timescale, duration)."""
    version = body[0] if body else None
    at = {0: 12, 1: 20}.get(version)
    if at is None or len(body) < at + 4:
        return None
    return struct.unpack_from(">I", body, at)[0] or None


def _table(body: bytes, entry: str, head: int = 0) -> tuple | None:
    """The entries of a full box's table: `head` bytes after the version/flags, then a 32-bit
    count, then `entry`-shaped rows (flattened)."""
    at = 4 + head
    if len(body) < at + 4:
        return None
    (count,) = struct.unpack_from(">I", body, at)
    row = struct.calcsize(">" + entry)
    if len(body) < at + 4 + count * row:
        return None
    return struct.unpack_from(f">{count * entry}", body, at + 4) if count else ()


def _sample_table(buf: bytes, stbl: Box) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
    """(durations, sizes, offsets) of every sample, from stts, stsz, stsc and stco/co64."""
    boxes = {c.type: c for c in children(buf, stbl) or ()}
    if b"ctts" in boxes or b"stz2" in boxes or b"stsd" not in boxes:
        return None  # reordered presentation or compact sizes: not worth the risk for audio
    stsd = payload(buf, boxes[b"stsd"])
    if len(stsd) < 8 or struct.unpack_from(">I", stsd, 4)[0] != 1:
        return None  # several codec set-ups: samples would need their own
    try:
        stts = _table(payload(buf, boxes[b"stts"]), "II")
        stsc = _table(payload(buf, boxes[b"stsc"]), "III")
        stsz_body = payload(buf, boxes[b"stsz"])
        chunk_box = boxes.get(b"stco") or boxes[b"co64"]
        chunks = _table(payload(buf, chunk_box), "I" if chunk_box.type == b"stco" else "Q")
    except KeyError:
        return None
    if stts is None or stsc is None or chunks is None or len(stsz_body) < 12:
        return None
    constant, count = struct.unpack_from(">II", stsz_body, 4)
    if not 0 < count <= MAX_SAMPLES or sum(stts[::2]) != count:
        return None  # a table that would not fit the song, or that a host made up to exhaust memory
    if constant:
        sizes = (constant,) * count
    else:
        sizes = _table(stsz_body, "I", head=4)
        if sizes is None:
            return None
    durations = tuple(d for n, d in zip(stts[::2], stts[1::2]) for _ in range(n))
    # stsc: runs of chunks with the same number of samples, each from its first chunk (1-based).
    runs = list(zip(stsc[::3], stsc[1::3]))
    per_chunk = []
    for i, (first, samples) in enumerate(runs):
        last = runs[i + 1][0] - 1 if i + 1 < len(runs) else len(chunks)
        if first < 1 or last < first - 1 or last > len(chunks):
            return None
        per_chunk += [samples] * (last - first + 1)
    if sum(per_chunk) != count:
        return None
    offsets = []
    sample = 0
    for chunk_offset, samples in zip(chunks, per_chunk):
        offsets += accumulate(sizes[sample:sample + samples - 1], initial=chunk_offset)
        sample += samples
    return durations, tuple(sizes), tuple(offsets)


def audio_track(moov: bytes) -> Track | None:
    """The file's one sound track (`moov` is the whole moov box); None if there is none, or more.
    StreamTimesLie if its index has the frames play other than the sample entry says."""
    root = read_box(moov, 0)
    if root is None or root.type != MOOV:
        return None
    top = children(moov, root)
    if top is None:
        return None
    mvhd = next((c for c in top if c.type == b"mvhd"), None)
    movie_timescale = _timescale(payload(moov, mvhd)) if mvhd else None
    sound = []
    for trak in (c for c in top if c.type == b"trak"):
        mdia = find(moov, trak, b"mdia")
        hdlr = find(moov, mdia, b"hdlr") if mdia else None
        if hdlr is not None and payload(moov, hdlr)[8:12] == b"soun":
            sound.append((trak, mdia))
    if len(sound) != 1 or movie_timescale is None:
        return None
    trak, mdia = sound[0]
    mdhd, minf = find(moov, mdia, b"mdhd"), find(moov, mdia, b"minf")
    stbl = find(moov, minf, b"stbl") if minf else None
    timescale = _timescale(payload(moov, mdhd)) if mdhd else None
    if stbl is None or timescale is None:
        return None
    if any(c.type == b"mvex" for c in top):
        # Fragmented: only the movie's tracks are set up here; a second track would interleave.
        if len([c for c in top if c.type == b"trak"]) != 1:
            return None
        return Track(trak, timescale, movie_timescale, fragmented=True)
    table = _sample_table(moov, stbl)
    if table is None:
        return None
    if not _plays_as_stated(moov, stbl, timescale, table[0]):
        raise StreamTimesLie
    return Track(trak, timescale, movie_timescale, False, *table)


def _plays_as_stated(buf: bytes, stbl: Box, timescale: int, durations: tuple[int, ...]) -> bool:
    """Whether an mp4a track's frames last, by its index (durations in ticks of the media
    timescale), one of MP4A_FRAME_SAMPLES at the rate its sample entry states (an ALAC track's, the
    frame length its config states at its rate): the decoder plays them so. A timescale 0.3 times the rate had a 240 s song stated 799 s, its 30 s section
    playing 9 s. True where it cannot tell: another codec, no rate in the entry (over 65 535 Hz:
    0), a QuickTime version 2 entry."""
    stsd = find(buf, stbl, b"stsd")
    entry = payload(buf, stsd)[8:] if stsd else b""
    if len(entry) < 36 or struct.unpack_from(">H", entry, 16)[0] > 1 or not durations:
        return True
    typical = sorted(durations)[len(durations) // 2] / timescale  # seconds
    if entry[4:8] == b"alac":
        # Its frames play the frame length its ALACSpecificConfig states, at the config's rate (the
        # entry's 16-bit field holds none over 65 535 Hz): 4 096 samples, but a song's last frame.
        config = entry[ALAC_CONFIG_AT:ALAC_CONFIG_AT + ALAC_CONFIG_BYTES]
        if entry[ALAC_CONFIG_AT - 8:ALAC_CONFIG_AT - 4] != b"alac" or len(config) < ALAC_CONFIG_BYTES:
            return True
        frame, rate = struct.unpack_from(">I", config, 0)[0], struct.unpack_from(">I", config, 20)[0]
        return not (frame and rate) or abs(typical * rate - frame) <= FRAME_TOLERANCE * frame
    rate = struct.unpack_from(">I", entry, 32)[0] >> 16
    if entry[4:8] != b"mp4a" or not rate:
        return True
    return any(abs(typical * rate - frame) <= FRAME_TOLERANCE * frame for frame in MP4A_FRAME_SAMPLES)


# -- progressive files: rebuild the index for the window's samples --------------------------------

@dataclass(frozen=True)
class Selection:
    first: int  # sample indices [first, stop)
    stop: int
    byte_first: int  # the byte span holding them, inclusive
    byte_last: int
    start_s: float
    end_s: float


def select_samples(track: Track, window: tuple[float, float]) -> Selection | None:
    """The samples playing in `window` (seconds), with a little pre-roll, and their byte span."""
    times = list(accumulate(track.durations, initial=0))  # start of each sample, then the end
    start = round(window[0] * track.timescale)
    end = round(window[1] * track.timescale)
    first = max(bisect.bisect_right(times, start) - 1 - PREROLL_SAMPLES, 0)
    stop = min(bisect.bisect_left(times, end), len(track.durations))
    if stop - first < 2:
        return None
    ends = [o + s for o, s in zip(track.offsets[first:stop], track.sizes[first:stop])]
    return Selection(first, stop, min(track.offsets[first:stop]), max(ends) - 1,
                     times[first] / track.timescale, times[stop] / track.timescale)


def _with_duration(body: bytes, duration: int, at_v0: int, at_v1: int) -> bytes | None:
    """An mvhd/tkhd/mdhd payload with its duration field set."""
    out = bytearray(body)
    if len(body) >= at_v0 + 4 and body[0] == 0:
        struct.pack_into(">I", out, at_v0, min(duration, 0xFFFFFFFF))
    elif len(body) >= at_v1 + 8 and body[0] == 1:
        struct.pack_into(">Q", out, at_v1, duration)
    else:
        return None
    return bytes(out)


def _run_lengths(values: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v:
            runs[-1] = (runs[-1][0] + 1, v)
        else:
            runs.append((1, v))
    return runs


def _stbl(moov: bytes, stbl: Box, durations: tuple[int, ...], sizes: tuple[int, ...], data_offset: int) -> bytes:
    """A sample table for `sizes` samples in one chunk at `data_offset`."""
    runs = _run_lengths(durations)
    stts = full_box(b"stts", struct.pack(f">I{2 * len(runs)}I", len(runs), *(x for run in runs for x in run)))
    if len(set(sizes)) == 1:
        stsz = full_box(b"stsz", struct.pack(">II", sizes[0], len(sizes)))
    else:
        stsz = full_box(b"stsz", struct.pack(f">II{len(sizes)}I", 0, len(sizes), *sizes))
    stsc = full_box(b"stsc", struct.pack(">IIII", 1, 1, len(sizes), 1))
    stco = full_box(b"stco", struct.pack(">II", 1, data_offset))
    stsd = find(moov, stbl, b"stsd")
    return make_box(b"stbl", moov[stsd.start:stsd.end] + stts + stsz + stsc + stco)


def _rebuilt(moov: bytes, box: Box, replace: dict[bytes, bytes | None], skip: int = 0) -> bytes:
    """`box` with the children named in `replace` swapped for new bytes (None: dropped)."""
    body = moov[box.data_start:box.data_start + skip]
    for child in children(moov, box, skip) or ():
        if child.type in replace:
            body += replace[child.type] or b""
        else:
            body += moov[child.start:child.end]
    return make_box(box.type, body)


def splice_progressive(ftyp: bytes, moov: bytes, track: Track, selection: Selection, span: bytes) -> bytes | None:
    """ftyp + a moov for the selected samples only + an mdat of them. `span` is the file's bytes
    selection.byte_first..byte_last."""
    picked = range(selection.first, selection.stop)
    sizes = tuple(track.sizes[i] for i in picked)
    durations = tuple(track.durations[i] for i in picked)
    if len(span) != selection.byte_last - selection.byte_first + 1:
        return None
    data = b"".join(span[track.offsets[i] - selection.byte_first:][:track.sizes[i]] for i in picked)
    media = sum(durations)
    movie = media * track.movie_timescale // track.timescale
    root = read_box(moov, 0)
    top = children(moov, root)
    mdia = find(moov, track.trak, b"mdia")
    minf, mdhd = find(moov, mdia, b"minf"), find(moov, mdia, b"mdhd")
    stbl, tkhd = find(moov, minf, b"stbl"), find(moov, track.trak, b"tkhd")
    mvhd = next(c for c in top if c.type == b"mvhd")
    mvhd_body = _with_duration(payload(moov, mvhd), movie, 16, 24)
    tkhd_body = _with_duration(payload(moov, tkhd), movie, 20, 28) if tkhd else None
    mdhd_body = _with_duration(payload(moov, mdhd), media, 16, 24)
    if mvhd_body is None or tkhd_body is None or mdhd_body is None:
        return None

    def build(data_offset: int) -> bytes:
        new_minf = _rebuilt(moov, minf, {b"stbl": _stbl(moov, stbl, durations, sizes, data_offset)})
        new_mdia = _rebuilt(moov, mdia, {b"mdhd": make_box(b"mdhd", mdhd_body), b"minf": new_minf})
        # The edit list (encoder priming, a start offset) was for the whole song's timeline.
        new_trak = _rebuilt(moov, track.trak, {b"tkhd": make_box(b"tkhd", tkhd_body), b"edts": None,
                                                  b"mdia": new_mdia})
        body = make_box(b"mvhd", mvhd_body) + new_trak  # other tracks, metadata, cover art: not needed
        return make_box(MOOV, body)

    new_moov = build(0)
    new_moov = build(len(ftyp) + len(new_moov) + 8)  # same length: only the offset's value changed
    if len(data) + 8 > 0xFFFFFFFF:
        return None
    return ftyp + new_moov + make_box(MDAT, data)


# -- fragmented files: keep the setup, take whole fragments ---------------------------------------

@dataclass(frozen=True)
class Reference:
    offset: int  # absolute position of the fragment (its moof)
    size: int
    start_s: float
    duration_s: float


def sidx_references(sidx: bytes, sidx_end: int) -> list[Reference] | None:
    """The fragments a `sidx` box (whole, ending at file offset `sidx_end`) points at."""
    box = read_box(sidx, 0)
    if box is None or box.type != SIDX or box.end != len(sidx):
        return None
    body = payload(sidx, box)
    version = body[0] if body else None
    if version == 0 and len(body) >= 24:
        timescale, earliest, first_offset = struct.unpack_from(">III", body, 8)
        at = 20
    elif version == 1 and len(body) >= 32:
        (timescale,) = struct.unpack_from(">I", body, 8)
        earliest, first_offset = struct.unpack_from(">QQ", body, 12)
        at = 28
    else:
        return None
    (count,) = struct.unpack_from(">H", body, at + 2)
    at += 4
    if not timescale or len(body) < at + 12 * count:
        return None
    refs = []
    offset, time = sidx_end + first_offset, earliest
    for i in range(count):
        kind_size, duration, _sap = struct.unpack_from(">III", body, at + 12 * i)
        if kind_size >> 31:
            return None  # points at another sidx: a hierarchy, not worth following
        size = kind_size & 0x7FFFFFFF
        refs.append(Reference(offset, size, time / timescale, duration / timescale))
        offset += size
        time += duration
    return refs


def pick_references(refs: list[Reference], window: tuple[float, float]) -> list[Reference]:
    """The fragments that play during `window`."""
    return [r for r in refs if r.start_s < window[1] and r.start_s + r.duration_s > window[0]]


def _fragment_ok(buf: bytes, moof: Box) -> bool:
    """A movie fragment whose data offsets are relative to itself (so it can move)."""
    for traf in (c for c in children(buf, moof) or () if c.type == b"traf"):
        tfhd = find(buf, traf, b"tfhd")
        if tfhd is None or struct.unpack_from(">I", buf, tfhd.data_start)[0] & BASE_DATA_OFFSET_PRESENT:
            return False
    return children(buf, moof) is not None


def fragment_time(buf: bytes, moof: Box) -> int | None:
    """The decode time (tfdt, media ticks) of a fragment's first sample."""
    traf = find(buf, moof, b"traf")
    tfdt = find(buf, traf, b"tfdt") if traf else None
    return fragment_time_of(buf, tfdt) if tfdt else None


def fragment_time_of(buf: bytes, tfdt: Box) -> int | None:
    body = payload(buf, tfdt)
    if len(body) >= 12 and body[0] == 1:
        return struct.unpack_from(">Q", body, 4)[0]
    if len(body) >= 8 and body[0] == 0:
        return struct.unpack_from(">I", body, 4)[0]
    return None


def fragments_in(buf: bytes) -> list[tuple[int, bytes]]:
    """(decode time, moof + mdat bytes) of each whole fragment in a run of consecutive ones in
    `buf`, which may start and end mid-fragment."""
    at = buf.find(MOOF)
    while at != -1:
        found = []
        pos = at - 4
        while pos >= 0:
            moof = read_box(buf, pos)
            if moof is None or moof.type != MOOF or moof.end is None or moof.end > len(buf):
                break
            mdat = read_box(buf, moof.end)
            if mdat is None or mdat.type != MDAT or mdat.end is None or mdat.end > len(buf):
                break
            time = fragment_time(buf, moof)
            if time is None or not _fragment_ok(buf, moof):
                break
            found.append((time, buf[moof.start:mdat.end]))
            pos = mdat.end
            while (between := read_box(buf, pos)) is not None and between.type in BETWEEN_FRAGMENTS:
                pos = between.end if between.end is not None else len(buf)  # e.g. each segment's own sidx
        if found:
            return found
        at = buf.find(MOOF, at + 1)  # a false match inside audio data: look further
    return []


def trex_duration(moov: bytes) -> int | None:
    """The default sample duration the set-up gives fragments (mvex's trex), if any."""
    root = read_box(moov, 0)
    mvex = find(moov, root, b"mvex") if root else None
    trex = find(moov, mvex, b"trex") if mvex else None
    body = payload(moov, trex) if trex else b""
    return struct.unpack_from(">I", body, 12)[0] if len(body) >= 16 else None


def fragment_durations(fragment: bytes, default: int | None) -> Counter | None:
    """How many of a fragment's (moof + mdat) samples last how many media ticks, by its trun rows
    or the tfhd's (else the set-up's, `default`) default duration; None if it does not say."""
    moof = read_box(fragment, 0)
    durations: Counter = Counter()
    for traf in (c for c in children(fragment, moof) or () if c.type == b"traf"):
        tfhd = find(fragment, traf, b"tfhd")
        body = payload(fragment, tfhd) if tfhd else b""
        if len(body) < 8:
            return None
        flags = int.from_bytes(body[1:4], "big")
        at = 8 + (8 if flags & BASE_DATA_OFFSET_PRESENT else 0) + (4 if flags & 0x000002 else 0)
        traf_default = default
        if flags & TFHD_DURATION_PRESENT:
            if len(body) < at + 4:
                return None
            (traf_default,) = struct.unpack_from(">I", body, at)
        for trun in (c for c in children(fragment, traf) or () if c.type == b"trun"):
            body = payload(fragment, trun)
            if len(body) < 8:
                return None
            flags = int.from_bytes(body[1:4], "big")
            (count,) = struct.unpack_from(">I", body, 4)
            at = 8 + (4 if flags & TRUN_DATA_OFFSET_PRESENT else 0) + (4 if flags & TRUN_FIRST_FLAGS_PRESENT else 0)
            row = 4 * bin(flags & TRUN_SAMPLE_FIELDS).count("1")
            if count > MAX_SAMPLES or len(body) < at + count * row:
                return None
            if flags & TRUN_DURATION_PRESENT:
                durations.update(struct.unpack_from(">I", body, at + i * row)[0] for i in range(count))
            elif traf_default is None:
                return None
            elif count:
                durations[traf_default] += count
    return durations or None


def _check_fragment_times(moov: bytes, track: Track, fragments: list[tuple[int, bytes]], count: int) -> None:
    """StreamTimesLie unless the first `count` of `fragments` play as their decode times (tfdt)
    and the media timescale say: each sample one frame at the sample entry's rate (a timescale 3
    times the rate had a section of a 240 s song said to lie at 35-45 s play 30 s), and up to the
    next one's decode time (decode times 0.3 times the stream's had one said to lie at 32-41 s
    play 13 s). Fragments that do not say what they play are not checked."""
    default = trex_duration(moov)
    plays = [fragment_durations(raw, default) for _, raw in fragments[:count]]
    if None in plays:
        return
    mdia = find(moov, track.trak, b"mdia")
    minf = find(moov, mdia, b"minf") if mdia else None
    stbl = find(moov, minf, b"stbl") if minf else None
    every = sum(plays, Counter())
    typical = max(every, key=lambda duration: (every[duration], duration))
    if stbl is not None and not _plays_as_stated(moov, stbl, track.timescale, (typical,)):
        raise StreamTimesLie
    followed = min(count, len(fragments) - 1)  # those whose next one's decode time is known
    if followed:
        stated = fragments[followed][0] - fragments[0][0]
        played = sum(duration * n for counts in plays[:followed] for duration, n in counts.items())
        if abs(stated - played) > FRAGMENT_SLACK_S * track.timescale:
            raise StreamTimesLie


def fragmented_seconds(moov: bytes) -> float | None:
    """A fragmented movie's length, if its set-up states it: mvex's mehd, in mvhd's timescale.
    (mvhd's own duration counts only the samples in the moov, none or the first fragment's.)"""
    root = read_box(moov, 0)
    top = {c.type: c for c in children(moov, root) or ()} if root else {}
    mvhd, mvex = top.get(b"mvhd"), top.get(b"mvex")
    timescale = _timescale(payload(moov, mvhd)) if mvhd else None
    mehd = find(moov, mvex, b"mehd") if mvex else None
    if timescale is None or mehd is None:
        return None
    body = payload(moov, mehd)
    wide = len(body) >= 12 and body[0] == 1
    if len(body) < (12 if wide else 8):
        return None
    duration = struct.unpack_from(">Q" if wide else ">I", body, 4)[0]
    return duration / timescale if 0 < duration < 0xFFFFFFFF else None


def fragmented_setup(ftyp: bytes, moov: bytes, track: Track) -> bytes | None:
    """ftyp + a moov that sets the codec up and lists no samples: mvex without its mehd (the
    whole movie's length), the track's sample tables emptied (a moov may hold the first
    fragment's samples, at offsets the section does not have) and its edit list dropped."""
    root = read_box(moov, 0)
    mvex = find(moov, root, b"mvex") if root else None
    mdia = find(moov, track.trak, b"mdia")
    minf = find(moov, mdia, b"minf") if mdia else None
    stbl = find(moov, minf, b"stbl") if minf else None
    stsd = find(moov, stbl, b"stsd") if stbl else None
    if mvex is None or stsd is None:
        return None
    empty = make_box(b"stbl", moov[stsd.start:stsd.end] + full_box(b"stts", bytes(4)) + full_box(b"stsc", bytes(4))
                     + full_box(b"stsz", bytes(8)) + full_box(b"stco", bytes(4)))
    trak = _rebuilt(moov, track.trak, {b"edts": None, b"mdia": _rebuilt(moov, mdia, {
        b"minf": _rebuilt(moov, minf, {b"stbl": empty})})})
    return ftyp + _rebuilt(moov, root, {b"mvex": _rebuilt(moov, mvex, {b"mehd": None}), b"trak": trak})


def splice_fragments(ftyp: bytes, moov: bytes, track: Track, middle: bytes,
                     max_seconds: float | None = None) -> tuple[bytes, float, float] | None:
    """(file, start s, end s): the setup + the whole fragments found in `middle`, trimmed to about
    `max_seconds` from the first one's start. StreamTimesLie if they play other than their
    decode times say."""
    setup = fragmented_setup(ftyp, moov, track)
    fragments = fragments_in(middle)
    if setup is None or not fragments:
        return None
    times = [time for time, _ in fragments]
    if times != sorted(times) or len(set(times)) != len(times):
        return None  # out of order
    start = times[0]
    count, end = kept_span(times, None if max_seconds is None else max_seconds * track.timescale)
    _check_fragment_times(moov, track, fragments, count)
    rebased = [_rebased(raw, start) for _, raw in fragments[:count]]
    if None in rebased:
        return None
    return setup + b"".join(rebased), start / track.timescale, end / track.timescale


def _rebased(fragment: bytes, start: int) -> bytes | None:
    """A fragment (moof + mdat) with its decode times moved `start` ticks earlier, so that the
    section's timeline starts at 0 and its length reads as the section's, not the song's."""
    out = bytearray(fragment)
    moof = read_box(fragment, 0)
    for traf in (c for c in children(fragment, moof) or () if c.type == b"traf"):
        tfdt = find(fragment, traf, b"tfdt")
        time = fragment_time_of(fragment, tfdt) if tfdt else None
        if time is None or time < start:
            return None
        if fragment[tfdt.data_start] == 1:
            struct.pack_into(">Q", out, tfdt.data_start + 4, time - start)
        else:
            struct.pack_into(">I", out, tfdt.data_start + 4, time - start)
    return bytes(out)
