"""A network the learner designs: the Train tab's own model, with the playground's four knobs.

:class:`CustomSpec` is the choice (hidden activation, width, depth, learning rate, epochs);
:func:`build_custom` turns it into a fresh :class:`~digitlens.nn.model.Sequential`
``784 -> [Dense(width), activation] x depth -> Dense(10) -> softmax``; :func:`train_custom`
trains it with :func:`digitlens.training.fit` (the one training loop) on the bundled split and
tests it, returning the same :class:`~digitlens.training.recipes.LadderRow` a zoo model gives.

A custom model lives under its own name (:meth:`CustomSpec.default_name`, e.g.
``sigmoid_2x32``), which can never be a zoo model's name: a zoo model's file is never replaced.
Nothing here prints or writes; randomness comes from one ``np.random.default_rng(seed)``, used
first for the initial weights, then for the shuffling (as :func:`~digitlens.training.recipes.
train_rung` does).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .._util.checks import check_choice, check_int, check_number
from ..nn import functional as F
from ..nn.layers import Activation, Dense, Flatten
from ..nn.model import Sequential
from ..nn.zoo import MODELS
from .fit import TrainConfig, evaluate, fit
from .recipes import LadderRow

#: the hidden activations one can choose (the engine's, as the playground offers them)
CUSTOM_ACTIVATIONS: tuple[str, ...] = tuple(F.ACTIVATIONS)
#: bounds of the knobs: units per hidden layer, hidden layers, learning rate, epochs
MAX_WIDTH, MAX_DEPTH, MAX_LR, MAX_EPOCHS = 512, 4, 1.0, 60
#: a custom model's name: lower-case letters, digits and underscores, starting with a letter
NAME_RULE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class CustomSpec:
    """The learner's network and how it trains.

    Parameters
    ----------
    activation : hidden activation, one of :data:`CUSTOM_ACTIVATIONS`.
    width : units per hidden layer, 1..:data:`MAX_WIDTH`.
    depth : hidden layers, 1..:data:`MAX_DEPTH`.
    lr : Adam's learning rate, in (0, :data:`MAX_LR`].
    epochs : passes over the 4,000 training digits, 1..:data:`MAX_EPOCHS`.

    Raises
    ------
    ValueError
        naming the knob, the rule and the value received.

    Examples
    --------
    >>> CustomSpec("sigmoid", width=32, depth=2).default_name()
    'sigmoid_2x32'
    """

    activation: str = "relu"
    width: int = 64
    depth: int = 2
    lr: float = 1e-3
    epochs: int = 10

    def __post_init__(self) -> None:
        check_choice("activation", self.activation, CUSTOM_ACTIVATIONS)
        check_int("width", self.width, 1, MAX_WIDTH)
        check_int("depth", self.depth, 1, MAX_DEPTH)
        check_number("lr", self.lr, f"in (0, {MAX_LR:g}]", lambda v: 0 < v <= MAX_LR)
        check_int("epochs", self.epochs, 1, MAX_EPOCHS)

    def default_name(self) -> str:
        """``{activation}_{depth}x{width}``: the name the model is saved under by default."""
        return f"{self.activation}_{self.depth}x{self.width}"

    def describe(self) -> str:
        """One sentence for the model switcher."""
        hidden = " → ".join([str(self.width)] * self.depth)
        layers = "layer" if self.depth == 1 else "layers"
        return (f"Your own network, 784 → {hidden} → 10: {self.depth} hidden {layers} of "
                f"{self.width} {self.activation} units and softmax, trained on the Train tab "
                f"(Adam, learning rate {self.lr:g}, {self.epochs} epochs).")

    def train_config(self) -> TrainConfig:
        """Adam with a constant learning rate, mini-batches of 64 (the learning rate the learner
        picked is the one used at every step)."""
        return TrainConfig(epochs=self.epochs, batch_size=64, optimizer="adam", lr=self.lr,
                           schedule="constant")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_custom_name(name: str) -> str:
    """``name`` if it can name a custom model: :data:`NAME_RULE` and not a zoo model's name."""
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise ValueError(f"name must be 1 to 40 lower-case letters, digits or underscores, "
                         f"starting with a letter, got {name!r}")
    if name in MODELS:
        raise ValueError(f"name {name!r} belongs to a zoo model; choose another name so the "
                         f"zoo's {name} is kept")
    return name


def build_custom(spec: CustomSpec, rng: np.random.Generator, *,
                 name: str | None = None) -> Sequential:
    """A fresh network for ``spec``: ``Flatten -> [Dense(width), Activation] x depth ->
    Dense(10)``, softmax with cross-entropy; weights drawn from ``rng`` (He before ReLU-like
    activations, Xavier otherwise: :class:`~digitlens.nn.layers.Dense`'s ``init="auto"``)."""
    layers: list = [Flatten()]
    for _ in range(spec.depth):
        layers += [Dense(spec.width), Activation(spec.activation)]
    layers.append(Dense(10))
    return Sequential(layers, loss="softmax_cross_entropy", name=name or spec.default_name(),
                      description=spec.describe(), rng=rng)


def train_custom(spec: CustomSpec, x_train: np.ndarray, y_train: np.ndarray,
                 x_test: np.ndarray, y_test: np.ndarray, *, name: str | None = None,
                 seed: int = 0, callbacks: Sequence = ()) -> LadderRow:
    """Build, train and test the learner's network.

    Parameters
    ----------
    spec : the network and its training.
    x_train, y_train, x_test, y_test : ``(N, 1, 28, 28)`` images and ``(N,)`` labels.
    name : the model's name (default :meth:`CustomSpec.default_name`).
    seed : one Generator for the initial weights, then the shuffling.
    callbacks : handed to :func:`~digitlens.training.fit`; one with ``set_model(model)`` is
        given the fresh model first (as in :func:`~digitlens.training.recipes.train_rung`).

    Returns
    -------
    :class:`~digitlens.training.recipes.LadderRow` with the trained model and its History.
    """
    name = check_custom_name(name) if name is not None else spec.default_name()
    rng = np.random.default_rng(seed)
    model = build_custom(spec, rng, name=name)
    for cb in callbacks:
        if callable(getattr(cb, "set_model", None)):
            cb.set_model(model)
    config = spec.train_config()
    t0 = time.perf_counter()
    history = fit(model, x_train, y_train, config, rng=rng, callbacks=list(callbacks))
    seconds = time.perf_counter() - t0
    test_loss, test_acc = evaluate(model, x_test, y_test)
    return LadderRow(name=name, adds="", description=spec.describe(), n_params=model.n_params,
                     seconds=seconds, test_accuracy=float(test_acc), test_loss=float(test_loss),
                     epochs=len(history.epochs), config=config, augment=None, seed=seed,
                     model=model, history=history)


__all__ = ["CUSTOM_ACTIVATIONS", "MAX_WIDTH", "MAX_DEPTH", "MAX_LR", "MAX_EPOCHS", "NAME_RULE",
           "CustomSpec", "check_custom_name", "build_custom", "train_custom"]
