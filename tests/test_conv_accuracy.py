"""Accuracy floors on the bundled split (1,000 test digits never seen in training).

The zoo models come from the session-wide ``trained`` fixture (trained once with their default
recipes and shared with the other test files).
"""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn.zoo import CNN_AUGMENT, MODELS, default_recipe


def accuracy_of(model, digits) -> float:
    return dl.evaluate(model, digits.x_test, digits.y_test)[1]


def test_cnn_recipe_includes_augmentation():
    recipe = default_recipe("cnn")
    aug = MODELS["cnn"].augment(recipe)
    assert aug is CNN_AUGMENT and not aug.is_identity


@pytest.mark.slow
def test_cnn_reaches_97_5_percent_with_its_default_recipe(trained, digits):
    assert accuracy_of(trained("cnn"), digits) >= 0.975


@pytest.mark.slow
def test_cnn_tiny_is_small_and_still_good(trained, digits):
    model = trained("cnn_tiny")
    assert model.layers[0].filters <= 8 and model.n_params < 20_000
    assert accuracy_of(model, digits) >= 0.95


@pytest.mark.slow
def test_mlp_with_augmentation_reaches_95_percent(digits):
    # the mlp's own recipe, plus the cnn's augmentation (tilt, resize, shift)
    rng = np.random.default_rng(0)
    model = dl.build_model("mlp", rng)
    dl.fit(model, digits.x_train, digits.y_train, default_recipe("mlp"), rng=rng,
           augment=CNN_AUGMENT)
    assert accuracy_of(model, digits) >= 0.95


@pytest.mark.slow
def test_each_rung_of_the_ladder_reads_digits_better(trained, digits):
    acc = {name: accuracy_of(trained(name), digits) for name in ("logistic", "mlp", "cnn")}
    assert acc["logistic"] < acc["mlp"] < acc["cnn"], acc

