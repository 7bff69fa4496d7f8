"""From an audio file to the main model's input: one obvious path, shared by training and serving.

File -> mono float32 at SAMPLE_RATE (`load_audio`) -> the 30 s to analyse (`select_section`)
-> three 10 s segments (`split_segments`) -> log-mel, (3, N_MELS, N_FRAMES) (`log_mel`).
`main_model_input` chains them. Nothing here imports torch: serving runs on numpy + onnxruntime.

Why these mel parameters: the reference input of the brief, 3 x (128 x 431) at sr 22050 / hop 512,
costs ~11.6 GFLOP per song in ResNet18, far too slow to train on two shared CPU cores. Hop 1024 and
64 mels give 3 x (64 x 214): ~4x fewer pixels, ~4x cheaper to train and serve. 64 mel bands up to
11 kHz still resolve timbre and harmony well enough for four broad moods, and 46 ms frames keep the
rhythm. See the model card for the measured training time per epoch.

Frames use `center=False` and every segment starts on a multiple of HOP_LENGTH, so the log-mel of a
segment is exactly a slice of the log-mel of the whole section. Training caches the section's
log-mel once and crops it at random offsets; serving crops it at the fixed offsets below. Both see
the same numbers.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from inference.result import SilentAudioError, TooLongAudioError, TooShortAudioError, UnreadableAudioError

log = logging.getLogger(__name__)

# Hard-coded audio hyper-parameters.
SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 1024
N_MELS = 64
FMIN = 20.0
FMAX = SAMPLE_RATE / 2
SEGMENT_SECONDS = 10
N_SEGMENTS = 3
SECTION_SECONDS = 30
MIN_SECONDS = 10  # under this there is not one full segment to listen to
# Longest audio decoded (the bot's MAX_AUDIO_DURATION_S default). Decoding is all in memory: a
# 3-hour file is ~1 GB of float32 at SAMPLE_RATE, so a longer file is refused before decoding.
MAX_SECONDS = 20 * 60
SILENCE_DB = -60.0  # RMS of the section in dBFS under which we call it silence
LOG_FLOOR = 1e-10  # power floor before the log, -100 dB

# Derived: never retype these.
SECTION_SAMPLES = SECTION_SECONDS * SAMPLE_RATE  # 661500
MIN_SAMPLES = MIN_SECONDS * SAMPLE_RATE
N_FRAMES = (SEGMENT_SECONDS * SAMPLE_RATE - N_FFT) // HOP_LENGTH + 1  # 214 frames per segment
SEGMENT_SAMPLES = N_FFT + (N_FRAMES - 1) * HOP_LENGTH  # 220160 samples, 9.98 s
SEGMENT_STRIDE = N_FRAMES * HOP_LENGTH  # segments sit back to back in frame space
SECTION_FRAMES = (SECTION_SAMPLES - N_FFT) // HOP_LENGTH + 1  # 644 frames in a 30 s section
# Candidate windows for long songs: start every CANDIDATE_STEP_SECONDS in the middle half of the song.
CANDIDATE_STEP_SECONDS = 5

assert (N_SEGMENTS - 1) * SEGMENT_STRIDE + SEGMENT_SAMPLES <= SECTION_SAMPLES


def load_audio(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any audio file to mono float32 at `sr`.

    soundfile first (fast, in-process: wav, flac, ogg/opus, mp3); ffmpeg for the rest (m4a/aac,
    webm/opus), decoding straight to float PCM so nothing is re-encoded on the way.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableAudioError(f"Cannot find the audio file {path.name}.")
    try:
        _refuse_if_too_long(sf.info(str(path)).duration, path)
        audio, native_sr = _read_soundfile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        audio, native_sr = _read_ffmpeg(path, sr), sr
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise UnreadableAudioError(f"The file {path.name} holds no playable audio.")
    if native_sr != sr:
        audio = librosa.resample(audio, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _refuse_if_too_long(seconds: float, path: Path) -> None:
    if seconds > MAX_SECONDS:
        raise TooLongAudioError(
            f"The file {path.name} lasts over {MAX_SECONDS // 60} minutes; send a song shorter than that."
        )


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    audio, native_sr = sf.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(native_sr)


def _read_ffmpeg(path: Path, sr: int) -> np.ndarray:
    if shutil.which("ffmpeg") is None:
        raise UnreadableAudioError(
            f"Cannot read {path.name}: this format needs ffmpeg, which is not installed."
        )
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        # -t bounds the decode (and its memory) whatever the container claims; just over the
        # limit, so that a file that is longer is told apart from one that is exactly as long.
        "-t", str(MAX_SECONDS + 1),
        "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-acodec", "pcm_f32le", "-",
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        log.debug("ffmpeg failed on %s: %s", path, result.stderr[-500:])
        raise UnreadableAudioError(f"The file {path.name} is not audio we can read.")
    usable = len(result.stdout) - len(result.stdout) % 4
    _refuse_if_too_long(usable / 4 / sr, path)
    return np.frombuffer(result.stdout[:usable], dtype="<f4").copy()


def rms_db(audio: np.ndarray) -> float:
    """Root-mean-square level in dBFS."""
    power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    return 10.0 * np.log10(max(power, LOG_FLOOR))


def select_section(audio: np.ndarray) -> np.ndarray:
    """The SECTION_SECONDS of `audio` to analyse.

    Up to 30 s: all of it, repeated to fill 30 s (a loop sounds like the song; zeros would not).
    Longer: among windows starting every 5 s in the middle half of the song, the loudest by RMS.
    The middle skips intros and fade-outs, and the loudest window is most often the chorus, the
    part a listener would name the mood from. It costs one pass over the samples.
    """
    if audio.size < MIN_SAMPLES:
        raise TooShortAudioError(
            f"The audio lasts {audio.size / SAMPLE_RATE:.1f} s; I need at least {MIN_SECONDS} s."
        )
    if audio.size <= SECTION_SAMPLES:
        section = np.resize(audio, SECTION_SAMPLES)  # np.resize repeats the input cyclically
    else:
        start = _loudest_window_start(audio)
        section = audio[start : start + SECTION_SAMPLES]
    if rms_db(section) < SILENCE_DB:
        raise SilentAudioError("The audio is silent; there is nothing to listen to.")
    return np.ascontiguousarray(section, dtype=np.float32)


def _loudest_window_start(audio: np.ndarray) -> int:
    latest = audio.size - SECTION_SAMPLES
    step = CANDIDATE_STEP_SECONDS * SAMPLE_RATE
    starts = np.arange(latest // 4, 3 * latest // 4 + 1, step) if latest >= 4 * step else None
    if starts is None or starts.size == 0:
        starts = np.array([latest // 2])
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    energy = cumulative[starts + SECTION_SAMPLES] - cumulative[starts]
    return int(starts[int(np.argmax(energy))])


def split_segments(section: np.ndarray) -> np.ndarray:
    """(N_SEGMENTS, SEGMENT_SAMPLES): back-to-back segments, each starting on a hop boundary."""
    if section.size < (N_SEGMENTS - 1) * SEGMENT_STRIDE + SEGMENT_SAMPLES:
        raise ValueError(f"a section needs {SECTION_SAMPLES} samples, got {section.size}")
    starts = np.arange(N_SEGMENTS) * SEGMENT_STRIDE
    return np.stack([section[s : s + SEGMENT_SAMPLES] for s in starts]).astype(np.float32)


@lru_cache(maxsize=None)
def mel_filters() -> np.ndarray:
    """(N_MELS, 1 + N_FFT // 2) Slaney mel filterbank, built once."""
    return librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX
    ).astype(np.float32)


@lru_cache(maxsize=None)
def _window() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa uses


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Log-mel power in dB, float32, (..., N_MELS, frames); frames = (samples - N_FFT) // HOP + 1.

    Works on one signal or a stack: segments (3, SEGMENT_SAMPLES) -> (3, N_MELS, N_FRAMES).
    No per-clip normalisation: loudness is part of the mood, and the model normalises its input.
    """
    audio = np.asarray(audio, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT, axis=-1)[..., ::HOP_LENGTH, :]
    spectrum = np.fft.rfft(frames * _window(), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = np.einsum("mf,...tf->...mt", mel_filters(), power)
    return (10.0 * np.log10(np.maximum(mel, LOG_FLOOR))).astype(np.float32)


def section_segments(section_mel: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Crop N_SEGMENTS windows of N_FRAMES out of a section's log-mel (N_MELS, frames).

    Default offsets are the serving crop (back to back from frame 0), equal to
    `log_mel(split_segments(section))`. Training passes random offsets.
    """
    if offsets is None:
        offsets = np.arange(N_SEGMENTS) * N_FRAMES
    return np.stack([section_mel[:, o : o + N_FRAMES] for o in offsets]).astype(np.float32)


def main_model_input(path: str | Path) -> np.ndarray:
    """File -> (1, N_SEGMENTS, N_MELS, N_FRAMES) float32, the main model's `mel` input."""
    section = select_section(load_audio(path))
    return log_mel(split_segments(section))[np.newaxis]
