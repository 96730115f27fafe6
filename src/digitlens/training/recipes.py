"""How each zoo model is trained: its recipe (a :class:`TrainConfig` and, for the CNNs, data
augmentation), and :func:`train_rung`, the one way a zoo model gets trained.

``digitlens train``, the ladder, the web page's training view and the test fixtures all call
:func:`train_rung`, so a model trained anywhere with the same seed is the same model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..nn.model import Sequential
from ..nn.zoo import MODELS, build_model
from .augment import AugmentConfig
from .fit import History, TrainConfig, evaluate, fit


@dataclass(frozen=True)
class Recipe:
    """The settings that give a zoo model its documented accuracy on the bundled digits."""

    config: TrainConfig
    #: random tilts, resizes and shifts of each batch (None: the digits as they are)
    augment: AugmentConfig | None = None


#: random tilt up to 10°, size ±10%, shift up to 2 pixels: the CNN recipes' augmentation
CNN_AUGMENT = AugmentConfig(rotation=10, scale=0.1, shift=2)

_DEFAULT = TrainConfig(epochs=15, batch_size=64, lr=1e-3, schedule="cosine")

RECIPES: dict[str, Recipe] = {
    "logistic": Recipe(TrainConfig(epochs=15, batch_size=64, lr=1e-3, schedule="cosine")),
    "binary": Recipe(_DEFAULT),
    "lab": Recipe(TrainConfig(epochs=20, batch_size=64, lr=2e-3, schedule="cosine")),
    "mlp": Recipe(TrainConfig(epochs=15, batch_size=64, lr=1e-3, schedule="cosine")),
    "cnn_tiny": Recipe(TrainConfig(epochs=15, batch_size=64, lr=3e-3, schedule="onecycle"),
                       CNN_AUGMENT),
    "cnn": Recipe(TrainConfig(epochs=20, batch_size=64, lr=3e-3, schedule="onecycle"),
                  CNN_AUGMENT),
}


def recipe(name: str) -> Recipe:
    """The recipe of zoo model ``name`` (a model registered without one gets the default
    settings and no augmentation)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODELS)}")
    return RECIPES.get(name, Recipe(_DEFAULT))


def default_recipe(name: str) -> TrainConfig:
    """The training settings that give ``name`` its documented accuracy on the bundled digits."""
    return recipe(name).config


@dataclass
class LadderRow:
    """One trained rung: what it is, how big, how long it trained, how well it reads digits."""

    name: str
    adds: str
    description: str
    n_params: int
    seconds: float
    test_accuracy: float
    test_loss: float
    epochs: int
    config: TrainConfig
    augment: dict[str, Any] | None
    seed: int
    model: Sequential = field(repr=False)
    history: History = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (without the model and the per-batch history)."""
        return {"name": self.name, "adds": self.adds, "description": self.description,
                "n_params": self.n_params, "seconds": self.seconds,
                "test_accuracy": self.test_accuracy, "test_loss": self.test_loss,
                "epochs": self.epochs, "config": self.config.to_dict(), "augment": self.augment,
                "seed": self.seed, "stop_reason": self.history.stop_reason}

    def checkpoint_meta(self, data_source: str = "bundled",
                        trained_by: str = "ladder") -> dict[str, Any]:
        """The metadata to save with the model (the keys ``digitlens train`` writes, and more)."""
        return {"test_accuracy": self.test_accuracy, "test_loss": self.test_loss,
                "train_config": self.config.to_dict(), "augment": self.augment,
                "seed": self.seed, "data": data_source, "stop_reason": self.history.stop_reason,
                "seconds": self.seconds, "epochs_completed": self.epochs,
                "history": {"epochs": self.history.epochs}, "trained_by": trained_by}


def _describe_augment(fn) -> dict[str, Any] | None:
    if fn is None:
        return None
    to_dict = getattr(fn, "to_dict", None)
    return to_dict() if callable(to_dict) else {"function": getattr(fn, "__name__", repr(fn))}


def train_rung(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
               y_test: np.ndarray, *, adds: str = "", seed: int = 0,
               config: TrainConfig | None = None, augment: bool = True,
               callbacks: Sequence = ()) -> LadderRow:
    """Train zoo model ``name`` with its recipe (or ``config``) and test it.

    This is the one way a zoo model gets trained: ``digitlens train``, the ladder, the web page's
    first start and the test fixtures all call it.  A model reading fewer than ten digits (the
    ``binary`` 0-vs-1 model) is trained and tested on its classes only.

    Parameters
    ----------
    name : a zoo model with 10 classes (``logistic``, ``lab``, ``mlp``, ``cnn``, ...).
    x_train, y_train, x_test, y_test : ``(N, 1, 28, 28)`` images and ``(N,)`` labels.
    seed : seeds one Generator used, in this order, for the initial weights, then the training
        (shuffling, dropout, augmentation) — as ``digitlens train`` does.
    config : overrides the model's default recipe.
    augment : use the recipe's augmentation, if the model has one.
    callbacks : handed to :func:`digitlens.training.fit`; a callback with a ``set_model(model)``
        method is given the freshly built model first (the web page's training view uses it to
        measure test accuracy after every epoch).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODELS)}")
    entry = MODELS[name]
    if entry.classes != tuple(range(10)):  # e.g. the binary model reads only 0s and 1s
        keep_tr, keep_te = np.isin(y_train, entry.classes), np.isin(y_test, entry.classes)
        x_train, y_train = x_train[keep_tr], y_train[keep_tr]
        x_test, y_test = x_test[keep_te], y_test[keep_te]
    config = config or default_recipe(name)
    aug_fn = recipe(name).augment if augment else None
    rng = np.random.default_rng(seed)
    model = build_model(name, rng)
    for cb in callbacks:
        if callable(getattr(cb, "set_model", None)):
            cb.set_model(model)
    t0 = time.perf_counter()
    history = fit(model, x_train, y_train, config, rng=rng, callbacks=list(callbacks),
                  augment=aug_fn)
    seconds = time.perf_counter() - t0
    test_loss, test_acc = evaluate(model, x_test, y_test)
    return LadderRow(name=name, adds=adds, description=entry.sentence, n_params=model.n_params,
                     seconds=seconds, test_accuracy=float(test_acc), test_loss=float(test_loss),
                     epochs=len(history.epochs), config=config,
                     augment=_describe_augment(aug_fn), seed=seed, model=model, history=history)


__all__ = ["Recipe", "RECIPES", "CNN_AUGMENT", "recipe", "default_recipe", "LadderRow",
           "train_rung"]
