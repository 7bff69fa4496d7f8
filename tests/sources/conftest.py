from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from tests.fakes.audio_http import FakeAudioServer, make_long_ogg, remux
from tests.fakes.spotify_api import FakeSpotify
from tests.run_files import made_once

LONG_CLIPS = 8  # 8 x 30 s clips: a 4-minute song


@pytest.fixture(scope="session")
def audio_root(shared_data, tmp_path_factory) -> Path:
    """Served files: clip.ogg (a real 30 s clip), long.ogg (~4 min of real music), and the same
    song as long.webm, long.m4a (AAC, its index after the audio, as ffmpeg writes it), long.mp3,
    long.aac (ADTS: no container) and long.wma (ASF: a container the bot does not cut itself, so
    ffmpeg does)."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (apt-get install -y ffmpeg)")

    def make(root: Path) -> None:
        clips = sorted((shared_data / "audio").glob("*.ogg"))[:LONG_CLIPS]
        shutil.copy(clips[0], root / "clip.ogg")
        make_long_ogg(clips, root / "long.ogg")
        remux(root / "long.ogg", root / "long.webm")
        remux(root / "long.ogg", root / "long.m4a", ("-c:a", "aac", "-b:a", "64k"))
        remux(root / "long.ogg", root / "long.mp3", ("-c:a", "libmp3lame", "-b:a", "64k"))
        remux(root / "long.m4a", root / "long.aac")
        remux(root / "long.ogg", root / "long.wma", ("-c:a", "wmav2", "-b:a", "64k"))

    return made_once(tmp_path_factory, "audio_root", make)  # the test processes' one copy: read it only


@pytest.fixture(scope="session")
def long_duration(audio_root) -> float:
    return sf.info(str(audio_root / "long.ogg")).duration


@pytest.fixture
def audio_server(audio_root):
    with FakeAudioServer(audio_root) as server:
        yield server


@pytest.fixture
def front(audio_server):
    """An allowed host ("localhost", resolved by the tests' resolver to a public address) that
    redirects wherever the test says."""
    return audio_server


@pytest.fixture
def target(tmp_path):
    """An 'internal' service: it must never see a request."""
    (tmp_path / "secret.ogg").write_bytes(b"OggS internal data")
    with FakeAudioServer(tmp_path) as server:
        yield server


@pytest.fixture
def fake_spotify():
    with FakeSpotify() as server:
        yield server
