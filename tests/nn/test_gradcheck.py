"""float64 central-difference gradient checks for every layer, activation and loss of the engine,
L2, dropout in fixed-mask mode, and whole models (parameter and input gradients).

Every check asserts a relative error < 1e-6 (``digitlens.nn.gradcheck``).  The checks run on tiny
inputs, so they are fast; the last section checks each layer type once more at the size it has in
the zoo's models (28×28 images, hundreds of units), marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.nn import functional as F
from digitlens.nn.gradcheck import (GradcheckError, check_activation, check_layer, check_loss,
                                    check_model, gradcheck, numerical_gradient, relative_error)
from digitlens.nn.layers import (Activation, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                                 MaxPool2D)
from digitlens.nn.model import Sequential

TOL = 1e-6


def away_from_kinks(shape, seed=0, margin=0.05):
    """Standard-normal values pushed at least ``margin`` away from 0 (ReLU's kink), so that a
    finite-difference step of 1e-6 never crosses it."""
    z = np.random.default_rng(seed).standard_normal(shape)
    return np.sign(z) * (np.abs(z) + margin)


# ------------------------------------------------------------------------- the checker itself


def test_numerical_gradient_of_a_known_function():
    x = np.array([0.5, -1.5, 2.0])
    g = numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(g, 3 * np.array([0.5, -1.5, 2.0]) ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, [0.5, -1.5, 2.0])  # restored after perturbing


def test_gradcheck_catches_a_wrong_gradient():
    x = np.array([1.0, 2.0, 3.0])
    with pytest.raises(GradcheckError, match=r"\['x'\]"):
        gradcheck(lambda: float(np.sum(x**2)), {"x": x}, {"x": 2 * x * 1.001})


def test_gradcheck_catches_a_subtly_broken_layer():
    class BrokenDense(Dense):
        def backward(self, dz, x):
            dx, grads = super().backward(dz, x)
            grads["b"] = grads["b"] * (1 + 1e-4)  # a 0.01% error is still caught
            return dx, grads

        def param_grads(self, dz, x):
            return self.backward(dz, x)[1]

    layer = BrokenDense(3)
    layer.build((4,), np.random.default_rng(0), dtype=np.float64)
    with pytest.raises(GradcheckError, match=r"\['b'\]"):
        check_layer(layer, np.random.default_rng(1).standard_normal((5, 4)))


def test_gradcheck_refuses_float32():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(lambda: float(x.sum()), x)


def test_relative_error_is_symmetric_and_zero_for_equal():
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.5])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert relative_error(a, b) == pytest.approx(relative_error(b, a))
    assert relative_error(a, b) == pytest.approx(0.5 / (np.linalg.norm(a) + np.linalg.norm(b)))


# ----------------------------------------------------------------------------------- layers


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_dense(init):
    layer = Dense(7, init=init)
    layer.build((5,), np.random.default_rng(0), dtype=np.float64)
    errors = check_layer(layer, np.random.default_rng(1).standard_normal((4, 5)))
    assert set(errors) == {"input", "W", "b"}
    assert max(errors.values()) < TOL


@pytest.mark.parametrize("fn", sorted(F.ACTIVATIONS))
def test_activation_functions(fn):
    forward, backward = F.ACTIVATIONS[fn]
    # several scales: the linear region, the bends, and saturation (|z| up to ~8)
    for scale in (0.3, 1.0, 4.0):
        z = away_from_kinks((6, 5), seed=int(scale * 10)) * scale
        assert check_activation(forward, backward, z) < TOL


@pytest.mark.parametrize("fn", sorted(F.ACTIVATIONS))
def test_activation_layers(fn):
    errors = check_layer(Activation(fn), away_from_kinks((4, 6)))
    assert errors["input"] < TOL


def test_softmax_backward():
    z = np.random.default_rng(0).standard_normal((4, 5)) * 3
    da = np.random.default_rng(1).standard_normal((4, 5))
    dz = F.softmax_backward(da, F.softmax(z))
    assert gradcheck(lambda: float(np.sum(F.softmax(z) * da)), {"z": z}, {"z": dz})["z"] < TOL


def test_flatten():
    x = np.random.default_rng(0).standard_normal((3, 2, 3, 4))
    errors = check_layer(Flatten(), x)
    assert errors["input"] < TOL


def test_dropout_fixed_mask():
    layer = Dropout(0.5)
    x = np.random.default_rng(0).standard_normal((6, 10))
    # the mask really drops something and scales the rest by 1/(1-p) ...
    y, mask = layer.forward(x, training=True, rng=np.random.default_rng(0))
    assert 0 < np.count_nonzero(mask == 0) < mask.size
    np.testing.assert_allclose(y[mask != 0], 2 * x[mask != 0])
    # ... and with the same generator state on every evaluation the function is differentiable
    assert check_layer(layer, x, training=True, seed=0)["input"] < TOL
    # in inference mode dropout is the identity
    np.testing.assert_array_equal(layer.forward(x, training=False)[0], x)


# ----------------------------------------------------------------------------------- losses


def test_softmax_cross_entropy():
    z = np.random.default_rng(0).standard_normal((6, 4)) * 2
    y = np.array([0, 3, 1, 1, 2, 0])
    assert check_loss(F.softmax_cross_entropy, z, y) < TOL


def test_softmax_cross_entropy_with_large_logits():
    # the log-sum-exp shift must keep the gradient right where a naive exp() would overflow
    z = np.random.default_rng(0).standard_normal((5, 3)) * 2 + np.array([800.0, 795.0, 790.0])
    assert check_loss(F.softmax_cross_entropy, z, np.array([0, 1, 2, 1, 0])) < TOL


@pytest.mark.parametrize("shape", [(7, 1), (5, 4)])
def test_sigmoid_binary_cross_entropy(shape):
    z = np.random.default_rng(0).standard_normal(shape) * 3
    y = (np.random.default_rng(1).random(shape) > 0.5).astype(np.float64)
    assert check_loss(F.sigmoid_binary_cross_entropy, z, y) < TOL


def test_mean_squared_error():
    z = np.random.default_rng(0).standard_normal((5, 3))
    y = np.random.default_rng(1).standard_normal((5, 3))
    assert check_loss(F.mean_squared_error, z, y) < TOL


# ----------------------------------------------------------------------------- whole models


def small_model(loss="softmax_cross_entropy", n_out=3, activation="tanh", dropout=0.0,
                classes=(0, 1, 2)):
    layers = [Flatten(), Dense(6), Activation(activation)]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Dense(5), Activation("sigmoid"), Dense(n_out)]
    return Sequential(layers, input_shape=(1, 3, 3), loss=loss, classes=classes,
                      rng=np.random.default_rng(0), dtype=np.float64)


X = np.random.default_rng(5).random((8, 1, 3, 3))  # "images" in [0, 1]
Y = np.array([0, 1, 2, 2, 1, 0, 0, 2])


@pytest.mark.parametrize("loss", sorted(["softmax_cross_entropy", "sigmoid_binary_cross_entropy",
                                         "mean_squared_error"]))
def test_model_parameter_and_input_gradients(loss):
    model = small_model(loss)
    errors = check_model(model, X, Y)
    assert set(errors) == {"input", *model.params()}
    assert max(errors.values()) < TOL


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu"])
def test_model_with_each_hidden_activation(activation):
    model = small_model(activation=activation)
    hidden = model.forward(X, trace=True).layers[1].output  # z of the first dense layer
    assert np.abs(hidden).min() > 1e-4  # no unit sits on a kink for these inputs
    assert max(check_model(model, X, Y).values()) < TOL


def test_model_with_l2():
    model = small_model()
    lam = 0.3
    loss_plain, _ = model.loss_and_grads(X, Y)
    loss_l2, grads = model.loss_and_grads(X, Y, l2=lam)
    weights = [p for k, p in model.params().items() if k.endswith(".W")]
    assert loss_l2 == pytest.approx(loss_plain + lam / 2 * sum(np.sum(w * w) for w in weights),
                                    rel=1e-12)
    assert max(check_model(model, X, Y, l2=lam).values()) < TOL


def test_l2_does_not_decay_biases():
    model = small_model()
    _, g0 = model.loss_and_grads(X, Y)
    _, g1 = model.loss_and_grads(X, Y, l2=0.5)
    for k in g0:
        if k.endswith(".b"):
            np.testing.assert_array_equal(g0[k], g1[k])
        else:
            np.testing.assert_allclose(g1[k], g0[k] + 0.5 * model.params()[k], rtol=1e-12)


def test_model_with_dropout_in_fixed_mask_mode():
    model = small_model(dropout=0.4)
    errors = check_model(model, X, Y, training=True, seed=3)
    assert max(errors.values()) < TOL
    # the mask matters: training-mode loss differs from inference-mode loss
    assert model.loss_and_grads(X, Y, training=True, rng=np.random.default_rng(3))[0] != \
        pytest.approx(model.loss_and_grads(X, Y, training=False)[0])


def test_binary_model_one_sigmoid_unit():
    model = Sequential([Flatten(), Dense(1)], input_shape=(1, 3, 3),
                       loss="sigmoid_binary_cross_entropy", classes=(0, 1),
                       rng=np.random.default_rng(0), dtype=np.float64)
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    assert max(check_model(model, X, y).values()) < TOL


def test_model_with_non_contiguous_classes():
    # labels 3 and 8 map to output units 0 and 1
    model = small_model(n_out=2, classes=(3, 8))
    y = np.array([3, 8, 8, 3, 3, 8, 3, 8])
    assert max(check_model(model, X, y).values()) < TOL


def test_loss_and_grads_never_changes_the_parameters():
    model = small_model()
    before = {k: v.copy() for k, v in model.params().items()}
    model.loss_and_grads(X, Y, l2=0.1)
    for k, v in model.params().items():
        np.testing.assert_array_equal(v, before[k])



@pytest.mark.parametrize("scale", [0.25, 3.0])
def test_scale_multiplies_the_loss_and_every_gradient_but_not_the_l2_term(scale):
    """``scale`` (a slice's share of its batch) weights the mean loss and its gradients; the L2
    penalty is the batch's, added once, unscaled."""
    model = small_model(dropout=0.3)
    plain, g = model.loss_and_grads(X, Y, rng=np.random.default_rng(4))
    scaled, gs = model.loss_and_grads(X, Y, rng=np.random.default_rng(4), scale=scale)
    assert scaled == pytest.approx(scale * plain, rel=1e-12)
    for k in g:
        np.testing.assert_allclose(gs[k], scale * g[k], rtol=1e-12, atol=1e-15)
    l2 = 0.1
    _, gl = model.loss_and_grads(X, Y, rng=np.random.default_rng(4), l2=l2, scale=scale)
    W = model.layers[1].params["W"]  # the first Dense (layer 0 is the Flatten)
    np.testing.assert_allclose(gl["1.W"], scale * g["1.W"] + l2 * W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gl["1.b"], scale * g["1.b"], rtol=1e-12, atol=1e-15)

# ------------------------------------------------------------------- realistic sizes (slow)
# One check per layer type at the size the zoo uses: 28x28 images, 784 inputs, a few hundred
# units.  Bugs that only show at real sizes (an off-by-one at an image's edge, a stride that
# skips the last column, a reshape that mixes images) cannot hide in a 6x6 image.


def distinct(shape, seed=0, gap=1e-3):
    """Values whose pairwise gaps exceed ``gap``: no ties, and no finite-difference step can
    change which input is a pooling window's maximum."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap + rng.uniform(0, 0.1 * gap, n)).reshape(shape) - n * gap / 2


def built(layer, in_shape, seed=0):
    layer.build(in_shape, np.random.default_rng(seed), dtype=np.float64)
    if "b" in layer.params:  # random biases, so db is checked away from zero
        layer.params["b"] = np.random.default_rng(seed + 1).standard_normal(
            layer.params["b"].shape) * 0.1
    return layer


IMAGES = np.random.default_rng(9).random((2, 1, 28, 28))  # two 28x28 "digits" in [0, 1]


@pytest.mark.slow
@pytest.mark.parametrize("make,x", [
    (lambda: built(Dense(32), (784,)), IMAGES.reshape(2, 784)),
    (lambda: Activation("gelu"), away_from_kinks((2, 256))),
    (lambda: Flatten(), np.random.default_rng(1).standard_normal((2, 32, 7, 7))),
    (lambda: built(Conv2D(4, 3, padding=1), (1, 28, 28)), IMAGES),
    (lambda: built(Conv2D(3, 5, stride=2, padding=2), (2, 14, 14)),
     np.random.default_rng(2).standard_normal((2, 2, 14, 14))),
    (lambda: MaxPool2D(2), distinct((2, 4, 28, 28))),
    (lambda: GlobalAvgPool2D(), np.random.default_rng(3).standard_normal((2, 8, 7, 7))),
], ids=["dense", "activation", "flatten", "conv2d", "conv2d_strided", "maxpool2d",
        "global_avg_pool2d"])
def test_each_layer_type_at_the_zoos_size(make, x):
    errors = check_layer(make(), x)
    assert max(errors.values()) < TOL, errors


@pytest.mark.slow
def test_dropout_at_the_zoos_size():
    errors = check_layer(Dropout(0.5), np.random.default_rng(4).standard_normal((4, 256)),
                         training=True, seed=1)
    assert errors["input"] < TOL

