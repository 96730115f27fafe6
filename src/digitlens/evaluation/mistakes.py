"""The wrong answers, most confident first: the digits a model is surest about and still gets
wrong are the most instructive (often a badly written digit, sometimes a wrong label)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util import jsonsafe as J


@dataclass(frozen=True)
class Mistake:
    """One wrong answer: the digit's index in the evaluated set, its label, the model's answer,
    the probability of that answer and the probability the model gave the true label."""

    index: int
    true: int
    predicted: int
    confidence: float
    p_true: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "true": self.true, "predicted": self.predicted,
                "confidence": J.num(self.confidence), "p_true": J.num(self.p_true)}


def mistakes(y_true, proba, classes, limit: int | None = None) -> list[Mistake]:
    """Every misread digit, sorted by the model's confidence in its (wrong) answer, highest first.

    Parameters
    ----------
    y_true : (N,) labels.
    proba : (N, K) probabilities, columns in the order of ``classes``.
    classes : (K,) labels.
    limit : keep only the first ``limit`` (None: all).

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    >>> [(m.index, m.predicted) for m in mistakes([0, 0, 0], p, [0, 1])]
    [(2, 1), (1, 1)]
    """
    proba = np.asarray(proba, dtype=np.float64)
    classes = np.asarray(classes)
    y_true = np.asarray(y_true).ravel()
    if proba.ndim != 2 or proba.shape != (len(y_true), len(classes)):
        raise ValueError(f"proba must be (N, K) = ({len(y_true)}, {len(classes)}), got "
                         f"{proba.shape}")
    idx = proba.argmax(axis=1)  # (N,)
    pred = classes[idx]
    conf = proba[np.arange(len(idx)), idx]
    col = {int(c): i for i, c in enumerate(classes)}
    wrong = np.flatnonzero(pred != y_true)
    wrong = wrong[np.lexsort((wrong, -conf[wrong]))]  # most confident first, ties by index
    if limit is not None:
        wrong = wrong[:limit]
    return [Mistake(int(i), int(y_true[i]), int(pred[i]), float(conf[i]),
                    float(proba[i, col[int(y_true[i])]]) if int(y_true[i]) in col else 0.0)
            for i in wrong]


__all__ = ["Mistake", "mistakes"]
