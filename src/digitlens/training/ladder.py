"""The ladder: from logistic regression to a convolutional network, one idea per rung.

Each rung is a zoo model trained with its own default recipe on the same 4,000 bundled digits and
tested on the same 1,000, so the table shows what each step up buys:

============  =========================================================================
rung          what it adds
============  =========================================================================
logistic      the start: one pixel template per digit (logistic regression)
lab           hidden layers: pixel templates combined into stroke detectors
mlp           width and dropout: many more stroke detectors, less memorising
cnn           convolution: the same detector everywhere in the image (and pooling)
============  =========================================================================

The ``mlp`` and ``cnn`` recipes also train on randomly tilted, resized, shifted, re-inked and
warped digits (augmentation; see :mod:`digitlens.training.augment`), and the table says which
rungs do, and calls the mlp row "mlp + augmentation": the mlp and the cnn see the same augmented
digits, so the cnn's lead over it is what convolution adds beyond augmentation.  The recipes and
the measurements behind them (3 seeds, 5-fold cross-validation, ``benchmarks/model_table.py``)
are in :mod:`digitlens.training.recipes`.  On the bundled split (seed 0) the rungs reach about
89%, 91%, 98.1% and 99.1% test accuracy; on MNIST's official 10,000 test digits the mlp and the
cnn read 97.6% and 99.3%: the step the bundled 1,000 hardly show removes more than two thirds of
the mlp's mistakes.

The bundled test digits were written by MNIST's writers, like the training digits.  Given
``other_writers`` (e.g. optdigits, scikit-learn's ``load_digits`` brought through the one
pre-processing path by :func:`digitlens.evaluation.datasets.load_eval_set`, which the caller
loads: this layer sits below ``evaluation``), every row also reports the accuracy on handwriting
from people the models never saw, :attr:`LadderRow.other_writers_accuracy`.

:func:`run_ladder` is pure: it trains, evaluates and returns :class:`LadderRow` objects (with the
trained models); it prints nothing and writes nothing.  ``digitlens ladder`` shows the progress
and the table and saves the models.  A rung is trained exactly like ``digitlens train --model
NAME`` with the same seed (same initial weights, same shuffling, same augmentation), so the two
give the same model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..nn.zoo import MODELS
from .fit import TrainConfig, evaluate
from .recipes import LadderRow, default_recipe, train_rung


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: a zoo model and a sentence on what it adds to the rung below."""

    name: str
    adds: str


RUNGS: tuple[Rung, ...] = (
    Rung("logistic", "the start: one weighted sum of the pixels per digit, a pixel template "
                     "— logistic regression"),
    Rung("lab", "hidden layers: combine pixel templates into stroke detectors"),
    Rung("mlp", "width and dropout: many more stroke detectors, less memorising; trained on "
                "augmented digits, like the cnn"),
    Rung("cnn", "convolution: the same detector everywhere in the image; pooling forgives "
                "small shifts"),
)
"""The default ladder, bottom to top."""


def run_ladder(data=None, *, rungs: Sequence[Rung | str] = RUNGS, seed: int = 0,
               epochs: int | None = None, augment: bool = True,
               callbacks_for: Callable[[Rung, TrainConfig], Sequence] | None = None,
               on_rung_end: Callable[[LadderRow], Any] | None = None,
               other_writers: tuple[np.ndarray, np.ndarray] | None = None) -> list[LadderRow]:
    """Train every rung in order on the bundled split (or ``data``) and return one row each.

    Parameters
    ----------
    data : a :class:`digitlens.data.Digits` split; the bundled one if None.
    rungs : :class:`Rung` objects or zoo names (a name from :data:`RUNGS` keeps its sentence).
    seed : the seed for every rung (each rung starts from its own fresh Generator).
    epochs : train every rung for this many epochs instead of its recipe's (for quick looks).
    augment : use the recipes' augmentation (the ``mlp`` and ``cnn`` recipes have one).
    callbacks_for : ``callbacks_for(rung, config)`` returns the ``fit`` callbacks for a rung
        (e.g. a progress bar); returning True from one stops that rung early.
    on_rung_end : called with each finished :class:`LadderRow` (e.g. to save the model at once).
        A rung interrupted by Ctrl-C is still reported, and ends the ladder.
    other_writers : ``(x, y)``, digits by writers outside the training set, ``(M, 1, 28, 28)``
        float32 in [0, 1] and ``(M,)`` labels 0-9; each row's ``other_writers_accuracy`` is the
        model's accuracy on them (None when not given).

    Returns
    -------
    list of :class:`LadderRow`, bottom rung first.

    Examples
    --------
    >>> rows = run_ladder(rungs=["logistic"], epochs=1)  # doctest: +SKIP
    >>> rows[0].test_accuracy > 0.8                      # doctest: +SKIP
    True
    """
    if data is None:
        from ..data import load_digits

        data = load_digits()
    known = {r.name: r for r in RUNGS}
    resolved = [r if isinstance(r, Rung) else known.get(r, Rung(r, "")) for r in rungs]
    if not resolved:
        raise ValueError("rungs must name at least one model")
    for r in resolved:
        if r.name not in MODELS:
            raise ValueError(f"unknown model {r.name!r} in rungs; choose from {list(MODELS)}")
        if MODELS[r.name].classes != tuple(range(10)):
            raise ValueError(f"the ladder compares 10-digit classifiers; {r.name!r} reads only "
                             f"{MODELS[r.name].classes}")
    if epochs is not None and int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if other_writers is not None:
        other_writers = _check_other_writers(other_writers)
    rows = []
    for rung in resolved:
        config = default_recipe(rung.name)
        if epochs is not None:
            config = dataclasses.replace(config, epochs=int(epochs))
        callbacks = callbacks_for(rung, config) if callbacks_for else ()
        row = train_rung(rung.name, data.x_train, data.y_train, data.x_test, data.y_test,
                         adds=rung.adds, seed=seed, config=config, augment=augment,
                         callbacks=callbacks)
        if other_writers is not None and row.history.epochs:
            row.other_writers_accuracy = float(evaluate(row.model, *other_writers)[1])
        rows.append(row)
        if on_rung_end is not None:
            on_rung_end(row)
        if row.history.stop_reason == "interrupted":  # Ctrl-C ends the whole ladder
            break
    return rows


def _check_other_writers(other) -> tuple[np.ndarray, np.ndarray]:
    """``other`` as ``(x (M, 1, 28, 28) float32, y (M,) int64)``, or a clear ValueError."""
    try:
        x, y = other
    except (TypeError, ValueError):
        raise ValueError("other_writers must be a pair (images, labels)") from None
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int64)
    if x.ndim != 4 or x.shape[1:] != (1, 28, 28) or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"other_writers must be (M, 1, 28, 28) images and (M,) labels with "
                         f"M >= 1, got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)) or y.min() < 0 or y.max() > 9:
        raise ValueError("other_writers images must be finite and labels 0-9")
    return x, y


__all__ = ["Rung", "RUNGS", "LadderRow", "train_rung", "run_ladder"]
