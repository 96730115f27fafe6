"""Models for the interop tests: every zoo architecture with random weights and non-zero biases
(a bias that stayed 0 would hide a bias wired to the wrong place)."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.nn import Sequential, build_model


def randomised(model: Sequential, seed: int = 1) -> Sequential:
    rng = np.random.default_rng(seed)
    for k, v in model.params().items():
        if k.endswith(".b"):
            v[...] = rng.standard_normal(v.shape) * 0.3
    return model


@pytest.fixture()
def randomise():
    """``randomise(model)``: the model with random non-zero biases."""
    return randomised


@pytest.fixture()
def zoo_model():
    return lambda name: randomised(build_model(name, np.random.default_rng(0)))


@pytest.fixture(scope="module")
def hundred(digits):
    return digits.x_test[:100]
