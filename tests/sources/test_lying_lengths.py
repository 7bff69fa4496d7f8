"""A section is where its own stream says it is, and within the song: a file whose header states
too short a length (an Ogg's last granule position, a FLAC's STREAMINFO total) holds audio past
it, which its own timestamps (granule positions, frame numbers) place there, and one that states
too long a length has the window's share of its bytes at another share of the song; an MP4 whose
media timescale lies, an Ogg stream whose granule positions do (Opus, Vorbis), or a WebM whose
cluster timestamps do (Opus, Vorbis), plays its section longer or shorter than it says. Such a section is not reported at a time the song does not have, or as
longer or shorter than it plays: the file goes to yt-dlp, whole, and the classifier picks its
section from what it holds."""
from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import correlate

from bot.sources import flacsection as flac
from bot.sources import mp4section as mp4
from bot.sources import webmsection as webm
from bot.sources import oggsection as ogg
from bot.sources.audio import AudioFetcher
from bot.sources.models import FetchedAudio, Query, QueryKind
from bot.sources.spans import StreamTimesLie
from inference.audio import SAMPLE_RATE, load_audio
from tests.fakes.audio_http import FakeAudioServer
from tests.run_files import made_once
from tests.sources.test_audio import DECODE_RATE, decode, song
from tests.sources.test_mp4_sections import VARIANTS, ffmpeg


def ogg_with_length(data: bytes, scale: float) -> bytes:
    """`data` with its last page's granule position (the length it states) times `scale`."""
    at = data.rfind(ogg.CAPTURE)
    page = ogg.parse_page(data, at)
    lying = ogg.replace(page, granule=round(page.granule * scale))
    return data[:at] + lying.to_bytes() + data[at + page.size:]


def ogg_with_granules(data: bytes, scale: float) -> bytes:
    """`data` with every audio page's granule position times `scale` (its checksum made anew)."""
    return b"".join((ogg.replace(page, granule=round(page.granule * scale)) if page.granule > 0 else page).to_bytes()
                    for page in ogg.pages_in(data))


def mp4_with_timescale(data: bytes, scale: float) -> bytes:
    """`data` with its sound track's media timescale (mdhd: ticks per second) times `scale`."""
    at = data.index(b"mdhd") + 4
    field = at + (12 if data[at] == 0 else 20)
    lying = bytearray(data)
    struct.pack_into(">I", lying, field, round(struct.unpack_from(">I", data, field)[0] * scale))
    return bytes(lying)


def mp4_with_decode_times(data: bytes, scale: float) -> bytes:
    """`data`, a fragmented MP4, with every fragment's decode time (its tfdt) times `scale`."""
    lying = bytearray(data)
    for moof in (box for box in mp4.top_level(data) if box.type == mp4.MOOF):
        tfdt = mp4.find(data, mp4.find(data, moof, b"traf"), b"tfdt")
        field, at = (">Q" if data[tfdt.data_start] == 1 else ">I"), tfdt.data_start + 4
        struct.pack_into(field, lying, at, round(struct.unpack_from(field, data, at)[0] * scale))
    return bytes(lying)


def mp4_with_sidx_timescale(data: bytes, scale: float) -> bytes:
    """`data` with its (first) sidx's timescale, which its fragments' times count, times `scale`."""
    at = data.index(mp4.SIDX) + 4 + 8  # version and flags, the reference id
    lying = bytearray(data)
    struct.pack_into(">I", lying, at, round(struct.unpack_from(">I", data, at)[0] * scale))
    return bytes(lying)


def webm_with_timestamp_scale(data: bytes, scale: float) -> bytes:
    """`data` with its Info's TimestampScale (ns per timestamp unit, every time's) times `scale`."""
    segment = webm.read_element(data, webm.read_element(data, 0).end)
    at = segment.data_start
    while (child := webm.read_element(data, at)).id != webm.INFO_ID:
        at = child.end
    field = next(c for c in webm.info_children(data, child) if c.id == webm.TIMESTAMP_SCALE_ID)
    value = round(int.from_bytes(data[field.data_start:field.end], "big") * scale)
    return data[:field.data_start] + value.to_bytes(field.size, "big") + data[field.end:]


def ebml_number(value: int, length: int | None = None) -> bytes:
    """An EBML unsigned number (a size), in `length` bytes or the fewest that hold it."""
    length = length or next(n for n in range(1, 9) if value < (1 << 7 * n) - 1)
    return ((1 << 7 * length) | value).to_bytes(length, "big")


def lace(frames: list[bytes], lacing: int) -> bytes:
    """`frames` as one laced block's bytes after its flags (fixed-size: each padded to the
    longest, which a frame's first bytes, all that is counted, do not mind)."""
    if lacing == webm.XIPH_LACING:
        sizes = b"".join(b"\xff" * (len(f) // 255) + bytes([len(f) % 255]) for f in frames[:-1])
    elif lacing == webm.EBML_LACING:
        sizes = ebml_number(len(frames[0])) if len(frames) > 1 else b""
        for before, frame in zip(frames, frames[1:-1]):
            difference = len(frame) - len(before)
            n = next(n for n in range(1, 9) if abs(difference) < (1 << 7 * n - 1) - 1)
            sizes += ebml_number(difference + (1 << 7 * n - 1) - 1, n)
    else:
        longest = max(len(f) for f in frames)
        frames, sizes = [f.ljust(longest, b"\0") for f in frames], b""
    return bytes([len(frames) - 1]) + sizes + b"".join(frames)


def segment_children(data: bytes) -> tuple[bytearray, list[webm.Element]]:
    """(a WebM or Matroska file's bytes up to its Segment's first child, the Segment's size made
    unknown; the Segment's children), to rebuild the file from."""
    segment = webm.read_element(data, webm.read_element(data, 0).end)
    start = bytearray(data[:segment.data_start - segment.size_len]) + webm.unknown_size(segment.size_len)
    children, at = [], segment.data_start
    while at < len(data) and (child := webm.read_element(data, at)) is not None:
        children.append(child)
        at = child.end
    return start, children


def webm_laced(data: bytes, lacing: int, per: int = 4) -> bytes:
    """`data` (a WebM of one track, its blocks SimpleBlocks) with each run of `per` blocks of a
    cluster laced into one, as mkvmerge laces audio; the Segment's size made unknown."""
    out, top = segment_children(data)
    for child in top:
        if child.id != webm.CLUSTER_ID:
            out += data[child.start:child.end]
            continue
        children = webm.children_of(data, child)
        blocks = [c for c in children if c.id == webm.SIMPLE_BLOCK_ID]
        body = b"".join(data[c.start:c.end] for c in children if c.id != webm.SIMPLE_BLOCK_ID)
        for first in range(0, len(blocks), per):
            run = blocks[first:first + per]
            head = data[run[0].data_start:run[0].data_start + 4]  # track 1 (one byte), timestamp, flags
            frames = [data[b.data_start + 4:b.end] for b in run]
            payload = head[:3] + bytes([head[3] | lacing]) + lace(frames, lacing)
            body += bytes([webm.SIMPLE_BLOCK_ID]) + ebml_number(len(payload), 8) + payload
        out += webm.CLUSTER_MAGIC + ebml_number(len(body), 8) + body
    return bytes(out)


def flac_with_length(data: bytes, scale: float) -> bytes:
    """`data` with its STREAMINFO's total samples (the length it states) times `scale`."""
    info = flac.metadata_of(lambda first, last: data[first:last + 1], len(data)).info
    packed = int.from_bytes(info.raw[10:18], "big")
    packed = packed & ~0xFFFFFFFFF | round(info.total_samples * scale)
    at = data.index(info.raw)
    return data[:at + 10] + struct.pack(">Q", packed) + data[at + 18:]


def lying_pair(root, names: tuple[str, str], data: bytes, lie) -> None:
    """`data` rewritten by `lie` with a factor of 3 (the first name) and of 0.3 (the second)."""
    for name, factor in zip(names, (3, 0.3)):
        (root / name).write_bytes(lie(data, factor))


@pytest.fixture(scope="module")
def served(audio_root, tmp_path_factory):
    def make(root: Path) -> None:
        ffmpeg("-i", str(audio_root / "long.ogg"), "-ar", "44100", "-c:a", "flac", str(root / "song.flac"))
        (root / "short.ogg").write_bytes(ogg_with_length((audio_root / "long.ogg").read_bytes(), 0.3))
        (root / "short.flac").write_bytes(flac_with_length((root / "song.flac").read_bytes(), 0.3))
        (root / "long.ogg").write_bytes(ogg_with_length((audio_root / "long.ogg").read_bytes(), 3))
        (root / "long.flac").write_bytes(flac_with_length((root / "song.flac").read_bytes(), 3))
        long_ogg, long_m4a = (audio_root / "long.ogg").read_bytes(), (audio_root / "long.m4a").read_bytes()
        lying_pair(root, ("slow.ogg", "fast.ogg"), long_ogg, ogg_with_granules)
        ffmpeg("-i", str(audio_root / "long.ogg"), "-c:a", "libvorbis", "-q:a", "3", str(root / "vorbis.ogg"))
        lying_pair(root, ("slow_vorbis.ogg", "fast_vorbis.ogg"), (root / "vorbis.ogg").read_bytes(), ogg_with_granules)
        lying_pair(root, ("fast.m4a", "slow.m4a"), long_m4a, mp4_with_timescale)
        ffmpeg("-i", str(audio_root / "long.ogg"), "-c:a", "alac", "-ar", "16000", str(root / "alac.m4a"))
        lying_pair(root, ("fast_alac.m4a", "slow_alac.m4a"), (root / "alac.m4a").read_bytes(), mp4_with_timescale)
        for kind in ("fragments", "fragments_sidx"):
            ffmpeg("-i", str(audio_root / "long.m4a"), *VARIANTS[kind], str(root / f"{kind}.m4a"))
            fragmented = (root / f"{kind}.m4a").read_bytes()
            lying_pair(root, (f"fast_{kind}.m4a", f"slow_{kind}.m4a"), fragmented, mp4_with_timescale)
            lying_pair(root, (f"late_{kind}.m4a", f"early_{kind}.m4a"), fragmented, mp4_with_decode_times)
        lying_pair(root, ("slow.webm", "fast.webm"), (audio_root / "long.webm").read_bytes(), webm_with_timestamp_scale)
        ffmpeg("-i", str(audio_root / "long.ogg"), "-c:a", "libvorbis", "-q:a", "3", str(root / "vorbis.webm"))
        lying_pair(root, ("slow_vorbis.webm", "fast_vorbis.webm"), (root / "vorbis.webm").read_bytes(),
                   webm_with_timestamp_scale)
        (root / "misindexed.m4a").write_bytes(mp4_with_sidx_timescale((root / "fragments_sidx.m4a").read_bytes(), 0.3))

    return made_once(tmp_path_factory, "lying_lengths", make)  # one copy for the run's test processes: read it only


@pytest.mark.parametrize("ext", ["ogg", "flac"])
async def test_a_section_past_the_length_its_file_states_is_not_reported_in_it(served, long_duration, tmp_path, ext):
    """The 240 s song states 72 s: its window (21-51 s) is fetched by that share of the bytes, the
    stream there says it is at 50-80 s (FLAC) or 59-89 s (Ogg). That section was reported, past
    the end of a 72 s song; now the length and the stream disagree, and yt-dlp has its turn."""
    with FakeAudioServer(served) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}." + ext, tmp_dir=tmp_path)
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="short")) as audio:
            if audio.section_s is not None:
                start, end = audio.section_s
                assert 0 <= start < end <= audio.duration_s, (audio.section_s, audio.duration_s)
            assert audio.path.name == f"short.{ext}" and audio.section_s is None  # whole, from yt-dlp
            # All of it (the Ogg's last page is cut short by the granule position it states)
            assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(long_duration, abs=1.0)


@contextlib.asynccontextmanager
async def whole_from_ytdlp(served: Path, tmp_path: Path, name: str,
                           known_s: float | None = None) -> AsyncIterator[FetchedAudio]:
    """`name` ("slow.m4a") fetched by its title, as a song `known_s` long (Spotify's length) if
    given: a section, had one been cut, plays as long as it says, and none is: the whole file,
    from yt-dlp, is what is yielded."""
    stem, suffix = name.rsplit(".", 1)
    item = Query(kind=QueryKind.TEXT, text=stem) if known_s is None else song(known_s, stem, title=stem)
    with FakeAudioServer(served) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}." + suffix, tmp_dir=tmp_path)
        async with fetcher.fetch(item) as audio:
            if audio.section_s is not None:
                start, end = audio.section_s
                assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(end - start, abs=0.1), audio.section_s
            assert audio.path.name == name and audio.section_s is None  # whole, from yt-dlp
            yield audio


@pytest.mark.parametrize("known", [False, True])
@pytest.mark.parametrize("name", ["slow", "fast", "slow_alac", "fast_alac"])
async def test_an_mp4_whose_timescale_lies_is_not_cut_by_its_index(served, long_duration, tmp_path, name, known):
    """An MP4's index counts its AAC frames' durations in media ticks, 1 024 to a frame at the
    sample entry's rate (48 kHz). With the timescale (ticks per second) at 0.3 times that, the
    240 s song stated 799 s, and its section 384-414 s while it played 9 s; at 3 times, 80 s and
    a section at 25-55 s that played 90 s. A timescale at which the frames would not play one of
    AAC's frame lengths at the entry's rate is not the stream's: the file is fetched whole, also
    when the song's length is known, where ffmpeg cut the window by the same timescale (9 s of
    it at 0.3 times; at 3 times a file of no audio). An ALAC track's frames play the frame length its
    ALACSpecificConfig states (4 096) at its rate: they were not checked, and its section was cut by
    the lying timescale."""
    async with whole_from_ytdlp(served, tmp_path, f"{name}.m4a", long_duration if known else None) as audio:
        assert audio.path.read_bytes() == (served / f"{name}.m4a").read_bytes()


def played_at(audio: np.ndarray, song: np.ndarray, second: float) -> float:
    """Where in `audio` (at SAMPLE_RATE) the song's second from `second` on plays, searched
    within 20 s of it."""
    probe = song[int(second * SAMPLE_RATE):int((second + 1) * SAMPLE_RATE)]
    low = max(int((second - 20) * SAMPLE_RATE), 0)
    corr = correlate(audio[low:low + 41 * SAMPLE_RATE], probe, mode="valid", method="fft")
    return (low + int(np.argmax(np.abs(corr)))) / SAMPLE_RATE


@pytest.mark.parametrize("name", ["slow", "fast", *(f"{lie}_{kind}" for kind in ("fragments", "fragments_sidx")
                                                  for lie in ("slow", "fast", "late", "early"))])
def test_an_mp4_whose_times_lie_is_decoded_sample_by_sample(served, audio_root, long_duration, name):
    """Such a file, fetched whole, is the classifier's to decode, and FFmpeg's MP4 demuxer plays
    it by the same timestamps: the edit list's 240 s, counted at a timescale 0.3 times the rate
    (slow), kept the first 72 s of the song; fragments whose decode times (0.3 times the stream's:
    early_*) go back over the ones before were dropped but for their last 30 %, 75 s of pieces.
    The classifier's 30 s were picked from those, not from the song's middle. Where the packets'
    timestamps are not what they play, every packet is decoded in the file's order: the whole song,
    each second where the song has it (the encoder's 21 ms of priming kept)."""
    audio = load_audio(served / f"{name}.m4a")
    song = load_audio(audio_root / "long.m4a")
    assert len(audio) / SAMPLE_RATE == pytest.approx(long_duration, abs=1.0)
    for second in (50.0, long_duration / 2, long_duration - 50):
        assert played_at(audio, song, second) == pytest.approx(second, abs=0.05)


@pytest.mark.parametrize("kind", ["fragments", "fragments_sidx"])
@pytest.mark.parametrize("lie", ["slow", "fast", "late", "early"])
async def test_a_fragmented_mp4_whose_decode_times_lie_is_fetched_whole(served, long_duration, tmp_path, lie, kind):
    """A fragmented MP4's samples play by their fragments' durations (trun, tfhd, trex) at its
    media timescale, and each fragment up to the next one's decode time (tfdt); neither was
    checked. The 240 s song's length known, the timescale at 3 times the rate (fast) had a section
    said to lie at 35-45 s play 30 s (33-45 s and 35 s by the sidx), decode times at 0.3 times the
    stream's (early) one said to lie at 32-41 s play 13 s; at 0.3 times the rate (slow) and three
    times the decode times (late), the section falls past the song's end. Frames that play no AAC
    frame's length at the entry's rate, or fragments that play over 0.5 s more or less than their
    decode times say, are not the stream's: the file is fetched whole."""
    async with whole_from_ytdlp(served, tmp_path, f"{lie}_{kind}.m4a", long_duration) as audio:
        assert audio.path.read_bytes() == (served / f"{lie}_{kind}.m4a").read_bytes()


@pytest.mark.parametrize("name", ["fragments", "misindexed"])
async def test_a_fragmented_mp4_whose_decode_times_hold_is_cut(served, long_duration, tmp_path, name):
    """The same song's fragments as ffmpeg wrote them: the middle 30 s, and it plays as long as it
    says. So too where the sidx that indexes them lies (its timescale 0.3 times theirs): the
    fragments it named for the window were at 30-45 s of the song by their own decode times, and
    that section, 15 s long, was taken; decode times that place them over 0.5 s from where the
    sidx does have the window's share of the bytes taken instead."""
    with FakeAudioServer(served) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}.m4a", tmp_dir=tmp_path)
        async with fetcher.fetch(song(long_duration, name, title=name)) as audio:
            start, end = audio.section_s
            assert start == pytest.approx(long_duration / 2 - 15, abs=5.0) and end - start == pytest.approx(30, abs=5.0)
            assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(end - start, abs=0.1)


@pytest.mark.parametrize("name", ["slow", "fast"])
async def test_an_opus_stream_whose_granule_positions_lie_is_not_cut_by_them(served, long_duration, tmp_path, name):
    """Granule positions say where an Ogg section lies and how long it lasts; its Opus packets
    (their TOC bytes) how long it plays. With every granule position three times the stream's,
    the section was said to last 27 s (333-360 s of a 719 s song) while it played 9 s; at 0.3
    times, 30 s while it played 99 s. Granule positions off the packets by over 0.5 s are not the
    stream's: yt-dlp has its turn (the whole file: the length it states is theirs too)."""
    async with whole_from_ytdlp(served, tmp_path, f"{name}.ogg") as audio:
        assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(long_duration, abs=1.0)


@pytest.mark.parametrize("name", ["slow", "fast"])
async def test_an_opus_stream_whose_granule_positions_lie_is_fetched_whole_when_its_length_is_known(
        served, long_duration, tmp_path, name):
    """The song's length known (Spotify's), the section's granule positions were found to lie just
    the same, but yt-dlp then had ffmpeg cut the window by them: at three times the stream's, a
    file no decoder opens ("Unsupported huge granule pos"), at 0.3 times 1.2 s of the song. No
    cut goes by them: the whole file is fetched, and decoded, it plays the whole song."""
    async with whole_from_ytdlp(served, tmp_path, f"{name}.ogg", known_s=long_duration) as audio:
        assert audio.path.read_bytes() == (served / f"{name}.ogg").read_bytes()
        assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(long_duration, abs=1.0)


@pytest.mark.parametrize("known", [False, True])
@pytest.mark.parametrize("name", ["slow_vorbis", "fast_vorbis"])
async def test_a_vorbis_stream_whose_granule_positions_lie_is_fetched_whole(served, long_duration, tmp_path,
                                                                            name, known):
    """Vorbis granule positions were not checked: at three times the stream's, a section of the
    240 s song was said to lie at 350-378 s while it played 9 s (its length stated, 719 s), or,
    the length known, ffmpeg cut 11 s out of the window with errors; at 0.3 times, a section said
    to last 30 s played 100 s. A Vorbis packet's mode (its first byte) says how many samples it
    plays, and granule positions off them by over 0.5 s are not the stream's: the file is fetched
    whole."""
    async with whole_from_ytdlp(served, tmp_path, f"{name}.ogg", long_duration if known else None) as audio:
        assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(long_duration, abs=1.0)


async def test_a_vorbis_stream_whose_granule_positions_hold_is_cut(served, long_duration, tmp_path):
    """The same song, its granule positions the encoder's: the middle 30 s, from a fraction of
    the bytes, and it plays as long as it says."""
    with FakeAudioServer(served) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}.ogg", tmp_dir=tmp_path)
        async with fetcher.fetch(song(long_duration, "vorbis", title="vorbis")) as audio:
            start, end = audio.section_s
            assert start == pytest.approx(long_duration / 2 - 15, abs=5.0) and end - start == pytest.approx(30, abs=1.0)
            assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(end - start, abs=0.1)
            assert audio.bytes_downloaded < (served / "vorbis.ogg").stat().st_size / 4


def test_vorbis_packets_are_counted_by_their_modes(served):
    """Each packet plays (previous + current block size) / 4 samples, its block's size by the
    mode its first byte names (the modes read backwards from the end of the setup header): over
    the whole stream they come to its last granule position, within a long block."""
    data = (served / "vorbis.ogg").read_bytes()
    headers = ogg.header_pages(data[:16384])
    blocks = ogg.vorbis_blocks(headers)
    assert blocks.sizes == (256, 2048) and blocks.long_modes == (False, True)  # libvorbis at 44.1 kHz
    audio = [page for page in ogg.pages_in(data) if page.granule > 0]
    assert ogg.vorbis_samples(blocks, audio) == pytest.approx(audio[-1].granule, abs=2048)
    rng = random.Random("vorbis-setup")
    for _ in range(300):  # a host's bytes are untrusted: a set-up with bytes flipped gives None or modes
        body = bytearray(headers[-1].body)
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        damaged = ogg.vorbis_blocks([*headers[:-1], ogg.replace(headers[-1], body=bytes(body))])
        assert damaged is None or ogg.vorbis_samples(damaged, audio[100:120]) is None or damaged.long_modes


@pytest.mark.parametrize("known", [False, True])
@pytest.mark.parametrize("name", ["slow", "fast", "slow_vorbis", "fast_vorbis"])
async def test_a_webm_whose_timestamps_lie_is_fetched_whole(served, long_duration, tmp_path, name, known):
    """A WebM's cluster timestamps, counted in its TimestampScale, say where a section lies and
    how long it lasts; its Opus blocks' TOC bytes, how long it plays. With the scale 0.3 times the
    stream's, a section of the 240 s song was said to lie at 30-39 s while it played 30 s (its
    length known) or at 18-50 s while it played 105 s (the 72 s stated); at 3 times, at 330-360 s
    of the 719 s stated while it played 10 s. Vorbis blocks were not counted: at 0.3 times, a
    section of the Vorbis song was said to lie at 33-40 s while it played 25 s (its length known),
    at 21-52 s while it played 105 s (the 72 s stated). A Vorbis block plays by the mode its first
    byte names, as in an Ogg (the modes from the track's CodecPrivate, its three header packets).
    Timestamps off the blocks by over 0.5 s are not the stream's: the file is fetched whole, and
    the classifier's decoder plays the whole song."""
    async with whole_from_ytdlp(served, tmp_path, f"{name}.webm", long_duration if known else None) as audio:
        assert audio.path.read_bytes() == (served / f"{name}.webm").read_bytes()
        assert len(load_audio(audio.path)) / SAMPLE_RATE == pytest.approx(long_duration, abs=1.0)


async def test_a_vorbis_webm_whose_timestamps_hold_is_cut(served, long_duration, tmp_path):
    """The Vorbis song as ffmpeg wrote it: 30 s or more of its middle (whole clusters, the last one
    begun within 30 s of the first), and it plays as long as it says. Its clusters last 5 s: the
    whole ones in the window's share of the bytes were 25 s (109.8-134.8 s, its first one 4.8 s
    into the window), and the classifier filled its 30 s by playing 5 s of them twice. A section
    short by over 2 s has the bytes after the window fetched too (one more request, for what it
    lacks and 5 s more)."""
    with FakeAudioServer(served) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}.webm", tmp_dir=tmp_path)
        async with fetcher.fetch(song(long_duration, "vorbis", title="vorbis")) as audio:
            start, end = audio.section_s
            assert start == pytest.approx(long_duration / 2 - 15, abs=6.0) and 29.0 <= end - start <= 35.5
            assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(end - start, abs=0.1)
            assert audio.bytes_downloaded < (served / "vorbis.webm").stat().st_size / 4
            assert len(server.requests_for("/vorbis.webm")) == 3  # its start, the window, what the window lacked


def test_a_webm_vorbis_tracks_blocks_are_counted_and_damage_gives_none_or_a_count(served):
    """The modes come from the track's CodecPrivate (three Xiph-laced headers); the song's
    clusters, counted block by block with the block before carried from one to the next, play
    what their timestamps say. A host's bytes are untrusted: a CodecPrivate or clusters with bytes
    flipped or cut short give None or a count, nothing raised."""
    data = (served / "vorbis.webm").read_bytes()
    header = webm.parse_header(data[:16384])
    assert not header.opus and header.vorbis.sizes == (256, 2048) and header.vorbis_rate == 48_000
    clusters = [raw for _, raw in webm.clusters_in(data)]
    times = [time for time, _ in webm.clusters_in(data)]  # in ms: the file's TimestampScale is 1 ms
    assert webm.clusters_play(header, clusters[:-1]) == pytest.approx((times[-1] - times[0]) / 1000, abs=0.05)
    assert [len(p) for p in webm.xiph_packets(b"\x02\xff\x01\x03" + bytes(260))] == [256, 3, 1]  # 255 + 1, 3, the rest
    assert webm.xiph_packets(b"\x02\xff\xff") is None and webm.xiph_packets(b"\x02\x05\x05" + bytes(9)) is None
    tracks = data.index(webm.TRACKS_ID.to_bytes(4, "big"))
    rng = random.Random("webm-vorbis")
    for _ in range(300):
        raw = bytearray(data[:16384])
        for _ in range(rng.randint(1, 6)):
            raw[tracks + rng.randrange(4000)] = rng.randrange(256)
        damaged = webm.parse_header(bytes(raw))
        assert damaged is None or damaged.vorbis is None or damaged.vorbis.long_modes
        cluster = bytearray(clusters[rng.randrange(len(clusters))])
        for _ in range(rng.randint(1, 6)):
            cluster[rng.randrange(len(cluster))] = rng.randrange(256)
        cut = bytes(cluster[:rng.randrange(len(cluster) + 1)] if rng.random() < 0.3 else cluster)
        plays = webm.clusters_play(header, [cut])
        assert plays is None or plays >= 0


@pytest.mark.parametrize("lacing", ["xiph", "ebml", "fixed"])
@pytest.mark.parametrize("name", ["long", "vorbis"])
def test_a_webm_whose_blocks_are_laced_is_checked_frame_by_frame(served, audio_root, name, lacing):
    """mkvmerge laces audio: several frames in a block, their sizes before them (Xiph's bytes of
    255, EBML numbers, or one size for all). A laced block was not counted, so neither Opus nor
    Vorbis timestamps were checked in such a file: with the TimestampScale 0.3 times the stream's,
    15 % of the Vorbis song's bytes from 45 % on made a section said to lie at 33-43 s that played
    35 s (the Opus song's, at 31-40 s, played 30 s). Each frame of a laced block is counted as a
    block's would be: the same clusters play the same samples laced or not, and the lying file is
    said so (StreamTimesLie: it is fetched whole). Laced clusters with bytes flipped or cut short
    give None or a count, nothing raised."""
    kind = {"xiph": webm.XIPH_LACING, "ebml": webm.EBML_LACING, "fixed": webm.FIXED_LACING}[lacing]
    data = ((audio_root if name == "long" else served) / f"{name}.webm").read_bytes()
    laced = webm_laced(data, kind)
    header = webm.parse_header(laced[:16384])
    plain, frames = ([raw for _, raw in webm.clusters_in(d)] for d in (data, laced))
    assert len(frames) == len(plain)
    assert webm.clusters_play(header, frames) == webm.clusters_play(header, plain) is not None
    middle = slice(len(laced) * 45 // 100, len(laced) * 60 // 100)
    assert webm.splice_section(laced[:16384], laced[middle], max_seconds=30) is not None
    lying = webm_with_timestamp_scale(laced, 0.3)
    with pytest.raises(StreamTimesLie):
        webm.splice_section(lying[:16384], lying[middle], max_seconds=30)
    rng = random.Random(f"laced-{name}-{lacing}")
    for _ in range(200):
        raw = bytearray(frames[rng.randrange(len(frames))])
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        plays = webm.clusters_play(header, [bytes(raw[:rng.randrange(len(raw) + 1)] if rng.random() < 0.3 else raw)])
        assert plays is None or plays >= 0


def test_a_webm_clusters_opus_blocks_are_counted_and_damage_gives_none_or_a_count(audio_root):
    """The song's clusters play what their timestamps say, block by block; a host's bytes are
    untrusted: clusters with bytes flipped or cut short give None or a count, nothing raised."""
    data = (audio_root / "long.webm").read_bytes()
    assert webm.parse_header(data[:16384]).opus
    clusters = webm.clusters_in(data)
    plays = [webm.cluster_opus_samples(raw) for _, raw in clusters]
    assert None not in plays
    times = [time for time, _ in clusters]  # in ms: the file's TimestampScale is 1 ms
    assert sum(plays[:-1]) / ogg.OPUS_RATE == pytest.approx((times[-1] - times[0]) / 1000, abs=0.05)
    rng = random.Random("webm-clusters")
    for _ in range(300):
        raw = bytearray(clusters[rng.randrange(len(clusters))][1])
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        samples = webm.cluster_opus_samples(bytes(raw[:rng.randrange(len(raw) + 1)] if rng.random() < 0.3 else raw))
        assert samples is None or samples >= 0


def test_opus_packets_are_counted_by_their_toc_bytes_across_pages():
    """RFC 6716, 3.1: configuration 31 is CELT's 20 ms (960 samples); code 0 one frame, 1 and 2
    two, 3 a count in the next byte. A packet may begin on one page and end on the next (laces of
    255), its count byte there; an empty packet plays nothing (it is not a reason to give up)."""
    assert [ogg.opus_packet_samples(bytes([31 << 3 | code, 5])) for code in range(4)] == [960, 1920, 1920, 4800]
    assert ogg.opus_packet_samples(bytes([0 << 3 | 3, 3])) == 3 * 480  # SILK 10 ms, three frames
    assert ogg.opus_packet_samples(b"") == 0 and ogg.opus_packet_samples(bytes([3])) is None
    one = bytes([31 << 3]) + bytes(9)  # 20 ms
    begun = bytes([31 << 3 | 3, 4]) + bytes(253)  # four 20 ms frames, ended on the next page
    first = ogg.Page(0, 0, 1, 0, bytes([10, 255]), one + begun)
    second = ogg.Page(ogg.FLAG_CONTINUED, 0, 1, 1, bytes([20, 0, 10]), bytes(20) + one)  # then an empty one, and 20 ms
    assert ogg.opus_samples([first, second]) == 960 + 4 * 960 + 0 + 960


@pytest.mark.parametrize("ext", ["ogg", "flac"])
async def test_a_section_far_from_the_window_of_the_length_its_file_states_is_not_taken(served, long_duration,
                                                                                      tmp_path, ext):
    """The 240 s song states 719 s: its window (345-375 s) is fetched by that share of the bytes,
    where the stream says it is at 111 s (Ogg: its section was reported at 111-120 s of a 719 s
    song, 9 s long). A section that starts under half or over twice as far into the song as its
    window, by a length the file states, says the length is not the song's (a bit rate that varies
    puts it a few seconds off, 20 s for a FLAC whose first two minutes are quiet): yt-dlp has its
    turn. (A FLAC's frames there are all before the window, and it had already.)"""
    with FakeAudioServer(served) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}." + ext, tmp_dir=tmp_path)
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="long")) as audio:
            assert audio.path.name == f"long.{ext}" and audio.section_s is None, (audio.section_s, audio.duration_s)
