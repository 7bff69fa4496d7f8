"""Hand-crafted features of a 30 s section, the input of the fallback ANN.

One STFT feeds everything (timbre, spectral shape, chroma, onsets, rhythm), so the whole vector
costs a few tens of milliseconds per section on one core. Chroma comes from the STFT, not the CQT:
the CQT is several times slower and the ANN only needs the rough pitch-class profile. Median-filter
HPSS and librosa's tempogram were measured too slow for the budget (~40-130 ms and ~15 ms); the
rhythm block below reads the same information off one autocorrelation of the onset envelope.

The vector, in FEATURE_NAMES order:
- mfcc_mean_i, mfcc_std_i, dmfcc_std_i, dmfcc_absmean_i (i < N_MFCC): timbre and how fast it
  changes.
- centroid/bandwidth/rolloff/flatness mean and std: brightness, spread, noisiness.
- contrast_mean_i, contrast_std_i (7 bands): peak-to-valley, i.e. tonal vs noisy per band.
- chroma_mean_i (12): pitch-class profile; chroma_std_i (12): how much each pitch class comes and
  goes; chroma_key_i (12): the mean profile rotated so that the best-fitting key's tonic is first,
  as shares of its sum (which scale degrees the music dwells on, whatever the key).
- tonnetz_mean_i, tonnetz_std_i (6): fifths, minor and major thirds (Harte's tonal centroid).
- rms_mean, rms_std, rms_range_db: loudness, its variation and the 5-95 % dynamic range.
- rms_db_p10/p50/p90, rms_db_std, low_energy_rate (frames below the mean RMS), peak_over_median_db.
- zcr_mean, zcr_std: percussiveness and noisiness.
- tempo_bpm, onset_rate, onset_strength_mean: from one onset-strength envelope.
- key_clarity, mode_major: best Krumhansl key-profile correlation of the mean chroma, and
  (best major - best minor) correlation, > 0 when the section sounds major.
- flux_mean/std/p10/p50/p90: spectral flux of the log magnitude (how much the sound changes).
- pulse_clarity, pulse_mean (onset autocorrelation at beat lags 40-240 BPM), onset_std,
  onset_p50, onset_p90, onset_cv: how regular and how marked the beat is.
- band_onset_mean_i, band_onset_std_i (4 mel quarters): where in the spectrum the attacks are.
- modulation_m_b: log energy of how the loudness of spectral band b (4 mel quarters) fluctuates
  at modulation rate m (0.5-1, 1-2, 2-4, 4-8, 8-16 Hz), over 3 s windows (fluctuation patterns).
- texture_centroid/rms/flux/flatness: spread of their 1 s averages (change over the section).
"""
from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
import scipy.fft

from inference.audio import N_FFT, SAMPLE_RATE, mel_filters

FEATURE_HOP = 512  # finer than the model's hop: onsets and tempo need ~23 ms resolution
FRAME_RATE = SAMPLE_RATE / FEATURE_HOP  # frames per second
N_MFCC = 20
N_CONTRAST_BANDS = 7  # librosa's default 6 sub-bands + the residual
ROLLOFF_PERCENT = 0.85
RANGE_PERCENTILES = (5, 95)
SPREAD_PERCENTILES = (10, 50, 90)
ONSET_DELTA = 0.2  # peak-picking threshold of librosa.onset.onset_detect, in envelope units
TEMPO_RANGE_BPM = (40.0, 240.0)  # beat lags searched in the onset autocorrelation
TEMPO_PRIOR_BPM = 120.0  # librosa's log-normal tempo prior: centred here, one octave wide
N_BAND_GROUPS = 4  # mel quarters for band-wise onsets and modulation
MODULATION_WINDOW_S = 3.0
MODULATION_EDGES_HZ = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
TEXTURE_WINDOW_S = 1.0
EPSILON = 1e-10

# Krumhansl-Kessler key profiles, starting on the tonic.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _names() -> tuple[str, ...]:
    names = [f"mfcc_mean_{i}" for i in range(N_MFCC)]
    names += [f"mfcc_std_{i}" for i in range(N_MFCC)]
    names += [f"dmfcc_std_{i}" for i in range(N_MFCC)]
    names += [f"dmfcc_absmean_{i}" for i in range(N_MFCC)]
    for spectral in ("centroid", "bandwidth", "rolloff", "flatness"):
        names += [f"{spectral}_mean", f"{spectral}_std"]
    names += [f"contrast_mean_{i}" for i in range(N_CONTRAST_BANDS)]
    names += [f"contrast_std_{i}" for i in range(N_CONTRAST_BANDS)]
    names += [f"chroma_mean_{i}" for i in range(12)]
    names += [f"chroma_std_{i}" for i in range(12)]
    names += [f"chroma_key_{i}" for i in range(12)]
    names += [f"tonnetz_mean_{i}" for i in range(6)] + [f"tonnetz_std_{i}" for i in range(6)]
    names += ["rms_mean", "rms_std", "rms_range_db"]
    names += [f"rms_db_p{p}" for p in SPREAD_PERCENTILES]
    names += ["rms_db_std", "low_energy_rate", "peak_over_median_db"]
    names += ["zcr_mean", "zcr_std"]
    names += ["tempo_bpm", "onset_rate", "onset_strength_mean", "key_clarity", "mode_major"]
    names += ["flux_mean", "flux_std"] + [f"flux_p{p}" for p in SPREAD_PERCENTILES]
    names += ["pulse_clarity", "pulse_mean", "onset_std", "onset_p50", "onset_p90", "onset_cv"]
    names += [f"band_onset_mean_{b}" for b in range(N_BAND_GROUPS)]
    names += [f"band_onset_std_{b}" for b in range(N_BAND_GROUPS)]
    names += [f"modulation_{m}_{b}" for m in range(len(MODULATION_EDGES_HZ) - 1)
              for b in range(N_BAND_GROUPS)]
    names += ["texture_centroid", "texture_rms", "texture_flux", "texture_flatness"]
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


def _key_correlations(chroma_mean: np.ndarray) -> np.ndarray | None:
    """(24,) correlation of the profile with each key (major C..B, then minor), None if flat."""
    spread = chroma_mean.std()
    if spread == 0:
        return None
    z = (chroma_mean - chroma_mean.mean()) / spread
    return _key_profiles() @ z / 12.0


def key_clarity_and_mode(chroma_mean: np.ndarray) -> tuple[float, float]:
    """Best key-profile correlation, and best major minus best minor correlation."""
    correlations = _key_correlations(chroma_mean)
    if correlations is None:
        return 0.0, 0.0
    return float(correlations.max()), float(correlations[:12].max() - correlations[12:].max())


def chroma_in_key(chroma_mean: np.ndarray) -> np.ndarray:
    """(12,) the profile rotated to start on the best key's tonic, as shares of its sum."""
    correlations = _key_correlations(chroma_mean)
    tonic = 0 if correlations is None else int(correlations.argmax()) % 12
    return np.roll(chroma_mean, -tonic) / max(float(chroma_mean.sum()), EPSILON)


def _mean_std(values: np.ndarray) -> list[np.ndarray]:
    return [values.mean(axis=-1), values.std(axis=-1)]


@lru_cache(maxsize=None)
def _window() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa uses


def stft_magnitude(y: np.ndarray) -> np.ndarray:
    """(1 + N_FFT // 2, frames) magnitude, centred frames every FEATURE_HOP, as librosa.stft.

    scipy's float32 FFT on strided frames: ~3x cheaper than librosa.stft, same numbers to float32
    rounding.
    """
    padded = np.pad(np.asarray(y, dtype=np.float32), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::FEATURE_HOP]
    return np.abs(scipy.fft.rfft(frames * _window(), axis=-1)).T


def spectral_shape(
    magnitude: np.ndarray, frequencies: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame spectral centroid, bandwidth and roll-off in Hz, as librosa defines them.

    Written as matrix-vector products because librosa's versions re-validate and re-broadcast
    their inputs and cost several times more, which alone would use up the vector's time budget.
    """
    total = np.maximum(magnitude.sum(axis=0, dtype=np.float64), 1e-12)
    centroid = (frequencies @ magnitude) / total
    # sum_f w (f - c)^2 = sum_f w f^2 - c^2 (the weights sum to one)
    bandwidth = np.sqrt(np.maximum((frequencies**2 @ magnitude) / total - centroid**2, 0.0))
    cumulative = np.cumsum(magnitude, axis=0)
    rolloff_bin = np.argmax(cumulative >= ROLLOFF_PERCENT * cumulative[-1], axis=0)
    return centroid, bandwidth, frequencies[rolloff_bin]


def zero_crossing_rate(y: np.ndarray) -> np.ndarray:
    """Fraction of zero crossings per N_FFT frame, every FEATURE_HOP samples (librosa's frames)."""
    crossings = np.concatenate([[0], np.cumsum(np.signbit(y[1:]) != np.signbit(y[:-1]))])
    starts = np.arange(0, max(y.size - N_FFT, 0) + 1, FEATURE_HOP)
    return (crossings[starts + N_FFT - 1] - crossings[starts]) / N_FFT


def spectral_flux(magnitude: np.ndarray) -> np.ndarray:
    """(frames - 1,) L2 norm of the rise of the log magnitude from one frame to the next."""
    log_magnitude = np.log1p(magnitude)
    rise = np.maximum(np.diff(log_magnitude, axis=1), 0.0)
    return np.sqrt(np.einsum("ft,ft->t", rise, rise))


def beat_autocorrelation(onset_env: np.ndarray) -> np.ndarray:
    """Autocorrelation of the onset envelope, 1 at lag 0, up to the slowest beat searched."""
    max_lag = int(np.ceil(FRAME_RATE * 60.0 / TEMPO_RANGE_BPM[0])) + 1
    centred = onset_env - onset_env.mean()
    autocorrelation = librosa.autocorrelate(centred, max_size=max_lag)
    return autocorrelation / max(float(autocorrelation[0]), EPSILON)


def tempo_and_pulse(autocorrelation: np.ndarray) -> tuple[float, float, float]:
    """Tempo in BPM (autocorrelation peak weighted by a log-normal prior, as librosa's tempo),
    pulse clarity (highest autocorrelation at a beat lag) and the mean autocorrelation there."""
    lags = np.arange(autocorrelation.size)
    slowest = int(np.ceil(FRAME_RATE * 60.0 / TEMPO_RANGE_BPM[0]))
    fastest = int(np.floor(FRAME_RATE * 60.0 / TEMPO_RANGE_BPM[1]))
    beat_lags = lags[fastest : slowest + 1]
    values = autocorrelation[beat_lags]
    bpm = 60.0 * FRAME_RATE / beat_lags
    prior = np.exp(-0.5 * np.log2(bpm / TEMPO_PRIOR_BPM) ** 2)
    tempo = float(bpm[np.argmax(np.maximum(values, 0.0) * prior)])
    return tempo, float(values.max()), float(values.mean())


def band_onsets(mel_db: np.ndarray) -> np.ndarray:
    """(N_BAND_GROUPS, frames - 1) mean positive dB rise per mel quarter."""
    rise = np.maximum(np.diff(mel_db, axis=1), 0.0)
    return rise.reshape(N_BAND_GROUPS, -1, rise.shape[1]).mean(axis=1)


def modulation_energy(mel_db: np.ndarray) -> np.ndarray:
    """(len(MODULATION_EDGES_HZ) - 1, N_BAND_GROUPS) log energy of loudness fluctuations.

    The dB envelope of each mel quarter is cut into MODULATION_WINDOW_S windows; the magnitude
    spectrum of each window, averaged over windows, is summed per modulation band.
    """
    bands = mel_db.reshape(N_BAND_GROUPS, -1, mel_db.shape[1]).mean(axis=1)
    bands = bands - bands.mean(axis=1, keepdims=True)
    width = int(MODULATION_WINDOW_S * FRAME_RATE)
    n_windows = max(bands.shape[1] // width, 1)
    width = min(width, bands.shape[1])
    windows = bands[:, : n_windows * width].reshape(N_BAND_GROUPS, n_windows, width)
    spectrum = np.abs(np.fft.rfft(windows, axis=2)).mean(axis=1)
    rates = np.fft.rfftfreq(width, 1.0 / FRAME_RATE)
    edges = MODULATION_EDGES_HZ
    energy = np.array([
        spectrum[:, (rates >= low) & (rates < high)].mean(axis=1)
        if np.any((rates >= low) & (rates < high)) else np.zeros(N_BAND_GROUPS)
        for low, high in zip(edges[:-1], edges[1:])
    ])
    return np.log(energy + 1e-6)


def texture_spread(values: np.ndarray) -> float:
    """Standard deviation of the TEXTURE_WINDOW_S averages of a per-frame descriptor."""
    width = int(TEXTURE_WINDOW_S * FRAME_RATE)
    n_windows = values.size // width
    if n_windows < 2:
        return 0.0
    return float(values[: n_windows * width].reshape(n_windows, width).mean(axis=1).std())


def handcrafted_features(section: np.ndarray) -> np.ndarray:
    """(N_FEATURES,) float32 description of one section (mono, SAMPLE_RATE)."""
    y = np.asarray(section, dtype=np.float32)
    magnitude = stft_magnitude(y)
    power = magnitude**2
    mel_db = librosa.power_to_db(mel_filters() @ power)
    frequencies = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)

    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    delta = librosa.feature.delta(mfcc)
    centroid, bandwidth, rolloff = spectral_shape(magnitude, frequencies)
    flatness = librosa.feature.spectral_flatness(S=magnitude)[0]
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=SAMPLE_RATE, freq=frequencies)
    chroma = librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, tuning=0.0)
    tonnetz = librosa.feature.tonnetz(chroma=chroma)
    rms = librosa.feature.rms(S=magnitude, frame_length=N_FFT)[0]
    zcr = zero_crossing_rate(y)
    flux = spectral_flux(magnitude)

    onset_env = librosa.onset.onset_strength(S=mel_db, sr=SAMPLE_RATE, hop_length=FEATURE_HOP)
    tempo, pulse_clarity, pulse_mean = tempo_and_pulse(beat_autocorrelation(onset_env))
    onsets = librosa.onset.onset_detect(
        onset_envelope=onset_env, sr=SAMPLE_RATE, hop_length=FEATURE_HOP, delta=ONSET_DELTA
    )
    chroma_mean = chroma.mean(axis=1)
    clarity, mode = key_clarity_and_mode(chroma_mean)
    rms_db = librosa.amplitude_to_db(rms, ref=1.0)
    low, high = np.percentile(rms_db, RANGE_PERCENTILES)
    onset_mean = onset_env.mean()
    attacks = band_onsets(mel_db)

    parts = [
        mfcc.mean(axis=1), mfcc.std(axis=1), delta.std(axis=1), np.abs(delta).mean(axis=1),
        *_mean_std(centroid), *_mean_std(bandwidth), *_mean_std(rolloff), *_mean_std(flatness),
        *_mean_std(contrast),
        chroma_mean, chroma.std(axis=1), chroma_in_key(chroma_mean),
        *_mean_std(tonnetz),
        rms.mean(), rms.std(), high - low,
        np.percentile(rms_db, SPREAD_PERCENTILES), rms_db.std(), np.mean(rms < rms.mean()),
        rms_db.max() - np.median(rms_db),
        *_mean_std(zcr),
        tempo, len(onsets) / (y.size / SAMPLE_RATE), onset_mean,
        clarity, mode,
        *_mean_std(flux), np.percentile(flux, SPREAD_PERCENTILES),
        pulse_clarity, pulse_mean, onset_env.std(), np.percentile(onset_env, (50, 90)),
        onset_env.std() / max(float(onset_mean), EPSILON),
        *_mean_std(attacks),
        modulation_energy(mel_db).ravel(),
        texture_spread(np.log1p(centroid)), texture_spread(rms_db[: flux.size]),
        texture_spread(flux), texture_spread(flatness),
    ]
    vector = np.concatenate([np.atleast_1d(np.asarray(p, dtype=np.float64)).ravel() for p in parts])
    assert vector.size == N_FEATURES, (vector.size, N_FEATURES)
    return np.nan_to_num(vector).astype(np.float32)
