"""Sentences about a training run, for the learner: what the gap between training and test
accuracy means.

:func:`gap_sentence` reads the last epoch of a :class:`~digitlens.training.fit.History` (or its
``epochs`` list) whose rows carry ``accuracy`` (training, averaged over the epoch's mini-batches,
measured *while* the network trains: with dropout on and on augmented copies, if the recipe has
them) and ``test_accuracy`` (the held-out digits, read at the end of the epoch by the whole
network).  It says which of three things happened, with the numbers:

- **overfitting**: training accuracy well above test accuracy; the network memorises the
  training digits;
- **training made harder on purpose**: test accuracy above training accuracy with dropout or
  augmentation (the mlp's and the CNN's recipes have both);
- **still learning**: test accuracy above training accuracy without either: the training number
  is an average over an epoch in which the network was still improving.

Below :data:`GAP_POINTS` percentage points there is no gap to explain (None).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: the gap, in percentage points of accuracy, from which it is worth a sentence
GAP_POINTS = 2.0


def _last_epoch(history) -> Mapping[str, Any] | None:
    epochs: Sequence[Mapping[str, Any]] = getattr(history, "epochs", history) or []
    return epochs[-1] if epochs else None


def gap_numbers(history) -> dict[str, Any] | None:
    """The last epoch's training and test accuracy and their gap in percentage points
    (``train - test``), or None when either number is missing."""
    last = _last_epoch(history)
    if last is None:
        return None
    train, test = last.get("accuracy"), last.get("test_accuracy")
    if train is None or test is None:
        return None
    return {"epoch": last.get("epoch"), "train_accuracy": float(train),
            "test_accuracy": float(test), "gap_points": 100.0 * (float(train) - float(test))}


def gap_kind(history, *, dropout: bool = False, augment: bool = False,
             points: float = GAP_POINTS) -> str | None:
    """``"overfitting"``, ``"harder_training"``, ``"still_learning"`` or None (no gap of at
    least ``points`` percentage points, or no numbers)."""
    n = gap_numbers(history)
    if n is None or abs(n["gap_points"]) < points:
        return None
    if n["gap_points"] > 0:
        return "overfitting"
    return "harder_training" if (dropout or augment) else "still_learning"


def gap_sentence(history, *, dropout: bool = False, augment: bool = False,
                 points: float = GAP_POINTS) -> str | None:
    """The sentence explaining the last epoch's train/test gap, or None when there is none.

    Parameters
    ----------
    history : a :class:`~digitlens.training.fit.History` or its ``epochs`` list; each row has
        ``accuracy`` and ``test_accuracy`` (fractions in [0, 1]).
    dropout : the model has dropout layers (on while training, off when testing).
    augment : training used augmented digits (randomly changed copies).
    points : the smallest gap worth a sentence, in percentage points.

    Examples
    --------
    >>> gap_sentence([{"epoch": 9, "accuracy": 0.99, "test_accuracy": 0.93}])[:60]
    'Training accuracy (99.0%) is 6.0 points above test accuracy '
    """
    kind = gap_kind(history, dropout=dropout, augment=augment, points=points)
    if kind is None:
        return None
    n = gap_numbers(history)
    tr, te, gap = n["train_accuracy"], n["test_accuracy"], abs(n["gap_points"])
    if kind == "overfitting":
        return (f"Training accuracy ({tr:.1%}) is {gap:.1f} points above test accuracy "
                f"({te:.1%}): the network is memorising the 4,000 training digits, details that "
                "other digits do not share (overfitting). More training digits, dropout, "
                "augmentation or a smaller network narrow the gap.")
    if kind == "harder_training":
        made = " and ".join(w for w, on in (
            ("with part of its units switched off at random (dropout)", dropout),
            ("on randomly changed copies of the digits (augmentation)",
             augment)) if on)
        return (f"Test accuracy ({te:.1%}) is {gap:.1f} points above training accuracy "
                f"({tr:.1%}). That is not a mistake: the training number is measured while the "
                f"network trains, {made}, which makes training harder on purpose so that it "
                "cannot memorise; the test digits are read by the whole network, as they are.")
    return (f"Test accuracy ({te:.1%}) is {gap:.1f} points above training accuracy ({tr:.1%}): "
            "the training number is the average over the epoch's mini-batches, while the "
            "network was still improving; the test digits are read at the end of the epoch.")


__all__ = ["GAP_POINTS", "gap_numbers", "gap_kind", "gap_sentence"]
