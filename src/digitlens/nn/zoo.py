"""Named models, from the one the learner knows (logistic regression) upwards.

Each entry says in one sentence what it is.  How each is trained (its recipe) is
:mod:`digitlens.training.recipes`: the engine knows nothing of training.
``build_model(name, rng)`` returns a fresh, randomly initialised
:class:`~digitlens.nn.model.Sequential`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .layers import Activation, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D
from .model import Sequential


@dataclass(frozen=True)
class ZooEntry:
    name: str
    sentence: str
    layers: Callable[[], list[Layer]]
    loss: str = "softmax_cross_entropy"
    classes: tuple[int, ...] = tuple(range(10))


MODELS: dict[str, ZooEntry] = {}


def register_model(entry: ZooEntry) -> ZooEntry:
    MODELS[entry.name] = entry
    return entry


register_model(ZooEntry(
    "logistic",
    "Multinomial logistic regression: one weighted sum of the 784 pixels per digit, turned into "
    "ten probabilities by softmax — the logistic regression you know, with ten outputs instead "
    "of one.",
    lambda: [Flatten(), Dense(10)],
))
register_model(ZooEntry(
    "binary",
    "One sigmoid unit reading the 784 pixels: P(digit is 1) versus 0 — exactly binary logistic "
    "regression, as in the classic course lab (0s and 1s only).",
    lambda: [Flatten(), Dense(1)],
    loss="sigmoid_binary_cross_entropy",
    classes=(0, 1),
))
register_model(ZooEntry(
    "lab",
    "The course's network, 784→25→15→10 with ReLU: 25 units each learn a pixel template, 15 "
    "combine them, and softmax turns the last 10 sums into probabilities.",
    lambda: [Flatten(), Dense(25), Activation("relu"), Dense(15), Activation("relu"), Dense(10)],
))
register_model(ZooEntry(
    "mlp",
    "A wider multi-layer perceptron, 784→256→128→10 with ReLU and dropout: enough hidden units to "
    "learn many stroke templates and their combinations.",
    lambda: [Flatten(), Dense(256), Activation("relu"), Dropout(0.2),
             Dense(128), Activation("relu"), Dense(10)],
))

register_model(ZooEntry(
    "cnn_tiny",
    "The smallest convolutional network: 6 filters of 5×5 weights slide over the image and mark "
    "where their stroke pattern appears, 2×2 max-pooling keeps the strongest marks, and one "
    "weighted sum per digit reads the pooled maps — few enough filters to look at one by one.",
    lambda: [Conv2D(6, 5, padding=2), Activation("relu"), MaxPool2D(2), Flatten(), Dense(10)],
))
register_model(ZooEntry(
    "cnn",
    "The recommended model: three rounds of convolution (16, 32, then 64 filters of 3×3), the "
    "first two followed by 2×2 max-pooling, find strokes, then combinations of strokes, then "
    "parts of digits, anywhere in the image; a 128-unit hidden layer with dropout turns them into "
    "a digit.  Trained on randomly tilted, resized, shifted, re-inked and gently warped copies of "
    "the digits.",
    lambda: [Conv2D(16, 3, padding=1), Activation("relu"), MaxPool2D(2),
             Conv2D(32, 3, padding=1), Activation("relu"), MaxPool2D(2),
             Conv2D(64, 3, padding=1), Activation("relu"), Flatten(),
             Dropout(0.25), Dense(128), Activation("relu"), Dropout(0.5), Dense(10)],
))


def model_names() -> list[str]:
    return list(MODELS)


def build_model(name: str, rng: np.random.Generator, *, dtype=np.float32) -> Sequential:
    """A fresh model from the zoo.

    Parameters
    ----------
    name : one of :func:`model_names` (``"logistic"``, ``"binary"``, ``"lab"``, ``"mlp"``, ...).
    rng : Generator for the initial weights.

    Examples
    --------
    >>> import numpy as np
    >>> build_model("lab", np.random.default_rng(0)).n_params
    20175
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {model_names()}")
    e = MODELS[name]
    return Sequential(e.layers(), loss=e.loss, name=e.name, description=e.sentence,
                      classes=e.classes, rng=rng, dtype=dtype)
