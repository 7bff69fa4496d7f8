"""Train the mood models on the 4Q clips and write the shipped weights.

    python -m inference train [--model main|ann|both|head|all] [--data ../shared/data/4q] [--folds N]
                              [--epochs N] [--seed N] [--split-seed N] [--out inference/weights]
                              [--cache-dir cache/]

1. Cache, once per clip, the log-mel of its 30 s section and its hand-crafted features, computed by
   the same `audio`/`features` functions that serve requests (`cache/4q-<key>/<song_id>.npz`).
2. Cross-validate by artist (StratifiedGroupKFold): the same artist never sits in both train and
   validation, or the model would learn voices instead of moods.
3. Fit the final model on all clips for the median best epoch of the folds, then export:
   main.onnx / main.json and ann.npz / ann.json, model cards and confusion matrices.
4. (`head`, part of `all`) Embed each clip with the shipped musicnn.onnx (cached per clip under
   `cache/musicnn-<key>/`), fit the logistic-regression head, and choose the three-part fusion
   weights on out-of-fold predictions (`inference.fusion`); they go into main.json.
"""
from __future__ import annotations

import argparse
import copy
import csv
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn
from tqdm import tqdm

from inference import audio
from inference import embedding as E
from inference import features as features_module
from inference.audio import N_FRAMES, N_MELS, N_SEGMENTS, log_mel, select_section
from inference.features import FEATURE_NAMES, N_FEATURES, handcrafted_features
from inference.models import MoodMLP, ResNet18BiLSTM
from inference.result import MOODS
from inference.train_args import (ANN_EPOCHS, ANN_FOLDS, MAIN_BATCH, MAIN_EPOCHS, MAIN_FOLDS, SEED, build_parser,
                                   parse_args)

log = logging.getLogger(__name__)

# Main model (its epochs, folds and batch are the arguments' defaults: inference.train_args)
MAIN_LR = 1e-3
MAIN_WEIGHT_DECAY = 1e-2
LABEL_SMOOTHING = 0.1
PATIENCE = 6  # epochs without a better validation macro-F1 before a fold stops
SCORE_FROM_FRACTION = 0.5  # validate from half-way through the schedule: scoring costs CPU time
JITTER_FRAMES = N_FRAMES // 2  # each segment may move up to ~5 s from its serving position
GAIN_DB = 6.0
TIME_MASK_FRAMES = 20
FREQ_MASK_BANDS = 8

# Fallback ANN. Chosen by artist CV on the 209-feature vector (kept for the 227): the earlier 1e-3
# learning rate with light regularisation peaked after ~15 epochs and then overfitted; a slower
# rate, more dropout, more weight decay and Gaussian noise on the standardised inputs give a flat
# plateau, so the median best epoch of the folds transfers to the final fit.
ANN_BATCH = 32
ANN_LR = 3e-4
ANN_WEIGHT_DECAY = 1e-2
ANN_HIDDEN = (128, 64)
ANN_DROPOUT = 0.5
ANN_INPUT_NOISE = 0.3  # sd of the noise added to standardised features while training

ONNX_OPSET = 17
FP16_MIN_ELEMENTS = 1024  # initializers at least this big are stored as fp16 in main.onnx
MAX_FP32_ONNX_BYTES = 25_000_000

# Embedding head: logistic regression on the standardised musicnn embedding. C = 0.01 of 0.01, 0.03
# and 0.1 tried on the same artist folds (they differed by < 0.01 macro-F1, within the folds' sd).
HEAD_C = 0.01
HEAD_MAX_ITER = 5000


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Clip:
    song_id: str
    path: Path
    label: int
    artist: str


@dataclass
class Dataset:
    clips: list[Clip]
    mels: np.ndarray  # (n, N_MELS, frames) log-mel of each clip's section
    features: np.ndarray  # (n, N_FEATURES)

    @property
    def labels(self) -> np.ndarray:
        return np.array([c.label for c in self.clips])

    @property
    def groups(self) -> np.ndarray:
        return np.array([c.artist for c in self.clips])


class TrainingSetupError(ValueError):
    """The data or the options given cannot train: said in one line, before any training starts."""


LABEL_COLUMNS = ("song_id", "file", "mood", "artist")


def read_labels(data_dir: Path, limit: int | None = None) -> list[Clip]:
    """Clips of labels.csv; with `limit`, the first limit/4 of each mood by song id (for tests)."""
    labels = data_dir / "labels.csv"
    with open(labels, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in LABEL_COLUMNS if name not in (reader.fieldnames or ())]
        if missing:
            raise TrainingSetupError(f"{labels} has no {', '.join(missing)} column (it needs "
                                     f"{', '.join(LABEL_COLUMNS)})")
        rows = []
        for row in reader:
            if row["mood"] not in MOODS:
                raise TrainingSetupError(f"{labels}, line {reader.line_num}: unknown mood {row['mood']!r} "
                                         f"(the moods are {', '.join(MOODS)})")
            rows.append(row)
    if not rows:
        raise TrainingSetupError(f"{labels} lists no clips")
    rows.sort(key=lambda row: row["song_id"])
    clips = [
        Clip(row["song_id"], data_dir / row["file"], MOODS.index(row["mood"]), row["artist"])
        for row in rows
    ]
    if limit is not None:
        per_class = max(1, limit // len(MOODS))
        clips = [c for k in range(len(MOODS)) for c in [x for x in clips if x.label == k][:per_class]]
    return clips


def _front_settings() -> dict:
    return {
        name: getattr(audio, name)
        for name in ("SAMPLE_RATE", "N_FFT", "HOP_LENGTH", "N_MELS", "FMIN", "FMAX",
                     "SECTION_SECONDS", "LOG_FLOOR")
    }


def _hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def cache_key() -> str:
    """Changes whenever the audio front or the feature vector changes, so stale caches are ignored.

    The features' source is hashed too: a feature computed another way keeps its name."""
    source = hashlib.sha256(Path(features_module.__file__).read_bytes()).hexdigest()
    return _hash({**_front_settings(), "features": FEATURE_NAMES, "features_source": source})


def section_key() -> str:
    """Changes whenever the audio front (and so the section chosen) changes; not with the features."""
    return _hash(_front_settings())


def clip_cache_path(cache_dir: Path, song_id: str) -> Path:
    return cache_dir / f"4q-{cache_key()}" / f"{song_id}.npz"


def section_inputs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The section's log-mel (N_MELS, SECTION_FRAMES) and features, by the serving functions."""
    section = select_section(audio.load_audio(path))
    return log_mel(section), handcrafted_features(section)


def read_cache(target: Path, read):
    """`read(target)`, or None when the file is missing or unreadable: a file cut short (a full disk,
    a copied cache) is computed again rather than failing every later run."""
    if not target.exists():
        return None
    try:
        return read(target)
    except Exception as error:  # noqa: BLE001 - numpy and zipfile raise many kinds for a bad file
        log.warning("cache file %s is unreadable (%s): computing it again", target, error)
        return None


def _read_inputs(target: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(target) as stored:
        return stored["mel"], stored["features"]


def cached_inputs(clip: Clip, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    target = clip_cache_path(cache_dir, clip.song_id)
    stored = read_cache(target, _read_inputs)
    if stored is not None:
        return stored
    mel, features = section_inputs(clip.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp.npz")
    np.savez(partial, mel=mel, features=features)
    os.replace(partial, target)
    return mel, features


def _cached_inputs_job(args: tuple[Clip, Path]) -> tuple[np.ndarray, np.ndarray]:
    return cached_inputs(*args)


def map_clips(job, jobs: list, workers: int, desc: str) -> list:
    """`job` over `jobs` with a progress bar, in `workers` processes when there is enough to share."""
    if workers > 1 and len(jobs) > 8:
        pool = ProcessPoolExecutor(workers)
        try:
            return list(tqdm(pool.map(job, jobs, chunksize=4), total=len(jobs), desc=desc, mininterval=5))
        finally:  # on Ctrl-C, drop the clips not started rather than wait for them all
            pool.shutdown(cancel_futures=True)
    return [job(item) for item in tqdm(jobs, desc=desc, mininterval=5)]


def load_dataset(clips: list[Clip], cache_dir: Path, workers: int) -> Dataset:
    """Every clip's cached inputs, computing the missing ones in `workers` processes."""
    results = map_clips(_cached_inputs_job, [(clip, cache_dir) for clip in clips], workers, "cache")
    mels = np.stack([mel for mel, _ in results])
    features = np.stack([feats for _, feats in results])
    return Dataset(clips, mels, features)


def check_clips_exist(clips: list[Clip]) -> None:
    missing = [c.path for c in clips if not c.path.exists()]
    if missing:
        raise TrainingSetupError(f"{len(missing)} clip(s) of the {len(clips)} in labels.csv have no audio "
                                 f"file, e.g. {missing[0]}")


def check_folds(clips: list[Clip], folds: int, split_seed: int = SEED) -> None:
    """Every artist fold must hold out some clips, and every mood must reach every fold."""
    labels, groups = np.array([c.label for c in clips]), np.array([c.artist for c in clips])
    artists = np.unique(groups).size
    rarest = int(np.bincount(labels, minlength=len(MOODS)).min())
    problem = ""
    if artists < folds or rarest < folds:
        problem = f"these {len(clips)} clips have {artists} artist(s) and {rarest} clip(s) of the rarest mood"
    elif any(val_idx.size == 0 for _, val_idx in artist_folds(labels, groups, folds, split_seed)):
        problem = f"the {artists} artists of these {len(clips)} clips leave a fold empty"
    if problem:
        raise TrainingSetupError(f"--folds {folds}: {folds} artist folds need at least {folds} artists and "
                                 f"{folds} clips of each mood; {problem} (use fewer folds or more clips)")


def embedding_cache_dir(cache_dir: Path, weights: Path) -> Path:
    """Per-clip musicnn embeddings of every patch, keyed by the ONNX graph, its front and the section."""
    settings = {
        "onnx": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "front": {name: getattr(E, name) for name in (
            "SAMPLE_RATE", "N_FFT", "HOP_LENGTH", "N_MELS", "FMIN", "FMAX", "LOG_SCALE", "PATCH_FRAMES")},
        "section": section_key(),
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir / f"musicnn-{key}"


def clip_patch_embeddings(clip: Clip, folder: Path, weights: Path) -> np.ndarray:
    """(N_PATCHES, EMBEDDING_SIZE) embeddings of the clip's section, by the serving ONNX graph.

    All patches from the whole section resampled at once; serving resamples only its patch's window,
    which moves the embedding by ~2e-5 (tests/inference/test_embedding.py)."""
    target = folder / f"{clip.song_id}.npy"
    stored = read_cache(target, np.load)
    if stored is not None:
        return stored
    embedder = _embedder(str(weights))
    section = select_section(audio.load_audio(clip.path))
    patches = embedder.patch_embeddings(E.log_mel_patches(E.to_embedding_rate(section), E.ALL_PATCHES))
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp.npy")
    np.save(partial, patches)
    os.replace(partial, target)
    return patches


_embedders: dict[str, E.Embedder] = {}


def _embedder(weights: str) -> E.Embedder:
    if weights not in _embedders:
        _embedders[weights] = E.Embedder.load(Path(weights).parent, threads=1)
    return _embedders[weights]


def _clip_embeddings_job(args: tuple[Clip, Path, Path]) -> np.ndarray:
    return clip_patch_embeddings(*args)


def load_embeddings(clips: list[Clip], cache_dir: Path, weights: Path, workers: int) -> np.ndarray:
    """(n, N_PATCHES, EMBEDDING_SIZE): every clip's patch embeddings, computing the missing ones."""
    folder = embedding_cache_dir(cache_dir, weights)
    jobs = [(clip, folder, weights) for clip in clips]
    return np.stack(map_clips(_clip_embeddings_job, jobs, workers, "embeddings"))


def served_embedding(patch_embeddings: np.ndarray) -> np.ndarray:
    """(n, N_PATCHES, EMBEDDING_SIZE) -> (n, EMBEDDING_SIZE): the mean of the patches serving uses."""
    return patch_embeddings[:, list(E.SERVED_PATCHES)].mean(axis=1)


# ---------------------------------------------------------------- metrics


@dataclass
class CVResult:
    """Out-of-fold predictions per epoch and the best epoch of each fold."""

    labels: np.ndarray
    folds: int
    best_epochs: list[int] = field(default_factory=list)
    best_f1: list[float] = field(default_factory=list)
    fold_of: np.ndarray | None = None
    held_out_artists: list[list[str]] = field(default_factory=list)  # fold k's validation artists
    # predictions[e] = out-of-fold predicted class after epoch e+1 (-1 where the fold had stopped)
    predictions: dict[int, np.ndarray] = field(default_factory=dict)

    def record(self, epoch: int, index: np.ndarray, predicted: np.ndarray) -> None:
        store = self.predictions.setdefault(epoch, np.full(self.labels.size, -1))
        store[index] = predicted

    @property
    def final_epochs(self) -> int:
        return int(np.median(self.best_epochs))

    def predictions_at(self, epoch: int) -> np.ndarray:
        """Each fold's prediction after `epoch`, or after its last epoch if it stopped earlier."""
        result = np.full(self.labels.size, -1)
        for e in sorted(self.predictions):
            if e > epoch:
                break
            ready = self.predictions[e] >= 0
            result[ready] = self.predictions[e][ready]
        return result

    def metrics(self, predicted: np.ndarray) -> dict:
        f1s, accs = [], []
        for k in range(self.folds):
            mask = self.fold_of == k
            f1s.append(f1_score(self.labels[mask], predicted[mask], average="macro"))
            accs.append(accuracy_score(self.labels[mask], predicted[mask]))
        return {
            "macro_f1_mean": round(float(np.mean(f1s)), 4),
            "macro_f1_sd": round(float(np.std(f1s)), 4),
            "accuracy_mean": round(float(np.mean(accs)), 4),
            "accuracy_sd": round(float(np.std(accs)), 4),
            "folds": self.folds,
            "per_fold_macro_f1": [round(float(f), 4) for f in f1s],
        }

    def summary(self) -> dict:
        at_final = self.predictions_at(self.final_epochs)
        best = np.full(self.labels.size, -1)
        for k, epoch in enumerate(self.best_epochs):
            mask = self.fold_of == k
            best[mask] = self.predictions_at(epoch)[mask]
        return {
            **self.metrics(at_final),
            "epoch": self.final_epochs,
            "best_epochs": self.best_epochs,
            "at_each_folds_best_epoch": self.metrics(best),
            "confusion": confusion_matrix(self.labels, at_final, labels=range(len(MOODS))).tolist(),
            "held_out_artists": self.held_out_artists,
        }


def artist_folds(labels: np.ndarray, groups: np.ndarray, folds: int,
                 split_seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    log.info("%d artist folds of %d clips, split seed %d", folds, labels.size, split_seed)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=split_seed)
    return list(splitter.split(np.zeros(labels.size), labels, groups))


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_score(labels, predicted, average="macro"))


# ---------------------------------------------------------------- ANN


@dataclass
class Standardiser:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> "Standardiser":
        std = features.std(axis=0)
        return cls(features.mean(axis=0), np.where(std > 1e-8, std, 1.0))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std).astype(np.float32)


def train_ann(
    x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
    on_epoch=None,
) -> MoodMLP:
    """Fit MoodMLP on standardised features; `on_epoch(epoch, model)` may return False to stop."""
    log.info("ann: fitting on %d clips, %d epochs at most, seed %d", len(x), epochs, seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MoodMLP(N_FEATURES, ANN_HIDDEN, ANN_DROPOUT)
    optimiser = torch.optim.AdamW(model.parameters(), lr=ANN_LR, weight_decay=ANN_WEIGHT_DECAY)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(x))
        for start in range(0, len(x), ANN_BATCH):
            batch = order[start : start + ANN_BATCH]
            inputs = xt[batch] + ANN_INPUT_NOISE * torch.randn(len(batch), x.shape[1])
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs), yt[batch], label_smoothing=LABEL_SMOOTHING)
            loss.backward()
            optimiser.step()
        if on_epoch is not None and on_epoch(epoch, model) is False:
            break
    return model.eval()


def ann_predict(model: MoodMLP, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).argmax(dim=1).numpy()


def cross_validate_ann(data: Dataset, folds: int, epochs: int, seed: int = SEED,
                       split_seed: int = SEED) -> CVResult:
    labels = data.labels
    result = CVResult(labels, folds, fold_of=np.zeros(labels.size, dtype=int))
    for k, (train_idx, val_idx) in enumerate(artist_folds(labels, data.groups, folds, split_seed)):
        result.fold_of[val_idx] = k
        result.held_out_artists.append(sorted(set(data.groups[val_idx].tolist())))
        scale = Standardiser.fit(data.features[train_idx])
        x_val, y_val = scale(data.features[val_idx]), labels[val_idx]
        best = {"f1": -1.0, "epoch": 1}

        def on_epoch(epoch: int, model: MoodMLP) -> bool:
            predicted = ann_predict(model.eval(), x_val)
            result.record(epoch, val_idx, predicted)
            score = macro_f1(y_val, predicted)
            if score > best["f1"]:
                best.update(f1=score, epoch=epoch)
            return epoch - best["epoch"] < 10 * PATIENCE

        train_ann(scale(data.features[train_idx]), labels[train_idx], epochs, seed + k, on_epoch)
        result.best_epochs.append(best["epoch"])
        result.best_f1.append(best["f1"])
        log.info("ann fold %d/%d: best macro-F1 %.3f at epoch %d", k + 1, folds, best["f1"], best["epoch"])
    return result


def ann_arrays(model: MoodMLP, scale: Standardiser) -> dict[str, np.ndarray]:
    """The numpy form served by the fallback: x' = (x - mean) / std, then x' @ W + b with ReLUs."""
    arrays = {"mean": scale.mean.astype(np.float32), "std": scale.std.astype(np.float32)}
    for i, layer in enumerate(model.linear_layers()):
        arrays[f"W{i}"] = layer.weight.detach().numpy().T.astype(np.float32)
        arrays[f"b{i}"] = layer.bias.detach().numpy().astype(np.float32)
    return arrays


def numpy_ann_logits(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    x = (features - arrays["mean"]) / arrays["std"]
    n_layers = sum(1 for name in arrays if name.startswith("W"))
    for i in range(n_layers):
        x = x @ arrays[f"W{i}"] + arrays[f"b{i}"]
        if i < n_layers - 1:
            x = np.maximum(x, 0.0)
    return x


# ---------------------------------------------------------------- embedding head


def train_head(x: np.ndarray, y: np.ndarray) -> E.EmbeddingHead:
    """Logistic regression on the standardised embedding, in the numpy form serving runs."""
    from sklearn.linear_model import LogisticRegression

    if np.unique(y).size != len(MOODS):
        raise ValueError(f"the embedding head needs clips of all {len(MOODS)} moods to train on")
    scale = Standardiser.fit(x)
    model = LogisticRegression(C=HEAD_C, max_iter=HEAD_MAX_ITER).fit(scale(x), y)
    return E.EmbeddingHead(scale.mean.astype(np.float32), scale.std.astype(np.float32),
                           model.coef_.T.astype(np.float32), model.intercept_.astype(np.float32))


def head_out_of_fold(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int,
                     split_seed: int = SEED) -> np.ndarray:
    """(n, 4) head probabilities of each clip, from the artist fold that held it out."""
    probabilities = np.zeros((labels.size, len(MOODS)))
    for train_idx, val_idx in artist_folds(labels, groups, folds, split_seed):
        probabilities[val_idx] = train_head(embeddings[train_idx], labels[train_idx]).predict(embeddings[val_idx])
    return probabilities


# ---------------------------------------------------------------- main model


def augment_batch(mels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, N_MELS, frames) section log-mels -> (B, N_SEGMENTS, N_MELS, N_FRAMES) training crops.

    Each segment moves up to JITTER_FRAMES around its serving position (in time order, so the
    LSTM still reads a song forwards), the whole song gets a random gain, and each segment one
    time and one frequency mask (SpecAugment, light).
    """
    batch, _, frames = mels.shape
    serving = np.arange(N_SEGMENTS) * N_FRAMES
    jitter = rng.integers(-JITTER_FRAMES, JITTER_FRAMES + 1, size=(batch, N_SEGMENTS))
    offsets = np.clip(serving + jitter, 0, frames - N_FRAMES)
    out = np.stack([audio.section_segments(mels[b], offsets[b]) for b in range(batch)])
    out += rng.uniform(-GAIN_DB, GAIN_DB, size=(batch, 1, 1, 1)).astype(np.float32)
    floor = out.min(axis=(2, 3), keepdims=True)
    for b in range(batch):
        for s in range(N_SEGMENTS):
            t0 = rng.integers(0, N_FRAMES - TIME_MASK_FRAMES)
            width = rng.integers(0, TIME_MASK_FRAMES + 1)
            out[b, s, :, t0 : t0 + width] = floor[b, s]
            f0 = rng.integers(0, N_MELS - FREQ_MASK_BANDS)
            bands = rng.integers(0, FREQ_MASK_BANDS + 1)
            out[b, s, f0 : f0 + bands, :] = floor[b, s]
    return out


def serving_crops(mels: np.ndarray) -> np.ndarray:
    """The deterministic crop that `main_model_input` computes for the same clip."""
    return np.stack([audio.section_segments(m) for m in mels])


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def main_predict(model: nn.Module, crops: np.ndarray, device: torch.device, batch: int = 32) -> np.ndarray:
    model.eval()
    logits = []
    with torch.no_grad():
        for start in range(0, len(crops), batch):
            logits.append(model(torch.from_numpy(crops[start : start + batch]).to(device)).cpu())
    return torch.cat(logits).numpy()


def train_main(
    mels: np.ndarray, y: np.ndarray, epochs: int, schedule_epochs: int, seed: int,
    batch_size: int = MAIN_BATCH, on_epoch=None, desc: str = "main",
) -> ResNet18BiLSTM:
    """Fit ResNet18BiLSTM. The one-cycle schedule spans `schedule_epochs`; training stops after
    `epochs` (the final fit stops at the CV's median best epoch on the same schedule)."""
    log.info("%s: fitting the network on %d clips, %d epochs at most, seed %d", desc, len(mels), epochs, seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = pick_device()
    model = ResNet18BiLSTM().to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=MAIN_LR, weight_decay=MAIN_WEIGHT_DECAY)
    steps = -(-len(mels) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=MAIN_LR, total_steps=schedule_epochs * steps, pct_start=0.2
    )
    yt = torch.from_numpy(y).long()
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(mels))
        started, losses = time.perf_counter(), []
        for start in tqdm(range(0, len(mels), batch_size), desc=f"{desc} epoch {epoch}",
                          leave=False, mininterval=10, file=sys.stderr):
            batch = order[start : start + batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            x = torch.from_numpy(augment_batch(mels[batch], rng)).to(device)
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(x), yt[batch].to(device), label_smoothing=LABEL_SMOOTHING)
            loss.backward()
            optimiser.step()
            scheduler.step()
            losses.append(loss.item())
        log.info("%s epoch %d/%d: loss %.3f, %.1f s", desc, epoch, epochs, np.mean(losses),
                 time.perf_counter() - started)
        if on_epoch is not None and on_epoch(epoch, model) is False:
            break
    return model.eval()


def cross_validate_main(data: Dataset, folds: int, epochs: int, batch_size: int, seed: int = SEED,
                        split_seed: int = SEED) -> CVResult:
    labels = data.labels
    device = pick_device()
    result = CVResult(labels, folds, fold_of=np.zeros(labels.size, dtype=int))
    first_scored = max(1, int(epochs * SCORE_FROM_FRACTION))
    for k, (train_idx, val_idx) in enumerate(artist_folds(labels, data.groups, folds, split_seed)):
        result.fold_of[val_idx] = k
        result.held_out_artists.append(sorted(set(data.groups[val_idx].tolist())))
        crops, y_val = serving_crops(data.mels[val_idx]), labels[val_idx]
        best = {"f1": -1.0, "epoch": 1}

        def on_epoch(epoch: int, model: nn.Module) -> bool:
            if epoch < first_scored:  # early epochs of a one-cycle run are never the best
                return True
            predicted = main_predict(model, crops, device).argmax(axis=1)
            result.record(epoch, val_idx, predicted)
            score = macro_f1(y_val, predicted)
            if score > best["f1"]:
                best.update(f1=score, epoch=epoch)
            log.info("main fold %d epoch %d: val macro-F1 %.3f acc %.3f", k + 1, epoch, score,
                     accuracy_score(y_val, predicted))
            return epoch - best["epoch"] < PATIENCE

        train_main(data.mels[train_idx], labels[train_idx], epochs, epochs, seed + k,
                   batch_size, on_epoch, desc=f"fold {k + 1}/{folds}")
        result.best_epochs.append(best["epoch"])
        result.best_f1.append(best["f1"])
        log.info("main fold %d/%d: best macro-F1 %.3f at epoch %d", k + 1, folds, best["f1"], best["epoch"])
    return result


# ---------------------------------------------------------------- export


def export_ready(model: ResNet18BiLSTM) -> ResNet18BiLSTM:
    """An eval copy with every Conv+BN pair fused and all weights rounded to fp16 values.

    main.onnx stores big weights as fp16 (fp32 would be ~47 MB). Fusing first, then rounding, makes
    the torch copy and the ONNX graph hold exactly the same numbers, so they agree to float error.
    """
    fused = copy.deepcopy(model).cpu().eval()
    trunk = fused.trunk
    trunk.conv1 = torch.nn.utils.fusion.fuse_conv_bn_eval(trunk.conv1, trunk.bn1)
    trunk.bn1 = nn.Identity()
    for layer in (trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4):
        for block in layer:
            block.conv1 = torch.nn.utils.fusion.fuse_conv_bn_eval(block.conv1, block.bn1)
            block.bn1 = nn.Identity()
            block.conv2 = torch.nn.utils.fusion.fuse_conv_bn_eval(block.conv2, block.bn2)
            block.bn2 = nn.Identity()
            if block.downsample is not None:
                conv, bn = block.downsample
                block.downsample = nn.Sequential(torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn))
    with torch.no_grad():
        for tensor in list(fused.parameters()) + list(fused.buffers()):
            if tensor.is_floating_point() and tensor.numel() >= FP16_MIN_ELEMENTS:
                tensor.copy_(tensor.half().float())
    return fused


def export_onnx(model: ResNet18BiLSTM, target: Path) -> tuple[ResNet18BiLSTM, str]:
    """Write main.onnx (input `mel`, output `logits`, dynamic batch).

    Returns the torch copy that was exported and the storage dtype of its big weights."""
    import onnx
    from onnx import helper, numpy_helper

    ready = export_ready(model)
    example = torch.zeros(2, N_SEGMENTS, N_MELS, N_FRAMES)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The TorchScript exporter: the dynamo one needs onnxscript, which we do not ship. Its warnings
    # (deprecation, LSTM batch size) are checked away by the parity test at batch 1 and 3.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ready, (example,), str(target), input_names=["mel"], output_names=["logits"],
            opset_version=ONNX_OPSET, dynamo=False,
            dynamic_axes={"mel": {0: "batch"}, "logits": {0: "batch"}},
        )
    graph_model = onnx.load(str(target))
    dtype = "float32"
    if target.stat().st_size > MAX_FP32_ONNX_BYTES:
        graph_model, dtype = _fp16_initializers(graph_model, helper, numpy_helper), "float16"
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(target))
    return ready, dtype


def _fp16_initializers(graph_model, helper, numpy_helper):
    """Store big fp32 initializers as fp16, each followed by a Cast back to fp32: half the file,
    same fp32 arithmetic at run time."""
    import onnx

    graph = graph_model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        if values.size < FP16_MIN_ELEMENTS:
            continue
        name = init.name
        half = numpy_helper.from_array(values.astype(np.float16), name=f"{name}__fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=onnx.TensorProto.FLOAT,
                                      name=f"{name}__cast"))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return graph_model


def onnx_logits(path: Path, mel: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"mel": mel.astype(np.float32)})[0]


def input_spec() -> dict:
    return {
        "name": "mel", "shape": ["batch", N_SEGMENTS, N_MELS, N_FRAMES], "dtype": "float32",
        **{name.lower(): getattr(audio, name) for name in (
            "SAMPLE_RATE", "N_FFT", "HOP_LENGTH", "N_MELS", "FMIN", "FMAX", "SEGMENT_SECONDS",
            "N_SEGMENTS", "SECTION_SECONDS", "N_FRAMES", "SEGMENT_SAMPLES", "LOG_FLOOR")},
    }


def file_version(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return f"{dt.date.today().isoformat()}-{digest}"


def save_confusion(confusion: list[list[int]], title: str, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array(confusion)
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(matrix, cmap="Blues")
    for i in range(len(MOODS)):
        for j in range(len(MOODS)):
            colour = "white" if matrix[i, j] > matrix.max() / 2 else "black"
            axes.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
    axes.set_xticks(range(len(MOODS)), MOODS)
    axes.set_yticks(range(len(MOODS)), MOODS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true (4Q label)")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)


def write_json(target: Path, payload: dict) -> None:
    target.write_text(json.dumps(payload, indent=2) + "\n")


# ---------------------------------------------------------------- model cards


def _metrics_lines(cv: dict) -> str:
    best = cv["at_each_folds_best_epoch"]
    return (
        f"| macro-F1 | {cv['macro_f1_mean']:.3f} ± {cv['macro_f1_sd']:.3f} |\n"
        f"| accuracy | {cv['accuracy_mean']:.3f} ± {cv['accuracy_sd']:.3f} |\n"
        f"| per-fold macro-F1 | {', '.join(f'{f:.3f}' for f in cv['per_fold_macro_f1'])} |\n"
        f"| macro-F1 at each fold's own best epoch (optimistic) | "
        f"{best['macro_f1_mean']:.3f} ± {best['macro_f1_sd']:.3f} |\n"
    )


def _data_lines(n_clips: int, folds: int, split_seed: int) -> str:
    return (
        f"- 4Q audio emotion dataset (Panda et al., 2018), training part: {n_clips} clips of ~30 s "
        "(AllMusic previews), balanced over Q1 happy, Q2 energetic (tense), Q3 sad, Q4 calm.\n"
        f"- Split: {folds}-fold StratifiedGroupKFold grouped by artist (split seed {split_seed}, "
        "--split-seed): no artist is in both train and validation; the JSON card lists each fold's "
        "held-out artists.\n"
        "- Inputs come from `inference/audio.py` / `inference/features.py`, the functions that serve.\n"
    )


def _device_words(meta: dict) -> str:
    if meta["device"].startswith("cuda"):
        return "a CUDA GPU"
    return f"this machine's CPU ({meta['threads']} threads)"


def main_card(meta: dict, n_clips: int) -> str:
    cv, hp = meta["cv"], meta["hyper_parameters"]
    spec = meta["input"]
    return f"""# Model card: main mood model (ResNet18BiLSTM), version {meta['version']}

Audio in, one of {', '.join(MOODS)} out (4 logits in that order), from 30 s of a song.

The bot's main answer is not this network alone: it mixes the network, the ANN on hand-crafted
features and a head on musicnn's pretrained embedding, with weights chosen out of fold (the section
"What the bot serves" below; this network's weight there may be 0).

## Data
{_data_lines(n_clips, cv['folds'], meta.get('split_seed', SEED))}
## Input
`mel` float32 (B, {N_SEGMENTS}, {N_MELS}, {N_FRAMES}): log-mel power in dB of three back-to-back ~10 s
segments of the song's 30 s section (sr {spec['sample_rate']}, n_fft {spec['n_fft']}, hop
{spec['hop_length']}, {N_MELS} mel bands {spec['fmin']:.0f}-{spec['fmax']:.0f} Hz, no centring). A clip
of 10-30 s is looped to 30 s; a longer song uses its loudest 30 s window in the middle half. Input
normalisation is a BatchNorm inside the network. `inference.audio.main_model_input(path)` builds it.

## Architecture
Input BatchNorm, then 2x2 average pooling (each segment 64 x 214 -> 32 x 107: it cuts ResNet18's cost
4x, which the CPU budget needed), then ResNet18 (torchvision, random init, 1-channel conv1, fc
removed) shared by the three segments -> 512-d
each -> bidirectional LSTM (hidden {hp['lstm_hidden']}) -> mean over segments -> dropout, dense
{hp['dense']}, ReLU, dropout, dense 4. {meta['parameters'] / 1e6:.1f} M parameters. Exported to ONNX
(opset {ONNX_OPSET}) with Conv+BN fused; weights stored as {meta['weights_dtype']}, arithmetic in fp32.

## Training
AdamW (lr {hp['lr']}, weight decay {hp['weight_decay']}), one-cycle schedule over {hp['schedule_epochs']}
epochs, batch {hp['batch']}, label smoothing {hp['label_smoothing']}, early stopping on the validation
fold (scored from epoch {max(1, int(hp['schedule_epochs'] * SCORE_FROM_FRACTION))}, patience {hp['patience']}). Augmentation: each segment shifted up to ±{JITTER_FRAMES} frames
(~5 s), random gain ±{GAIN_DB:.0f} dB, one time mask (≤{TIME_MASK_FRAMES} frames) and one frequency mask
(≤{FREQ_MASK_BANDS} bands) per segment. No pretrained weights. Final model: all {n_clips} clips,
{meta['final_epochs']} epochs (median best epoch of the folds) on the same schedule. Seed {meta.get('seed', SEED)}
(--seed: initialisation, batch order, augmentation, dropout; CV fold k uses seed + k).
Measured on {_device_words(meta)}: {meta['epoch_seconds']:.0f} s per epoch over {n_clips} clips;
whole run {meta['train_minutes']:.0f} min.

## Cross-validated results (measured)
Out-of-fold predictions after {cv['epoch']} epochs, mean ± sd over {cv['folds']} artist-disjoint folds:

| metric | value |
|---|---|
{_metrics_lines(cv)}
Target was macro-F1 >= 0.80; published anchors on the full 900 clips: 76.4 % (features + SVM),
80.2 % (deep ensemble). The network's confusion matrix is `cv.confusion` in main.json; `confusion_main.png`
is the served answer's once `inference.fusion --write` has run (below), the network's before.

## Known limits
- Trained from scratch on only {n_clips} clips, on two shared CPU cores with a small epoch budget
  ({hp['schedule_epochs']} epochs): it is under-trained. With {cv['folds']} folds each CV model saw only
  {100 * (cv['folds'] - 1) // cv['folds']} % of the clips, so the CV score is a pessimistic estimate for
  the final model, and with so few folds the ± is itself rough.
- Labels come from AllMusic mood tags of whole songs; a 30 s preview may not carry the song's mood.
- The served answer's embedding head hears {len(E.SERVED_PATCHES)} of the section's {E.N_PATCHES} 3 s patches (a CPU budget
  choice: ~30 ms of CPU per patch); musicnn was pretrained on Million Song Dataset tags (mostly Western popular music, 2000s last.fm users).
- Western popular music dominates the data; other traditions are out of distribution.
- Q1/Q4 (positive valence) versus Q2/Q3 is the hard axis; arousal is easier (see the confusion matrix).
- fp16 weight storage moves the logits slightly against the fp32 torch model (the tests bound it at
  1 % of the logit scale); the ONNX graph matches the fp16-rounded torch model to
  {meta['onnx_torch_max_abs_diff']:.1e}.
"""


def ann_card(meta: dict, n_clips: int) -> str:
    cv = meta["cv"]
    return f"""# Model card: fallback ANN (MoodMLP on hand-crafted features), version {meta['version']}

The fast fallback: {N_FEATURES} hand-crafted features of the 30 s section
(`inference.features.handcrafted_features`, one STFT: timbre (MFCC and delta statistics), spectral
shape, moments and entropy, contrast, band-wise flatness, irregularity, peak energy share and flux,
chroma (mean, spread, profile in the detected key), tonnetz, key clarity and mode, loudness
dynamics, tempo, pulse clarity, band-wise onsets, loudness modulation spectrum, 1 s texture spread;
the docstring lists every name) -> standardise -> MLP -> 4 logits in
{', '.join(MOODS)} order. Serves in pure numpy from `ann.npz` (`mean`, `std`, `W0`, `b0`, ...:
x = (x - mean) / std, then x @ W + b with ReLU between layers, softmax at the end).

## Data
{_data_lines(n_clips, cv['folds'], meta.get('split_seed', SEED))}
## Model and training
MLP {N_FEATURES} -> {' -> '.join(str(h) for h in ANN_HIDDEN)} -> 4, ReLU, dropout {ANN_DROPOUT}. AdamW (lr
{ANN_LR}, weight decay {ANN_WEIGHT_DECAY}), batch {ANN_BATCH}, label smoothing {LABEL_SMOOTHING}, Gaussian
noise (sd {ANN_INPUT_NOISE}) on the standardised inputs while training, up to
{ANN_EPOCHS} epochs with early stopping on the validation fold. Final model: all {n_clips} clips for
{meta['final_epochs']} epochs (median best epoch of the folds), standardisation fitted on all clips.
Seed {meta.get('seed', SEED)} (--seed: initialisation, batch order, input noise, dropout; CV fold k uses seed + k).

## Cross-validated results (measured)
Out-of-fold predictions after {cv['epoch']} epochs, mean ± sd over {cv['folds']} artist-disjoint folds:

| metric | value |
|---|---|
{_metrics_lines(cv)}
Target was macro-F1 >= 0.70. ![confusion matrix](confusion_ann.png)

## Known limits
- Summary statistics of a 30 s section: time structure enters only through rhythm, modulation
  and 1 s texture statistics, not through the order of events.
- Tempo from one autocorrelation estimate can be off by a factor of two.
- Valence (happy vs energetic, calm vs sad) is the hard axis for these features, as for the
  network (see the confusion matrix).
- The score above is one training seed's: between seeds of the same recipe the CV macro-F1 moves
  by about ±0.01 (docs/models.md, "Measured quality", has three seeds).
- Same data limits as the main model (AllMusic tags, {n_clips} clips, mostly Western music).
"""


# ---------------------------------------------------------------- commands


def run_ann(data: Dataset, folds: int, epochs: int | None, out: Path, seed: int = SEED,
            split_seed: int = SEED) -> dict:
    started = time.perf_counter()
    cv = cross_validate_ann(data, folds, epochs or ANN_EPOCHS, seed, split_seed)
    summary = cv.summary()
    log.info("ANN CV: macro-F1 %.3f ± %.3f, accuracy %.3f ± %.3f (epoch %d)",
             summary["macro_f1_mean"], summary["macro_f1_sd"], summary["accuracy_mean"],
             summary["accuracy_sd"], summary["epoch"])
    scale = Standardiser.fit(data.features)
    model = train_ann(scale(data.features), data.labels, cv.final_epochs, seed)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "ann.npz", **ann_arrays(model, scale))
    meta = {
        "name": "MoodMLP", "version": file_version(out / "ann.npz"), "moods": list(MOODS),
        "feature_names": list(FEATURE_NAMES), "hidden": list(ANN_HIDDEN),
        "final_epochs": cv.final_epochs, "cv": summary, "n_clips": len(data.clips),
        "seed": seed, "split_seed": split_seed, "train_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out / "ann.json", meta)
    save_confusion(summary["confusion"], f"ANN, {folds}-fold artist CV (out-of-fold)", out / "confusion_ann.png")
    (out / "MODEL_CARD_ann.md").write_text(ann_card(meta, len(data.clips)))
    return meta


def run_main(data: Dataset, folds: int, epochs: int, batch_size: int, out: Path, seed: int = SEED,
             split_seed: int = SEED) -> dict:
    started = time.perf_counter()
    summary = cross_validate_main(data, folds, epochs, batch_size, seed, split_seed).summary()
    log.info("main CV: macro-F1 %.3f ± %.3f, accuracy %.3f ± %.3f (epoch %d)",
             summary["macro_f1_mean"], summary["macro_f1_sd"], summary["accuracy_mean"],
             summary["accuracy_sd"], summary["epoch"])
    return fit_main(data, summary, epochs, batch_size, out, started, seed, split_seed)


def fit_main(data: Dataset, summary: dict, epochs: int, batch_size: int, out: Path, started: float,
             seed: int = SEED, split_seed: int = SEED) -> dict:
    """The final fit for the CV's epoch (`summary["epoch"]`) on all clips, exported with its card.

    Apart from `run_main` so that a CV measured by itself can be shipped without running it twice."""
    final_epochs = summary["epoch"]
    final_started = time.perf_counter()
    model = train_main(data.mels, data.labels, final_epochs, epochs, seed, batch_size, desc="final")
    epoch_seconds = (time.perf_counter() - final_started) / max(final_epochs, 1)
    exported, weights_dtype = export_onnx(model, out / "main.onnx")
    # The shipped graph must answer like the torch model it came from.
    probe = serving_crops(data.mels[:4])
    with torch.no_grad():
        expected = exported(torch.from_numpy(probe)).numpy()
    parity = float(np.abs(onnx_logits(out / "main.onnx", probe) - expected).max())
    meta = {
        "name": "ResNet18BiLSTM", "version": file_version(out / "main.onnx"), "moods": list(MOODS),
        "input": input_spec(), "output": {"name": "logits", "shape": ["batch", len(MOODS)]},
        "cv": summary, "final_epochs": final_epochs, "n_clips": len(data.clips),
        "seed": seed, "split_seed": split_seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_dtype": weights_dtype,
        "onnx_torch_max_abs_diff": parity, "epoch_seconds": round(epoch_seconds, 1),
        "train_minutes": round((time.perf_counter() - started) / 60, 1),
        "device": str(pick_device()), "threads": torch.get_num_threads(),
        "hyper_parameters": {
            "lr": MAIN_LR, "weight_decay": MAIN_WEIGHT_DECAY, "batch": batch_size,
            "schedule_epochs": epochs, "label_smoothing": LABEL_SMOOTHING, "patience": PATIENCE,
            "lstm_hidden": model.lstm.hidden_size, "dense": model.head[1].out_features,
        },
    }
    write_json(out / "main.json", meta)
    save_confusion(summary["confusion"], f"main, {summary['folds']}-fold artist CV (out-of-fold)",
                   out / "confusion_main.png")
    (out / "MODEL_CARD_main.md").write_text(main_card(meta, len(data.clips)))
    return meta


def setup_logging(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        root.addHandler(logging.StreamHandler(sys.stderr))


def training_clips(args: argparse.Namespace) -> list[Clip]:
    """The clips to train on, checked against the folds each model in `args.model` will use."""
    clips = read_labels(args.data, args.limit)
    check_clips_exist(clips)
    fold_counts = set()
    if args.model in ("ann", "both", "all"):
        fold_counts.add(args.folds or ANN_FOLDS)
    if args.model in ("main", "both", "head", "all"):
        fold_counts.add(args.folds or MAIN_FOLDS)
    for folds in sorted(fold_counts):
        check_folds(clips, folds, args.split_seed)
    return clips


def writable(option: str, path: Path, folder: Path) -> None:
    """Create `path`'s `folder` and write there now, so that a bad path fails before the training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if path == folder:
            with tempfile.TemporaryFile(dir=folder):
                pass
        else:
            path.open("a").close()
    except OSError as error:
        raise TrainingSetupError(f"{option} {path}: cannot write there ({error.strerror or error})") from None


def check_outputs(args: argparse.Namespace) -> None:
    if args.model == "head":
        missing = [name for name in ("main.json", "ann.json") if not (args.out / name).is_file()]
        if missing:
            raise TrainingSetupError(f"--model head needs a trained network and ANN in --out {args.out} "
                                     f"({', '.join(missing)} missing): train them first with --model both")
    writable("--out", args.out, args.out)
    writable("--cache-dir", args.cache_dir, args.cache_dir)
    writable("--log-file", args.log_file, args.log_file.parent)


# What the head step reads from --out besides what this run trains; copied into the staging folder.
HEAD_INPUTS = ("main.json", "ann.json", "MODEL_CARD_main.md", E.WEIGHTS)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
STAGE_PREFIX = ".train-staging-"
# In each staging folder, flock-ed by its run from just after the folder is made until it is removed.
# The kernel frees the lock when the run dies, however it dies, so a lock anyone can take is stale.
STAGE_LOCK = ".lock"
# A staging folder without a lock is left by a run from before the lock, or is this instant being
# made or removed (and so has just changed): it is removed once it has not changed for this long.
UNLOCKED_STAGE_SECONDS = 24 * 3600


@contextmanager
def staging_folder(out: Path):
    """A new staging folder in `out`, locked for this run while the block runs, then removed."""
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=out))
    lock = None
    try:
        # Locked before it has its name, so no other run ever finds this run's lock free.
        partial = stage / f"{STAGE_LOCK}.partial"
        lock = open(partial, "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}, started "
                   f"{dt.datetime.now().isoformat(timespec='seconds')}\n")
        lock.flush()
        os.replace(partial, stage / STAGE_LOCK)
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if lock is not None:
            lock.close()


def remove_stale_stages(out: Path) -> list[Path]:
    """Remove the staging folders in `out` that no live run holds: those of runs killed outright
    (SIGKILL, the out-of-memory killer, a power cut), which could not remove their own."""
    removed = []
    for folder in sorted(out.glob(f"{STAGE_PREFIX}*")):
        if folder.is_dir() and _remove_if_stale(folder):
            removed.append(folder)
    return removed


def _remove_if_stale(folder: Path) -> bool:
    try:
        lock = open(folder / STAGE_LOCK, "r+")
    except FileNotFoundError:
        try:
            unchanged = time.time() - folder.stat().st_mtime
        except FileNotFoundError:  # its run has just removed it
            return False
        if unchanged < UNLOCKED_STAGE_SECONDS:
            log.info("kept %s: it has no lock (a run from before the lock, or one starting or ending now) "
                     "and changed %.0f min ago; it is removed once unchanged for a day", folder, unchanged / 60)
            return False
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, a staging folder without a lock unchanged for %.0f h", folder, unchanged / 3600)
        return True
    except OSError as error:
        log.warning("kept %s: cannot open its lock (%s)", folder, error.strerror or error)
        return False
    with lock:
        owner = lock.read().strip() or "owner unknown"
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("kept %s: the run that holds it is still going (%s)", folder, owner)
            return False
        if os.fstat(lock.fileno()).st_nlink == 0:  # its run finished and removed it meanwhile
            return False
        shutil.rmtree(folder, ignore_errors=True)
    log.info("removed %s, left by a run that was killed or died (%s)", folder, owner)
    return True


def publish(stage: Path, out: Path) -> list[str]:
    """Move every file of `stage` into `out`, each by one atomic rename (the cards last, as they name
    the weights' versions): a bot loading from `out` meanwhile reads an old or a new file, never half."""
    names = sorted((p.name for p in stage.iterdir() if p.name != STAGE_LOCK),
                   key=lambda name: (name.endswith(".json"), name))
    for name in names:
        os.replace(stage / name, out / name)
    return names


def _has_fusion(card: Path) -> bool:
    try:
        return bool(json.loads(card.read_text()).get("fusion"))
    except (OSError, ValueError):
        return False


def train_into(stage: Path, args: argparse.Namespace, data: Dataset) -> None:
    if args.model in ("ann", "both", "all"):
        run_ann(data, args.folds or ANN_FOLDS, args.epochs, stage, args.seed, args.split_seed)
    if args.model in ("main", "both", "all"):
        run_main(data, args.folds or MAIN_FOLDS, args.epochs or MAIN_EPOCHS, args.batch_size, stage,
                 args.seed, args.split_seed)
    if args.model in ("main", "both") and _has_fusion(args.out / "main.json"):
        log.warning("the new main.json has no fusion weights, so the bot will serve the network alone "
                    "instead of its mix with the ANN and the musicnn head: run `python -m inference train "
                    "--model head --out %s` after this to choose them again", args.out)
    if args.model in ("head", "all"):
        from inference import fusion  # it imports this module

        for name in HEAD_INPUTS:
            if not (stage / name).exists() and (args.out / name).exists():
                shutil.copy2(args.out / name, stage / name)
        final_epochs = json.loads((stage / "main.json").read_text())["final_epochs"]
        result = fusion.run(data, args.folds or MAIN_FOLDS, final_epochs, args.cache_dir, stage,
                            args.workers, write=True, seed=args.seed, split_seed=args.split_seed)
        log.info("fusion (main, ann, embedding) = (%s, %s, %s): macro-F1 %.3f ± %.3f", result["main_weight"],
                 result["ann_weight"], result["embedding_weight"], result["cv"]["fused"]["macro_f1_mean"],
                 result["cv"]["fused"]["macro_f1_sd"])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(argv, parser)
    try:
        clips = training_clips(args)
        check_outputs(args)
    except TrainingSetupError as error:
        parser.error(str(error))
    setup_logging(args.log_file)
    torch.set_num_threads(args.threads)
    log.info("training %s on %d clips from %s, device %s, seed %d, split seed %d", args.model, len(clips),
             args.data, pick_device(), args.seed, args.split_seed)
    remove_stale_stages(args.out)
    # Everything is written to a staging folder beside the weights and moved into --out only when the
    # whole run has finished: Ctrl-C or a failure leaves the weights there as they were.
    with staging_folder(args.out) as stage:
        try:
            data = load_dataset(clips, args.cache_dir, args.workers)
            train_into(stage, args, data)
            log.info("wrote %s to %s", ", ".join(publish(stage, args.out)), args.out)
        except KeyboardInterrupt:
            log.warning("interrupted: nothing in %s was replaced", args.out)
            return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
