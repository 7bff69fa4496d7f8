"""How far the served confidence can be trusted, and the temperature that makes it honest.

The main answer is a weighted mean of three parts' probabilities. Averaging, label smoothing and
the head's strong regularisation leave it under-confident: out of fold, its top probability
averaged well under its accuracy. One temperature `t` (p_i ∝ p_i^(1/t), the argmax unchanged, so
the mood and every macro-F1 stay as they are) is fitted by `inference.fusion` on the out-of-fold
probabilities (least negative log-likelihood), its effect measured on folds it was not fitted on,
and served by `predict.MainModel`.

numpy only: `temper` runs in the workers.
"""
from __future__ import annotations

import numpy as np

ECE_BINS = 10
# Temperatures searched: a reasonable range, finely enough that the loss is flat between steps.
T_GRID = np.round(np.arange(0.30, 3.0001, 0.01), 2)


def temper(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (..., K) raised to 1/temperature and renormalised (softmax(log p / t))."""
    p = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return p
    logits = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.mean(np.log(p)))


def brier(probabilities: np.ndarray, labels: np.ndarray) -> float:
    onehot = np.eye(probabilities.shape[1])[labels]
    return float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1)))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """The mean gap between the top probability and the share answered right, over equal-width
    bins of that probability, each weighted by its share of the clips."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - confidence[inside].mean())
    return float(total)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature of T_GRID with the least negative log-likelihood (the smallest on ties)."""
    losses = [negative_log_likelihood(temper(probabilities, t), labels) for t in T_GRID]
    return float(T_GRID[int(np.argmin(losses))])


def _measures(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    return {"ece": round(expected_calibration_error(probabilities, labels), 4),
            "nll": round(negative_log_likelihood(probabilities, labels), 4),
            "brier": round(brier(probabilities, labels), 4),
            "mean_confidence": round(float(probabilities.max(axis=1).mean()), 4),
            "accuracy": round(float(np.mean(probabilities.argmax(axis=1) == labels)), 4)}


def calibration(probabilities: np.ndarray, labels: np.ndarray, fold_of: np.ndarray) -> dict:
    """The temperature fitted on all the out-of-fold `probabilities` (what is served), and, to
    judge it honestly, each fold tempered by the temperature fitted on the other folds alone:
    ECE, NLL and Brier score of all clips before and after, and each fold's ECE."""
    folds = np.unique(fold_of)
    tempered = np.empty_like(probabilities, dtype=np.float64)
    per_fold_t = []
    for k in folds:
        t = fit_temperature(probabilities[fold_of != k], labels[fold_of != k])
        per_fold_t.append(t)
        tempered[fold_of == k] = temper(probabilities[fold_of == k], t)

    def fold_ece(p: np.ndarray) -> list[float]:
        return [round(expected_calibration_error(p[fold_of == k], labels[fold_of == k]), 4) for k in folds]

    return {"temperature": fit_temperature(probabilities, labels), "bins": ECE_BINS,
            "fold_temperatures": per_fold_t,
            "before": {**_measures(probabilities, labels), "per_fold_ece": fold_ece(probabilities)},
            "after_other_folds_t": {**_measures(tempered, labels), "per_fold_ece": fold_ece(tempered)}}
