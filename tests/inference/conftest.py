"""Audio fixtures for the inference tests: a synthetic song in several containers, made with ffmpeg."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SYNTH_SR = 44100
SYNTH_SECONDS = 12.0


def synthetic_song(seconds: float = SYNTH_SECONDS, sr: int = SYNTH_SR, seed: int = 0) -> np.ndarray:
    """A chord with a beat and a little noise: enough structure for every feature to be non-trivial."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    beat = (np.sin(2 * np.pi * 2.0 * t) > 0.95).astype(float) * rng.normal(0, 0.5, t.size)
    return (0.3 * chord + 0.2 * beat + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def ffmpeg_encode(source: Path, target: Path, *codec_args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *codec_args, str(target)],
        check=True,
    )
    return target


@pytest.fixture(scope="session")
def song_files(tmp_path_factory) -> dict[str, Path]:
    """The same 12 s song as wav, ogg (vorbis), m4a (aac) and webm (opus)."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (apt-get install -y ffmpeg)")
    folder = tmp_path_factory.mktemp("songs")
    wav = folder / "song.wav"
    sf.write(wav, synthetic_song(), SYNTH_SR)
    return {
        "wav": wav,
        "ogg": ffmpeg_encode(wav, folder / "song.ogg", "-c:a", "libvorbis"),
        "m4a": ffmpeg_encode(wav, folder / "song.m4a", "-c:a", "aac", "-b:a", "128k"),
        "webm": ffmpeg_encode(wav, folder / "song.webm", "-c:a", "libopus", "-b:a", "96k"),
    }
