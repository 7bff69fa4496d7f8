"""Choose how much the ANN weighs in the main answer, on out-of-fold predictions.

    python -m inference.fusion [--folds 3] [--epochs 18] [--write]

For each artist fold (the same split as `train`), fit the main model (on the shipped schedule:
one-cycle over MAIN_EPOCHS, stopped at the final fit's epoch) and the ANN on the other folds, keep
both models' probabilities for the held-out clips, then score p = (1 - a) * p_main + a * p_ann for
a = 0, 0.1, ..., 1. With --write, the best `a` and the scores go into weights/main.json, where
`predict.MainModel` picks them up. Choosing one scalar on the same out-of-fold predictions is
slightly optimistic; the card says so.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix

from inference import train as T

log = logging.getLogger(__name__)
WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 11), 1)


def out_of_fold(data: T.Dataset, folds: int, epochs: int, ann_epochs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = data.labels
    p_main = np.zeros((labels.size, 4))
    p_ann = np.zeros((labels.size, 4))
    fold_of = np.zeros(labels.size, dtype=int)
    for k, (train_idx, val_idx) in enumerate(T.artist_folds(labels, data.groups, folds)):
        fold_of[val_idx] = k
        started = time.perf_counter()
        model = T.train_main(data.mels[train_idx], labels[train_idx], epochs, T.MAIN_EPOCHS, T.SEED + k,
                             desc=f"fusion fold {k + 1}/{folds}")
        logits = T.main_predict(model, T.serving_crops(data.mels[val_idx]), T.pick_device())
        p_main[val_idx] = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        scale = T.Standardiser.fit(data.features[train_idx])
        ann = T.train_ann(scale(data.features[train_idx]), labels[train_idx], ann_epochs, T.SEED + k)
        with torch.no_grad():
            x = torch.from_numpy(scale(data.features[val_idx]))
            p_ann[val_idx] = torch.softmax(ann.eval()(x), dim=1).numpy()
        log.info("fusion fold %d/%d: %.0f s", k + 1, folds, time.perf_counter() - started)
    return p_main, p_ann, fold_of


def scores(labels: np.ndarray, probabilities: np.ndarray, fold_of: np.ndarray) -> dict:
    predicted = probabilities.argmax(axis=1)
    f1s, accs = [], []
    for k in np.unique(fold_of):
        mask = fold_of == k
        f1s.append(T.macro_f1(labels[mask], predicted[mask]))
        accs.append(accuracy_score(labels[mask], predicted[mask]))
    return {"macro_f1_mean": round(float(np.mean(f1s)), 4), "macro_f1_sd": round(float(np.std(f1s)), 4),
            "accuracy_mean": round(float(np.mean(accs)), 4), "accuracy_sd": round(float(np.std(accs)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.fusion", description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=T.MAIN_FOLDS)
    parser.add_argument("--epochs", type=int, default=18, help="the final fit's epoch (main.json)")
    parser.add_argument("--write", action="store_true", help="record the chosen weight in main.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    data = T.load_dataset(T.read_labels(T.DEFAULT_DATA), T.DEFAULT_CACHE, workers=1)
    ann_epochs = json.loads((T.DEFAULT_OUT / "ann.json").read_text())["cv"]["epoch"]  # the final ANN's
    p_main, p_ann, fold_of = out_of_fold(data, args.folds, args.epochs, ann_epochs)
    table = {float(a): scores(data.labels, (1 - a) * p_main + a * p_ann, fold_of) for a in WEIGHT_GRID}
    for a, s in table.items():
        print(f"ann_weight={a:.1f}  macro-F1 {s['macro_f1_mean']:.3f} ± {s['macro_f1_sd']:.3f}")
    best = max(table, key=lambda a: table[a]["macro_f1_mean"])
    fused = (1 - best) * p_main + best * p_ann
    result = {
        "ann_weight": best, "folds": args.folds, "epochs": args.epochs,
        "cv": {"main": table[0.0], "ann": table[1.0], "fused": table[best]},
        "confusion": confusion_matrix(data.labels, fused.argmax(axis=1), labels=range(4)).tolist(),
    }
    print(json.dumps(result, indent=2))
    if args.write:
        card_path = T.DEFAULT_OUT / "main.json"
        card = json.loads(card_path.read_text())
        card["fusion"] = result
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
