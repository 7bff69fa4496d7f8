"""Runtime predictors: the weight files in, mood probabilities out. No torch here.

`MainModel` runs the exported ONNX graph with onnxruntime; `AnnModel` is the fallback MLP in pure
numpy. The job functions at the bottom (`classify_main`, `classify_ann`) are what the pool sends to
its worker processes: they take a path (cheap to pickle) and return plain arrays and floats.

Weight files (written by `inference.train`):
- main.onnx: input `mel` float32 (B, N_SEGMENTS, N_MELS, N_FRAMES), output `logits` (B, 4) in MOODS
  order; main.json with at least `version`.
- ann.npz: `mean`, `std`, then `W0`, `b0`, `W1`, `b1`, ... (x @ W + b, ReLU between layers, softmax
  at the end); ann.json with `version`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from inference.audio import (
    MAX_SECONDS,
    MIN_SECONDS,
    N_FRAMES,
    N_MELS,
    N_SEGMENTS,
    load_audio,
    log_mel,
    select_section,
    split_segments,
)
from inference.calibration import temper
from inference.features import FEATURE_NAMES, N_FEATURES, handcrafted_features
from inference.result import MOODS, ModelUnavailableError

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MAIN_WEIGHTS = "main.onnx"
MAIN_META = "main.json"
ANN_WEIGHTS = "ann.npz"
ANN_META = "ann.json"
INPUT_NAME = "mel"
OUTPUT_NAME = "logits"
N_MOODS = len(MOODS)
SPIN_CONFIG_KEY = "session.intra_op.allow_spinning"
# onnxruntime's own log: fatal errors only. Its warnings would flood the bot's log, and its error
# line for a graph that fails to run went raw to the worker's stderr (the console's screen); that
# failure reaches the bot as an exception anyway, logged with its message through the log relay.
ORT_LOG_SEVERITY = 4
STD_FLOOR = 1e-8  # a constant feature in training has std 0; do not divide by it
# The warm-up song is not at SAMPLE_RATE, so that the resampler (whose first call imports ~1.5 s of
# libraries) loads during warm-up rather than on the first user's request.
WARM_UP_SAMPLE_RATE = 24000
WARM_UP_SECONDS = MIN_SECONDS + 1


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def read_card(meta_path: Path) -> dict:
    """A model's json card; it has at least a `version`."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["version"] = str(meta["version"])
        return meta
    except FileNotFoundError:
        raise ModelUnavailableError(f"The model card {meta_path.name} is missing.") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelUnavailableError(f"The model card {meta_path.name} is unreadable ({error}).") from None


@dataclass
class MainModel:
    """The ResNet18 + BiLSTM, exported to ONNX.

    When its card names fusion weights (chosen on out-of-fold cross-validation predictions by
    `inference.fusion`), the main answer is a weighted mean of probabilities on the same 30 s
    section. `"fusion": {"ann_weight": a}`: (1 - a) * p_main + a * p_ann, version + "+ann".
    With `"embedding_weight": e` and `"main_weight": m` too (and the card's `"embedding_head"`):
    m * p_main + a * p_ann + e * p_head(musicnn embedding), version + "+ann+musicnn"; a part
    whose weight is 0 is not computed. With `"calibration": {"temperature": t}` the mix is
    tempered (`inference.calibration.temper`: the mood unchanged, the confidence made honest) and
    the version gains `+t<t>`. A fused version ends `@<8 hex>`, a digest of what the mix serves
    besides the network (`Fusion.parts`): the card's version is the network's file alone, and
    another mix, a retrained ANN or a refitted head over it answers otherwise (the cache's answers
    are judged by the version: bot/usecases/mood.py).
    """

    session: object  # onnxruntime.InferenceSession; typed loosely so importing this module stays cheap
    version: str
    fusion: "Fusion | None" = None

    @classmethod
    def load(cls, weights_dir: str | Path = DEFAULT_WEIGHTS_DIR, *, threads: int = 1) -> "MainModel":
        import onnxruntime as ort  # imported here so that workers can set thread env vars first

        weights_dir = Path(weights_dir)
        onnx_path = weights_dir / MAIN_WEIGHTS
        if not onnx_path.is_file():
            raise ModelUnavailableError(f"The main model's weights ({onnx_path}) are missing.")
        card = read_card(weights_dir / MAIN_META)
        _check_fusion(card)
        threads = max(1, int(threads))
        # With two threads or more, the embedding runs on a thread of its own beside the network and
        # the features (see `predict_section`): the two ORT sessions, running at once, share the
        # threads (half each, the odd one to the network's side), so that a worker never has more
        # threads computing than it was given.
        beside = threads >= 2 and Fusion.embeds(card)
        embedding_threads = threads // 2 if beside else threads
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads - embedding_threads if beside else threads
        # One request at a time per worker: parallelism comes from the pool, not from ORT.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = ORT_LOG_SEVERITY
        # ORT's idle pool threads spin by default, waiting for the next operator: through a whole
        # fused answer that burnt ~45 ms of CPU per song (115 ms instead of 70 ms on 2 threads),
        # CPU that the features, the bot and the other workers need. Asleep, they cost ~nothing.
        options.add_session_config_entry(SPIN_CONFIG_KEY, "0")
        try:
            session = ort.InferenceSession(
                str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own untyped exceptions for a corrupt graph
            raise ModelUnavailableError(f"The main model's weights are corrupt ({error}).") from None
        _check_signature(session)
        fusion = Fusion.from_card(card, weights_dir, embedding_threads, beside=beside)
        version = card["version"]
        if fusion is not None:
            version = f"{version}{fusion.version_suffix}@{fusion.parts}"
        return cls(session, version, fusion)

    def predict_section(self, section: np.ndarray) -> np.ndarray:
        """A 30 s section -> (4,) probabilities, fused as the card says."""
        if self.fusion is None:
            return self.predict(log_mel(split_segments(section))[np.newaxis])[0]
        fusion = self.fusion
        embedding = None
        if fusion.embedding_weight > 0:
            if fusion.beside is not None:
                embedding = fusion.beside.submit(fusion.embedder.embed, section)
            else:
                embedding = fusion.embedder.embed(section)
        probabilities = np.zeros(N_MOODS, dtype=np.float64)
        if fusion.main_weight > 0:
            probabilities += fusion.main_weight * self.predict(log_mel(split_segments(section))[np.newaxis])[0]
        if fusion.ann_weight > 0:
            probabilities += fusion.ann_weight * fusion.ann.predict(handcrafted_features(section))[0]
        if embedding is not None:
            if fusion.beside is not None:
                embedding = embedding.result()  # its exception, if any, is raised here
            probabilities += fusion.embedding_weight * fusion.head.predict(embedding)[0]
        return temper(probabilities, fusion.temperature).astype(np.float32)

    def predict(self, mel: np.ndarray) -> np.ndarray:
        """(B, N_SEGMENTS, N_MELS, N_FRAMES) log-mel -> (B, 4) probabilities in MOODS order."""
        mel = np.ascontiguousarray(mel, dtype=np.float32)
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: mel})
        return softmax(np.asarray(logits, dtype=np.float64)).astype(np.float32)


FUSION_NUMBERS = ("main_weight", "ann_weight", "embedding_weight")
WEIGHT_ROUNDING = 1e-9  # the network's weight left by the others may be a rounding under 0 (1 - 0.3 - 0.7)


def _check_fusion(card: dict) -> None:
    """ModelUnavailableError, saying so, where the card's fusion is not an object of numbers: read
    later, it raised ValueError or AttributeError in the worker's initializer, which broke the pool
    ("a model worker died while loading") with a CRITICAL traceback, and never said why. Nor of
    numbers that make no mix: a weight under 0 or not finite, a temperature not over 0 (under 0,
    the least likely mood was served as the answer)."""
    spec = card.get("fusion")
    try:
        if spec is None:
            return
        if not isinstance(spec, dict):
            raise TypeError(f"an object was expected, not {type(spec).__name__}")
        listed = [(name, float(spec.get(name) or 0.0)) for name in FUSION_NUMBERS]
        calibration = spec.get("calibration") or {}
        if not isinstance(calibration, dict):
            raise TypeError(f"calibration: an object was expected, not {type(calibration).__name__}")
        # The weights as the mix reads them (`Fusion.weights`): the network's may be what the
        # others leave, under 0 where they pass 1 (ann_weight 1.5: the network's -0.5).
        for name, weight in listed + list(zip(FUSION_NUMBERS, Fusion.weights(spec))):
            if not (weight >= -WEIGHT_ROUNDING and math.isfinite(weight)):  # under 0, the mix is no probability
                raise ValueError(f"{name} {weight!r}: a weight is a finite number, 0 or more")
        temperature = float(calibration.get("temperature") or 1.0)
        if not (temperature > 0 and math.isfinite(temperature)):  # under 0, the least likely mood wins
            raise ValueError(f"temperature {temperature!r}: a finite number over 0")
        embedding = card.get("embedding")
        if Fusion.embeds(card) and not isinstance(embedding or {}, dict):
            raise TypeError(f"embedding: an object was expected, not {type(embedding).__name__}")
    except (TypeError, ValueError) as error:
        raise ModelUnavailableError(f"The fusion in {MAIN_META} is unreadable ({error}).") from None


def _check_signature(session) -> None:
    """Reject a graph that does not take our log-mel or does not answer four logits."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise ModelUnavailableError(
            f"The main model must take `{INPUT_NAME}` and answer `{OUTPUT_NAME}`; it takes "
            f"{sorted(inputs)} and answers {sorted(outputs)}."
        )
    expected = (N_SEGMENTS, N_MELS, N_FRAMES)
    shape = inputs[INPUT_NAME].shape
    fixed = [(got, want) for got, want in zip(shape[1:], expected) if isinstance(got, int)]
    if len(shape) != 4 or any(got != want for got, want in fixed):
        raise ModelUnavailableError(
            f"The main model expects input {shape}, but the audio front makes (B, {expected})."
        )
    out_shape = outputs[OUTPUT_NAME].shape
    if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != N_MOODS):
        raise ModelUnavailableError(f"The main model answers {out_shape}, not (B, {N_MOODS}).")


@dataclass
class Fusion:
    """The weights of the main answer's parts, and the parts besides the network."""

    main_weight: float
    ann_weight: float
    ann: "AnnModel | None"
    embedding_weight: float = 0.0
    embedder: object = None  # inference.embedding.Embedder
    head: object = None  # inference.embedding.EmbeddingHead
    # A thread that computes the embedding while the caller's thread runs the network and the
    # features (onnxruntime and numpy's FFTs release the GIL): with the three patches served, a song
    # took 140 ms one part after the other on 2 threads and ~130 ms so, in one process.
    beside: ThreadPoolExecutor | None = None
    # The mix's probabilities are raised to 1/temperature and renormalised (`inference.calibration`):
    # fitted out of fold so that the confidence says how often such an answer is right.
    temperature: float = 1.0
    # What the mix serves besides the network, as a digest (`digest_of_parts`): part of the version.
    parts: str = ""

    @staticmethod
    def embeds(card: dict) -> bool:
        return float((card.get("fusion") or {}).get("embedding_weight") or 0.0) > 0

    @staticmethod
    def weights(spec: dict) -> tuple[float, float, float]:
        """(main_weight, ann_weight, embedding_weight) as the mix `spec` (main.json's "fusion")
        serves them: without the embedding, the network takes what the ANN leaves; with it, its
        own weight, else what the others leave."""
        ann_weight = float(spec.get("ann_weight") or 0.0)
        embedding_weight = float(spec.get("embedding_weight") or 0.0)
        if embedding_weight <= 0:
            return 1.0 - ann_weight, ann_weight, 0.0
        return float(spec.get("main_weight", 1.0 - ann_weight - embedding_weight)), ann_weight, embedding_weight

    @property
    def version_suffix(self) -> str:
        tempered = f"+t{self.temperature:g}" if self.temperature != 1.0 else ""
        return "+ann" + ("+musicnn" if self.embedding_weight > 0 else "") + tempered

    @classmethod
    def from_card(cls, card: dict, weights_dir: Path, embedding_threads: int, *,
                  beside: bool = False) -> "Fusion | None":
        spec = card.get("fusion") or {}
        main_weight, ann_weight, embedding_weight = cls.weights(spec)
        temperature = float((spec.get("calibration") or {}).get("temperature") or 1.0)
        if embedding_weight <= 0:
            # The two-part card: the network takes what the ANN leaves.
            if not ann_weight:
                return None
            ann = AnnModel.load(weights_dir)
            return cls(main_weight, ann_weight, ann, temperature=temperature,
                       parts=digest_of_parts(main_weight, ann_weight, 0.0, temperature, ann.version))
        from inference.embedding import Embedder, EmbeddingHead

        ann = AnnModel.load(weights_dir) if ann_weight > 0 else None
        head = EmbeddingHead.from_card(card.get("embedding_head") or {})
        embedder = Embedder.load(weights_dir, threads=embedding_threads, patches=(card.get("embedding") or {}).get("patches"))
        thread = ThreadPoolExecutor(1, thread_name_prefix="moodbot-embedding") if beside else None
        parts = digest_of_parts(main_weight, ann_weight, embedding_weight, temperature, ann.version if ann else None,
                                card.get("embedding_head"), card.get("embedding"))
        return cls(main_weight, ann_weight, ann, embedding_weight, embedder, head, thread, temperature, parts)


def digest_of_parts(*parts) -> str:
    """8 hex digits of what a mix serves besides the network: its weights and temperature, the
    ANN's version (its file's hash), the embedding head's coefficients and the embedding's card."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@dataclass
class AnnModel:
    """The fallback MLP on hand-crafted features, in numpy: loads in milliseconds, runs anywhere."""

    mean: np.ndarray
    std: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    version: str

    @classmethod
    def load(cls, weights_dir: str | Path = DEFAULT_WEIGHTS_DIR) -> "AnnModel":
        weights_dir = Path(weights_dir)
        npz_path = weights_dir / ANN_WEIGHTS
        if not npz_path.is_file():
            raise ModelUnavailableError(f"The fallback model's weights ({npz_path}) are missing.")
        card = read_card(weights_dir / ANN_META)
        names = card.get("feature_names", FEATURE_NAMES)
        if not isinstance(names, (list, tuple)) or list(names) != list(FEATURE_NAMES):  # list(5): TypeError
            raise ModelUnavailableError(
                "The fallback model was trained on other hand-crafted features than the code makes."
            )
        try:
            with np.load(npz_path, allow_pickle=False) as archive:
                arrays = {name: np.asarray(archive[name], dtype=np.float32) for name in archive.files}
        except Exception as error:  # zipfile/pickle/value errors: all mean "not our file"
            raise ModelUnavailableError(f"The fallback model's weights are corrupt ({error}).") from None
        return cls(*_ann_arrays(arrays), card["version"])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N_FEATURES,) or (B, N_FEATURES) -> (B, 4) probabilities in MOODS order."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float32))
        x = (x - self.mean) / np.maximum(self.std, STD_FLOOR)
        for index, (weight, bias) in enumerate(self.layers):
            x = x @ weight + bias
            if index < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        return softmax(x.astype(np.float64)).astype(np.float32)


def _ann_arrays(arrays: dict[str, np.ndarray]):
    """Validate the npz: mean/std of N_FEATURES, a chain of layers ending in N_MOODS outputs."""
    try:
        mean, std = arrays["mean"].ravel(), arrays["std"].ravel()
    except KeyError as error:
        raise ModelUnavailableError(f"The fallback model's weights lack {error}.") from None
    layers = []
    while f"W{len(layers)}" in arrays:
        index = len(layers)
        if f"b{index}" not in arrays:
            raise ModelUnavailableError(f"The fallback model's weights lack b{index}.")
        layers.append((arrays[f"W{index}"], arrays[f"b{index}"].ravel()))
    width = N_FEATURES
    if mean.size != width or std.size != width:
        raise ModelUnavailableError(
            f"The fallback model was trained on {mean.size} features; the code makes {width}."
        )
    for index, (weight, bias) in enumerate(layers):
        if weight.ndim != 2 or weight.shape[0] != width or bias.size != weight.shape[1]:
            raise ModelUnavailableError(f"The fallback model's layer {index} has the wrong shape.")
        width = weight.shape[1]
    if not layers or width != N_MOODS:
        raise ModelUnavailableError(f"The fallback model must end in {N_MOODS} outputs.")
    return mean, std, layers


def warm_up_pipeline(model: MainModel | AnnModel) -> None:
    """Run a synthetic song through the model's whole path once, so that the first real request
    costs what the next ones do (lazy imports, caches, ORT's first-run allocations)."""
    noise = np.random.default_rng(0).normal(0.0, 0.1, WARM_UP_SECONDS * WARM_UP_SAMPLE_RATE)
    with tempfile.TemporaryDirectory(prefix="moodbot-warm-up-") as folder:
        path = Path(folder) / "warm-up.wav"
        sf.write(path, noise.astype(np.float32), WARM_UP_SAMPLE_RATE)
        if isinstance(model, MainModel):
            model.predict_section(select_section(load_audio(path)))
        else:
            classify_ann(path, model)


# --- What runs inside a worker process ---------------------------------------------------------

@lru_cache(maxsize=4)
def cached_main_model(weights_dir: str, threads: int) -> MainModel:
    """One loaded, warmed session per (weights dir, threads) per process: loading costs far more
    than a run."""
    model = MainModel.load(weights_dir, threads=threads)
    try:
        warm_up_pipeline(model)
    except Exception:  # noqa: BLE001 - a cold first request is better than no model at all
        log.warning("Warm-up of the main model failed; the first request will be slower.", exc_info=True)
    return model


@lru_cache(maxsize=4)
def cached_ann_model(weights_dir: str) -> AnnModel:
    return AnnModel.load(weights_dir)


_worker_main: MainModel | None = None
_worker_main_error: ModelUnavailableError | None = None
_worker_weights_dir: str = str(DEFAULT_WEIGHTS_DIR)


def load_worker_model(weights_dir: str | Path, threads: int) -> None:
    """Called once by the pool's worker initializer. Never raises: an initializer that raises breaks
    the whole pool, so a load failure is kept and reported by `main_model_version` instead."""
    global _worker_main, _worker_main_error, _worker_weights_dir
    _worker_weights_dir = str(weights_dir)
    try:
        _worker_main = cached_main_model(str(weights_dir), int(threads))
        _worker_main_error = None
    except ModelUnavailableError as error:
        _worker_main, _worker_main_error = None, error


def main_model_version(weights_dir: str | Path | None = None, threads: int = 1) -> str:
    """Warm-up job: the loaded main model's version, or ModelUnavailableError.

    With `weights_dir` (Dask workers, which have no initializer) the model is loaded and cached on
    first call; without it, the worker-global model from the initializer answers.
    """
    return _main_model(weights_dir, threads).version


def _main_model(weights_dir: str | Path | None, threads: int) -> MainModel:
    if weights_dir is not None:
        return cached_main_model(str(weights_dir), int(threads))
    if _worker_main is None:
        raise _worker_main_error or ModelUnavailableError("The main model was not loaded in this worker.")
    return _worker_main


def classify_main(
    path: str | Path, weights_dir: str | Path | None = None, threads: int = 1, *, max_seconds: float | None = None
) -> tuple[np.ndarray, float]:
    """File -> ((4,) probabilities, seconds of compute). AudioError subclasses propagate: a file
    longer than `max_seconds` (None: MAX_SECONDS, and never more) is TooLongAudioError."""
    started = time.perf_counter()
    model = _main_model(weights_dir, threads)
    probabilities = model.predict_section(select_section(_load(path, max_seconds)))
    return probabilities, time.perf_counter() - started


def classify_ann(
    path: str | Path, model: AnnModel | None = None, *, max_seconds: float | None = None
) -> tuple[np.ndarray, float]:
    """File -> decode -> 30 s section -> hand-crafted features -> MLP: ((4,) probabilities, seconds).
    `max_seconds` as for `classify_main`."""
    started = time.perf_counter()
    model = model or cached_ann_model(_worker_weights_dir)
    features = handcrafted_features(select_section(_load(path, max_seconds)))
    probabilities = model.predict(features)[0]
    return probabilities, time.perf_counter() - started


def _load(path: str | Path, max_seconds: float | None) -> np.ndarray:
    return load_audio(path, max_seconds=MAX_SECONDS if max_seconds is None else max_seconds)


def probabilities_by_mood(probabilities: np.ndarray) -> dict[str, float]:
    """(4,) array in MOODS order -> {mood: probability}, the shape MoodResult takes."""
    return {mood: float(p) for mood, p in zip(MOODS, probabilities)}
