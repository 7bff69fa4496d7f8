"""The audio front: any file in, the main model's input out, or an error a user can read."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from inference import audio
from inference.audio import (
    N_FRAMES,
    N_MELS,
    N_SEGMENTS,
    SAMPLE_RATE,
    SECTION_SAMPLES,
    SEGMENT_SAMPLES,
    load_audio,
    log_mel,
    main_model_input,
    section_segments,
    select_section,
    split_segments,
)
from inference.result import (
    AudioError,
    SilentAudioError,
    TooShortAudioError,
    UnreadableAudioError,
)
from tests.inference.conftest import SYNTH_SECONDS, synthetic_song


def test_constants_are_consistent():
    assert N_FRAMES == (SEGMENT_SAMPLES - audio.N_FFT) // audio.HOP_LENGTH + 1
    assert (N_SEGMENTS - 1) * audio.SEGMENT_STRIDE + SEGMENT_SAMPLES <= SECTION_SAMPLES
    assert N_SEGMENTS * N_FRAMES <= audio.SECTION_FRAMES


@pytest.mark.parametrize("kind", ["wav", "ogg", "m4a", "webm"])
def test_every_container_decodes_to_the_same_length(song_files, kind):
    decoded = load_audio(song_files[kind])
    reference = load_audio(song_files["wav"])
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(decoded.size - SYNTH_SECONDS * SAMPLE_RATE) <= 0.03 * SAMPLE_RATE
    assert abs(decoded.size - reference.size) <= 0.03 * SAMPLE_RATE
    # Same music, not just the same length: lossy codecs keep the log-mel close.
    n = min(decoded.size, reference.size)
    mel_a, mel_b = log_mel(decoded[:n]), log_mel(reference[:n])
    assert np.corrcoef(mel_a.ravel(), mel_b.ravel())[0, 1] > 0.95


def test_main_model_input_shape_and_determinism(song_files):
    first = main_model_input(song_files["webm"])
    second = main_model_input(song_files["webm"])
    assert first.shape == (1, N_SEGMENTS, N_MELS, N_FRAMES)
    assert first.dtype == np.float32
    assert np.array_equal(first, second)
    assert np.isfinite(first).all()


def test_log_mel_of_segments_is_a_slice_of_the_section_log_mel():
    section = select_section(synthetic_song(30.0, SAMPLE_RATE, seed=1))
    from_segments = log_mel(split_segments(section))
    from_section = section_segments(log_mel(section))
    assert from_segments.shape == (N_SEGMENTS, N_MELS, N_FRAMES)
    np.testing.assert_allclose(from_segments, from_section, atol=1e-4)


def test_log_mel_matches_librosa():
    import librosa

    y = synthetic_song(3.0, SAMPLE_RATE)
    ours = log_mel(y)
    theirs = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=y, sr=SAMPLE_RATE, n_fft=audio.N_FFT, hop_length=audio.HOP_LENGTH,
            n_mels=N_MELS, fmin=audio.FMIN, fmax=audio.FMAX, center=False,
        ),
        ref=1.0, amin=audio.LOG_FLOOR, top_db=None,
    )
    np.testing.assert_allclose(ours, theirs, atol=0.01)


def test_short_clip_is_repeated_to_fill_the_section():
    clip = synthetic_song(12.0, SAMPLE_RATE)
    section = select_section(clip)
    assert section.size == SECTION_SAMPLES
    assert np.array_equal(section[: clip.size], clip)
    assert np.array_equal(section[clip.size : 2 * clip.size], clip[: SECTION_SAMPLES - clip.size])


def test_long_song_picks_the_loudest_window_near_the_middle():
    quiet = synthetic_song(180.0, SAMPLE_RATE) * 0.05
    loud_start = 100 * SAMPLE_RATE
    quiet[loud_start : loud_start + SECTION_SAMPLES] *= 20
    section = select_section(quiet)
    assert section.size == SECTION_SAMPLES
    assert audio.rms_db(section) > audio.rms_db(quiet[: SECTION_SAMPLES]) + 20


def test_five_second_clip_is_too_short(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, synthetic_song(5.0, 22050), 22050)
    with pytest.raises(TooShortAudioError) as error:
        main_model_input(path)
    assert "10 s" in str(error.value)


def test_silence_is_refused(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(20 * 22050, dtype=np.float32), 22050)
    with pytest.raises(SilentAudioError):
        main_model_input(path)
    with pytest.raises(SilentAudioError):  # near silence: dither far below any music
        select_section(np.random.default_rng(0).normal(0, 1e-4, 20 * SAMPLE_RATE).astype(np.float32))


def test_empty_file_is_unreadable(tmp_path):
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(UnreadableAudioError):
        load_audio(path)


def test_png_renamed_mp3_is_unreadable(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png = tmp_path / "picture.png"
    plt.figure().savefig(png)
    plt.close("all")
    path = tmp_path / "picture.mp3"
    path.write_bytes(png.read_bytes())
    with pytest.raises(UnreadableAudioError) as error:
        main_model_input(path)
    assert "picture.mp3" in str(error.value)


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(UnreadableAudioError):
        load_audio(tmp_path / "nowhere.ogg")


def test_truncated_files_raise_typed_errors(song_files, tmp_path):
    data = song_files["m4a"].read_bytes()
    header_only = tmp_path / "header.m4a"
    header_only.write_bytes(data[:200])
    with pytest.raises(UnreadableAudioError):
        main_model_input(header_only)
    # Cut mid-stream, the part that is there decodes, and it is too short to judge.
    wav = song_files["wav"].read_bytes()
    half = tmp_path / "half.wav"
    half.write_bytes(wav[: len(wav) // 3])
    with pytest.raises(AudioError):
        main_model_input(half)
