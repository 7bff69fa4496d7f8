"""A FLAC song's 30 s section through Range requests: its metadata walked (cover art and tags
stepped over), the window's frames found by their headers, placed by the seek table when the file
has one (exactly) or in proportion (with a wider margin: exact while the bit rate is even), and
decoded sample for sample as in the song, where the section says it starts. A 4-minute FLAC is ~22 MB: near the download limit whole, ~2.5 MB as a section."""
from __future__ import annotations

import random
import struct

import av
import numpy as np
import pytest

from bot.sources import flacsection as flac
from bot.sources.audio import AudioFetcher, section_window
from bot.sources.models import Query, QueryKind
from tests.fakes.audio_http import FakeAudioServer
from tests.sources.test_audio import serving_one, song
from tests.sources.test_mp4_sections import damaged, ffmpeg, with_cover_art

SEEK_EVERY_S = 10


def native(path) -> tuple[np.ndarray, int]:
    """(the samples as stored, the rate): no conversion, so a section compares sample for sample.
    (libsndfile refuses a FLAC whose first frame is not numbered 0; FFmpeg, which the bot uses, does not.)"""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return np.concatenate(frames), stream.rate


def with_seek_table(data: bytes) -> bytes:
    """The same FLAC with a SEEKTABLE of a point every SEEK_EVERY_S (ffmpeg writes none), in place
    of its other metadata but the STREAMINFO."""
    meta = flac.metadata_of(lambda first, last: data[first:last + 1], len(data))
    frames = flac.frames_in(data, meta.info, meta.audio_start)
    rate, points, due = meta.info.sample_rate, [], 0
    for frame in frames:
        sample = frame.first_sample(meta.info)
        if sample >= due:
            points.append(struct.pack(">QQH", sample, frame.start - meta.audio_start, meta.info.min_block))
            due += SEEK_EVERY_S * rate
    table = b"".join(points)
    return (flac.MAGIC + bytes([flac.STREAMINFO]) + (34).to_bytes(3, "big") + meta.info.raw
            + bytes([0x80 | flac.SEEKTABLE]) + len(table).to_bytes(3, "big") + table + data[meta.audio_start:])


@pytest.fixture(scope="module")
def flac_root(audio_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("flac")
    ffmpeg("-i", str(audio_root / "long.ogg"), "-ar", "44100", "-c:a", "flac", "-metadata", "title=A long song",
           str(root / "plain.flac"))
    # Its first two minutes at -34 dB: they take fewer bytes, so a share of the length is not a
    # share of the bytes, and only a seek table says where the middle is.
    ffmpeg("-i", str(audio_root / "long.ogg"), "-af", "volume=enable='lt(t,120)':volume=0.02", "-ar", "44100",
           "-c:a", "flac", str(root / "quiet.flac"))
    (root / "seek.flac").write_bytes(with_seek_table((root / "quiet.flac").read_bytes()))
    with_cover_art(root / "plain.flac", root / "cover.flac", "-disposition:v", "attached_pic")
    return root


@pytest.fixture(scope="module")
def flac_server(flac_root):
    with FakeAudioServer(flac_root) as server:
        yield server


@pytest.mark.parametrize("name, exact, requests", [
    ("plain", True, 2),  # no seek table, but an even bit rate: the margin holds the window
    ("cover", True, 3),  # the same after its cover art
    ("seek", True, 2),  # an uneven bit rate, and a seek table
    ("quiet", False, 2),  # the same without the table: a section of the song, but not its middle
])
async def test_a_flac_section_is_the_middle_30_s_sample_for_sample(flac_server, flac_root, long_duration, tmp_path,
                                                                   name, exact, requests):
    served = f"/{name}.flac"
    size = (flac_root / f"{name}.flac").stat().st_size
    fetcher = AudioFetcher(search_template=flac_server.base_url + "/{spotify_id}.flac", tmp_dir=tmp_path)
    flac_server.reset_counts()
    async with fetcher.fetch(song(long_duration, spotify_id=name)) as audio:
        assert audio.path.name == "section.flac"
        sent = flac_server.requests_for(served)
        assert all(r.range for r in sent) and len(sent) == requests, sent  # cover art: the blocks after it
        assert audio.bytes_downloaded == flac_server.bytes_for(served) < size / 4
        section, rate = native(audio.path)  # as the classifier reads it: FFmpeg's decoder, through PyAV
        original, _ = native(flac_root / f"{name}.flac")
        start, end = audio.section_s
        first = round(start * rate)
        assert np.array_equal(section, original[first:first + len(section)])  # where it says it starts
        assert len(section) == round((end - start) * rate)
        window = section_window(long_duration)
        frame_s = 4608 / rate  # ffmpeg's block size
        assert 30.0 <= end - start <= 30.0 + frame_s
        if exact:
            assert window[0] - frame_s <= start <= window[0]
        else:  # in proportion the guess lands ~20 s late; the section says so, and is still music
            assert start > window[0] + 10
    assert list(tmp_path.iterdir()) == []


def test_frames_are_found_by_header_and_numbering(flac_root):
    data = (flac_root / "plain.flac").read_bytes()
    meta = flac.metadata_of(lambda first, last: data[first:last + 1], len(data))
    assert (meta.info.sample_rate, meta.info.min_block) == (44100, 4608) and meta.seek_points == ()
    frames = flac.frames_in(data, meta.info, meta.audio_start)
    assert frames[0].start == meta.audio_start
    assert [f.number for f in frames] == list(range(len(frames)))
    assert sum(f.block for f in frames) == meta.info.total_samples
    middle = data[len(data) // 2:len(data) // 2 + 400_000]
    found = flac.frames_in(middle, meta.info)
    assert len(found) > 10 and [f.number for f in found] == list(range(found[0].number, found[0].number + len(found)))


def test_what_is_not_flac_or_has_no_frames_gives_none(flac_root):
    data = (flac_root / "plain.flac").read_bytes()
    meta = flac.metadata_of(lambda first, last: data[first:last + 1], len(data))
    assert flac.metadata_of(lambda first, last: b"OggS"[first:last + 1], 4) is None
    assert flac.splice_section(meta, bytes(200_000), (100.0, 130.0), 30.0) is None
    header = bytearray(data[meta.audio_start:meta.audio_start + 16])
    assert flac.read_frame(bytes(header), 0, meta.info) is not None
    header[4] ^= 0x01  # the frame number, so the CRC-8 no longer holds
    assert flac.read_frame(bytes(header), 0, meta.info) is None
    info = meta.info
    cleared = flac.parse_streaminfo(info.cleared())
    assert cleared.total_samples == 0 and (cleared.sample_rate, cleared.channels) == (info.sample_rate, info.channels)


@pytest.mark.parametrize("name", ["seek", "cover"])
def test_damaged_metadata_and_frames_give_none_or_a_file_never_an_exception(flac_root, name):
    """400 seeded damages (bytes flipped in the metadata and in the frames), each parsed and cut as
    the fetcher does."""
    rng = random.Random(f"flac-{name}")
    data = (flac_root / f"{name}.flac").read_bytes()
    meta = flac.metadata_of(lambda first, last: data[first:last + 1], len(data))
    head, middle = data[:meta.audio_start + 64], data[len(data) // 2:len(data) // 2 + 300_000]
    made = 0
    for _ in range(400):
        bad_head, bad_middle = damaged(rng, head, middle, 0.5)
        bad = bytes(bad_head)
        meta = flac.metadata_of(lambda first, last: bad[first:last + 1], len(data))
        if meta is None:
            continue
        flac.byte_span((100.0, 130.0), meta, len(data), 0.25)
        made += flac.splice_section(meta, bytes(bad_middle), (100.0, 130.0), 30.0) is not None
    assert made > 0


async def test_a_flac_of_unknown_length_is_cut_by_the_length_its_streaminfo_states(flac_server, long_duration,
                                                                                   tmp_path):
    fetcher = AudioFetcher(search_template=flac_server.base_url + "/{title}.flac", tmp_dir=tmp_path)
    async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="seek")) as audio:
        assert audio.path.name == "section.flac"
        assert audio.duration_s == pytest.approx(long_duration, abs=0.1)
        assert audio.section_s[0] == pytest.approx(section_window(long_duration)[0], abs=0.2)


def with_stated_blocks(data: bytes, block: int) -> bytes:
    """`data` with its STREAMINFO stating `block` samples as its frames' size, least and most (a
    header that lies: ffmpeg's frames are 4608)."""
    info = flac.metadata_of(lambda first, last: data[first:last + 1], len(data)).info
    at = data.index(info.raw)
    return data[:at] + struct.pack(">HH", block, block) + data[at + 4:]


@pytest.mark.parametrize("block", [4 * 4608, 4608 // 4])
async def test_a_streaminfo_that_lies_about_the_block_size_places_the_section_by_its_frames(flac_root, long_duration,
                                                                                          tmp_path, block):
    """A fixed-size stream numbers its frames, and a frame's first sample is its number times the
    block size. That size was STREAMINFO's, not the frames' own: with STREAMINFO stating four
    times the frames' size, the section said it lay at 392-422 s of the 240 s song and held 7.5 s
    (its 30 s counted in the stated size); stating a quarter of it, no section was cut, and the
    whole 22 MB file went to yt-dlp. The frames' own size places them, as the decoder plays them,
    and the section's STREAMINFO states it (a decoder refuses a frame over the stated largest):
    the middle 30 s, sample for sample where the section says."""
    data = with_stated_blocks((flac_root / "plain.flac").read_bytes(), block)
    with serving_one(tmp_path, "lying.flac", data, field="spotify_id") as (fetcher, _):
        async with fetcher.fetch(song(long_duration, spotify_id="lying")) as audio:
            assert audio.path.name == "section.flac"
            section, rate = native(audio.path)
            original, _ = native(flac_root / "plain.flac")
            start, end = audio.section_s
            assert 0 <= start < end <= long_duration
            first = round(start * rate)
            assert np.array_equal(section, original[first:first + len(section)])
            assert len(section) == round((end - start) * rate)
            window = section_window(long_duration)
            assert window[0] - 4608 / rate <= start <= window[0] and 30.0 <= end - start <= 30.0 + 4608 / rate
