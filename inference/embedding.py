"""A pretrained music embedding of the 30 s section: musicnn's MSD_musicnn network, in ONNX.

musicnn (Pons & Serra, 2019; ISC licence, see weights/LICENSE_musicnn.md) was trained to tag the
Million Song Dataset with 50 tags (genres, eras, moods such as "sad", "happy", "chill", "Mellow").
Its 200-d "penultimate" layer, averaged over 3 s patches of the section, describes a song far
better than our hand-crafted features for mood: on the 4Q clips a logistic regression on it alone
scores ~0.72 macro-F1 out of fold (artist folds) against ~0.65 for the features (see the main
model card). `convert_musicnn.py` made `weights/musicnn.onnx` from musicnn's TF checkpoint once;
serving needs only numpy, soxr (through `inference.audio.resample`) and onnxruntime.

The audio front is musicnn's own (its `extractor.batch_data`): 16 kHz, a centred STFT of 512
samples (zero-padded edges, periodic Hann window), hop 256, power, 96 Slaney mel bands 0-8 kHz,
rounded to float16 as musicnn stores it, then log10(10000 x + 1); patches of 187 frames (3 s),
back to back. Only the frames of the patches we use are computed.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from inference import audio
from inference.result import MOODS, ModelUnavailableError

log = logging.getLogger(__name__)

# musicnn's signal processing (musicnn/configuration.py and extractor.py): do not change, the
# network was trained on exactly these.
SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
FMIN = 0.0
FMAX = SAMPLE_RATE / 2
LOG_SCALE = 10000.0  # log10(LOG_SCALE * mel + 1), musicnn's "logC" compression
PATCH_FRAMES = 187  # 3 s, the input length musicnn was trained on
EMBEDDING_SIZE = 200

# Derived from the section the rest of the pipeline analyses.
SECTION_SAMPLES = audio.SECTION_SECONDS * SAMPLE_RATE  # 480000
SECTION_FRAMES = 1 + SECTION_SAMPLES // HOP_LENGTH  # centred frames: 1876
N_PATCHES = SECTION_FRAMES // PATCH_FRAMES  # 10 back-to-back patches
ALL_PATCHES = tuple(range(N_PATCHES))
# Patches served: three, the 3 s from 3, 12 and 21 s into the section. The network costs ~2.8 GFLOP
# per patch (~30 ms on one core), and the end-to-end budget is 150 ms, which three fit since the
# embedding runs beside the features (predict.py). On 3 artist folds the fused answer scored 0.711
# macro-F1 with one patch (5), 0.725 with two (4, 6), 0.723-0.730 with three (1, 4, 7; 2, 5, 8; 3, 5, 7)
# and 0.735 with all ten (python -m inference.fusion, embeddings by this ONNX graph).
SERVED_PATCHES = (1, 4, 7)

WEIGHTS = "musicnn.onnx"
INPUT_NAME = "patches"
OUTPUT_NAME = "embedding"
STD_FLOOR = 1e-8
N_MOODS = len(MOODS)
FLOAT16_MAX = np.float32(np.finfo(np.float16).max)


def to_embedding_rate(section: np.ndarray) -> np.ndarray:
    """A section at `audio.SAMPLE_RATE` -> (SECTION_SAMPLES,) float32 at musicnn's 16 kHz."""
    resampled = audio.resample(section, audio.SAMPLE_RATE, SAMPLE_RATE)
    if resampled.size < SECTION_SAMPLES:
        resampled = np.pad(resampled, (0, SECTION_SAMPLES - resampled.size))
    return resampled[:SECTION_SAMPLES]


# 22050 Hz / 16000 Hz = 441 / 320: an input slice starting on a multiple of 441 samples maps onto
# output samples starting on the same multiple of 320.
RATE_STEP_IN, RATE_STEP_OUT = (
    rate // math.gcd(audio.SAMPLE_RATE, SAMPLE_RATE) for rate in (audio.SAMPLE_RATE, SAMPLE_RATE)
)
# soxr's HQ filter spans a few ms; beyond this margin a window resampled alone equals the whole
# section resampled, to float rounding (tests/inference/test_embedding.py).
RESAMPLE_MARGIN = SAMPLE_RATE // 4


def patches_at_embedding_rate(section: np.ndarray, patches: tuple[int, ...] = SERVED_PATCHES) -> np.ndarray:
    """`to_embedding_rate(section)` where `patches` read it, zeros elsewhere: resampling only what
    a 3 s patch needs costs ~1 ms instead of ~6 ms for the whole 30 s."""
    out = np.zeros(SECTION_SAMPLES, dtype=np.float32)
    for patch in patches:
        first = max(0, patch * PATCH_FRAMES * HOP_LENGTH - N_FFT // 2 - RESAMPLE_MARGIN)
        last = min(SECTION_SAMPLES, ((patch + 1) * PATCH_FRAMES - 1) * HOP_LENGTH + N_FFT // 2 + RESAMPLE_MARGIN)
        start = first // RATE_STEP_OUT
        stop = -(-last // RATE_STEP_OUT)
        piece = audio.resample(section[start * RATE_STEP_IN : stop * RATE_STEP_IN], audio.SAMPLE_RATE, SAMPLE_RATE)
        out[start * RATE_STEP_OUT : start * RATE_STEP_OUT + piece.size] = piece[: SECTION_SAMPLES - start * RATE_STEP_OUT]
    return out


@lru_cache(maxsize=None)
def mel_filters() -> np.ndarray:
    """(N_MELS, 1 + N_FFT // 2) float32 Slaney-normalised filters, librosa.filters.mel's steps."""
    return audio.slaney_mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, FMIN, FMAX)


@lru_cache(maxsize=None)
def _window() -> np.ndarray:
    """Periodic Hann window (scipy's get_window("hann", N_FFT, fftbins=True)), float64."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)


def log_mel_patches(samples: np.ndarray, patches: tuple[int, ...] = SERVED_PATCHES) -> np.ndarray:
    """(SECTION_SAMPLES,) audio at 16 kHz -> (len(patches), PATCH_FRAMES, N_MELS) float32 input."""
    if samples.size != SECTION_SAMPLES:
        raise ValueError(f"a 16 kHz section has {SECTION_SAMPLES} samples, got {samples.size}")
    padded = np.pad(np.asarray(samples, dtype=np.float32), N_FFT // 2)  # librosa's centred frames
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    starts = [p * PATCH_FRAMES for p in patches]
    chosen = np.concatenate([frames[s : s + PATCH_FRAMES] for s in starts])
    spectrum = np.fft.rfft(chosen * _window(), axis=1).astype(np.complex64)
    power = np.square(np.abs(spectrum))
    mel = power @ mel_filters().T
    # musicnn rounds the mel power to float16 before the log (its training data was stored so).
    # Power past float16's range (a float file at integer scale) saturates instead of becoming inf,
    # which the network would turn into NaN.
    mel = np.minimum(mel, FLOAT16_MAX).astype(np.float16).astype(np.float32)
    return np.log10(np.float32(LOG_SCALE) * mel + np.float32(1.0)).reshape(len(patches), PATCH_FRAMES, N_MELS)


@dataclass
class Embedder:
    """musicnn's ONNX graph: a 30 s section -> its (EMBEDDING_SIZE,) mean patch embedding."""

    session: object  # onnxruntime.InferenceSession
    patches: tuple[int, ...] = SERVED_PATCHES

    @classmethod
    def load(cls, weights_dir: str | Path, *, threads: int = 1, patches=None) -> "Embedder":
        """`patches`: the ones the head was trained on (main.json's `embedding.patches`), by default
        SERVED_PATCHES."""
        import onnxruntime as ort

        from inference.predict import ORT_LOG_SEVERITY

        chosen = SERVED_PATCHES if patches is None else patches
        try:
            chosen = tuple(int(p) for p in chosen)
        except (TypeError, ValueError):
            chosen = ()
        if not chosen or len(set(chosen)) != len(chosen) or not all(0 <= p < N_PATCHES for p in chosen):
            raise ModelUnavailableError(
                f"The music embedding's patches {patches!r} are not distinct patches 0-{N_PATCHES - 1}.")
        path = Path(weights_dir) / WEIGHTS
        if not path.is_file():
            raise ModelUnavailableError(f"The music embedding's weights ({path}) are missing.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = ORT_LOG_SEVERITY
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see predict.py
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT raises its own untyped exceptions for a corrupt graph
            raise ModelUnavailableError(f"The music embedding's weights are corrupt ({error}).") from None
        _check_signature(session)
        return cls(session, chosen)

    def patch_embeddings(self, log_mel: np.ndarray) -> np.ndarray:
        """(P, PATCH_FRAMES, N_MELS) -> (P, EMBEDDING_SIZE)."""
        (out,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(log_mel, dtype=np.float32)})
        return np.asarray(out, dtype=np.float32)

    def embed(self, section: np.ndarray) -> np.ndarray:
        """A section at `audio.SAMPLE_RATE` -> (EMBEDDING_SIZE,): mean over the served patches."""
        patches = log_mel_patches(patches_at_embedding_rate(section, self.patches), self.patches)
        return self.patch_embeddings(patches).mean(axis=0)


def _check_signature(session) -> None:
    """Reject a graph that does not take log-mel patches or does not answer EMBEDDING_SIZE numbers
    a patch: it loaded, and then the head (which standardises that many) failed every song."""
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if OUTPUT_NAME not in outputs or INPUT_NAME not in inputs:
        raise ModelUnavailableError(f"The music embedding must take `{INPUT_NAME}` and answer `{OUTPUT_NAME}`.")
    taken, answered = inputs[INPUT_NAME], outputs[OUTPUT_NAME]
    front = (PATCH_FRAMES, N_MELS)
    if len(taken) != 3 or any(isinstance(got, int) and got != want for got, want in zip(taken[1:], front)):
        raise ModelUnavailableError(f"The music embedding takes {taken}, but its audio front makes (P, {PATCH_FRAMES}, {N_MELS}).")
    if len(answered) != 2 or (isinstance(answered[1], int) and answered[1] != EMBEDDING_SIZE):
        raise ModelUnavailableError(f"The music embedding answers {answered}, not (P, {EMBEDDING_SIZE}).")


@dataclass
class EmbeddingHead:
    """Logistic regression on the standardised embedding, in numpy: softmax((x - mean) / std @ W + b)."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray  # (EMBEDDING_SIZE, N_MOODS)
    bias: np.ndarray  # (N_MOODS,)

    @classmethod
    def from_card(cls, card: dict) -> "EmbeddingHead":
        """From main.json's `"embedding_head"`: lists `mean`, `std`, `W`, `b`."""
        try:
            head = cls(*(np.asarray(card[k], dtype=np.float32) for k in ("mean", "std", "W", "b")))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelUnavailableError(f"The embedding head in main.json is unreadable ({error}).") from None
        if head.mean.shape != (EMBEDDING_SIZE,) or head.std.shape != (EMBEDDING_SIZE,) \
                or head.weight.ndim != 2 or head.weight.shape[0] != EMBEDDING_SIZE or head.bias.ndim != 1:
            raise ModelUnavailableError("The embedding head in main.json has the wrong shape.")
        # Its scores are added to the network's, mood by mood: another number loaded, then failed every song.
        if head.weight.shape[1] != N_MOODS or head.bias.shape != (N_MOODS,):
            raise ModelUnavailableError(
                f"The embedding head in main.json answers {head.weight.shape[1]} scores (with {head.bias.size} "
                f"biases), not {N_MOODS} outputs, one per mood."
            )
        return head

    def to_card(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "W": self.weight.tolist(), "b": self.bias.tolist()}

    def logits(self, embedding: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(embedding) - self.mean) / np.maximum(self.std, STD_FLOOR)
        return x @ self.weight + self.bias

    def predict(self, embedding: np.ndarray) -> np.ndarray:
        """(EMBEDDING_SIZE,) or (B, EMBEDDING_SIZE) -> (B, 4) probabilities in MOODS order."""
        logits = self.logits(embedding).astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
