"""The learner's own network (training/custom.py) and the train/test gap sentence
(training/words.py), on constructed histories and a tiny real run."""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn.layers import Activation, Dense
from digitlens.training.custom import (CUSTOM_ACTIVATIONS, CustomSpec, build_custom,
                                       check_custom_name, train_custom)
from digitlens.training.words import GAP_POINTS, gap_kind, gap_numbers, gap_sentence


def _epochs(*pairs):
    return [{"epoch": i + 1, "accuracy": tr, "test_accuracy": te} for i, (tr, te) in
            enumerate(pairs)]


# ------------------------------------------------------------------------------ the gap sentence
def test_overfitting_is_named_with_the_numbers():
    h = _epochs((0.90, 0.89), (0.995, 0.931))
    assert gap_kind(h) == "overfitting"
    s = gap_sentence(h)
    assert "Training accuracy (99.5%) is 6.4 points above test accuracy (93.1%)" in s
    assert "overfitting" in s and "memorising" in s
    # dropout or augmentation do not change what a positive gap means
    assert gap_kind(h, dropout=True, augment=True) == "overfitting"


def test_the_cnns_test_above_training_is_explained_by_dropout_and_augmentation():
    h = _epochs((0.93, 0.97), (0.962, 0.984))   # the cnn's shape: test above training
    s = gap_sentence(h, dropout=True, augment=True)
    assert gap_kind(h, dropout=True, augment=True) == "harder_training"
    assert "Test accuracy (98.4%) is 2.2 points above training accuracy (96.2%)" in s
    assert "dropout" in s and "augmentation" in s and "not a mistake" in s
    only_dropout = gap_sentence(h, dropout=True)
    assert "dropout" in only_dropout and "augmentation" not in only_dropout
    only_aug = gap_sentence(h, augment=True)
    assert "augmentation" in only_aug and "dropout" not in only_aug


def test_test_above_training_without_dropout_is_the_epoch_average():
    h = _epochs((0.48, 0.72))
    assert gap_kind(h) == "still_learning"
    s = gap_sentence(h)
    assert "24.0 points" in s and "average over the epoch's mini-batches" in s
    assert "dropout" not in s


def test_no_sentence_below_the_threshold_or_without_numbers():
    assert gap_sentence(_epochs((0.95, 0.95 - (GAP_POINTS - 0.1) / 100))) is None
    assert gap_sentence(_epochs((0.95, 0.95 - (GAP_POINTS + 0.1) / 100))) is not None
    assert gap_sentence([]) is None and gap_numbers([]) is None
    assert gap_sentence([{"epoch": 1, "accuracy": 0.9}]) is None  # no test number yet
    assert gap_sentence(_epochs((0.99, 0.90)), points=10) is None


def test_a_history_object_is_read_like_its_epochs_list():
    h = dl.History(epochs=_epochs((0.9, 0.8), (0.99, 0.9)))
    assert gap_sentence(h) == gap_sentence(h.epochs)
    n = gap_numbers(h)
    assert n["epoch"] == 2 and n["gap_points"] == pytest.approx(9.0)


# ------------------------------------------------------------------------------ the network
def test_the_spec_builds_the_network_it_names():
    spec = CustomSpec("sigmoid", width=32, depth=2, lr=0.01, epochs=3)
    assert spec.default_name() == "sigmoid_2x32"
    m = build_custom(spec, np.random.default_rng(0))
    dense = [layer for layer in m.layers if isinstance(layer, Dense)]
    acts = [layer.fn for layer in m.layers if isinstance(layer, Activation)]
    assert [d.params["W"].shape for d in dense] == [(784, 32), (32, 32), (32, 10)]
    assert acts == ["sigmoid", "sigmoid"] and m.name == "sigmoid_2x32"
    assert m.n_params == 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10
    assert "784 → 32 → 32 → 10" in m.description and "sigmoid" in m.description
    cfg = spec.train_config()
    assert (cfg.lr, cfg.epochs, cfg.optimizer, cfg.schedule) == (0.01, 3, "adam", "constant")
    assert set(CUSTOM_ACTIVATIONS) >= {"relu", "sigmoid", "tanh", "gelu"}


@pytest.mark.parametrize("kwargs,match", [
    (dict(activation="swish"), "activation must be one of"),
    (dict(width=0), r"width must be a whole number in \[1, 512\], got 0"),
    (dict(width=513), "width"), (dict(width=3.5), "width"), (dict(width=True), "width"),
    (dict(depth=0), "depth"), (dict(depth=5), "depth"),
    (dict(lr=0), r"lr must be in \(0, 1\], got 0"), (dict(lr=2.0), "lr"),
    (dict(lr=float("nan")), "lr"), (dict(epochs=0), "epochs"), (dict(epochs=61), "epochs"),
])
def test_bad_specs_are_refused_naming_the_knob(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CustomSpec(**kwargs)


@pytest.mark.parametrize("name", ["mlp", "cnn", "logistic", "../evil", "A", "", "x" * 41, "a b"])
def test_a_custom_name_is_never_a_zoo_name_or_a_path(name):
    with pytest.raises(ValueError, match="name"):
        check_custom_name(name)


def test_train_custom_is_reproducible_and_reports_its_own_test_accuracy(digits):
    spec = CustomSpec("tanh", width=16, depth=1, lr=0.01, epochs=1)
    x, y = digits.x_train[:800], digits.y_train[:800]
    a = train_custom(spec, x, y, digits.x_test, digits.y_test, seed=4)
    b = train_custom(spec, x, y, digits.x_test, digits.y_test, seed=4)
    np.testing.assert_array_equal(a.model.params()["1.W"], b.model.params()["1.W"])
    _, acc = dl.evaluate(a.model, digits.x_test, digits.y_test)
    assert a.test_accuracy == pytest.approx(acc) and acc > 0.5
    assert a.name == "tanh_1x16" and len(a.history.epochs) == 1 and a.augment is None
