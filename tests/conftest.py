"""Shared fixtures: the bundled split and trained zoo models (trained once per test session)."""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn.zoo import MODELS, default_recipe

_TRAINED: dict = {}


@pytest.fixture(scope="session")
def digits():
    return dl.load_digits()


def train_zoo_model(name: str, epochs: int | None = None, seed: int = 0):
    """Train zoo model ``name`` with its default recipe (optionally fewer epochs); cached per
    session by (name, epochs, seed).  Returns ``(model, history)``."""
    import dataclasses

    key = (name, epochs, seed)
    if key not in _TRAINED:
        d = dl.load_digits()
        recipe = default_recipe(name)
        if epochs is not None:
            recipe = dataclasses.replace(recipe, epochs=epochs)
        x, y = d.x_train, d.y_train
        classes = MODELS[name].classes
        if classes != tuple(range(10)):
            keep = np.isin(y, classes)
            x, y = x[keep], y[keep]
        rng = np.random.default_rng(seed)
        model = dl.build_model(name, rng)
        augment = getattr(MODELS[name], "augment", None)
        kwargs = {"augment": augment(recipe)} if callable(augment) else {}
        history = dl.fit(model, x, y, recipe, rng=rng, **kwargs)
        _TRAINED[key] = (model, history)
    return _TRAINED[key]


@pytest.fixture(scope="session")
def trained():
    """``trained(name, epochs=None)`` -> a model trained with its default recipe (cached)."""
    return lambda name, epochs=None: train_zoo_model(name, epochs)[0]
