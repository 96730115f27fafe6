"""The engine's numerics beyond gradients: stable formulas at extreme values, dtype discipline
(float32 stays float32), validation at the model's boundary, and the zoo's architecture."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from digitlens.nn import functional as F
from digitlens.nn.layers import Activation, Dense, Dropout, layer_from_config
from digitlens.nn.model import Sequential
from digitlens.nn.zoo import MODELS, build_model
from digitlens.training.recipes import RECIPES, default_recipe


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        yield


@pytest.mark.usefixtures("no_warnings")
def test_softmax_and_cross_entropy_are_stable_at_extreme_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    p = F.softmax(z)
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-7)
    loss, dz = F.softmax_cross_entropy(z, np.array([1, 2]))
    # -log p(class 1) = 1000 for the first row, log 3 for the second
    assert loss == pytest.approx((1000 + np.log(3)) / 2, rel=1e-6)
    assert np.all(np.isfinite(dz))


@pytest.mark.usefixtures("no_warnings")
def test_sigmoid_and_bce_are_stable_at_extreme_logits():
    z = np.array([[-1000.0], [1000.0], [0.0]])
    np.testing.assert_allclose(F.sigmoid(z).ravel(), [0.0, 1.0, 0.5])
    loss, dz = F.sigmoid_binary_cross_entropy(z, np.array([1.0, 0.0, 1.0]))
    assert loss == pytest.approx((1000 + 1000 + np.log(2)) / 3)
    np.testing.assert_allclose(dz.ravel(), [-1 / 3, 1 / 3, -0.5 / 3])


@pytest.mark.usefixtures("no_warnings")
def test_elu_does_not_overflow_for_large_positive_inputs():
    z = np.array([-50.0, 0.5, 800.0])
    np.testing.assert_allclose(F.elu(z), [np.expm1(-50.0), 0.5, 800.0])


@pytest.mark.parametrize("fn", sorted(F.ACTIVATIONS))
def test_activations_keep_float32(fn):
    forward, backward = F.ACTIVATIONS[fn]
    z = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    a = forward(z)
    assert a.dtype == np.float32
    assert backward(np.ones_like(z), z, a).dtype == np.float32


def test_losses_keep_float32():
    z = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    assert F.softmax_cross_entropy(z, np.array([0, 1, 2, 0]))[1].dtype == np.float32
    assert F.sigmoid_binary_cross_entropy(z, np.zeros((4, 3)))[1].dtype == np.float32
    assert F.mean_squared_error(z, np.zeros((4, 3)))[1].dtype == np.float32


@pytest.mark.parametrize("name", ["logistic", "lab", "mlp"])
def test_training_step_stays_float32(name):
    """Nothing in forward, backward or the optimizer silently upcasts to float64."""
    from digitlens.nn.optim import SGD, Adam

    model = build_model(name, np.random.default_rng(0))
    x = np.random.default_rng(1).random((8, 1, 28, 28), dtype=np.float32)
    y = np.arange(8)
    loss, grads = model.loss_and_grads(x, y, l2=1e-3, rng=np.random.default_rng(0))
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}
    for opt in (SGD(0.1, momentum=0.9), Adam(1e-3)):
        opt.step(model.params(), grads)
        opt.step(model.params(), grads)
        assert {p.dtype for p in model.params().values()} == {np.dtype(np.float32)}
        assert {a.dtype for s in opt.state.values() for a in s.values()} == {np.dtype(np.float32)}
    tr = model.forward(x, trace=True)
    assert {t.output.dtype for t in tr.layers} == {np.dtype(np.float32)}


def test_zoo_architectures_and_parameter_counts():
    rng = np.random.default_rng(0)
    counts = {name: build_model(name, rng).n_params
              for name in ["logistic", "binary", "lab", "mlp"]}
    assert counts == {
        "logistic": 784 * 10 + 10,
        "binary": 784 + 1,
        "lab": 784 * 25 + 25 + 25 * 15 + 15 + 15 * 10 + 10,
        "mlp": 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10,
    }
    for name, entry in MODELS.items():
        assert entry.sentence.endswith(".")
    assert set(RECIPES) == set(MODELS)  # every zoo model has its own recipe
    assert all(default_recipe(name).epochs >= 1 for name in MODELS)


def test_he_and_xavier_initialisation_scales():
    rng = np.random.default_rng(0)
    he = Sequential([Dense(400), Dense(10)], input_shape=(784,), rng=rng, build=True)
    # with no activation after them both layers use Xavier: std = sqrt(2 / (fan_in + fan_out))
    assert he.layers[0].init_used == "xavier"
    assert np.std(he.layers[0].params["W"]) == pytest.approx(np.sqrt(2 / 1184), rel=0.02)
    relu = build_model("mlp", rng)
    assert relu.layers[1].init_used == "he"  # followed by ReLU
    assert np.std(relu.layers[1].params["W"]) == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert relu.layers[-1].init_used == "xavier"  # the output layer
    assert all(np.all(p == 0) for k, p in relu.params().items() if k.endswith(".b"))


def test_a_layers_own_init_wins_and_auto_is_decided_at_every_build():
    # the constructor's scheme wins over the model's He-before-ReLU default ...
    m = Sequential([Dense(400, init="xavier"), Activation("relu"), Dense(10, init="he")],
                   input_shape=(784,), rng=np.random.default_rng(0))
    assert [m.layers[0].init_used, m.layers[2].init_used] == ["xavier", "he"]
    assert np.std(m.layers[0].params["W"]) == pytest.approx(np.sqrt(2 / 1184), rel=0.02)
    assert np.std(m.layers[2].params["W"]) == pytest.approx(np.sqrt(2 / 400), rel=0.05)
    # ... and "auto" is not overwritten by build: the same layer, built again where no ReLU
    # follows it, gets Xavier instead of keeping the He it got before a ReLU
    layer = Dense(400)
    layer.build((784,), np.random.default_rng(0), next_activation="relu")
    assert (layer.init, layer.init_used, layer.config()["init"]) == ("auto", "he", "he")
    layer.build((784,), np.random.default_rng(0), next_activation=None)
    assert (layer.init, layer.init_used) == ("auto", "xavier")
    assert np.std(layer.params["W"]) == pytest.approx(np.sqrt(2 / 1184), rel=0.02)
    assert Dense(3).config()["init"] == "auto"  # not built yet: the constructor's choice


def test_layer_configs_round_trip():
    for layer in build_model("mlp", np.random.default_rng(0)).layers:
        again = layer_from_config(layer.config())
        assert again.config() == layer.config()


@pytest.mark.parametrize("bad, message", [
    (lambda: Dense(0), "Dense units must be a whole number >= 1, got 0"),
    (lambda: Dense(2.5), "got 2.5"),
    (lambda: Dense(3, init="glorot"), "init must be 'auto', 'he' or 'xavier', got 'glorot'"),
    (lambda: Dropout(1.0), r"Dropout p must be in \[0, 1\), got 1.0"),
    (lambda: layer_from_config({"type": "lstm"}), "unknown layer type 'lstm'"),
    (lambda: Sequential([Dense(2)], loss="hinge", rng=np.random.default_rng(0)), "loss must be"),
    (lambda: Sequential([Dense(2)]), "needs rng"),
])
def test_invalid_layers_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        bad()


def test_model_input_validation():
    model = build_model("logistic", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"single sample .*use x\[None\]"):
        model.forward(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError,
                       match=r"expected input of shape \(N, 1, 28, 28\), got \(2, 784\)"):
        model.forward(np.zeros((2, 784), np.float32))
    with pytest.raises(ValueError, match="divide uint8 pixels by 255"):
        model.forward(np.zeros((2, 1, 28, 28), np.uint8))
    bad = np.zeros((2, 1, 28, 28), np.float32)
    bad[1, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        model.predict_proba(bad)
    with pytest.raises(ValueError, match=r"labels must be in"):
        model.loss_and_grads(np.zeros((2, 1, 28, 28), np.float32), np.array([3, 10]))
    with pytest.raises(ValueError, match=r"labels must be whole numbers"):
        model.loss_and_grads(np.zeros((2, 1, 28, 28), np.float32), np.array([0.5, 1.0]))


def test_trace_exposes_every_intermediate():
    model = build_model("lab", np.random.default_rng(0))
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    tr = model.forward(x, trace=True)
    assert [t.name for t in tr.layers] == ["0:flatten", "1:dense", "2:activation", "3:dense",
                                           "4:activation", "5:dense"]
    for prev, nxt in zip(tr.layers, tr.layers[1:]):
        assert nxt.input is prev.output
    np.testing.assert_array_equal(tr.layers[2].output, np.maximum(tr.layers[1].output, 0))
    np.testing.assert_array_equal(tr.logits, model.forward(x))
    np.testing.assert_allclose(tr.output, F.softmax(tr.logits))
    np.testing.assert_allclose(tr.output.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("module", ["digitlens.nn.functional", "digitlens.nn.layers",
                                    "digitlens.nn.model", "digitlens.nn.optim",
                                    "digitlens.nn.gradcheck", "digitlens.nn.zoo",
                                    "digitlens.training.fit", "digitlens.training.augment",
                                    "digitlens.data.bundled"])
def test_docstring_examples_are_true(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
