"""One model on one set of digits: predictions, the confusion matrix, the mistakes and the
calibration, computed once (a few seconds for the cnn on the 1,000 bundled test digits) and kept
as plain data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util import jsonsafe as J
from .calibration import Calibration, calibration
from .confusion import Confusion, confusion
from .mistakes import Mistake, mistakes


@dataclass(frozen=True)
class ModelEvaluation:
    """Everything about one model on one set.

    Attributes
    ----------
    model, data : names; proba : (N, K) the model's probabilities; predicted : (N,) its answers;
    y : (N,) the labels; confidence : (N,) the probability of each answer;
    confusion, calibration, mistakes : the results; seconds : how long it took.
    """

    model: str
    data: str
    y: np.ndarray
    proba: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    confusion: Confusion
    calibration: Calibration
    mistakes: list[Mistake]
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.confusion.accuracy

    def to_dict(self, mistakes_limit: int = 60) -> dict[str, Any]:
        from . import words

        return {"model": self.model, "data": self.data, "n": int(len(self.y)),
                "accuracy": J.num(self.accuracy), "seconds": J.num(self.seconds, 3),
                "confusion": self.confusion.to_dict(),
                "calibration": self.calibration.to_dict(),
                "ece_sentence": words.ece_sentence(self.calibration.ece),
                "mistakes": [m.to_dict() for m in self.mistakes[:mistakes_limit]],
                "n_mistakes": len(self.mistakes),
                "words": {"confusion": words.CONFUSION,
                          "precision_recall": words.PRECISION_RECALL,
                          "calibration": words.CALIBRATION}}


def evaluate_model(model, x: np.ndarray, y: np.ndarray, *, name: str = "model",
                   data: str = "bundled", n_bins: int = 10) -> ModelEvaluation:
    """Run ``model`` over ``x`` once and derive every evaluation from its probabilities.

    Parameters
    ----------
    model : a :class:`~digitlens.nn.model.Sequential` with a softmax over 10 digits.
    x : (N, 1, 28, 28) images; y : (N,) labels.

    Examples
    --------
    >>> import numpy as np, digitlens as dl
    >>> m = dl.build_model("logistic", np.random.default_rng(0))
    >>> e = evaluate_model(m, np.zeros((3, 1, 28, 28), np.float32), np.array([0, 1, 2]))
    >>> e.confusion.matrix.sum()
    3
    """
    t0 = time.perf_counter()
    classes = np.asarray(model.classes)
    if classes.shape != (10,) or model.loss != "softmax_cross_entropy":
        raise ValueError(f"evaluation needs a model answering all ten digits with a softmax; "
                         f"{name!r} answers {classes.tolist()} with {model.loss}")
    y = np.asarray(y).astype(np.int64)
    proba = np.asarray(model.predict_proba(x), np.float64)  # (N, 10)
    idx = proba.argmax(axis=1)
    predicted = classes[idx]
    conf = proba[np.arange(len(idx)), idx]
    cm = confusion(y, predicted, classes, confidence=conf)
    cal = calibration(conf, predicted == y, n_bins=n_bins)
    wrong = mistakes(y, proba, classes)
    return ModelEvaluation(name, data, y, proba, predicted, conf, cm, cal, wrong,
                           time.perf_counter() - t0)


__all__ = ["ModelEvaluation", "evaluate_model"]
