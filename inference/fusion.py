"""Choose how much the ANN weighs in the main answer, on out-of-fold predictions.

    python -m inference.fusion [--folds 3] [--epochs N] [--write]

For each artist fold (the same split as `train`), fit the main model (on the shipped schedule:
one-cycle over MAIN_EPOCHS, stopped at the final fit's epoch) and the ANN on the other folds, keep
both models' probabilities for the held-out clips, then score p = (1 - a) * p_main + a * p_ann for
a = 0, 0.1, ..., 1. With --write, the best `a` and the scores go into weights/main.json, where
`predict.MainModel` picks them up. Choosing one scalar on the same out-of-fold predictions is
slightly optimistic; the card says so.

The main model's out-of-fold probabilities cost ~10 min of CPU and do not depend on the ANN, so
they are kept under the cache directory, keyed by the shipped main.onnx, the audio front and the
fold/epoch settings: retraining only the ANN re-runs fusion in seconds.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix

from inference import train as T

log = logging.getLogger(__name__)
WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 11), 1)


def main_cache_path(cache_dir: Path, folds: int, epochs: int) -> Path:
    """Where the main model's out-of-fold probabilities for these settings are kept."""
    main_meta = json.loads((T.DEFAULT_OUT / "main.json").read_text())
    settings = {
        "main_version": main_meta["version"], "input": main_meta["input"], "folds": folds,
        "epochs": epochs, "schedule": T.MAIN_EPOCHS, "seed": T.SEED,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir / f"fusion-main-{key}.npy"


def main_out_of_fold(data: T.Dataset, folds: int, epochs: int, cache: Path | None) -> np.ndarray:
    """(n, 4) main-model probabilities of each clip, from the fold that held it out."""
    if cache is not None and cache.exists():
        log.info("main out-of-fold probabilities from %s", cache)
        return np.load(cache)
    labels = data.labels
    p_main = np.zeros((labels.size, 4))
    for k, (train_idx, val_idx) in enumerate(T.artist_folds(labels, data.groups, folds)):
        started = time.perf_counter()
        model = T.train_main(data.mels[train_idx], labels[train_idx], epochs, T.MAIN_EPOCHS, T.SEED + k,
                             desc=f"fusion fold {k + 1}/{folds}")
        logits = T.main_predict(model, T.serving_crops(data.mels[val_idx]), T.pick_device())
        p_main[val_idx] = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        log.info("fusion fold %d/%d: %.0f s", k + 1, folds, time.perf_counter() - started)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, p_main)
    return p_main


def ann_out_of_fold(data: T.Dataset, folds: int, ann_epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) ANN probabilities of each clip from the fold that held it out, and each clip's fold."""
    labels = data.labels
    p_ann = np.zeros((labels.size, 4))
    fold_of = np.zeros(labels.size, dtype=int)
    for k, (train_idx, val_idx) in enumerate(T.artist_folds(labels, data.groups, folds)):
        fold_of[val_idx] = k
        scale = T.Standardiser.fit(data.features[train_idx])
        ann = T.train_ann(scale(data.features[train_idx]), labels[train_idx], ann_epochs, T.SEED + k)
        with torch.no_grad():
            x = torch.from_numpy(scale(data.features[val_idx]))
            p_ann[val_idx] = torch.softmax(ann.eval()(x), dim=1).numpy()
    return p_ann, fold_of


def out_of_fold(
    data: T.Dataset, folds: int, epochs: int, ann_epochs: int, main_cache: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p_main = main_out_of_fold(data, folds, epochs, main_cache)
    p_ann, fold_of = ann_out_of_fold(data, folds, ann_epochs)
    return p_main, p_ann, fold_of


def scores(labels: np.ndarray, probabilities: np.ndarray, fold_of: np.ndarray) -> dict:
    predicted = probabilities.argmax(axis=1)
    f1s, accs = [], []
    for k in np.unique(fold_of):
        mask = fold_of == k
        f1s.append(T.macro_f1(labels[mask], predicted[mask]))
        accs.append(accuracy_score(labels[mask], predicted[mask]))
    return {"macro_f1_mean": round(float(np.mean(f1s)), 4), "macro_f1_sd": round(float(np.std(f1s)), 4),
            "accuracy_mean": round(float(np.mean(accs)), 4), "accuracy_sd": round(float(np.std(accs)), 4),
            "per_fold_macro_f1": [round(float(f), 4) for f in f1s]}


CARD_SECTION = "## What the bot serves: the network fused with the ANN"
CARD_NEXT_SECTION = "## Known limits"


def card_section(result: dict) -> str:
    """The main model card's section on fusion, from the figures `main` measured."""
    a, cv = result["ann_weight"], result["cv"]

    def row(name: str, s: dict, bold: bool = False) -> str:
        f1 = f"{s['macro_f1_mean']:.3f} ± {s['macro_f1_sd']:.3f}"
        folds = ", ".join(f"{f:.3f}" for f in s.get("per_fold_macro_f1", []))
        return f"| {name} | {f'**{f1}**' if bold else f1} | {s['accuracy_mean']:.3f} ± {s['accuracy_sd']:.3f} | {folds} |\n"

    def gain(better: dict, worse: dict) -> str:
        per_fold = [b - w for b, w in zip(better.get("per_fold_macro_f1", []), worse.get("per_fold_macro_f1", []))]
        folds = ", ".join(f"{d:+.3f}" for d in per_fold)
        return f"{better['macro_f1_mean'] - worse['macro_f1_mean']:+.3f} macro-F1 (per fold {folds})"

    return (
        f"{CARD_SECTION}\n"
        f'`main.json` carries `"fusion": {{"ann_weight": {a}, ...}}`, so the main answer is\n'
        f"{1 - a:.1f} × p(ResNet18BiLSTM) + {a:.1f} × p(ANN) on the same 30 s section "
        "(`predict.MainModel.predict_section`;\nthe version gains a `+ann` suffix). The weight was chosen by "
        "`python -m inference.fusion`: both models\n"
        f"refitted on the same {result['folds']} artist folds (main: {result['epochs']} epochs of the "
        f"{T.MAIN_EPOCHS}-epoch schedule; ANN: {result['ann_epochs']} epochs, as\nits final fit), their "
        "out-of-fold probabilities mixed with ANN weights 0, 0.1, …, 1.\n\n"
        f"| out-of-fold, {result['folds']} artist folds | macro-F1 | accuracy | per-fold macro-F1 |\n"
        "|---|---|---|---|\n"
        + row("ResNet18BiLSTM alone", cv["main"]) + row("ANN alone", cv["ann"])
        + row(f"fused, ANN weight {a}", cv["fused"], bold=True)
        + f"\nFused minus ANN alone: {gain(cv['fused'], cv['ann'])}; fused minus network alone: "
        f"{gain(cv['fused'], cv['main'])}.\nA difference smaller than the folds' sd is within noise. "
        "Choosing one scalar on the same out-of-fold predictions is slightly optimistic. The serving "
        "cost of fusion\nis the hand-crafted features on the main path (see the README's benchmark).\n\n"
    )


def with_card_section(card: str, section: str) -> str:
    """`card` with its fusion section replaced by `section` (inserted before the limits if absent)."""
    start = card.find(CARD_SECTION)
    end = card.find(CARD_NEXT_SECTION)
    if end < 0:
        return card.rstrip("\n") + "\n\n" + section
    return card[: start if start >= 0 else end] + section + card[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.fusion", description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=T.MAIN_FOLDS)
    parser.add_argument("--epochs", type=int, default=None,
                        help="main model epochs (default: the shipped final fit's, from main.json)")
    parser.add_argument("--write", action="store_true",
                        help="record the chosen weight in main.json and MODEL_CARD_main.md")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = json.loads((T.DEFAULT_OUT / "main.json").read_text())["final_epochs"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    data = T.load_dataset(T.read_labels(T.DEFAULT_DATA), T.DEFAULT_CACHE, workers=1)
    ann_epochs = json.loads((T.DEFAULT_OUT / "ann.json").read_text())["cv"]["epoch"]  # the final ANN's
    p_main, p_ann, fold_of = out_of_fold(data, args.folds, args.epochs, ann_epochs,
                                         main_cache_path(T.DEFAULT_CACHE, args.folds, args.epochs))
    table = {float(a): scores(data.labels, (1 - a) * p_main + a * p_ann, fold_of) for a in WEIGHT_GRID}
    for a, s in table.items():
        print(f"ann_weight={a:.1f}  macro-F1 {s['macro_f1_mean']:.3f} ± {s['macro_f1_sd']:.3f}")
    best = max(table, key=lambda a: table[a]["macro_f1_mean"])
    fused = (1 - best) * p_main + best * p_ann
    result = {
        "ann_weight": best, "folds": args.folds, "epochs": args.epochs, "ann_epochs": ann_epochs,
        "cv": {"main": table[0.0], "ann": table[1.0], "fused": table[best]},
        "confusion": confusion_matrix(data.labels, fused.argmax(axis=1), labels=range(4)).tolist(),
    }
    print(json.dumps(result, indent=2))
    if args.write:
        card_path = T.DEFAULT_OUT / "main.json"
        card = json.loads(card_path.read_text())
        card["fusion"] = result
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        text_path = T.DEFAULT_OUT / "MODEL_CARD_main.md"
        text_path.write_text(with_card_section(text_path.read_text(), card_section(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
