"""Hand-crafted features: a fixed, named, finite vector, fast enough to compute per request."""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from inference.audio import N_FFT, SAMPLE_RATE, select_section
from inference.features import (
    FEATURE_HOP, FEATURE_NAMES, N_FEATURES, chroma_in_key, handcrafted_features, key_clarity_and_mode,
    spectral_shape, stft_magnitude,
)
from tests.inference.conftest import synthetic_song


def _section(seed: int = 0) -> np.ndarray:
    return select_section(synthetic_song(30.0, SAMPLE_RATE, seed=seed))


def test_vector_is_named_finite_and_deterministic():
    section = _section()
    first, second = handcrafted_features(section), handcrafted_features(section)
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == N_FEATURES
    assert first.shape == (N_FEATURES,) and first.dtype == np.float32
    assert np.isfinite(first).all()
    assert np.array_equal(first, second)


def test_features_tell_songs_apart():
    quiet_dark = _section(1) * 0.1
    named = dict(zip(FEATURE_NAMES, handcrafted_features(_section(1))))
    named_quiet = dict(zip(FEATURE_NAMES, handcrafted_features(quiet_dark)))
    assert named["rms_mean"] > 5 * named_quiet["rms_mean"]
    assert 30 <= named["tempo_bpm"] <= 300


def test_key_profile_recognises_a_major_and_a_minor_triad():
    c_major = np.zeros(12)
    c_major[[0, 4, 7]] = 1.0
    a_minor = np.zeros(12)
    a_minor[[9, 0, 4]] = 1.0
    a_minor[9] = 1.5  # the tonic weighs most
    clarity, mode = key_clarity_and_mode(c_major)
    assert clarity > 0.5 and mode > 0
    assert key_clarity_and_mode(a_minor)[1] < 0
    assert key_clarity_and_mode(np.ones(12)) == (0.0, 0.0)


def _click_track(bpm: float, seconds: float = 30.0) -> np.ndarray:
    """Short noise bursts every beat: a beat as plain as it gets."""
    rng = np.random.default_rng(3)
    y = 0.001 * rng.normal(size=int(seconds * SAMPLE_RATE)).astype(np.float32)
    burst = int(0.02 * SAMPLE_RATE)
    for start in np.arange(0, y.size - burst, 60.0 / bpm * SAMPLE_RATE).astype(int):
        y[start : start + burst] += rng.normal(0, 0.5, burst)
    return y


def test_stft_and_spectral_shape_agree_with_librosa():
    section = _section(2)
    magnitude = stft_magnitude(section)
    reference = np.abs(librosa.stft(section, n_fft=N_FFT, hop_length=FEATURE_HOP))
    assert magnitude.shape == reference.shape
    np.testing.assert_allclose(magnitude, reference, atol=1e-3 * reference.max())
    frequencies = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)
    centroid, bandwidth, rolloff = spectral_shape(reference, frequencies)
    np.testing.assert_allclose(centroid, librosa.feature.spectral_centroid(S=reference, sr=SAMPLE_RATE)[0], rtol=1e-4)
    np.testing.assert_allclose(bandwidth, librosa.feature.spectral_bandwidth(S=reference, sr=SAMPLE_RATE)[0], rtol=1e-3)
    np.testing.assert_allclose(rolloff, librosa.feature.spectral_rolloff(S=reference, sr=SAMPLE_RATE)[0])


def test_a_click_track_has_its_tempo_and_a_clear_pulse():
    clicks = dict(zip(FEATURE_NAMES, handcrafted_features(_click_track(100.0))))
    noise = np.random.default_rng(4).normal(0, 0.1, 30 * SAMPLE_RATE).astype(np.float32)
    hiss = dict(zip(FEATURE_NAMES, handcrafted_features(noise)))
    assert abs(clicks["tempo_bpm"] - 100.0) < 3.0
    assert clicks["pulse_clarity"] > 0.5 > hiss["pulse_clarity"]
    assert clicks["onset_cv"] > hiss["onset_cv"]


def test_chroma_in_key_does_not_depend_on_the_key():
    a_minor = np.array([1.0, 0.1, 0.3, 0.2, 0.7, 0.3, 0.1, 0.4, 0.2, 1.5, 0.1, 0.4])
    for semitones in (1, 5, 7):
        np.testing.assert_allclose(chroma_in_key(np.roll(a_minor, semitones)), chroma_in_key(a_minor))
    assert chroma_in_key(a_minor).sum() == pytest.approx(1.0)
    assert chroma_in_key(np.zeros(12)).tolist() == [0.0] * 12


def test_modulation_energy_finds_a_tremolo_rate():
    t = np.arange(30 * SAMPLE_RATE) / SAMPLE_RATE
    tone = np.random.default_rng(5).normal(0, 0.1, t.size)
    named = {}
    for rate in (1.5, 6.0):
        tremolo = (tone * (1.0 + 0.9 * np.sin(2 * np.pi * rate * t))).astype(np.float32)
        named[rate] = dict(zip(FEATURE_NAMES, handcrafted_features(tremolo)))
    # modulation bands: 0 = 0.5-1 Hz, 1 = 1-2 Hz, 2 = 2-4 Hz, 3 = 4-8 Hz, 4 = 8-16 Hz
    for band in range(4):
        assert named[1.5][f"modulation_1_{band}"] > named[6.0][f"modulation_1_{band}"] + 0.5
        assert named[6.0][f"modulation_3_{band}"] > named[1.5][f"modulation_3_{band}"] + 0.5
