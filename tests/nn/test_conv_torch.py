"""Convolution and pooling against PyTorch: same weights, same input, same numbers (within 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlens.nn import LOSSES, Activation, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Sequential
from digitlens.nn.conv import conv2d, conv2d_backward, maxpool2d, maxpool2d_backward

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = dict(rtol=1e-5, atol=1e-5)


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2 + 1)), draw(st.integers(0, kw // 2 + 1))
    h = draw(st.integers(max(1, kh - 2 * ph), 12))
    w = draw(st.integers(max(1, kw - 2 * pw), 12))
    return dict(n=draw(st.integers(1, 4)), c_in=draw(st.integers(1, 4)),
                c_out=draw(st.integers(1, 5)), h=h, w=w, kernel=(kh, kw), stride=(sh, sw),
                padding=(ph, pw), dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv2d_forward_and_gradients_match_pytorch(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c_in"], case["h"], case["w"])).astype(case["dtype"])
    W = rng.standard_normal((case["c_out"], case["c_in"], *case["kernel"])).astype(case["dtype"])
    b = rng.standard_normal(case["c_out"]).astype(case["dtype"])
    z, cols = conv2d(x, W, b, case["stride"], case["padding"])

    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    zt = TF.conv2d(xt, Wt, bt, stride=case["stride"], padding=case["padding"])
    assert z.shape == tuple(zt.shape)
    np.testing.assert_allclose(z, zt.detach().numpy(), **TOL)

    dz = rng.standard_normal(z.shape).astype(case["dtype"])
    zt.backward(torch.tensor(dz))
    dx, dW, db = conv2d_backward(dz, cols, x.shape, W, case["stride"], case["padding"])
    assert dx.dtype == dW.dtype == db.dtype == case["dtype"]
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), **TOL)
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 4)),
                h=draw(st.integers(kh, 11)), w=draw(st.integers(kw, 11)), kernel=(kh, kw),
                stride=(sh, sw), dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=60, deadline=None)
@given(pool_cases())
def test_maxpool_forward_and_gradient_match_pytorch(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(case["dtype"])
    y, arg = maxpool2d(x, case["kernel"], case["stride"])
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.max_pool2d(xt, case["kernel"], case["stride"])
    np.testing.assert_array_equal(y, yt.detach().numpy())
    dy = rng.standard_normal(y.shape).astype(case["dtype"])
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(maxpool2d_backward(dy, arg, x.shape, case["kernel"],
                                                  case["stride"]), xt.grad.numpy(), **TOL)


def test_maxpool_ties_match_pytorch():
    # images with large flat regions (like MNIST's background) have ties everywhere
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (2, 3, 8, 8)).astype(np.float32)
    y, arg = maxpool2d(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.max_pool2d(xt, 2)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(dy))
    np.testing.assert_array_equal(maxpool2d_backward(dy, arg, x.shape), xt.grad.numpy())


def to_torch(model: Sequential):
    """The same network in PyTorch, sharing our weights (Dense W is (in, out); Linear wants
    (out, in))."""
    mods = []
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            c = torch.nn.Conv2d(layer.params["W"].shape[1], layer.filters, layer.kernel_size,
                                layer.stride, layer.padding)
            c.weight.data = torch.tensor(layer.params["W"])
            c.bias.data = torch.tensor(layer.params["b"])
            mods.append(c)
        elif isinstance(layer, Dense):
            d = torch.nn.Linear(*layer.params["W"].shape)
            d.weight.data = torch.tensor(layer.params["W"].T.copy())
            d.bias.data = torch.tensor(layer.params["b"])
            mods.append(d)
        elif isinstance(layer, MaxPool2D):
            mods.append(torch.nn.MaxPool2d(layer.pool_size, layer.stride))
        elif isinstance(layer, Flatten):
            mods.append(torch.nn.Flatten())
        elif isinstance(layer, Activation):
            mods.append({"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()}[layer.fn])
        elif isinstance(layer, Dropout):
            mods.append(torch.nn.Identity())  # compared in inference mode
        else:
            raise AssertionError(layer)
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cnn_model_logits_and_all_gradients_match_pytorch(dtype):
    rng = np.random.default_rng(11)
    m = Sequential([Conv2D(8, 3, padding=1), Activation("relu"), MaxPool2D(),
                    Conv2D(16, 3, padding=1), Activation("relu"), MaxPool2D(), Flatten(),
                    Dropout(0.3), Dense(32), Activation("tanh"), Dense(10)], rng=rng, dtype=dtype)
    x = rng.random((16, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, 16)
    loss, grads = m.loss_and_grads(x, y, training=False)

    tm = to_torch(m)
    xt = torch.tensor(x, requires_grad=True)
    zt = tm(xt)
    np.testing.assert_allclose(m.forward(x), zt.detach().numpy(), **TOL)
    lt = TF.cross_entropy(zt, torch.tensor(y))
    lt.backward()
    assert abs(loss - lt.item()) < 1e-5
    torch_grads = {"0": tm[0], "3": tm[3], "8": tm[8], "10": tm[10]}
    for i, mod in torch_grads.items():
        np.testing.assert_allclose(grads[f"{i}.b"], mod.bias.grad.numpy(), **TOL)
        g = mod.weight.grad.numpy()
        np.testing.assert_allclose(grads[f"{i}.W"], g.T if g.ndim == 2 else g, **TOL)
    # the gradient with respect to the image (saliency) too
    z, caches = m.forward_with_caches(x)
    _, dz = LOSSES[m.loss][0](z, m.targets(y, z.shape[1]))
    dx, _ = m.backward(dz, caches)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
