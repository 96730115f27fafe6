"""Convolution and pooling layers: float64 gradient checks, the fast conv and max-pool against
the plain reference loops of ``nn.functional``, layer plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.nn import (LOSSES, Activation, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                          MaxPool2D, Sequential)
from digitlens.nn import functional as F
from digitlens.nn.checkpoint import load_model, save_model
from digitlens.nn.conv import (col2im, conv2d, conv2d_backward, im2col, maxpool2d,
                               maxpool2d_backward, output_size)
from digitlens.nn.layers import layer_from_config


def numerical_grad(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(a + eps) - f(a - eps)) / 2eps`` for every entry of ``arr``."""
    grad = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + eps
        up = f()
        arr[i] = old - eps
        down = f()
        arr[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def check_layer_grads(layer, x: np.ndarray, rng: np.random.Generator, tol: float = 1e-6):
    """Compare ``layer.backward`` with central differences of ``L = Σ y·R`` (R random)."""
    y, _ = layer.forward(x)
    R = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(layer.forward(x)[0] * R))

    y, cache = layer.forward(x)
    dx, grads = layer.backward(R, cache)
    assert dx.shape == x.shape
    assert rel_err(dx, numerical_grad(loss, x)) < tol
    for name, p in layer.params.items():
        assert grads[name].shape == p.shape
        assert rel_err(grads[name], numerical_grad(loss, p)) < tol, name
    assert set(grads) == set(layer.params)


def built(layer, in_shape, seed=0):
    layer.build(in_shape, np.random.default_rng(seed), np.float64)
    # random biases, so the check also covers db (they start at zero)
    if "b" in layer.params:
        layer.params["b"] = np.random.default_rng(seed + 1).standard_normal(layer.params["b"].shape)
    return layer


CONV_CASES = [  # (C_in, H, W, filters, kernel, stride, padding)
    (1, 6, 6, 2, 3, 1, 0),
    (2, 7, 6, 3, 3, 1, 1),
    (3, 8, 7, 2, 3, 2, 1),
    (2, 9, 9, 2, 5, 2, 2),
    (1, 7, 8, 3, (2, 3), (2, 1), (1, 0)),
    (2, 5, 5, 4, 1, 1, 0),
    (1, 6, 5, 2, 3, 3, 2),  # stride 3 with wide padding: some pixels are never read
]


@pytest.mark.parametrize("c_in,h,w,filters,kernel,stride,padding", CONV_CASES)
def test_conv2d_gradcheck(c_in, h, w, filters, kernel, stride, padding):
    rng = np.random.default_rng(0)
    layer = built(Conv2D(filters, kernel, stride=stride, padding=padding), (c_in, h, w))
    x = rng.standard_normal((2, c_in, h, w))
    check_layer_grads(layer, x, rng)


def test_conv2d_param_grads_match_backward():
    rng = np.random.default_rng(3)
    layer = built(Conv2D(3, 3, stride=2, padding=1), (2, 9, 8))
    x = rng.standard_normal((4, 2, 9, 8))
    z, cache = layer.forward(x)
    dz = rng.standard_normal(z.shape)
    _, full = layer.backward(dz, cache)
    only = layer.param_grads(dz, cache)
    assert set(only) == {"W", "b"}
    for k in only:
        np.testing.assert_allclose(only[k], full[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [1, 7, 64, 10_000])
def test_weight_gradient_in_blocks_of_columns_equals_the_reference(block, monkeypatch):
    """dW summed over blocks of image positions (any block size, including one that does not
    divide the number of columns, and one larger than it) is the reference loop's dW."""
    import digitlens.nn.conv as conv

    monkeypatch.setattr(conv, "PARAM_GRAD_BLOCK", block)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 7, 6))  # 3 * 7 * 6 = 126 columns with padding 1
    W = rng.standard_normal((4, 2, 3, 3))
    z, cols = conv2d(x, W, np.zeros(4), (1, 1), (1, 1))
    dz = rng.standard_normal(z.shape)
    _, ref_dW, ref_db = F.conv2d_reference_backward(dz, x, W, (1, 1), (1, 1))
    _, dW, db = conv2d_backward(dz, cols, x.shape, W, (1, 1), (1, 1))
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["logistic", "binary", "lab", "mlp", "cnn", "cnn_tiny"])
def test_input_gradient_is_backwards_dx_without_the_weight_gradients(name):
    # explanations use input_gradient / input_grad; training and the gradient checks use backward
    from digitlens import build_model

    rng = np.random.default_rng(4)
    m = build_model(name, rng, dtype=np.float64)
    x = rng.random((3,) + m.input_shape)
    z, caches = m.forward_with_caches(x)
    dz = rng.standard_normal(z.shape)
    dx, _ = m.backward(dz, caches)
    np.testing.assert_array_equal(m.input_gradient(dz, caches), dx)
    conv = built(Conv2D(3, 3, stride=2, padding=1), (2, 9, 8))
    xc = rng.standard_normal((4, 2, 9, 8))
    zc, cache = conv.forward(xc)
    dzc = rng.standard_normal(zc.shape)
    np.testing.assert_array_equal(conv.input_grad(dzc, cache), conv.backward(dzc, cache)[0])


def distinct_values(rng, shape, gap=1e-3):
    """Random values whose pairwise differences all exceed ``gap`` (no ties, and the finite-
    difference step cannot swap a window's maximum)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap + rng.uniform(0, 0.1 * gap, n)).reshape(shape) - n * gap / 2


@pytest.mark.parametrize("pool,stride,shape", [
    (2, None, (2, 3, 6, 6)),
    (2, None, (1, 2, 7, 5)),  # odd sizes: the last row/column is dropped, gets zero gradient
    (3, 2, (2, 2, 7, 7)),  # overlapping windows: one input can be the max of two windows
    ((2, 3), (1, 2), (1, 2, 5, 7)),
])
def test_maxpool_gradcheck(pool, stride, shape):
    rng = np.random.default_rng(1)
    layer = MaxPool2D(pool, stride)
    layer.build(shape[1:], rng)
    check_layer_grads(layer, distinct_values(rng, shape), rng)


def test_maxpool_routes_gradient_to_the_maximum_only():
    x = np.array([[[[1.0, 5.0, 0.0, 2.0],
                    [3.0, 4.0, 7.0, 1.0],
                    [0.5, 0.1, 0.2, 0.3],
                    [0.4, 0.9, 0.8, 0.6]]]])
    layer = MaxPool2D(2)
    y, cache = layer.forward(x)
    np.testing.assert_array_equal(y, [[[[5.0, 7.0], [0.9, 0.8]]]])
    dx, grads = layer.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]), cache)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 0, 1], expected[0, 0, 1, 2] = 10.0, 20.0
    expected[0, 0, 3, 1], expected[0, 0, 3, 2] = 30.0, 40.0
    np.testing.assert_array_equal(dx, expected)
    assert grads == {}


def test_maxpool_ties_send_the_gradient_to_the_first_maximum_once():
    x = np.ones((1, 1, 2, 2))
    layer = MaxPool2D(2)
    y, cache = layer.forward(x)
    dx, _ = layer.backward(np.full((1, 1, 1, 1), 3.0), cache)
    np.testing.assert_array_equal(dx[0, 0], [[3.0, 0.0], [0.0, 0.0]])


def test_flatten_gradcheck():
    rng = np.random.default_rng(2)
    check_layer_grads(Flatten(), rng.standard_normal((3, 2, 4, 5)), rng)


def test_flatten_of_batch_last_maps_keeps_pytorch_order():
    # conv outputs are (N, C, H, W) views of (C, H, W, N) memory; flattening must still read
    # channel, then row, then column for each image
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    bl = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    y, _ = Flatten().forward(bl)
    np.testing.assert_array_equal(y, x.reshape(2, -1))


def test_layers_accept_any_memory_layout():
    # the layers keep arrays batch-last for speed, but any (N, C, H, W) array gives the same result
    rng = np.random.default_rng(12)
    conv = built(Conv2D(3, 3, padding=1), (2, 6, 5))
    x = rng.standard_normal((4, 2, 6, 5))
    layouts = [x, np.asfortranarray(x), x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)]
    z0, c0 = conv.forward(x)
    dz = rng.standard_normal(z0.shape)
    for xl in layouts:
        z, cache = conv.forward(xl)
        np.testing.assert_array_equal(z, z0)
        for dzl in (dz, np.asfortranarray(dz)):
            dx, g = conv.backward(dzl, cache)
            np.testing.assert_allclose(dx, conv.backward(dz, c0)[0], rtol=1e-13, atol=1e-13)
        y, pc = MaxPool2D().forward(xl)
        np.testing.assert_array_equal(y, MaxPool2D().forward(x)[0])
        dy = rng.standard_normal(y.shape)
        np.testing.assert_array_equal(MaxPool2D().backward(np.asfortranarray(dy), pc)[0],
                                      MaxPool2D().backward(dy, pc)[0])




def test_dropout_and_dense_after_a_flattened_conv_keep_its_layout_and_its_numbers():
    """A conv's output is batch-last, so its flattening is a column-major (N, D) view.  Dropout
    then draws the same numbers as for a row-major copy (same generator state), stored like x, and
    the dense layer's input gradient comes back column-major: flattened back, it is batch-last
    like the ReLU's z, so no element-wise step below mixes two layouts (only the speed differs)."""
    rng = np.random.default_rng(13)
    z = rng.standard_normal((5, 4, 3, 3))
    z_bl = np.ascontiguousarray(z.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)  # batch-last
    flat, shape = Flatten().forward(z_bl)
    assert flat.flags.f_contiguous and not flat.flags.c_contiguous
    drop = Dropout(0.4)
    y_f, mask_f = drop.forward(flat, training=True, rng=np.random.default_rng(3))
    y_c, mask_c = drop.forward(np.ascontiguousarray(flat), training=True,
                               rng=np.random.default_rng(3))
    np.testing.assert_array_equal(y_f, y_c)  # the same mask, drawn in the same order
    assert mask_f.flags.f_contiguous and mask_c.flags.c_contiguous
    assert 0 < (mask_f == 0).sum() < mask_f.size
    dense = built(Dense(7), (36,))
    dz = rng.standard_normal((5, 7))
    dx_f, g_f = dense.backward(dz, y_f)
    dx_c, g_c = dense.backward(dz, y_c)
    np.testing.assert_allclose(dx_f, dz @ dense.params["W"].T, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx_f, dx_c, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(g_f["W"], g_c["W"], rtol=1e-13, atol=1e-13)
    assert dx_f.flags.f_contiguous and dx_c.flags.c_contiguous
    np.testing.assert_array_equal(dense.input_grad(dz, y_f), dx_f)
    da, _ = Flatten().backward(drop.backward(dx_f, mask_f)[0], shape)
    assert da.transpose(1, 2, 3, 0).flags.c_contiguous  # batch-last, like z_bl
    np.testing.assert_array_equal(da, (dx_c * mask_c).reshape(z.shape))
def test_global_avg_pool_gradcheck():
    rng = np.random.default_rng(4)
    layer = GlobalAvgPool2D()
    assert layer.build((3, 4, 5), rng) == (3,)
    x = rng.standard_normal((2, 3, 4, 5))
    y, _ = layer.forward(x)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)))
    check_layer_grads(layer, x, rng)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_conv2d_equals_the_reference_loop(stride, padding):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 6))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    s, p = (stride, stride), (padding, padding)
    z, cols = conv2d(x, W, b, s, p)
    np.testing.assert_allclose(z, F.conv2d_reference(x, W, b, s, p), rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z.shape)
    for fast, ref in zip(conv2d_backward(dz, cols, x.shape, W, s, p),
                         F.conv2d_reference_backward(dz, x, W, s, p)):
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12)


def test_the_reference_conv_is_the_definition_one_multiply_add_at_a_time():
    # the reference itself, against the formula written out with scalar loops
    rng = np.random.default_rng(6)
    x, W, b = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((2, 2, 3, 2)), rng.random(2)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    z = F.conv2d_reference(x, W, b, (2, 1), (1, 1))
    assert z.shape == (1, 2, 2, 6)
    for o in range(2):
        for r in range(2):
            for q in range(6):
                total = b[o] + sum(W[o, c, u, v] * xp[0, c, 2 * r + u, q + v]
                                   for c in range(2) for u in range(3) for v in range(2))
                assert z[0, o, r, q] == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("pool,stride,shape", [
    ((2, 2), (2, 2), (2, 3, 6, 6)),
    ((2, 2), (2, 2), (1, 2, 7, 5)),
    ((3, 3), (2, 2), (2, 2, 7, 7)),  # overlapping windows
    ((2, 3), (1, 2), (1, 2, 5, 7)),
])
def test_maxpool_equals_the_reference_loop_even_with_ties(pool, stride, shape):
    # values from {0, 1, 2}: many windows hold their maximum twice or more, and both send the
    # gradient to the first maximum in reading order
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, shape).astype(np.float64)
    y, arg = maxpool2d(x, pool, stride)
    np.testing.assert_array_equal(y, F.maxpool2d_reference(x, pool, stride))
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(maxpool2d_backward(dy, arg, x.shape, pool, stride),
                               F.maxpool2d_reference_backward(dy, x, pool, stride),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_worked_example_by_hand():
    # a vertical-edge filter on an image whose right half is ink: it fires only on the edge
    x = np.zeros((1, 1, 3, 4))
    x[..., 2:] = 1.0
    W = np.array([[[[-1.0, 1.0]]]])  # 1x2: right pixel minus left pixel
    z, _ = conv2d(x, W, np.zeros(1), (1, 1), (0, 0))
    np.testing.assert_array_equal(z[0, 0], [[0, 1, 0], [0, 1, 0], [0, 1, 0]])


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), c> == <x, col2im(c)> for all x, c: the defining property of the backward
    rng = np.random.default_rng(6)
    for kernel, stride, padding in [((3, 3), (1, 1), (1, 1)), ((3, 2), (2, 1), (0, 1)),
                                    ((5, 5), (3, 3), (2, 2))]:
        x = rng.standard_normal((2, 3, 8, 7))
        cols, _ = im2col(x, kernel, stride, padding)
        c = rng.standard_normal(cols.shape)
        lhs = np.vdot(cols, c)
        rhs = np.vdot(x, col2im(c, x.shape, kernel, stride, padding))
        assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


def test_output_size_formula():
    assert output_size(28, 3, 1, 1) == 28
    assert output_size(28, 5, 1, 0) == 24
    assert output_size(28, 3, 2, 1) == 14
    assert output_size(7, 2, 2, 0) == 3


def test_float32_stays_float32():
    layer = Conv2D(4, 3, padding=1)
    layer.build((1, 8, 8), np.random.default_rng(0))
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    z, cache = layer.forward(x)
    dx, grads = layer.backward(np.ones_like(z), cache)
    assert z.dtype == dx.dtype == grads["W"].dtype == grads["b"].dtype == np.float32
    y, cache = MaxPool2D().forward(z)
    assert y.dtype == MaxPool2D().backward(np.ones_like(y), cache)[0].dtype == np.float32


# ------------------------------------------------------------------------------ model plumbing


def small_cnn(rng, dtype=np.float64):
    return Sequential([Conv2D(3, 3, padding=1), Activation("tanh"), MaxPool2D(2),
                       Conv2D(4, 3, stride=2, padding=1), Activation("relu"), Flatten(),
                       Dense(5), Activation("tanh"), Dense(3)],
                      input_shape=(1, 8, 8), classes=(0, 1, 2), rng=rng, dtype=dtype)


def test_whole_cnn_gradcheck_with_l2():
    rng = np.random.default_rng(7)
    m = small_cnn(rng)
    x = rng.random((3, 1, 8, 8))
    y = np.array([0, 2, 1])
    for layer in m.layers:  # move biases off zero so ReLU kinks are not sitting at exactly 0
        if "b" in layer.params:
            layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape) * 0.1
    loss, grads = m.loss_and_grads(x, y, l2=0.01)
    for k, p in m.params().items():
        num = numerical_grad(lambda: m.loss_and_grads(x, y, l2=0.01)[0], p)
        assert rel_err(grads[k], num) < 1e-6, k
    # the input gradient (what saliency maps are made of), through both convolutions
    z, caches = m.forward_with_caches(x)
    _, dz = LOSSES[m.loss][0](z, m.targets(y, z.shape[1]))
    dx, _ = m.backward(dz, caches)
    num_x = numerical_grad(lambda: m.loss_and_grads(x, y)[0], x)
    assert rel_err(dx, num_x) < 1e-6


def test_conv_layers_init_he_before_relu_and_xavier_otherwise():
    rng = np.random.default_rng(0)
    m = Sequential([Conv2D(64, 5, padding=2), Activation("relu"), Conv2D(64, 5), Flatten(),
                    Dense(10)], rng=rng)
    assert m.layers[0].init_used == "he" and m.layers[2].init_used == "xavier"
    assert m.layers[0].init == m.layers[2].init == "auto"  # the constructor's choice stays
    W0 = m.layers[0].params["W"]
    assert W0.shape == (64, 1, 5, 5) and m.layers[0].params["b"].shape == (64,)
    assert abs(W0.std() - np.sqrt(2 / 25)) < 0.03
    W2 = m.layers[2].params["W"]
    assert abs(W2.std() - np.sqrt(2 / (64 * 25 + 64 * 25))) < 0.003
    assert m.shapes[:3] == [(64, 28, 28), (64, 28, 28), (64, 24, 24)]


def test_config_round_trip_and_checkpoint(tmp_path):
    rng = np.random.default_rng(8)
    m = Sequential([Conv2D(4, (3, 5), stride=(1, 2), padding=(1, 2)), Activation("relu"),
                    MaxPool2D(3, 2), Dropout(0.1), GlobalAvgPool2D(), Dense(10)], rng=rng)
    for layer in m.layers:
        again = layer_from_config(layer.config())
        assert again.config() == layer.config()
    path = save_model(m, tmp_path / "cnn.npz")
    m2 = load_model(path)
    x = rng.random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(m2.forward(x), m.forward(x))
    assert m2.shapes == m.shapes


def test_trace_exposes_feature_maps():
    rng = np.random.default_rng(9)
    m = Sequential([Conv2D(6, 5, padding=2), Activation("relu"), MaxPool2D(), Flatten(),
                    Dense(10)], rng=rng)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    tr = m.forward(x, trace=True)
    maps = tr.layers[1].output
    assert maps.shape == (2, 6, 28, 28) and np.all(maps >= 0)
    assert tr.layers[2].output.shape == (2, 6, 14, 14)
    np.testing.assert_allclose(tr.logits, m.forward(x))
    # a feature map is the filter applied at every position: check one pixel by hand
    W, b = m.layers[0].params["W"], m.layers[0].params["b"]
    patch = np.pad(x[1, 0], 2)[10:15, 7:12]
    assert np.isclose(tr.layers[0].output[1, 3, 10, 7], (W[3, 0] * patch).sum() + b[3],
                      rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make,message", [
    (lambda: Conv2D(0), "filters"),
    (lambda: Conv2D(3.5), "filters"),
    (lambda: Conv2D(4, kernel_size=0), "kernel_size"),
    (lambda: Conv2D(4, kernel_size=(3, 3, 3)), "kernel_size"),
    (lambda: Conv2D(4, stride=0), "stride"),
    (lambda: Conv2D(4, padding=-1), "padding"),
    (lambda: Conv2D(4, init="magic"), "init"),
    (lambda: MaxPool2D(0), "pool_size"),
])
def test_bad_hyper_parameters_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="does not fit"):
        Sequential([Conv2D(2, 7), Conv2D(2, 7), Conv2D(2, 7), Conv2D(2, 7), Conv2D(2, 7)],
                   input_shape=(1, 20, 20), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"expects images \(C, H, W\)"):
        Sequential([Flatten(), Conv2D(2, 3)], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2D(3).build((1, 2, 2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="channels"):
        conv2d(np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 3, 3)), np.zeros(1))


def test_maxpool2d_function_on_a_known_window():
    x = np.array([[[[0.0, 1.0, 9.0], [2.0, 3.0, 9.0]]]])  # the last column is dropped (3 // 2 = 1)
    y, arg = maxpool2d(x)
    assert y.shape == (1, 1, 1, 1) and y.item() == 3.0
    dx = maxpool2d_backward(np.ones((1, 1, 1, 1)), arg, x.shape)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 1, 0]])


def test_zoo_cnns_describe_their_layers_in_the_learners_terms():
    from digitlens.nn.zoo import build_model

    cnn = build_model("cnn", np.random.default_rng(0))
    first, pool, second = cnn.layers[0].describe(), cnn.layers[2].describe(), \
        cnn.layers[3].describe()
    assert "16 filters of 3×3" in first and "pixels" in first and "everywhere" in first
    assert "2×2" in pool and "strongest" in pool
    assert "32 filters" in second and "16 maps" in second
    tiny = build_model("cnn_tiny", np.random.default_rng(0))
    assert [layer.type for layer in tiny.layers] == ["conv2d", "activation", "maxpool2d",
                                                     "flatten", "dense"]
    assert tiny.layers[0].params["W"].shape == (6, 1, 5, 5)
    assert "2 pixels at a time" in built(Conv2D(4, 3, stride=2), (1, 8, 8)).describe()


@pytest.mark.parametrize("kernel,padding,stride", [
    ((3, 3), (1, 1), (1, 1)),  # the zoo's convolutions
    ((2, 3), (0, 2), (1, 1)),  # asymmetric kernel, full padding
    ((3, 3), (0, 0), (1, 1)),
    ((1, 1), (1, 0), (1, 1)),  # padding wider than the kernel
    ((3, 3), (1, 1), (2, 2)),  # stride 2
])
def test_input_gradient_equals_the_reference(kernel, padding, stride):
    """dx (W_matᵀ @ dz_mat, then col2im) against the reference loop, in float64 and float32; with
    stride 1 and padding < kernel it is also a forward convolution of dz with the flipped,
    channel-swapped filters (the transposed convolution the docs describe)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 2, 6, 7))
    W = rng.standard_normal((4, 2, *kernel))
    z, cols = conv2d(x, W, np.zeros(4), stride, padding)
    dz = rng.standard_normal(z.shape)
    ref_dx = F.conv2d_reference_backward(dz, x, W, stride, padding)[0]
    dx = conv2d_backward(dz, cols, x.shape, W, stride, padding)[0]
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    dx32 = conv2d_backward(dz.astype(np.float32), cols.astype(np.float32), x.shape,
                           W.astype(np.float32), stride, padding)[0]
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, ref_dx, rtol=1e-4, atol=1e-4)
    (kh, kw), (ph, pw) = kernel, padding
    if stride == (1, 1) and ph < kh and pw < kw:
        W_flip = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, kh, kw)
        as_conv, _ = conv2d(dz, W_flip, np.zeros(2), (1, 1), (kh - 1 - ph, kw - 1 - pw))
        np.testing.assert_allclose(as_conv, ref_dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_2x2_fast_path_equals_the_reference_loop_with_ties(dtype):
    """2x2 windows on even sizes take their own path (four views of the window's pixels, one
    code per window): forward and routed gradient equal the one-window-at-a-time reference,
    on images full of ties (0/1 pixels, like MNIST's background) and on an odd size (the
    general path), bit for bit."""
    rng = np.random.default_rng(8)
    for shape in ((3, 2, 8, 6), (2, 3, 7, 9)):
        x = rng.integers(0, 2, shape).astype(dtype)
        y, arg = maxpool2d(x)
        assert isinstance(arg[0], str) == (shape[2] % 2 == 0 and shape[3] % 2 == 0)
        np.testing.assert_array_equal(y, F.maxpool2d_reference(x, (2, 2), (2, 2)))
        dy = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_array_equal(maxpool2d_backward(dy, arg, x.shape),
                                      F.maxpool2d_reference_backward(dy, x, (2, 2), (2, 2)))
