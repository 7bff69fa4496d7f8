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
- skewness, log_kurtosis, entropy mean and std: the spectrum's third and fourth standardised
  moments (is the energy piled low with a tail up high, how peaked is it) and its Shannon entropy
  (spread over all bins, i.e. noise, against a few partials), per frame with sound in it.
- band_flatness_mean_b, band_flatness_std_b (FLATNESS_BANDS_HZ): log spectral flatness within
  each band: a distorted guitar or a cymbal is noise-like up high, a sung melody is not.
- irregularity_mean/std: Jensen's spectral irregularity (squared bin-to-bin jumps over the energy);
  peak_share_mean/std: share of each frame's energy in sharp peaks (tonal partials). These four
  groups read every DESCRIPTOR_STRIDE-th frame.

The librosa functions the vector was first defined with (mfcc, delta, spectral flatness and
contrast, chroma_stft, tonnetz, rms, onset strength and detection, autocorrelate, power_to_db) are
written out below in numpy, with librosa's arguments and dtypes, and tested against librosa: the
shipped ANN and the fusion were trained on these numbers. Serving never imports librosa, whose
submodules and numba cost ~1.5 s of imports in every fresh process.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from inference.audio import N_FFT, SAMPLE_RATE, fft_frequencies, mel_filters

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
FLATNESS_BANDS_HZ = (0.0, 500.0, 2000.0, 6000.0, SAMPLE_RATE / 2)  # the last edge is Nyquist, included
# The spectral moments, band flatness, irregularity and peak share are means and spreads over the
# frames: every other frame (46 ms apart, still overlapping by half) gives the same statistics for a
# third of the time (measured: 9 ms against 29 ms per section, one thread).
DESCRIPTOR_STRIDE = 2
PEAK_DISTANCE = 3  # bins: just outside a Hann window's main lobe
PEAK_OVER_NEIGHBOURS = 4.0  # a sharp peak stands this many times above the bins PEAK_DISTANCE away
EPSILON = 1e-10
# librosa's defaults for the functions reimplemented below, as the vector was defined with them.
POWER_FLOOR = 1e-10  # power_to_db's amin (amplitude_to_db's 1e-5, squared)
TOP_DB = 80.0  # power_to_db: nothing lower than the loudest value minus this
DELTA_WIDTH = 9  # frames of the Savitzky-Golay fit behind the MFCC deltas
CONTRAST_FMIN = 200.0  # lower edge of the first contrast octave, Hz
CONTRAST_QUANTILE = 0.02  # share of each band taken as its peak and its valley
CHROMA_REFERENCE_HZ = 440.0 / 16  # A0: the chroma filterbank counts octaves and semitones from here
CHROMA_CENTRE_OCTAVE = 5.0  # its Gaussian weighting over octaves: centre (A5, 880 Hz)...
CHROMA_OCTAVE_WIDTH = 2.0  # ...and width, in octaves
# Tonnetz (Harte et al.): pitch classes as points on the circles of fifths, minor and major thirds.
TONNETZ_SCALE = np.array([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
TONNETZ_RADIUS = np.array([1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
# onset_detect's peak picking (librosa's defaults at FEATURE_HOP), in frames: an onset is a frame at
# least as high as those up to 30 ms before it, ONSET_DELTA above the mean from 100 ms before to
# 100 ms after it, and at least 30 ms after the previous onset.
ONSET_PRE_MAX = int(0.03 * SAMPLE_RATE // FEATURE_HOP)
ONSET_POST_MAX = 1  # the frame itself
ONSET_PRE_AVG = int(0.10 * SAMPLE_RATE // FEATURE_HOP)
ONSET_POST_AVG = int(0.10 * SAMPLE_RATE // FEATURE_HOP) + 1  # the frame itself, then 100 ms
ONSET_WAIT = int(0.03 * SAMPLE_RATE // FEATURE_HOP)
# onset_strength(center=True) delays the envelope by the lag plus half a frame, in hops.
ONSET_LAG = 1
ONSET_DELAY = ONSET_LAG + N_FFT // (2 * FEATURE_HOP)

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
    moments = ("skewness", "log_kurtosis", "entropy")
    names += [f"{moment}_mean" for moment in moments] + [f"{moment}_std" for moment in moments]
    n_flatness_bands = len(FLATNESS_BANDS_HZ) - 1
    names += [f"band_flatness_mean_{b}" for b in range(n_flatness_bands)]
    names += [f"band_flatness_std_{b}" for b in range(n_flatness_bands)]
    names += ["irregularity_mean", "irregularity_std", "peak_share_mean", "peak_share_std"]
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
    import scipy.fft  # in the functions: the bot's process loads the ANN and its feature names only

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


# --- librosa's functions, as the vector uses them ---------------------------------------------

def power_to_db(power: np.ndarray) -> np.ndarray:
    """librosa.power_to_db(power) (ref 1, amin POWER_FLOOR, top_db TOP_DB), same dtype."""
    db = 10.0 * np.log10(np.maximum(POWER_FLOOR, power))
    return np.maximum(db, db.max() - TOP_DB)


def amplitude_to_db(amplitude: np.ndarray) -> np.ndarray:
    """librosa.amplitude_to_db(amplitude, ref=1.0): the dB of the squared amplitude."""
    return power_to_db(np.square(amplitude))


def mfcc(mel_db: np.ndarray) -> np.ndarray:
    """(N_MFCC, frames) librosa.feature.mfcc(S=mel_db): the orthonormal DCT-II over mel bands."""
    import scipy.fft

    return scipy.fft.dct(mel_db, axis=0, type=2, norm="ortho")[:N_MFCC]


def delta(data: np.ndarray) -> np.ndarray:
    """librosa.feature.delta(data): the slope of a least-squares line over DELTA_WIDTH frames.

    That is a Savitzky-Golay first derivative of order 1 (the same numbers as scipy's
    savgol_filter(data, 9, 1, deriv=1, mode="interp")): a fixed filter inside, and at each edge
    the slope of the line through the first (last) DELTA_WIDTH frames, which is the filter's value
    at the frame DELTA_WIDTH // 2 from the edge.
    """
    half = DELTA_WIDTH // 2
    if data.shape[-1] < DELTA_WIDTH:
        raise ValueError(f"delta needs at least {DELTA_WIDTH} frames, got {data.shape[-1]}")
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    weights = offsets / np.sum(offsets**2)
    windows = np.lib.stride_tricks.sliding_window_view(data, DELTA_WIDTH, axis=-1)
    inner = (windows @ weights).astype(data.dtype)
    left = np.repeat(inner[..., :1], half, axis=-1)
    right = np.repeat(inner[..., -1:], half, axis=-1)
    return np.concatenate([left, inner, right], axis=-1)


def spectral_flatness(magnitude: np.ndarray) -> np.ndarray:
    """(frames,) librosa.feature.spectral_flatness(S=magnitude): geometric over arithmetic mean
    of the power."""
    power = np.maximum(POWER_FLOOR, magnitude**2)
    return np.exp(np.mean(np.log(power), axis=0)) / np.mean(power, axis=0)


@lru_cache(maxsize=None)
def _contrast_bands() -> tuple[tuple[np.ndarray, int], ...]:
    """For each contrast band: the STFT bins it sorts, and how many of them make its peak and valley
    (librosa's octave bands from CONTRAST_FMIN, each reaching one bin below its lower edge, the
    last one up to Nyquist)."""
    frequencies = fft_frequencies()
    n_bands = N_CONTRAST_BANDS - 1
    octaves = np.zeros(n_bands + 2)
    octaves[1:] = CONTRAST_FMIN * 2.0 ** np.arange(0, n_bands + 1)
    bands = []
    for k, (low, high) in enumerate(zip(octaves[:-1], octaves[1:])):
        in_band = (frequencies >= low) & (frequencies <= high)
        inside = np.flatnonzero(in_band)
        if k > 0:
            in_band[inside[0] - 1] = True
        if k == n_bands:
            in_band[inside[-1] + 1 :] = True
        count = max(int(np.rint(CONTRAST_QUANTILE * np.sum(in_band))), 1)
        rows = np.flatnonzero(in_band)
        if k < n_bands:
            rows = rows[:-1]  # librosa drops each band's top bin but the last band's
        bands.append((rows, count))
    return tuple(bands)


def spectral_contrast(magnitude: np.ndarray) -> np.ndarray:
    """(N_CONTRAST_BANDS, frames) librosa.feature.spectral_contrast(S=magnitude): dB of the mean of
    each band's loudest CONTRAST_QUANTILE over the mean of its quietest."""
    peak = np.zeros((N_CONTRAST_BANDS, magnitude.shape[1]))
    valley = np.zeros_like(peak)
    for k, (rows, count) in enumerate(_contrast_bands()):
        ordered = np.sort(magnitude[rows], axis=0)
        valley[k] = np.mean(ordered[:count], axis=0)
        peak[k] = np.mean(ordered[-count:], axis=0)
    return power_to_db(peak) - power_to_db(valley)


def _normalize(values: np.ndarray, order: float) -> np.ndarray:
    """librosa.util.normalize along axis 0 with the given norm; columns whose norm is below the
    dtype's smallest normal number are left as they are."""
    magnitude = np.abs(values).astype(np.float64)
    if order == np.inf:
        length = np.max(magnitude, axis=0, keepdims=True)
    else:
        length = np.sum(magnitude**order, axis=0, keepdims=True) ** (1.0 / order)
    length[length < np.finfo(values.dtype).tiny] = 1.0
    return (values / length).astype(values.dtype)


@lru_cache(maxsize=None)
def chroma_filters() -> np.ndarray:
    """(12, 1 + N_FFT // 2) librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT, tuning=0), float32:
    each bin's energy spread over the pitch classes near it (a Gaussian one semitone wide), weighted
    by a Gaussian over octaves, C first."""
    n_chroma = 12
    frequencies = np.linspace(0, SAMPLE_RATE, N_FFT, endpoint=False)[1:]
    bins = n_chroma * np.log2(frequencies / CHROMA_REFERENCE_HZ)  # semitones above A0
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1]))
    distance = np.subtract.outer(bins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    distance = np.remainder(distance + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * distance / np.tile(widths, (n_chroma, 1))) ** 2)
    weights = _normalize(weights, 2.0)
    octave_weights = np.exp(-0.5 * ((bins / n_chroma - CHROMA_CENTRE_OCTAVE) / CHROMA_OCTAVE_WIDTH) ** 2)
    weights *= np.tile(octave_weights, (n_chroma, 1))
    weights = np.roll(weights, -3, axis=0)  # A first -> C first (librosa's base_c)
    return np.ascontiguousarray(weights[:, : 1 + N_FFT // 2], dtype=np.float32)


def chroma_stft(power: np.ndarray) -> np.ndarray:
    """(12, frames) librosa.feature.chroma_stft(S=power, tuning=0): each frame's pitch-class energy,
    its loudest class scaled to 1."""
    # Frames-major, as librosa's einsum leaves it: the later means over frames then add in the same
    # order, and give the same float32 numbers.
    return _normalize((power.T @ chroma_filters().T).T, np.inf)


@lru_cache(maxsize=None)
def _tonnetz_basis() -> np.ndarray:
    """(6, 12) projection of the pitch classes onto the three circles."""
    angles = np.multiply.outer(TONNETZ_SCALE, np.linspace(0, 12, num=12, endpoint=False))
    angles[::2] -= 0.5
    return TONNETZ_RADIUS[:, np.newaxis] * np.cos(np.pi * angles)


def tonnetz(chroma: np.ndarray) -> np.ndarray:
    """(6, frames) librosa.feature.tonnetz(chroma=chroma): the tonal centroid of each frame."""
    return (_normalize(chroma, 1.0).T @ _tonnetz_basis().T).T  # frames-major, as librosa's


def rms(magnitude: np.ndarray) -> np.ndarray:
    """(frames,) librosa.feature.rms(S=magnitude, frame_length=N_FFT): by Parseval, from the
    one-sided spectrum (DC and Nyquist counted once)."""
    power = np.square(magnitude)
    power[0] *= 0.5
    power[-1] *= 0.5
    return np.sqrt(2 * np.sum(power, axis=0) / N_FFT**2)


def onset_strength(mel_db: np.ndarray) -> np.ndarray:
    """(frames,) librosa.onset.onset_strength(S=mel_db, hop_length=FEATURE_HOP): the mean rise of
    the dB mel bands from one frame to the next, delayed ONSET_DELAY frames so that it lines up
    with the centred frames."""
    rise = np.maximum(0.0, mel_db[:, ONSET_LAG:] - mel_db[:, :-ONSET_LAG])
    envelope = np.pad(np.mean(rise, axis=0), (ONSET_DELAY, 0))
    return envelope[: mel_db.shape[1]]


def onset_detect(onset_env: np.ndarray) -> np.ndarray:
    """Frames of the onsets, librosa.onset.onset_detect(onset_envelope=onset_env, delta=ONSET_DELTA)
    at FEATURE_HOP: peaks of the envelope scaled to [0, 1] (see ONSET_PRE_MAX and the rest).

    librosa walks the frames one by one in numba; here every frame's test is vectorised and only
    the ONSET_WAIT rule walks the few candidates left.
    """
    x = onset_env - onset_env.min()
    x /= x.max() + np.finfo(x.dtype).tiny
    if not x.any() or not np.all(np.isfinite(x)):
        return np.zeros(0, dtype=int)
    n = x.size
    frames = np.arange(n)
    padded = np.concatenate([np.full(ONSET_PRE_MAX, -np.inf, dtype=x.dtype), x,
                             np.full(ONSET_POST_MAX - 1, -np.inf, dtype=x.dtype)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, ONSET_PRE_MAX + ONSET_POST_MAX)
    local_max = windows.max(axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    low = np.maximum(frames - ONSET_PRE_AVG, 0)
    high = np.minimum(frames + ONSET_POST_AVG, n)
    local_mean = (cumulative[high] - cumulative[low]) / (high - low)
    # librosa passes delta to numba as float32: the same threshold, to the last bit.
    candidates = np.flatnonzero((x == local_max) & (x >= local_mean + np.float32(ONSET_DELTA)))
    onsets = []
    next_allowed = 0
    for frame in candidates:
        if frame >= next_allowed:
            onsets.append(frame)
            next_allowed = frame + ONSET_WAIT + 1
    return np.array(onsets, dtype=int)


def autocorrelate(y: np.ndarray, max_size: int) -> np.ndarray:
    """librosa.autocorrelate(y, max_size=max_size): the first lags, through one real FFT."""
    import scipy.fft

    size = scipy.fft.next_fast_len(2 * y.size - 1, real=True)
    spectrum = scipy.fft.rfft(y, n=size)
    power = spectrum.real**2 + spectrum.imag**2
    return scipy.fft.irfft(power, n=size)[: min(max_size, y.size)]


def beat_autocorrelation(onset_env: np.ndarray) -> np.ndarray:
    """Autocorrelation of the onset envelope, 1 at lag 0, up to the slowest beat searched."""
    max_lag = int(np.ceil(FRAME_RATE * 60.0 / TEMPO_RANGE_BPM[0])) + 1
    centred = onset_env - onset_env.mean()
    autocorrelation = autocorrelate(centred, max_size=max_lag)
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


def spectral_moments(
    magnitude: np.ndarray, frequencies: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skewness, log kurtosis and normalised entropy of each frame's magnitude spectrum.

    The spectrum, divided by its sum T, is a distribution over frequency. The central moments come
    from the four raw ones, one (4, bins) @ (bins, frames) product in float64 and kHz, instead of
    four passes over (bins, frames) deviations (~100 ms); the entropy, -sum (m/T) log(m/T), is
    log T - sum(m log m) / T, one log pass. Frames without sound have no shape: they are left out
    (all of them silent: zeros).
    """
    total = magnitude.sum(axis=0, dtype=np.float64)
    sounding = total > EPSILON * magnitude.shape[0]
    if not sounding.any():
        return np.zeros(1), np.zeros(1), np.zeros(1)
    if not sounding.all():
        magnitude, total = magnitude[:, sounding], total[sounding]
    khz = frequencies / 1000.0
    mean, m2, m3, m4 = (np.stack([khz, khz**2, khz**3, khz**4]) @ magnitude) / total
    variance = np.maximum(m2 - mean**2, 1e-12)
    third = m3 - 3 * mean * m2 + 2 * mean**3
    fourth = m4 - 4 * mean * m3 + 6 * mean**2 * m2 - 3 * mean**4
    skewness = third / variance**1.5
    log_kurtosis = np.log(np.maximum(fourth / variance**2, 1e-6))
    m_log_m = np.einsum("ft,ft->t", magnitude, np.log(np.maximum(magnitude, 1e-30)), dtype=np.float64)
    entropy = (np.log(total) - m_log_m / total) / np.log(magnitude.shape[0])
    return skewness, log_kurtosis, entropy


@lru_cache(maxsize=None)
def _flatness_bands() -> tuple[np.ndarray, ...]:
    frequencies = fft_frequencies()
    edges = FLATNESS_BANDS_HZ
    return tuple(
        np.flatnonzero((frequencies >= low) & ((frequencies < high) | (high == edges[-1])))
        for low, high in zip(edges[:-1], edges[1:])
    )


def band_flatness(magnitude: np.ndarray) -> np.ndarray:
    """(len(FLATNESS_BANDS_HZ) - 1, frames) log spectral flatness within each band."""
    return np.log(np.stack([spectral_flatness(magnitude[rows]) for rows in _flatness_bands()]))


def spectral_irregularity(magnitude: np.ndarray) -> np.ndarray:
    """(frames,) Jensen's irregularity: sum of squared jumps between adjacent bins over the energy."""
    energy = np.einsum("ft,ft->t", magnitude, magnitude, dtype=np.float64)
    jumps = np.diff(magnitude, axis=0)
    return np.einsum("ft,ft->t", jumps, jumps, dtype=np.float64) / np.maximum(energy, EPSILON)


def peak_share(magnitude: np.ndarray) -> np.ndarray:
    """(frames,) share of each frame's energy in sharp peaks: how much of the sound is steady partials.

    A Hann window spreads a steady sinusoid over its main lobe, the peak bin and one on either
    side (two, off-centre), and leaves the bins PEAK_DISTANCE away some 30 dB lower. A bin is
    a peak when it is a local maximum PEAK_OVER_NEIGHBOURS times above the mean of those two bins;
    its lobe's three bins count as tonal energy. Noise rarely has such a peak.
    """
    d = PEAK_DISTANCE
    n_bins = magnitude.shape[0]
    centre = magnitude[d : n_bins - d]
    below, above = magnitude[d - 1 : n_bins - d - 1], magnitude[d + 1 : n_bins - d + 1]
    far = 0.5 * (magnitude[: -2 * d] + magnitude[2 * d :])
    sharp = (centre > below) & (centre >= above) & (centre > PEAK_OVER_NEIGHBOURS * far)
    lobe = centre * centre + below * below + above * above
    energy = np.einsum("ft,ft->t", magnitude, magnitude, dtype=np.float64)
    return np.einsum("ft,ft->t", lobe, sharp, dtype=np.float64) / np.maximum(energy, EPSILON)


def handcrafted_features(section: np.ndarray) -> np.ndarray:
    """(N_FEATURES,) float32 description of one section (mono, SAMPLE_RATE)."""
    y = np.asarray(section, dtype=np.float32)
    magnitude = stft_magnitude(y)
    power = magnitude**2
    mel_db = power_to_db(mel_filters() @ power)
    frequencies = fft_frequencies()

    mfccs = mfcc(mel_db)
    deltas = delta(mfccs)
    centroid, bandwidth, rolloff = spectral_shape(magnitude, frequencies)
    flatness = spectral_flatness(magnitude)
    contrast = spectral_contrast(magnitude)
    chroma = chroma_stft(power)
    tonal = tonnetz(chroma)
    loudness = rms(magnitude)
    zcr = zero_crossing_rate(y)
    flux = spectral_flux(magnitude)

    onset_env = onset_strength(mel_db)
    tempo, pulse_clarity, pulse_mean = tempo_and_pulse(beat_autocorrelation(onset_env))
    onsets = onset_detect(onset_env)
    chroma_mean = chroma.mean(axis=1)
    clarity, mode = key_clarity_and_mode(chroma_mean)
    rms_db = amplitude_to_db(loudness)
    low, high = np.percentile(rms_db, RANGE_PERCENTILES)
    onset_mean = onset_env.mean()
    attacks = band_onsets(mel_db)
    sparse = np.ascontiguousarray(magnitude[:, ::DESCRIPTOR_STRIDE])

    parts = [
        mfccs.mean(axis=1), mfccs.std(axis=1), deltas.std(axis=1), np.abs(deltas).mean(axis=1),
        *_mean_std(centroid), *_mean_std(bandwidth), *_mean_std(rolloff), *_mean_std(flatness),
        *_mean_std(contrast),
        chroma_mean, chroma.std(axis=1), chroma_in_key(chroma_mean),
        *_mean_std(tonal),
        loudness.mean(), loudness.std(), high - low,
        np.percentile(rms_db, SPREAD_PERCENTILES), rms_db.std(), np.mean(loudness < loudness.mean()),
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
        *_mean_std(np.stack(spectral_moments(sparse, frequencies))),
        *_mean_std(band_flatness(sparse)),
        *_mean_std(spectral_irregularity(sparse)), *_mean_std(peak_share(sparse)),
    ]
    vector = np.concatenate([np.atleast_1d(np.asarray(p, dtype=np.float64)).ravel() for p in parts])
    assert vector.size == N_FEATURES, (vector.size, N_FEATURES)
    return np.nan_to_num(vector).astype(np.float32)
