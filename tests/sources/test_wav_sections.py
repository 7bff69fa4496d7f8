"""A WAV song's 30 s section through Range requests: its chunks walked to the samples, the
window's bytes fetched at whole sample frames under a new header. A WAV too big to fetch whole
(46 MB for 4 minutes of CD-like audio) still gives its section; a compressed one goes to yt-dlp."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from bot.sources import wavsection as wav
from bot.sources.audio import MAX_BYTES, AudioFetcher, section_window
from bot.sources.models import Query, QueryKind
from tests.fakes.audio_http import FakeAudioServer
from tests.sources.test_audio import decode, section_start_in, song
from tests.sources.test_mp4_sections import ffmpeg
from tests.sources.test_urlguard import user_link_fetcher, video_known_by_id

VARIANTS = {
    # 48 kHz stereo 16-bit, with a LIST chunk of tags before the samples: over the download limit
    "big": ("-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le", "-metadata", "title=A long song", "-metadata", "artist=Band"),
    "float": ("-ar", "22050", "-ac", "1", "-c:a", "pcm_f32le"),
    "adpcm": ("-ar", "22050", "-ac", "1", "-c:a", "adpcm_ima_wav"),  # compressed: not cut here
}


@pytest.fixture(scope="module")
def wav_root(audio_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("wav")
    for name, args in VARIANTS.items():
        ffmpeg("-i", str(audio_root / "long.ogg"), *args, str(root / f"{name}.wav"))
    assert (root / "big.wav").stat().st_size > MAX_BYTES
    return root


@pytest.fixture(scope="module")
def wav_server(wav_root):
    with FakeAudioServer(wav_root) as server:
        yield server


@pytest.mark.parametrize("name", ["big", "float"])
async def test_a_wav_section_is_exactly_the_middle_30_s(wav_server, wav_root, long_duration, tmp_path, name):
    served = f"/{name}.wav"
    fetcher = AudioFetcher(search_template=wav_server.base_url + "/{spotify_id}.wav", tmp_dir=tmp_path)
    wav_server.reset_counts()
    async with fetcher.fetch(song(long_duration, spotify_id=name)) as audio:
        assert audio.path.name == "section.wav"
        sent = wav_server.requests_for(served)
        assert all(r.range for r in sent) and len(sent) == 2, sent  # the header, the window's samples
        size = (wav_root / f"{name}.wav").stat().st_size
        assert audio.bytes_downloaded == wav_server.bytes_for(served) < size / 6
        window = section_window(long_duration)
        assert audio.section_s == pytest.approx(window, abs=1e-3)
        section, rate = sf.read(audio.path, dtype="float32")  # the classifier's reader takes it too
        original, _ = sf.read(wav_root / f"{name}.wav", dtype="float32")
        first = round(window[0] * rate)
        assert np.array_equal(section, original[first:first + len(section)])  # sample for sample
        assert len(section) == round(30.0 * rate)
    assert list(tmp_path.iterdir()) == []


async def test_a_compressed_wav_is_cut_by_ytdlp(wav_server, wav_root, long_duration, tmp_path):
    fetcher = AudioFetcher(search_template=wav_server.base_url + "/{spotify_id}.wav", tmp_dir=tmp_path)
    async with fetcher.fetch(song(long_duration, spotify_id="adpcm")) as audio:
        assert audio.path.name != "section.wav"
        assert audio.section_s == pytest.approx(section_window(long_duration))
        section = decode(audio.path)
        start = audio.section_s[0]
        assert section_start_in(decode(wav_root / "adpcm.wav"), section, start) == pytest.approx(start, abs=10.0)


def test_the_layout_is_read_from_the_chunks(wav_root):
    data = (wav_root / "big.wav").read_bytes()
    layout = wav.layout_of(lambda first, last: data[first:last + 1], len(data))
    assert (layout.block_align, layout.byte_rate) == (4, 192_000)
    assert data[layout.data_start - 8:layout.data_start - 4] == b"data" and b"LIST" in data[:layout.data_start]
    first, last = layout.span((1.0, 2.0))
    assert (first - layout.data_start, last + 1 - first) == (192_000, 192_000)
    assert layout.span((1e9, 2e9))[1] < layout.span((1e9, 2e9))[0]  # past the end: nothing


def test_what_cannot_be_cut_safely_gives_none(wav_root):
    data = bytearray((wav_root / "float.wav").read_bytes()[:4096])
    size = 10_000_000

    def layout(raw: bytes):
        return wav.layout_of(lambda first, last: bytes(raw[first:last + 1]), size)

    assert layout(data) is not None
    fmt = data.index(b"fmt ")
    wrong_rate = bytearray(data)
    struct.pack_into("<I", wrong_rate, fmt + 16, 12345)  # byte rate that disagrees with the rest
    assert layout(wrong_rate) is None
    assert layout(data[:data.index(b"data")]) is None  # no samples found
    assert layout((wav_root / "adpcm.wav").read_bytes()[:4096]) is None
    assert not wav.is_wav(b"RIFF\0\0\0\0AVI LIST")


async def test_a_users_link_to_a_wav_over_the_download_limit_gives_its_section(wav_server, wav_root, long_duration,
                                                                              tmp_path):
    """Whole, it would be refused as too big (46 MB against 25); its section is 5.8 MB, fetched in
    the watched worker."""
    wav_server.add_redirect("/watch", f"http://localhost:{wav_server.port}/big.wav")
    work = tmp_path / "work"
    async with user_link_fetcher(wav_server, work).fetch(video_known_by_id(wav_server, long_duration)) as audio:
        assert audio.path.name == "section.wav" and audio.youtube_id == "dQw4w9WgXcQ"
        assert audio.section_s == pytest.approx(section_window(long_duration), abs=1e-3)
        assert audio.bytes_downloaded < MAX_BYTES / 4
    assert list(work.iterdir()) == []


async def test_a_wav_of_unknown_length_is_cut_by_the_length_its_header_states(wav_server, long_duration, tmp_path):
    fetcher = AudioFetcher(search_template=wav_server.base_url + "/{title}.wav", tmp_dir=tmp_path)
    async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="big")) as audio:
        assert audio.path.name == "section.wav"
        assert audio.duration_s == pytest.approx(long_duration, abs=0.05)
        assert audio.section_s == pytest.approx(section_window(long_duration), abs=0.05)


async def test_a_short_wav_of_unknown_length_is_fetched_whole(audio_root, tmp_path):
    """40 s at 48 kHz stereo (7.7 MB): too big to be taken for a clip by its size, too short for
    a section by the length its header states."""
    ffmpeg("-i", str(audio_root / "long.ogg"), "-t", "40", "-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le",
           str(tmp_path / "short.wav"))
    with FakeAudioServer(tmp_path) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}.wav", tmp_dir=tmp_path / "work")
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="short")) as audio:
            assert audio.section_s is None
            assert audio.path.stat().st_size == (tmp_path / "short.wav").stat().st_size
        assert [r.range is not None for r in server.requests_for("/short.wav") if r.method == "GET"][:1] == [True]
