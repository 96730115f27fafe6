"""nn.topology (which layer plays which role) and Sequential.forward_range (the one forward
loop)."""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn import Activation, Dense, Dropout, Flatten, Sequential
from digitlens.nn import topology as T
from digitlens.nn.model import input_gradient_through

ZOO = ["logistic", "binary", "lab", "mlp", "cnn_tiny", "cnn"]

# name: pixel layer, first unit layer, final dense, last hidden dense, linear prefix,
#       conv blocks, the flattened maps the final dense layer's input layer reads
ROLES = {
    "logistic": (1, (1, 1, "dense"), 1, None, 2, [], None),
    "binary": (1, (1, 1, "dense"), 1, None, 2, [], None),
    "lab": (1, (1, 2, "dense"), 5, 3, 2, [], None),
    "mlp": (1, (1, 2, "dense"), 6, 4, 2, [], None),
    "cnn_tiny": (0, (0, 1, "conv"), 4, None, 1, [T.ConvBlock(0, 1, 2)], (6, 14, 14)),
    "cnn": (0, (0, 1, "conv"), 13, 10, 1,
            [T.ConvBlock(0, 1, 2), T.ConvBlock(3, 4, 5), T.ConvBlock(6, 7, None)], (64, 7, 7)),
}


def with_biases(m: Sequential, seed: int = 1) -> Sequential:
    rng = np.random.default_rng(seed)
    for layer in m.layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(0, 0.3, layer.params["b"].shape)
    return m


@pytest.mark.parametrize("name", ZOO)
def test_roles_of_the_zoo_models(name):
    m = dl.build_model(name, np.random.default_rng(0))
    pixel, first, final, hidden, prefix, blocks, maps = ROLES[name]
    assert T.pixel_layer(m) == pixel and T.unit_layers(m)[0] == pixel
    assert T.first_unit_layer(m) == first
    assert T.final_dense(m) == final == T.logit_layer(m)
    assert T.last_hidden_dense(m) == hidden
    assert T.linear_prefix(m) == prefix
    assert T.is_linear(m) == (name in ("logistic", "binary"))
    assert T.conv_blocks(m) == blocks and T.is_convolutional(m) == bool(blocks)
    assert T.input_is_pixels(m, final) == (name in ("logistic", "binary"))
    # the first dense layer after the convolutions reads a flattened stack of feature maps
    assert T.flattened_from(m, final if hidden is None else hidden) == maps
    # units that read the pixels directly feed the second dense layer of the MLPs
    if name in ("lab", "mlp"):
        assert T.pixel_dense(m, hidden) == 1 and T.pixel_dense(m, final) is None
    else:
        assert T.pixel_dense(m, final) is None


def test_trailing_identity_layers_and_models_without_a_dense_output():
    rng = np.random.default_rng(0)
    m = Sequential([Flatten(), Dense(10), Activation("identity"), Dropout(0.1)], rng=rng)
    assert T.final_dense(m) == T.logit_layer(m) == 1
    assert T.is_linear(m) and T.linear_prefix(m) == 4
    assert [T.is_identity(layer) for layer in m.layers] == [False, False, True, True]
    assert T.activation_fn(m.layers[2]) == "identity" and T.activation_fn(m.layers[1]) is None
    relu_out = Sequential([Flatten(), Dense(10), Activation("relu")], rng=rng)
    assert T.logit_layer(relu_out) == 2 and not T.is_linear(relu_out)
    with pytest.raises(ValueError, match="do not come straight from a Dense layer"):
        T.final_dense(relu_out)
    with pytest.raises(ValueError, match="no Dense or Conv2D"):
        T.pixel_layer(Sequential([Flatten()], rng=rng))
    # a linear prefix needs parameters: flatten and dropout alone are not worth a shortcut
    assert T.linear_prefix(Sequential([Flatten(), Dropout(0.1), Dense(4), Activation("relu"),
                                       Dense(10)], rng=rng)) == 3


# ------------------------------------------------------------------------------ forward_range
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ZOO)
def test_forward_range_pieces_give_the_forward_pass(digits, name, dtype):
    m = with_biases(dl.build_model(name, np.random.default_rng(0))).astype(dtype)
    x = digits.x_test[:3]  # (3, 1, 28, 28) float32: cast to the model's dtype
    z = m.forward(x)
    assert z.dtype == dtype
    tr = m.forward(x, trace=True)
    n = len(m.layers)
    for k in range(n + 1):
        h = m.forward_range(x, 0, k)
        assert h.dtype == dtype
        np.testing.assert_array_equal(m.forward_range(h, k), z)  # the same arithmetic
        if 0 < k:
            np.testing.assert_array_equal(h, tr.layers[k - 1].output)
        if k < n:
            np.testing.assert_array_equal(m.forward_range(tr.layers[k].input, k, k + 1),
                                          tr.layers[k].output)


@pytest.mark.parametrize("name", ["mlp", "cnn_tiny"])
def test_forward_range_caches_give_the_input_gradient_piece_by_piece(digits, name):
    m = with_biases(dl.build_model(name, np.random.default_rng(0))).astype(np.float64)
    x = digits.x_test[:2]
    z, caches = m.forward_range(x, caches=True)
    z2, caches2 = m.forward_with_caches(x)
    np.testing.assert_array_equal(z, z2)
    dz = np.random.default_rng(0).normal(size=z.shape)
    full = m.input_gradient(dz, caches)
    k = T.final_dense(m)
    h, head = m.forward_range(x, 0, k, caches=True)
    out, tail = m.forward_range(h, k, caches=True)
    np.testing.assert_array_equal(out, z)
    dh = input_gradient_through(m.layers[k:], dz, tail)
    np.testing.assert_allclose(input_gradient_through(m.layers[:k], dh, head), full,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.backward(dz, caches2)[0], full, rtol=1e-12, atol=1e-15)


def test_forward_range_with_dropout_draws_from_the_generator(digits):
    m = dl.build_model("mlp", np.random.default_rng(0))
    x = digits.x_test[:4]
    a = m.forward_range(x, training=True, rng=np.random.default_rng(7))
    b = m.forward(x, training=True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, m.forward(x))  # dropout did something


def test_forward_range_checks_its_arguments(digits):
    m = dl.build_model("lab", np.random.default_rng(0))
    x = digits.x_test[:2]
    for start, stop in [(3, 2), (0, 7), (-1, 2)]:
        with pytest.raises(ValueError, match="start <= stop"):
            m.forward_range(x, start, stop)
    with pytest.raises(ValueError, match="expected input of shape"):
        m.forward_range(x.reshape(2, 784))  # layer 0 reads images
    with pytest.raises(ValueError, match="single sample"):
        m.forward_range(x[0])
    h = m.forward_range(x, 0, 1)  # (2, 784) after Flatten
    assert h.shape == (2, 784)
    empty = m.forward_range(h.astype(np.float64), 3, 3)  # no layers: the input, cast
    assert empty.dtype == np.float32 and empty.shape == (2, 784)


def test_loss_from_logits_is_the_training_loss_without_gradients(digits):
    m = with_biases(dl.build_model("lab", np.random.default_rng(0))).astype(np.float64)
    x, y = digits.x_test[:16], digits.y_test[:16]
    loss, _ = m.loss_and_grads(x, y, training=False)
    z = m.forward(x)
    assert m.loss_from_logits(z, y) == pytest.approx(loss, rel=1e-12)
    value, dz = m.loss_from_logits(z, y, grad=True)
    assert value == pytest.approx(loss, rel=1e-12) and dz.shape == z.shape
    eps = 1e-6  # dz is the derivative of the mean loss: central differences on two logits
    for i, j in [(0, 3), (5, int(y[5]))]:
        e = np.zeros_like(z)
        e[i, j] = eps
        num = (m.loss_from_logits(z + e, y) - m.loss_from_logits(z - e, y)) / (2 * eps)
        assert dz[i, j] == pytest.approx(num, rel=1e-5, abs=1e-9)


def test_has_dropout_names_the_models_that_train_with_dropout():
    from digitlens.nn.topology import has_dropout

    rng = np.random.default_rng(0)
    assert {n: has_dropout(dl.build_model(n, rng)) for n in ("logistic", "lab", "mlp", "cnn")} == \
        {"logistic": False, "lab": False, "mlp": True, "cnn": True}
