"""PyTorch as the reference oracle: the same weights and inputs give the same forward outputs,
losses and gradients (parameters and input) within 1e-5, in float64.

PyTorch is a test dependency only; the library never imports it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tF = torch.nn.functional

from digitlens.nn import functional as F  # noqa: E402
from digitlens.nn.layers import Activation, Dense, Dropout, Flatten  # noqa: E402
from digitlens.nn.model import LOSSES, Sequential  # noqa: E402
from digitlens.nn.zoo import build_model  # noqa: E402

ATOL = RTOL = 1e-5

TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "leaky_relu": lambda z: tF.leaky_relu(z, negative_slope=F.LEAKY_SLOPE),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "identity": lambda z: z,
    "elu": lambda z: tF.elu(z, alpha=1.0),
    "gelu": lambda z: tF.gelu(z, approximate="tanh"),
}

TORCH_LOSSES = {
    "softmax_cross_entropy": lambda z, y: tF.cross_entropy(z, y),
    "sigmoid_binary_cross_entropy": lambda z, y: tF.binary_cross_entropy_with_logits(z, y),
    "mean_squared_error": lambda z, y: tF.mse_loss(z, y),
}


def t(a, grad=False):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def torch_forward(model: Sequential, x, params, masks=None):
    """Run ``model``'s layers with torch ops on torch tensors ``params`` (keyed like
    ``model.params()``).  ``masks``: dropout masks by layer index (training mode), else eval."""
    a = x
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Flatten):
            a = torch.flatten(a, start_dim=1)
        elif isinstance(layer, Dense):
            # torch.nn.Linear stores W as (out, in) and computes a @ W.T + b; ours is (in, out)
            a = tF.linear(a, params[f"{i}.W"].T, params[f"{i}.b"])
        elif isinstance(layer, Activation):
            a = TORCH_ACTIVATIONS[layer.fn](a)
        elif isinstance(layer, Dropout):
            if masks is not None and masks.get(i) is not None:
                a = a * torch.from_numpy(masks[i])
        else:  # pragma: no cover - the zoo models above use only these layers
            raise AssertionError(f"no torch mapping for {layer}")
    return a


def torch_targets(model, y, n_out):
    tgt = model.targets(y, n_out)
    if model.loss == "softmax_cross_entropy":
        return torch.from_numpy(tgt)
    return t(tgt).reshape(len(y), n_out)  # labels -> (N,) for one unit; torch wants (N, 1)


def compare_model(model: Sequential, x: np.ndarray, y: np.ndarray, *, l2=0.0, training=False,
                  seed=0):
    model = model.astype(np.float64)
    ours_z, caches = model.forward_with_caches(x, training=training,
                                               rng=np.random.default_rng(seed))
    loss, grads = model.loss_and_grads(x, y, l2=l2, training=training,
                                       rng=np.random.default_rng(seed))
    _, dz = LOSSES[model.loss][0](ours_z, model.targets(y, ours_z.shape[1]))
    dx, _ = model.backward(dz, caches)

    params = {k: t(v, grad=True) for k, v in model.params().items()}
    xt = t(x.astype(np.float64), grad=True)
    masks = {i: c for i, (layer, c) in enumerate(zip(model.layers, caches))
             if isinstance(layer, Dropout)} if training else None
    z = torch_forward(model, xt, params, masks)
    tloss = TORCH_LOSSES[model.loss](z, torch_targets(model, y, z.shape[1]))
    data_loss = tloss
    if l2:
        tloss = tloss + l2 / 2 * sum((p * p).sum() for k, p in params.items() if k.endswith(".W"))
    dloss_dx, = torch.autograd.grad(data_loss, xt, retain_graph=True)
    tloss.backward()

    close(ours_z, z, "logits")
    close(model.output(ours_z), {"softmax_cross_entropy": torch.softmax,
                                 "sigmoid_binary_cross_entropy": lambda v, dim: torch.sigmoid(v),
                                 "mean_squared_error": lambda v, dim: v}[model.loss](z, dim=1),
          "output function")
    assert loss == pytest.approx(tloss.item(), rel=RTOL, abs=ATOL)
    assert set(grads) == set(params)
    for k, p in params.items():
        close(grads[k], p.grad, f"gradient of {k}")
    close(dx, dloss_dx, "input gradient")


@pytest.fixture(scope="module")
def batch(digits):
    return digits.x_train[:32].astype(np.float64), digits.y_train[:32]


@pytest.mark.parametrize("name", ["logistic", "lab", "mlp"])
def test_zoo_models_match_torch(name, batch):
    x, y = batch
    compare_model(build_model(name, np.random.default_rng(0)), x, y)  # mlp: dropout in eval mode


def test_binary_model_matches_torch(digits):
    keep = np.isin(digits.y_train, (0, 1))
    x, y = digits.x_train[keep][:32].astype(np.float64), digits.y_train[keep][:32]
    compare_model(build_model("binary", np.random.default_rng(0)), x, y)


def test_mlp_dropout_in_training_mode_matches_torch_with_the_same_mask(batch):
    x, y = batch
    compare_model(build_model("mlp", np.random.default_rng(0)), x, y, training=True, seed=7)


def test_l2_matches_torch(batch):
    x, y = batch
    compare_model(build_model("lab", np.random.default_rng(1)), x, y, l2=0.05)


@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("loss", sorted(TORCH_LOSSES))
def test_every_activation_and_loss_matches_torch(activation, loss, batch):
    x, y = batch
    model = Sequential([Flatten(), Dense(16), Activation(activation), Dense(10)], loss=loss,
                       rng=np.random.default_rng(2), dtype=np.float64)
    compare_model(model, x, y)


@pytest.mark.parametrize("fn", sorted(TORCH_ACTIVATIONS))
def test_activation_functions_match_torch(fn):
    z = np.random.default_rng(0).standard_normal((50, 7)) * 4
    da = np.random.default_rng(1).standard_normal(z.shape)
    forward, backward = F.ACTIVATIONS[fn]
    a = forward(z)
    zt = t(z, grad=True)
    at = TORCH_ACTIVATIONS[fn](zt)
    (at * t(da)).sum().backward()
    close(a, at, f"{fn} forward")
    close(backward(da, z, a), zt.grad, f"{fn} backward")


@pytest.mark.parametrize("loss", sorted(TORCH_LOSSES))
def test_losses_match_torch(loss):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((20, 10)) * 5
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, 10, 20)
        yt = torch.from_numpy(y)
    elif loss == "sigmoid_binary_cross_entropy":
        y = (rng.random((20, 10)) > 0.5).astype(np.float64)
        yt = t(y)
    else:
        y = rng.standard_normal((20, 10))
        yt = t(y)
    fn = {"softmax_cross_entropy": F.softmax_cross_entropy,
          "sigmoid_binary_cross_entropy": F.sigmoid_binary_cross_entropy,
          "mean_squared_error": F.mean_squared_error}[loss]
    ours, dz = fn(z, y)
    zt = t(z, grad=True)
    theirs = TORCH_LOSSES[loss](zt, yt)
    theirs.backward()
    assert ours == pytest.approx(theirs.item(), rel=1e-10)
    close(dz, zt.grad, f"{loss} gradient")


def test_softmax_and_log_softmax_match_torch():
    z = np.random.default_rng(0).standard_normal((10, 10)) * 30
    close(F.softmax(z), torch.softmax(t(z), dim=1), "softmax")
    close(F.log_softmax(z), torch.log_softmax(t(z), dim=1), "log_softmax")


def test_float32_engine_matches_torch_float32(batch):
    """Training runs in float32: the same forward/backward in torch float32 agrees closely."""
    x, y = batch
    model = build_model("mlp", np.random.default_rng(0))  # float32
    x32 = x.astype(np.float32)
    loss, grads = model.loss_and_grads(x32, y, training=False)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in model.params().items()}
    z = torch_forward(model, torch.from_numpy(x32), params)
    tloss = tF.cross_entropy(z, torch.from_numpy(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for k, p in params.items():
        np.testing.assert_allclose(grads[k], p.grad.numpy(), rtol=1e-3, atol=1e-6)
