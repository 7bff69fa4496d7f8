"""Hand-crafted features: a fixed, named, finite vector, fast enough to compute per request."""
from __future__ import annotations

import numpy as np

from inference.audio import SAMPLE_RATE, select_section
from inference.features import FEATURE_NAMES, N_FEATURES, handcrafted_features, key_clarity_and_mode
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
