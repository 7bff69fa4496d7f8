"""An ADTS AAC song's 30 s section through Range requests: no container and no index, so the
window's bytes are found in proportion, and an unknown length from the bit rate of the frames in
the file's middle; the section is whole frames from the first place where frames follow one
another. An ID3 tag at the front is stepped over, not fetched."""
from __future__ import annotations

import random

import pytest

from bot.sources import adtssection as adts
from bot.sources import mp3section as mp3
from bot.sources.audio import AudioFetcher
from bot.sources.models import Query, QueryKind
from tests.fakes.audio_http import FakeAudioServer
from tests.sources.test_audio import decode, section_start_in
from tests.sources.test_mp3_sections import fetched_section

# ffmpeg's AAC encoder at 64 kbit/s varies its frame sizes with the music: a place found in
# proportion to the bytes is this far from where it is in time, in the test song.
PROPORTION_ERROR_S = 1.0  # 0.44 s (known length) and 0.62 s (length from the bit rate) measured


def id3_tagged(song: bytes, payload_bytes: int) -> bytes:
    """`song` behind an ID3v2.4 tag with one private frame of `payload_bytes` (as cover art would be)."""
    def syncsafe(n: int) -> bytes:
        return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))

    body = b"moodbot\x00" + random.Random(1).randbytes(payload_bytes)
    frame = b"PRIV" + syncsafe(len(body)) + b"\x00\x00" + body
    return b"ID3\x04\x00\x00" + syncsafe(len(frame)) + frame + song


@pytest.fixture(scope="module")
def adts_root(audio_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("adts")
    data = (audio_root / "long.aac").read_bytes()
    (root / "plain.aac").write_bytes(data)
    (root / "tagged.aac").write_bytes(id3_tagged(data, 120_000))  # the frames start past the first 16 kB
    return root


@pytest.fixture(scope="module")
def adts_server(adts_root):
    with FakeAudioServer(adts_root) as server:
        yield server


@pytest.mark.parametrize("name, requests", [("plain", 2), ("tagged", 3)])
async def test_an_aac_section_is_the_middle_30_s_from_a_fraction_of_the_bytes(adts_server, adts_root, audio_root,
                                                                             long_duration, tmp_path, name, requests):
    start, found = await fetched_section(adts_server, adts_root, "aac", name, requests, long_duration, tmp_path,
                                         decode(audio_root / "long.aac"))
    assert found == pytest.approx(start, abs=PROPORTION_ERROR_S)


@pytest.mark.parametrize("name", ["plain", "tagged"])
async def test_an_aac_of_unknown_length_is_cut_by_the_bit_rate_of_its_middle(adts_server, adts_root, audio_root,
                                                                            long_duration, tmp_path, name):
    fetcher = AudioFetcher(search_template=adts_server.base_url + "/{title}.aac", tmp_dir=tmp_path)
    adts_server.reset_counts()
    async with fetcher.fetch(Query(kind=QueryKind.TEXT, text=name)) as audio:
        assert audio.path.name == "section.aac"
        assert audio.duration_s == pytest.approx(long_duration, rel=0.01)  # 0.35 s off measured
        assert audio.bytes_downloaded < (adts_root / f"{name}.aac").stat().st_size / 5
        section = decode(audio.path)
        start = audio.section_s[0]
        assert section_start_in(decode(audio_root / "long.aac"), section, start) == pytest.approx(start, abs=PROPORTION_ERROR_S)


def test_adts_frame_headers_give_their_lengths_and_are_not_taken_for_mp3(audio_root):
    data = (audio_root / "long.aac").read_bytes()
    frame = adts.read_frame(data, 0)
    assert (frame.sample_rate, frame.channels, frame.samples) == (48_000, 1, 1024)
    at, total = 0, 0
    while (frame := adts.read_frame(data, at)) is not None:  # the frames tile the file exactly
        at, total = at + frame.length, total + 1
    assert at == len(data) and total > 10_000
    assert mp3.read_frame(data, 0) is None and mp3.first_frame(data[:8192]) is None
    mp3_data = (audio_root / "long.mp3").read_bytes()
    assert adts.first_frame(mp3_data[:8192]) is None
    assert adts.read_frame(b"\xff\xf1\x7c\x40\x03\x9f\xfc", 0) is None  # sample rate index 15: reserved
    assert adts.read_frame(b"\xff\xf1\x4c\x40\x00\xdf\xfc", 0) is None  # a frame shorter than its header


def test_what_is_not_a_run_of_adts_frames_gives_none(audio_root):
    data = (audio_root / "long.aac").read_bytes()
    middle = data[len(data) // 2:len(data) // 2 + 80_000]
    cut = adts.splice_section(middle, 5.0)
    assert cut is not None and cut[2] == pytest.approx(5.0, abs=0.03)
    assert adts.splice_section(b"\xff\xf1" * 5000) is None
    assert adts.splice_section(bytes(range(256)) * 40) is None
    assert adts.bytes_per_second(bytes(5000)) is None
    rng = random.Random(3)
    for _ in range(300):  # damaged bytes: a shorter run, or none; never an exception
        bad = bytearray(middle)
        for _ in range(rng.randint(1, 8)):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        cut = adts.splice_section(bytes(bad), 5.0)
        assert cut is None or cut[2] <= 5.0 + 0.03
