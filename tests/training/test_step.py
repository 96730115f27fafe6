"""One training step on one digit: the numbers are the engine's own (loss_and_grads, the
optimizer), the update equals the optimizer's, and the model passed in never moves."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.nn import build_model
from digitlens.nn.optim import SGD, Adam
from digitlens.training.step import training_step


@pytest.fixture(scope="module")
def digit():
    rng = np.random.default_rng(0)
    img = np.zeros((28, 28))
    img[6:22, 12:16] = rng.uniform(0.5, 1.0, (16, 4))
    return img


def _engine(model, img, label, opt):
    """The same step done by hand with the engine: loss_and_grads, then the optimizer."""
    m = model.astype(np.float64)
    x = img.reshape(1, 1, 28, 28)
    loss, grads = m.loss_and_grads(x, np.array([label]), training=False)
    params = m.params()
    before = {k: v.copy() for k, v in params.items()}
    opt.step(params, grads)
    return m, loss, grads, {k: params[k] - before[k] for k in params}


@pytest.mark.parametrize("name,layer,unit", [("logistic", 1, 4), ("mlp", 1, 17), ("cnn", 0, 5),
                                             ("cnn", 3, 9), ("cnn", 6, 40), ("cnn", 10, 3)])
def test_the_update_equals_the_optimizers(digit, name, layer, unit):
    model = build_model(name, np.random.default_rng(1))
    frozen = {k: v.copy() for k, v in model.params().items()}
    s = training_step(model, digit, 7, layer=layer, unit=unit, optimizer="sgd", lr=0.05)
    m, loss, grads, upd = _engine(model, digit, 7, SGD(0.05, momentum=0.0))
    assert s.loss_before == loss
    for k in grads:
        np.testing.assert_array_equal(s.grads[k], grads[k])
        np.testing.assert_array_equal(s.updates[k], upd[k])
        # ΔW = −lr·g, up to the rounding of (W − lr·g) − W
        np.testing.assert_allclose(upd[k], -0.05 * grads[k], rtol=1e-9, atol=1e-15)
    W = grads[f"{layer}.W"]
    want = W[:, unit] if model.layers[layer].type == "dense" else W[unit]
    np.testing.assert_array_equal(s.grad_W, want)
    assert s.grad_b == grads[f"{layer}.b"][unit]
    np.testing.assert_allclose(s.update_W, -0.05 * want, rtol=1e-9, atol=1e-15)
    # the loss for the true label is −log p_label, and after the step it is the engine's loss
    assert s.loss_before == pytest.approx(-np.log(s.p_before[7]), rel=1e-9)
    assert s.loss_after == pytest.approx(float(m.loss_from_logits(
        m.forward(digit.reshape(1, 1, 28, 28)), np.array([7]))), rel=1e-12)
    assert s.loss_after < s.loss_before and s.p_after[7] > s.p_before[7]
    for k, v in model.params().items():  # the caller's model did not move
        np.testing.assert_array_equal(v, frozen[k])


def test_adam_moves_every_weight_by_about_lr(digit):
    model = build_model("mlp", np.random.default_rng(2))
    s = training_step(model, digit, 3, layer=1, unit=0, optimizer="adam", lr=0.001)
    _, _, grads, upd = _engine(model, digit, 3, Adam(0.001))
    for k in grads:
        np.testing.assert_array_equal(s.updates[k], upd[k])
    g = s.grad_W
    moved = np.abs(g) > 1e-6
    # on Adam's first step m̂/√v̂ = g/|g|: each weight moves lr against its gradient's sign
    np.testing.assert_allclose(s.update_W[moved], -0.001 * np.sign(g[moved]), rtol=1e-3)


def test_the_gradient_is_the_slope_of_the_loss(digit):
    """Central differences on one weight of the shown unit (float64)."""
    model = build_model("lab", np.random.default_rng(3), dtype=np.float64)
    s = training_step(model, digit, 2, layer=1, unit=6)
    i = int(np.argmax(np.abs(s.grad_W)))
    x, y, h = digit.reshape(1, 1, 28, 28), np.array([2]), 1e-6
    W = model.layers[1].params["W"]
    old = W[i, 6]
    W[i, 6] = old + h
    up = model.loss_and_grads(x, y, training=False)[0]
    W[i, 6] = old - h
    down = model.loss_and_grads(x, y, training=False)[0]
    W[i, 6] = old
    assert s.grad_W[i] == pytest.approx((up - down) / (2 * h), rel=1e-6)


def test_pictures_and_json(digit):
    model = build_model("mlp", np.random.default_rng(0))
    d = training_step(model, digit, 1, layer=1, unit=2, name="mlp").to_dict()
    assert d["reads_pixels"] and np.shape(d["grad"]) == (28, 28) == np.shape(d["update"])
    ex = d["example"]
    assert ex["update"] == pytest.approx(-0.1 * ex["grad"], rel=1e-5)
    assert ex["w_after"] == pytest.approx(ex["w"] + ex["update"], rel=1e-5)
    assert sum(d["p_after"]) == pytest.approx(1.0, abs=1e-5)
    cnn = build_model("cnn", np.random.default_rng(0))
    d = training_step(cnn, digit, 1, layer=3, unit=2).to_dict()
    assert d["grad_shape"] == [16, 3, 3] and np.shape(d["grad"]) == (3, 3)


def test_bad_requests_are_refused(digit):
    model = build_model("logistic", np.random.default_rng(0))
    with pytest.raises(ValueError, match="label"):
        training_step(model, digit, 11)
    with pytest.raises(ValueError, match="optimizer"):
        training_step(model, digit, 1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="layer"):
        training_step(model, digit, 1, layer=0)
    with pytest.raises(ValueError, match="unit"):
        training_step(model, digit, 1, layer=1, unit=10)
    with pytest.raises(ValueError, match="lr"):
        training_step(model, digit, 1, lr=-1)
    with pytest.raises(ValueError, match="image"):
        training_step(model, digit * 3, 1)
