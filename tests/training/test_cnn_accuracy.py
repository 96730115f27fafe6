"""Accuracy floors on the bundled split (1,000 test digits never seen in training).

The zoo models come from the session-wide ``trained`` fixture (trained once with their default
recipes and shared with the other test files).
"""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.training.recipes import (CNN_AUGMENT, TILT_AUGMENT, default_recipe, recipe,
                                        train_rung)


def accuracy_of(model, digits) -> float:
    return dl.evaluate(model, digits.x_test, digits.y_test)[1]


def test_cnn_recipes_train_on_augmented_digits(digits):
    """The CNN recipes augment, and train_rung really uses it: with the same seed, the model
    trained with augmentation differs from the one trained without, and says so."""
    import dataclasses

    one_epoch = dataclasses.replace(default_recipe("cnn_tiny"), epochs=1)
    x, y = digits.x_train[:128], digits.y_train[:128]
    rows = [train_rung("cnn_tiny", x, y, x[:32], y[:32], config=one_epoch, augment=a)
            for a in (True, False)]
    assert recipe("cnn_tiny").augment == TILT_AUGMENT and recipe("cnn").augment == CNN_AUGMENT
    assert rows[0].augment == TILT_AUGMENT.to_dict() and rows[1].augment is None
    w_aug, w_plain = rows[0].model.params(), rows[1].model.params()
    assert not np.allclose(w_aug["0.W"], w_plain["0.W"])
    assert recipe("mlp").augment == CNN_AUGMENT  # the mlp too: the ladder compares like with like


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
    # the mlp's own recipe, with the cnn's augmentation (tilt, size, shift, pen, warp)
    rng = np.random.default_rng(0)
    model = dl.build_model("mlp", rng)
    dl.fit(model, digits.x_train, digits.y_train, default_recipe("mlp"), rng=rng,
           augment=CNN_AUGMENT)
    assert accuracy_of(model, digits) >= 0.95


@pytest.mark.slow
def test_each_rung_of_the_ladder_reads_digits_better(trained, digits):
    acc = {name: accuracy_of(trained(name), digits) for name in ("logistic", "mlp", "cnn")}
    assert acc["logistic"] < acc["mlp"] < acc["cnn"], acc

