"""The confusion matrix and per-class precision and recall.

Rows are the true digits, columns the model's answers: ``matrix[t, p]`` counts the digits whose
label is ``t`` and that the model read as ``p``.  The diagonal holds the right answers.

- **precision** of digit ``p``: of everything the model called ``p``, the share that really is
  ``p`` (column ``p``'s diagonal over its sum);
- **recall** of digit ``t``: of all the real ``t``'s, the share the model found (row ``t``'s
  diagonal over its sum).

A class the model never answers has no precision (0/0): it is ``None`` in JSON, never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util import jsonsafe as J


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix and its per-class numbers.

    Attributes
    ----------
    classes : (K,) the class labels, in row/column order.
    matrix : (K, K) int64 counts, ``matrix[true, predicted]``.
    precision, recall, f1 : (K,) float64 (NaN where undefined: nothing predicted / no such digit).
    support : (K,) how many digits of each class.
    cells : ``{(t, p): (n,) indices}`` for every non-empty cell, each cell's digits ordered by the
        model's confidence in its answer, most confident first.
    """

    classes: np.ndarray
    matrix: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    cells: dict

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.matrix) / max(1, self.matrix.sum()))

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices (into the evaluated set) of the digits labelled ``true`` read as
        ``predicted``, most confident first (empty if none)."""
        return self.cells.get((int(true), int(predicted)), np.zeros(0, np.int64))

    def most_confused(self, k: int = 5) -> list[tuple[int, int, int]]:
        """The ``k`` largest off-diagonal cells as ``(true, predicted, count)``."""
        off = self.matrix.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:k]
        out = []
        for flat in order:
            t, p = np.unravel_index(flat, off.shape)
            if off[t, p] > 0:
                out.append((int(self.classes[t]), int(self.classes[p]), int(off[t, p])))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"classes": [int(c) for c in self.classes],
                "matrix": self.matrix.astype(int).tolist(),
                "accuracy": J.num(self.accuracy),
                "precision": [J.num(v) for v in self.precision],
                "recall": [J.num(v) for v in self.recall],
                "f1": [J.num(v) for v in self.f1],
                "support": [int(v) for v in self.support],
                "most_confused": [list(c) for c in self.most_confused()]}


def confusion(y_true, y_pred, classes=None, confidence=None) -> Confusion:
    """Count every (true, predicted) pair.

    Parameters
    ----------
    y_true, y_pred : (N,) integer labels.
    classes : (K,) the labels in order (default: 0..9 or the sorted labels seen).
    confidence : (N,) optional; orders each cell's digits, most confident first (default: by
        index).

    Returns
    -------
    Confusion

    Examples
    --------
    >>> c = confusion([0, 0, 1, 1], [0, 1, 1, 1], classes=[0, 1])
    >>> c.matrix.tolist(), c.precision.tolist(), c.recall.tolist()
    ([[1, 1], [0, 2]], [1.0, 0.6666666666666666], [0.5, 1.0])
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {y_true.shape} and "
                         f"{y_pred.shape}")
    if classes is None:
        seen = np.union1d(y_true, y_pred)
        classes = np.arange(10) if seen.size == 0 or (seen.min() >= 0 and seen.max() <= 9) \
            else seen
    classes = np.asarray(classes, dtype=np.int64)
    pos = {int(c): i for i, c in enumerate(classes)}
    unknown = set(np.unique(np.concatenate([y_true, y_pred])).tolist()) - set(pos)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not among classes {classes.tolist()}")
    k = len(classes)
    ti = np.array([pos[int(v)] for v in y_true], dtype=np.int64)
    pi = np.array([pos[int(v)] for v in y_pred], dtype=np.int64)
    matrix = np.zeros((k, k), np.int64)
    np.add.at(matrix, (ti, pi), 1)  # (K, K) counts
    diag = np.diag(matrix).astype(np.float64)
    col, row = matrix.sum(axis=0), matrix.sum(axis=1)  # (K,) predicted, (K,) true
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 is "undefined": NaN, on purpose
        precision = np.where(col > 0, diag / np.maximum(col, 1), np.nan)
        recall = np.where(row > 0, diag / np.maximum(row, 1), np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall),
                      np.where(np.isnan(precision) | np.isnan(recall), np.nan, 0.0))
    conf = np.zeros(len(y_true)) if confidence is None else np.asarray(confidence, np.float64)
    cells = {}
    order = np.lexsort((np.arange(len(y_true)), -conf))  # most confident first, then by index
    for i in order:
        cells.setdefault((int(y_true[i]), int(y_pred[i])), []).append(int(i))
    cells = {key: np.asarray(v, np.int64) for key, v in cells.items()}
    return Confusion(classes, matrix, precision, recall, f1, row, cells)


__all__ = ["Confusion", "confusion"]
