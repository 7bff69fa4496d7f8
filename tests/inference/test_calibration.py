"""The served confidence's temperature: fitted where it lowers the loss, judged on folds it never saw."""
from __future__ import annotations

import numpy as np

from inference import calibration as C


def _clips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are calibrated (each clip's label drawn from them), and those labels."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.6, size=(n, 4))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    return p, labels


def test_tempering_keeps_the_mood_and_sums_to_one_and_a_low_temperature_sharpens():
    p, _ = _clips(200, 0)
    for t in (0.5, 1.0, 2.0):
        q = C.temper(p, t)
        np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-12)
        assert (q.argmax(axis=1) == p.argmax(axis=1)).all()
    assert (C.temper(p, 0.5).max(axis=1) >= p.max(axis=1) - 1e-12).all()
    assert C.temper(p, 2.0).max(axis=1).mean() < p.max(axis=1).mean()
    np.testing.assert_array_equal(C.temper(p, 1.0), p)


def test_an_under_confident_mix_gets_a_temperature_under_one_that_lowers_its_error():
    """Calibrated probabilities flattened (as averaging three parts does): the fit finds the
    flattening back, and on clips it was not fitted on the calibration error falls."""
    p, labels = _clips(2000, 1)
    flat = C.temper(p, 2.0)  # p ** (1/2), renormalised
    t = C.fit_temperature(flat[:1000], labels[:1000])
    assert 0.4 <= t <= 0.6, t  # 1/2 undoes it
    held_out, truth = flat[1000:], labels[1000:]
    assert C.expected_calibration_error(C.temper(held_out, t), truth) < C.expected_calibration_error(held_out, truth) / 2
    assert C.negative_log_likelihood(C.temper(held_out, t), truth) < C.negative_log_likelihood(held_out, truth)
    # Already calibrated: left (nearly) alone.
    assert 0.85 <= C.fit_temperature(p[:1000], labels[:1000]) <= 1.15


def test_the_calibration_error_of_known_bins():
    # Two clips at 0.9 (one right), two at 0.6 (both right): |0.5 - 0.9| / 2 + |1.0 - 0.6| / 2.
    p = np.array([[0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3]] * 2 + [[0.6, 0.4 / 3, 0.4 / 3, 0.4 / 3]] * 2)
    labels = np.array([0, 1, 0, 0])
    assert abs(C.expected_calibration_error(p, labels) - 0.4) < 1e-9


def test_each_fold_is_judged_by_a_temperature_fitted_on_the_other_folds_alone():
    p, labels = _clips(900, 2)
    fold_of = np.arange(900) % 3
    flat = C.temper(p, 1.8)
    # One fold made wrong on purpose: the temperatures fitted without it differ from those with it.
    labels = labels.copy()
    labels[fold_of == 0] = (flat[fold_of == 0].argmax(axis=1) + 1) % 4
    result = C.calibration(flat, labels, fold_of)
    expected = [C.fit_temperature(flat[fold_of != k], labels[fold_of != k]) for k in range(3)]
    assert result["fold_temperatures"] == expected
    assert result["temperature"] == C.fit_temperature(flat, labels)
    assert len(set(expected)) > 1
    assert result["before"]["accuracy"] == result["after_other_folds_t"]["accuracy"]
    assert len(result["after_other_folds_t"]["per_fold_ece"]) == 3
