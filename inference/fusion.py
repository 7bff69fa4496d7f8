"""Choose how much each part weighs in the main answer, on out-of-fold predictions.

    python -m inference.fusion [--folds 3] [--epochs N] [--write | --calibrate]

Three parts: the network (ResNet18BiLSTM), the ANN on hand-crafted features, and a logistic
regression "head" on musicnn's pretrained embedding (`inference.embedding`). For each artist fold
(the same split as `train`), fit the network (on the one-cycle schedule and batch of the network in
main.json, stopped at its final fit's epoch), the ANN and the head on the other folds, keep their
probabilities for the held-out clips, then score p = m * p_main + a * p_ann + e * p_head for every
(m, a, e) on a 0.1 grid with m + a + e = 1 and m >= MIN_NETWORK_WEIGHT. With --write, the best weights, the scores and the
head refitted on all clips go into weights/main.json, where `predict.MainModel` picks them up.
Choosing the weights on the same out-of-fold predictions is slightly optimistic; the card says so.
The fused out-of-fold probabilities also fit the temperature that makes the served confidence honest
(`inference.calibration`); --calibrate fits it for the weights main.json already serves and writes
only that.

The network's out-of-fold probabilities cost ~10 min of CPU and do not depend on the others, so
they are kept under the cache directory, keyed by the shipped main.onnx, the audio front and the
fold/epoch settings; the embeddings are cached per clip (`train.load_embeddings`): re-choosing the
weights costs seconds once the caches exist.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix

from inference import calibration as C
from inference import embedding as E
from inference.cliargs import at_least
from inference import train as T
from inference import train_args as A

log = logging.getLogger(__name__)
WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 11), 1)
# (main, ann, embedding) weights summing to 1, in steps of 0.1: 66 candidates.
SIMPLEX_GRID = [(float(round(1.0 - a - e, 1)), float(a), float(e)) for a in WEIGHT_GRID for e in WEIGHT_GRID
                if a + e <= 1.0 + 1e-9]
# The served answer keeps the ResNet18+BiLSTM in it: the product is that network's answer, refined.
# On the 3 artist folds, with three embedding patches, its best weight alone was 0.0 or 0.2 (0.730
# ± 0.047 and ± 0.051), for ~15 ms per song (log-mel + network).
MIN_NETWORK_WEIGHT = 0.1


def main_cache_path(cache_dir: Path, folds: int, epochs: int, data: T.Dataset, out: Path,
                    seed: int = T.SEED, split_seed: int = T.SEED) -> Path:
    """Where the main model's out-of-fold probabilities for these settings, seeds and clips are kept."""
    main_meta = json.loads((out / "main.json").read_text())
    settings = {
        "main_version": main_meta["version"], "input": main_meta["input"], "folds": folds,
        "epochs": epochs, **_recipe(main_meta), "seed": seed,
        "clips": [(clip.song_id, clip.label, clip.artist) for clip in data.clips],
    }
    if split_seed != seed:  # one "seed" stood for both before --split-seed: those caches keep their key
        settings["split_seed"] = split_seed
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir / f"fusion-main-{key}.npy"


def _recipe(main_meta: dict) -> dict:
    """The one-cycle schedule and batch the network in main.json was trained with."""
    hyper = main_meta.get("hyper_parameters", {})
    return {"schedule": hyper.get("schedule_epochs", T.MAIN_EPOCHS), "batch": hyper.get("batch", T.MAIN_BATCH)}


def main_out_of_fold(data: T.Dataset, folds: int, epochs: int, cache: Path | None,
                     schedule: int | None = None, batch: int = T.MAIN_BATCH, seed: int = T.SEED,
                     split_seed: int = T.SEED) -> np.ndarray:
    """(n, 4) main-model probabilities of each clip, from the fold that held it out, each fold's network
    trained for `epochs` of a one-cycle `schedule` (default MAIN_EPOCHS), as the final fit was."""
    stored = T.read_cache(cache, np.load) if cache is not None else None
    if stored is not None:
        log.info("main out-of-fold probabilities from %s", cache)
        return stored
    labels = data.labels
    p_main = np.zeros((labels.size, 4))
    for k, (train_idx, val_idx) in enumerate(T.artist_folds(labels, data.groups, folds, split_seed)):
        started = time.perf_counter()
        model = T.train_main(data.mels[train_idx], labels[train_idx], epochs, schedule or T.MAIN_EPOCHS,
                             seed + k, batch, desc=f"fusion fold {k + 1}/{folds}")
        logits = T.main_predict(model, T.serving_crops(data.mels[val_idx]), T.pick_device())
        p_main[val_idx] = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        log.info("fusion fold %d/%d: %.0f s", k + 1, folds, time.perf_counter() - started)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".tmp.npy")
        np.save(partial, p_main)
        os.replace(partial, cache)
    return p_main


def ann_out_of_fold(data: T.Dataset, folds: int, ann_epochs: int, seed: int = T.SEED,
                    split_seed: int = T.SEED) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) ANN probabilities of each clip from the fold that held it out, and each clip's fold."""
    labels = data.labels
    p_ann = np.zeros((labels.size, 4))
    fold_of = np.zeros(labels.size, dtype=int)
    for k, (train_idx, val_idx) in enumerate(T.artist_folds(labels, data.groups, folds, split_seed)):
        fold_of[val_idx] = k
        scale = T.Standardiser.fit(data.features[train_idx])
        ann = T.train_ann(scale(data.features[train_idx]), labels[train_idx], ann_epochs, seed + k)
        with torch.no_grad():
            x = torch.from_numpy(scale(data.features[val_idx]))
            p_ann[val_idx] = torch.softmax(ann.eval()(x), dim=1).numpy()
    return p_ann, fold_of


def out_of_fold(
    data: T.Dataset, folds: int, epochs: int, ann_epochs: int, main_cache: Path | None = None,
    recipe: dict | None = None, seed: int = T.SEED, split_seed: int = T.SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's and the ANN's out-of-fold probabilities, on the same artist folds, and each clip's fold."""
    recipe = recipe or {}
    p_main = main_out_of_fold(data, folds, epochs, main_cache, recipe.get("schedule"),
                              recipe.get("batch", T.MAIN_BATCH), seed, split_seed)
    p_ann, fold_of = ann_out_of_fold(data, folds, ann_epochs, seed, split_seed)
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


CARD_SECTION = "## What the bot serves: the fused answer"
OLD_CARD_SECTIONS = ("## What the bot serves: the network fused with the ANN",)  # replaced like the current one
CARD_NEXT_SECTION = "## Known limits"


def _row(name: str, s: dict, bold: bool = False) -> str:
    f1 = f"{s['macro_f1_mean']:.3f} ± {s['macro_f1_sd']:.3f}"
    folds = ", ".join(f"{f:.3f}" for f in s.get("per_fold_macro_f1", []))
    return f"| {name} | {f'**{f1}**' if bold else f1} | {s['accuracy_mean']:.3f} ± {s['accuracy_sd']:.3f} | {folds} |\n"


def _gain(better: dict, worse: dict) -> str:
    per_fold = [b - w for b, w in zip(better.get("per_fold_macro_f1", []), worse.get("per_fold_macro_f1", []))]
    folds = ", ".join(f"{d:+.3f}" for d in per_fold)
    return f"{better['macro_f1_mean'] - worse['macro_f1_mean']:+.3f} macro-F1 (per fold {folds})"


def card_section(result: dict) -> str:
    """The main model card's section on fusion, from the figures `main` measured."""
    if result.get("embedding_weight"):
        return three_part_card_section(result)
    a, cv = result["ann_weight"], result["cv"]
    return (
        f"{CARD_SECTION}\n"
        f'`main.json` carries `"fusion": {{"ann_weight": {a}, ...}}`, so the main answer is\n'
        f"{1 - a:.1f} × p(ResNet18BiLSTM) + {a:.1f} × p(ANN) on the same 30 s section "
        "(`predict.MainModel.predict_section`;\nthe version gains a `+ann` suffix). The weight was chosen by "
        "`python -m inference.fusion`: both models\n"
        f"refitted on the same {result['folds']} artist folds (main: {result['epochs']} epochs of the "
        f"{result.get('schedule_epochs', T.MAIN_EPOCHS)}-epoch schedule; ANN: {result['ann_epochs']} epochs, as\nits final fit), their "
        "out-of-fold probabilities mixed with ANN weights 0, 0.1, …, 1.\n\n"
        f"| out-of-fold, {result['folds']} artist folds | macro-F1 | accuracy | per-fold macro-F1 |\n"
        "|---|---|---|---|\n"
        + _row("ResNet18BiLSTM alone", cv["main"]) + _row("ANN alone", cv["ann"])
        + _row(f"fused, ANN weight {a}", cv["fused"], bold=True)
        + f"\nFused minus ANN alone: {_gain(cv['fused'], cv['ann'])}; fused minus network alone: "
        f"{_gain(cv['fused'], cv['main'])}.\nA difference smaller than the folds' sd is within noise. "
        "Choosing one scalar on the same out-of-fold predictions is slightly optimistic. The serving "
        "cost of fusion\nis the hand-crafted features on the main path (see the README's benchmark).\n\n"
    )


def three_part_card_section(result: dict) -> str:
    m, a, e, cv = result["main_weight"], result["ann_weight"], result["embedding_weight"], result["cv"]
    two = result["main_and_ann_weights"]
    patches = ", ".join(str(p) for p in result["head"]["patches"])
    skipped = ("\nWith weight 0 the network is not run at all when serving." if m == 0 else "")
    free = result.get("best_any_network_weight")
    if free is not None and tuple(free["weights"]) != (m, a, e):
        skipped += (f"\nThe network's weight is held at {MIN_NETWORK_WEIGHT} or more, so the served answer stays "
                    f"the network's, refined; without that floor\nthe best mix was {tuple(free['weights'])}: "
                    f"{free['macro_f1_mean']:.3f} ± {free['macro_f1_sd']:.3f}, a difference inside the folds' spread.")
    return (
        f"{CARD_SECTION}\n"
        f'`main.json` carries `"fusion": {{"main_weight": {m}, "ann_weight": {a}, "embedding_weight": {e}, ...}}` '
        "and the head's\narrays (`\"embedding_head\"`), so the main answer is "
        f"{m:.1f} × p(ResNet18BiLSTM) + {a:.1f} × p(ANN) + {e:.1f} × p(head)\non the same 30 s section "
        "(`predict.MainModel.predict_section`; the version gains a `+ann+musicnn` suffix)."
        f"{skipped}\n\n"
        "The head: musicnn's pretrained MSD_musicnn network (`weights/musicnn.onnx`: Pons & Serra's weights, "
        "trained on\nMillion Song Dataset tags, ISC licence, see `weights/LICENSE_musicnn.md`; converted by "
        "`inference/convert_musicnn.py`,\nwhich checks it against musicnn's TensorFlow graph) embeds the "
        f"3 s patch(es) {patches} of the section (patch k\nstarts at 3k s) into 200 numbers, averaged; "
        "a logistic regression "
        f"(C = {result['head']['C']}) on the standardised\nembedding gives 4 probabilities. "
        "The weights were chosen by `python -m inference.fusion`: the three parts refitted\n"
        f"on the same {result['folds']} artist folds (network: {result['epochs']} epochs of the "
        f"{result.get('schedule_epochs', T.MAIN_EPOCHS)}-epoch schedule; ANN: {result['ann_epochs']} epochs, as its final fit;\n"
        "head: as its final fit), their out-of-fold probabilities mixed with every weight triple on a 0.1 grid "
        "summing to 1.\n\n"
        f"| out-of-fold, {result['folds']} artist folds | macro-F1 | accuracy | per-fold macro-F1 |\n"
        "|---|---|---|---|\n"
        + _row("ResNet18BiLSTM alone", cv["main"]) + _row("ANN alone", cv["ann"])
        + _row("embedding head alone", cv["embedding"])
        + _row(f"network + ANN (best without the head: {two[0]}, {two[1]})", cv["main_and_ann"])
        + _row(f"**served**: {m}, {a}, {e}", cv["fused"], bold=True)
        + f"\nServed minus network + ANN (the previous main answer): {_gain(cv['fused'], cv['main_and_ann'])}; "
        f"served minus\nANN alone: {_gain(cv['fused'], cv['ann'])}. A difference smaller than the folds' sd "
        "is within noise. Choosing the\nweights (and the head's C and patch among a few) on the same "
        "out-of-fold predictions is optimistic.\n![confusion matrix of the served answer, out of fold]"
        "(confusion_main.png)\n\n"
        + (calibration_card_text(result["calibration"]) if result.get("calibration") else "")
    )


def with_card_section(card: str, section: str) -> str:
    """`card` with its fusion section replaced by `section` (inserted before the limits if absent)."""
    start = max(card.find(title) for title in (CARD_SECTION, *OLD_CARD_SECTIONS))
    end = card.find(CARD_NEXT_SECTION)
    if end < 0:
        return card.rstrip("\n") + "\n\n" + section
    return card[: start if start >= 0 else end] + section + card[end:]


def fuse(weights: tuple[float, float, float], p_main: np.ndarray, p_ann: np.ndarray,
         p_head: np.ndarray) -> np.ndarray:
    main_weight, ann_weight, embedding_weight = weights
    return main_weight * p_main + ann_weight * p_ann + embedding_weight * p_head


def choose_weights(labels: np.ndarray, parts: tuple[np.ndarray, np.ndarray, np.ndarray],
                   fold_of: np.ndarray) -> tuple[tuple[float, float, float], dict]:
    """The grid's best (main, ann, embedding) weights by mean macro-F1 (the first on ties) among those
    giving the network at least MIN_NETWORK_WEIGHT, and the scores of the whole grid."""
    table = {w: scores(labels, fuse(w, *parts), fold_of) for w in SIMPLEX_GRID}
    allowed = [w for w in table if w[0] >= MIN_NETWORK_WEIGHT - 1e-9]
    return max(allowed, key=lambda w: table[w]["macro_f1_mean"]), table


def three_part_result(data: T.Dataset, embeddings: np.ndarray, folds: int, epochs: int, ann_epochs: int,
                      cache_dir: Path | None, out: Path = A.DEFAULT_OUT, seed: int = T.SEED,
                      split_seed: int = T.SEED) -> dict:
    """Out-of-fold scores of each part and of the best fusion, with the chosen weights; the network is
    refitted on the recipe of the one in `out`/main.json. All three parts share the artist folds of
    `split_seed`, so each clip's three probabilities come from models that never heard its artist."""
    recipe = _recipe(json.loads((out / "main.json").read_text()))
    main_cache = (main_cache_path(cache_dir, folds, epochs, data, out, seed, split_seed)
                  if cache_dir is not None else None)
    p_main, p_ann, fold_of = out_of_fold(data, folds, epochs, ann_epochs, main_cache, recipe, seed, split_seed)
    p_head = T.head_out_of_fold(embeddings, data.labels, data.groups, folds, split_seed)
    parts = (p_main, p_ann, p_head)
    best, table = choose_weights(data.labels, parts, fold_of)
    two = max((w for w in table if w[2] == 0), key=lambda w: table[w]["macro_f1_mean"])
    free = max(table, key=lambda w: table[w]["macro_f1_mean"])
    for w in sorted(table, key=lambda w: -table[w]["macro_f1_mean"])[:5]:
        log.info("weights (main, ann, embedding) %s: macro-F1 %.3f ± %.3f", w, table[w]["macro_f1_mean"],
                 table[w]["macro_f1_sd"])
    return {
        "main_weight": best[0], "ann_weight": best[1], "embedding_weight": best[2],
        "folds": folds, "epochs": epochs, "schedule_epochs": recipe["schedule"], "ann_epochs": ann_epochs,
        "seed": seed, "split_seed": split_seed,
        "head": {"C": T.HEAD_C, "patches": list(E.SERVED_PATCHES)},
        "main_and_ann_weights": list(two),
        "best_any_network_weight": {"weights": list(free), "macro_f1_mean": table[free]["macro_f1_mean"],
                                    "macro_f1_sd": table[free]["macro_f1_sd"]},
        "cv": {"main": table[(1.0, 0.0, 0.0)], "ann": table[(0.0, 1.0, 0.0)], "embedding": table[(0.0, 0.0, 1.0)],
               "main_and_ann": table[two], "fused": table[best]},
        "confusion": confusion_matrix(data.labels, fuse(best, *parts).argmax(axis=1), labels=range(4)).tolist(),
        "calibration": C.calibration(fuse(best, *parts), data.labels, fold_of),
    }


def served_calibration(data: T.Dataset, embeddings: np.ndarray, fusion: dict, cache_dir: Path | None,
                       out: Path = A.DEFAULT_OUT) -> dict:
    """The calibration of the mix `fusion` (main.json's) serves, on out-of-fold parts refitted as
    `three_part_result` does, without choosing the weights again."""
    folds, epochs = fusion["folds"], fusion["epochs"]
    seed, split_seed = fusion.get("seed", T.SEED), fusion.get("split_seed", T.SEED)
    recipe = _recipe(json.loads((out / "main.json").read_text()))
    main_cache = (main_cache_path(cache_dir, folds, epochs, data, out, seed, split_seed)
                  if cache_dir is not None else None)
    p_main, p_ann, fold_of = out_of_fold(data, folds, epochs, fusion["ann_epochs"], main_cache, recipe, seed,
                                         split_seed)
    p_head = T.head_out_of_fold(embeddings, data.labels, data.groups, folds, split_seed)
    weights = (fusion["main_weight"], fusion["ann_weight"], fusion["embedding_weight"])
    fused = fuse(weights, p_main, p_ann, p_head)
    return {**C.calibration(fused, data.labels, fold_of),
            "macro_f1_of_this_run": scores(data.labels, fused, fold_of)["macro_f1_mean"]}


def calibration_card_text(calibration: dict) -> str:
    """The card's paragraph on the served confidence, from `C.calibration`'s figures."""
    before, after = calibration["before"], calibration["after_other_folds_t"]
    t = calibration["temperature"]
    run = calibration.get("macro_f1_of_this_run")
    rerun = (f" (measured on a re-run of the out-of-fold parts, whose mix scored {run:.3f} macro-F1: the "
             "network's training is not repeatable bit for bit on CPU threads)" if run is not None else "")
    others = ", ".join(f"{x:g}" for x in calibration["fold_temperatures"])

    def row(name: str, m: dict) -> str:
        per_fold = ", ".join(f"{e:.3f}" for e in m["per_fold_ece"])
        return (f"| {name} | {m['ece']:.3f} | {per_fold} | {m['nll']:.3f} | {m['brier']:.3f} | "
                f"{m['mean_confidence']:.3f} |\n")
    return (
        f"Confidence: averaged, the mix is under-confident (its top probability {before['mean_confidence']:.3f} "
        f"on average out of fold, for an\naccuracy of {before['accuracy']:.3f}), so it is served tempered: "
        f"p ∝ p_mix^(1/t), t = {t:g}, fitted on the out-of-fold mix by least\nnegative log-likelihood{rerun}; "
        f"the version gains `+t{t:g}`. The mood (the argmax) and every macro-F1 above are\nunchanged. "
        f"Judged with each fold tempered by the t fitted on the other folds alone ({others}):\n\n"
        "| out-of-fold | ECE (10 bins) | per-fold ECE | NLL | Brier | mean confidence |\n"
        "|---|---|---|---|---|---|\n"
        + row("as averaged", before) + row("tempered", after) + "\n"
    )


def write_result(result: dict, head: E.EmbeddingHead, out: Path) -> None:
    """Record the fusion and the head in `out`/main.json, its card and the confusion matrix."""
    card_path = out / "main.json"
    card = json.loads(card_path.read_text())
    card["fusion"] = result
    card["embedding"] = {"weights": E.WEIGHTS, "network": "musicnn MSD_musicnn (Pons & Serra), ISC licence",
                         "patches": list(E.SERVED_PATCHES), "size": E.EMBEDDING_SIZE}
    card["embedding_head"] = head.to_card()
    text_path = out / "MODEL_CARD_main.md"
    text = with_card_section(text_path.read_text(), card_section(result))
    # Each file whole or not at all: a worker (re)starting meanwhile must not read half a main.json.
    picture = out / ".confusion_main.partial.png"
    T.save_confusion(result["confusion"], f"served answer, {result['folds']}-fold artist CV (out-of-fold)", picture)
    os.replace(picture, out / "confusion_main.png")
    replace_text(text_path, text)
    replace_text(card_path, json.dumps(card, indent=2) + "\n")


def replace_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: to a file beside it, then renamed over it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def run(data: T.Dataset, folds: int, epochs: int, cache_dir: Path, out: Path, workers: int,
        write: bool, seed: int = T.SEED, split_seed: int = T.SEED) -> dict:
    """Embeddings, out-of-fold parts, weights; with `write`, the head refitted on all clips is shipped."""
    weights = out / E.WEIGHTS
    if not weights.exists():  # a fresh output folder: ship the same embedding network
        shutil.copyfile(A.DEFAULT_OUT / E.WEIGHTS, weights)
    embeddings = T.served_embedding(T.load_embeddings(data.clips, cache_dir, weights, workers))
    ann_epochs = json.loads((out / "ann.json").read_text())["final_epochs"]  # the final ANN's
    result = three_part_result(data, embeddings, folds, epochs, ann_epochs, cache_dir, out, seed, split_seed)
    if write:
        write_result(result, T.train_head(embeddings, data.labels), out)
    return result


def calibrate(data: T.Dataset, cache_dir: Path, out: Path, workers: int) -> dict:
    """Fit the served mix's temperature and record it in `out`/main.json and its card."""
    card_path = out / "main.json"
    fusion = json.loads(card_path.read_text())["fusion"]
    embeddings = T.served_embedding(T.load_embeddings(data.clips, cache_dir, out / E.WEIGHTS, workers))
    calibration = served_calibration(data, embeddings, fusion, cache_dir, out)
    card = json.loads(card_path.read_text())
    card["fusion"]["calibration"] = calibration
    text_path = out / "MODEL_CARD_main.md"
    replace_text(text_path, with_card_section(text_path.read_text(), card_section(card["fusion"])))
    replace_text(card_path, json.dumps(card, indent=2) + "\n")
    return calibration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.fusion", description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=at_least(2), default=T.MAIN_FOLDS,
                        help=f"artist folds (default {T.MAIN_FOLDS})")
    parser.add_argument("--epochs", type=at_least(1), default=None,
                        help="main model epochs (default: the shipped final fit's, from main.json)")
    parser.add_argument("--workers", type=at_least(1), default=2,
                        help="processes that compute missing embeddings (default 2)")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--write", action="store_true",
                        help="record the weights and the head in main.json and MODEL_CARD_main.md")
    chosen.add_argument("--calibrate", action="store_true",
                        help="fit only the confidence's temperature for the weights main.json serves, and record it")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = json.loads((A.DEFAULT_OUT / "main.json").read_text())["final_epochs"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    data = T.load_dataset(T.read_labels(A.DEFAULT_DATA), A.DEFAULT_CACHE, workers=1)
    if args.calibrate:
        print(json.dumps(calibrate(data, A.DEFAULT_CACHE, A.DEFAULT_OUT, args.workers), indent=2))
        return 0
    result = run(data, args.folds, args.epochs, A.DEFAULT_CACHE, A.DEFAULT_OUT, args.workers, args.write)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
