"""Calibration: when the model says "90% sure", is it right 9 times out of 10?

The digits are put into ``n_bins`` equal-width bins by the model's confidence (the probability of
its answer).  In each bin we compare the average confidence with the share of right answers: the
**reliability diagram** plots one against the other, and a perfectly calibrated model sits on the
diagonal.  The **expected calibration error** is the gap averaged over the digits,

    ``ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|``

(Guo et al., 2017), so a model that says 99% and is right 90% of the time has a gap of 0.09 there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util import jsonsafe as J
from .._util.checks import check_int, check_number


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram and its expected calibration error.

    Attributes
    ----------
    edges : (B+1,) bin edges in [0, 1].
    count : (B,) digits per bin; confidence, accuracy : (B,) their mean confidence and share
        right (NaN for an empty bin).
    ece : the expected calibration error, in [0, 1].
    sure : the ``sure_level`` (0.99) check: how many digits got a confidence of at least that,
        and the share of them the model got right (``sure_accuracy``, NaN if none).
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float
    sure_level: float
    sure_count: int
    sure_accuracy: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        from . import words

        return {"edges": [J.num(v) for v in self.edges], "count": [int(v) for v in self.count],
                "confidence": [J.num(v) for v in self.confidence],
                "accuracy": [J.num(v) for v in self.accuracy], "ece": J.num(self.ece),
                "sure_level": J.num(self.sure_level), "sure_count": self.sure_count,
                "sure_accuracy": J.num(self.sure_accuracy), "n": self.n,
                "sentence": words.sure_sentence(self)}


def calibration(confidence, correct, n_bins: int = 10, sure_level: float = 0.99) -> Calibration:
    """Bin the answers by confidence and compare each bin's confidence with its accuracy.

    Parameters
    ----------
    confidence : (N,) the probability of each answer, in [0, 1].
    correct : (N,) bool, whether each answer was right.
    n_bins : equal-width bins over [0, 1] (a confidence of exactly 1 goes in the last bin).
    sure_level : the "so sure" threshold reported on its own (default 99%).

    Examples
    --------
    >>> c = calibration([0.9, 0.9, 0.6, 0.6], [True, False, True, False], n_bins=10)
    >>> round(c.ece, 3)          # bins 0.6 (right 50%) and 0.9 (right 50%): (0.1 + 0.4) / 2
    0.25
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    ok = np.asarray(correct, dtype=bool).ravel()
    check_int("n_bins", n_bins, 1, 1000)
    check_number("sure_level", sure_level, "in [0, 1]", lambda v: 0 <= v <= 1)
    if conf.shape != ok.shape:
        raise ValueError(f"confidence and correct must have the same length, got {conf.shape} "
                         f"and {ok.shape}")
    if not np.all(np.isfinite(conf)) or conf.size and (conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidence must hold finite numbers in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)  # (N,) bin index
    count = np.bincount(b, minlength=n_bins)
    sum_conf = np.bincount(b, weights=conf, minlength=n_bins)
    sum_ok = np.bincount(b, weights=ok.astype(np.float64), minlength=n_bins)
    filled = count > 0
    mean_conf = np.full(n_bins, np.nan)
    acc = np.full(n_bins, np.nan)
    mean_conf[filled] = sum_conf[filled] / count[filled]
    acc[filled] = sum_ok[filled] / count[filled]
    n = len(conf)
    ece = float(np.sum(count[filled] / max(n, 1) * np.abs(acc[filled] - mean_conf[filled])))
    sure = conf >= sure_level
    sure_acc = float(ok[sure].mean()) if sure.any() else float("nan")
    return Calibration(edges, count, mean_conf, acc, ece, float(sure_level), int(sure.sum()),
                       sure_acc, n)


__all__ = ["Calibration", "calibration"]
