"""Hand-crafted features of a 30 s section, the input of the fallback ANN.

One STFT feeds everything (timbre, spectral shape, chroma, onsets), so the whole vector costs a few
tens of milliseconds per section on one core. Chroma comes from the STFT, not the CQT: the CQT is
several times slower and the ANN only needs the rough pitch-class profile.

The vector, in FEATURE_NAMES order:
- mfcc_mean_i, mfcc_std_i, dmfcc_std_i (i < N_MFCC): timbre and how fast it changes.
- centroid/bandwidth/rolloff/flatness mean and std: brightness, spread, noisiness.
- contrast_mean_i, contrast_std_i (7 bands): peak-to-valley, i.e. tonal vs noisy per band.
- chroma_mean_i (12): pitch-class profile.
- rms_mean, rms_std, rms_range_db: loudness, its variation and the 5-95 % dynamic range.
- zcr_mean, zcr_std: percussiveness and noisiness.
- tempo_bpm, onset_rate, onset_strength_mean: from one onset-strength envelope.
- key_clarity, mode_major: best Krumhansl key-profile correlation of the mean chroma, and
  (best major - best minor) correlation, > 0 when the section sounds major.
"""
from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np

from inference.audio import N_FFT, SAMPLE_RATE, mel_filters

FEATURE_HOP = 512  # finer than the model's hop: onsets and tempo need ~23 ms resolution
N_MFCC = 20
N_CONTRAST_BANDS = 7  # librosa's default 6 sub-bands + the residual
ROLLOFF_PERCENT = 0.85
RANGE_PERCENTILES = (5, 95)
ONSET_DELTA = 0.2  # peak-picking threshold of librosa.onset.onset_detect, in envelope units

# Krumhansl-Kessler key profiles, starting on the tonic.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _names() -> tuple[str, ...]:
    names = [f"mfcc_mean_{i}" for i in range(N_MFCC)]
    names += [f"mfcc_std_{i}" for i in range(N_MFCC)]
    names += [f"dmfcc_std_{i}" for i in range(N_MFCC)]
    for spectral in ("centroid", "bandwidth", "rolloff", "flatness"):
        names += [f"{spectral}_mean", f"{spectral}_std"]
    names += [f"contrast_mean_{i}" for i in range(N_CONTRAST_BANDS)]
    names += [f"contrast_std_{i}" for i in range(N_CONTRAST_BANDS)]
    names += [f"chroma_mean_{i}" for i in range(12)]
    names += ["rms_mean", "rms_std", "rms_range_db", "zcr_mean", "zcr_std"]
    names += ["tempo_bpm", "onset_rate", "onset_strength_mean", "key_clarity", "mode_major"]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _names()
N_FEATURES = len(FEATURE_NAMES)


@lru_cache(maxsize=None)
def _key_profiles() -> np.ndarray:
    """(24, 12): the 12 rotations of the major profile, then of the minor, z-scored."""
    rotations = [np.roll(MAJOR_PROFILE, k) for k in range(12)]
    rotations += [np.roll(MINOR_PROFILE, k) for k in range(12)]
    profiles = np.array(rotations)
    return (profiles - profiles.mean(axis=1, keepdims=True)) / profiles.std(axis=1, keepdims=True)


def key_clarity_and_mode(chroma_mean: np.ndarray) -> tuple[float, float]:
    """Best key-profile correlation, and best major minus best minor correlation."""
    spread = chroma_mean.std()
    if spread == 0:
        return 0.0, 0.0
    z = (chroma_mean - chroma_mean.mean()) / spread
    correlations = _key_profiles() @ z / 12.0
    return float(correlations.max()), float(correlations[:12].max() - correlations[12:].max())


def _mean_std(values: np.ndarray) -> list[np.ndarray]:
    return [values.mean(axis=-1), values.std(axis=-1)]


def spectral_shape(
    magnitude: np.ndarray, frequencies: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame spectral centroid, bandwidth and roll-off in Hz, as librosa defines them.

    Written out in numpy because librosa's versions re-validate and re-broadcast their inputs and
    cost ~3x more, which alone would use up half the time budget of the whole vector.
    """
    total = np.maximum(magnitude.sum(axis=0), 1e-12)
    weights = magnitude / total
    centroid = frequencies @ weights
    bandwidth = np.sqrt(np.einsum("ft,ft->t", weights, (frequencies[:, None] - centroid) ** 2))
    cumulative = np.cumsum(magnitude, axis=0)
    rolloff_bin = np.argmax(cumulative >= ROLLOFF_PERCENT * cumulative[-1], axis=0)
    return centroid, bandwidth, frequencies[rolloff_bin]


def zero_crossing_rate(y: np.ndarray) -> np.ndarray:
    """Fraction of zero crossings per N_FFT frame, every FEATURE_HOP samples (librosa's frames)."""
    crossings = np.concatenate([[0], np.cumsum(np.signbit(y[1:]) != np.signbit(y[:-1]))])
    starts = np.arange(0, max(y.size - N_FFT, 0) + 1, FEATURE_HOP)
    return (crossings[starts + N_FFT - 1] - crossings[starts]) / N_FFT


def handcrafted_features(section: np.ndarray) -> np.ndarray:
    """(N_FEATURES,) float32 description of one section (mono, SAMPLE_RATE)."""
    y = np.asarray(section, dtype=np.float32)
    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=FEATURE_HOP))
    power = magnitude**2
    mel_db = librosa.power_to_db(mel_filters() @ power)
    frequencies = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)

    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    delta = librosa.feature.delta(mfcc)
    centroid, bandwidth, rolloff = spectral_shape(magnitude, frequencies)
    flatness = librosa.feature.spectral_flatness(S=magnitude)[0]
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=SAMPLE_RATE, freq=frequencies)
    chroma = librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, tuning=0.0)
    rms = librosa.feature.rms(S=magnitude, frame_length=N_FFT)[0]
    zcr = zero_crossing_rate(y)

    onset_env = librosa.onset.onset_strength(S=mel_db, sr=SAMPLE_RATE, hop_length=FEATURE_HOP)
    tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=SAMPLE_RATE, hop_length=FEATURE_HOP)
    onsets = librosa.onset.onset_detect(
        onset_envelope=onset_env, sr=SAMPLE_RATE, hop_length=FEATURE_HOP, delta=ONSET_DELTA
    )
    chroma_mean = chroma.mean(axis=1)
    clarity, mode = key_clarity_and_mode(chroma_mean)
    rms_db = librosa.amplitude_to_db(rms, ref=1.0)
    low, high = np.percentile(rms_db, RANGE_PERCENTILES)

    parts = [
        mfcc.mean(axis=1), mfcc.std(axis=1), delta.std(axis=1),
        *_mean_std(centroid), *_mean_std(bandwidth), *_mean_std(rolloff), *_mean_std(flatness),
        *_mean_std(contrast),
        chroma_mean,
        rms.mean(), rms.std(), high - low,
        *_mean_std(zcr),
        tempo[0], len(onsets) / (y.size / SAMPLE_RATE), onset_env.mean(),
        clarity, mode,
    ]
    vector = np.concatenate([np.atleast_1d(np.asarray(p, dtype=np.float64)).ravel() for p in parts])
    assert vector.size == N_FEATURES, (vector.size, N_FEATURES)
    return np.nan_to_num(vector).astype(np.float32)
