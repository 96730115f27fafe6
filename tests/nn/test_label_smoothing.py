"""Label smoothing: the softmax cross-entropy against ``(1-ε)·onehot + ε/K``.

Checked four ways: float64 finite differences (the loss alone and through a whole model), PyTorch's
``cross_entropy(..., label_smoothing=ε)`` as the oracle for the loss and its gradient, ε = 0 giving
bit for bit the plain loss as it was computed before the option existed, and the option reaching
training through ``TrainConfig``, ``fit`` and the sliced step."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.nn import functional as F
from digitlens.nn.gradcheck import check_loss, gradcheck
from digitlens.nn.layers import Activation, Dense, Dropout, Flatten
from digitlens.nn.model import Sequential
from digitlens.nn.zoo import build_model
from digitlens.training.fit import TrainConfig, evaluate, fit
from digitlens.training.split import SplitStep

TOL = 1e-6


def logits(n=6, k=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k)) * 3, rng.integers(0, k, n)


def plain_cross_entropy(z, y):
    """The loss as ``softmax_cross_entropy`` computed it before label smoothing existed."""
    n = z.shape[0]
    logp = F.log_softmax(z)
    loss = -logp[np.arange(n), y].mean()
    dz = np.exp(logp)
    dz[np.arange(n), y] -= 1
    dz /= n
    return float(loss), dz


def small_mlp(dtype=np.float64, loss="softmax_cross_entropy", seed=0):
    return Sequential([Flatten(), Dense(7), Activation("tanh"), Dropout(0.3), Dense(10)],
                      input_shape=(1, 4, 4), loss=loss, rng=np.random.default_rng(seed),
                      dtype=dtype)


# ----------------------------------------------------------------------------- the loss itself


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.5, 0.9])
def test_smoothed_loss_gradient_matches_finite_differences(eps):
    z, y = logits()
    err = check_loss(lambda zz, yy: F.softmax_cross_entropy(zz, yy, eps), z, y)
    assert err < TOL


def test_smoothed_loss_by_hand():
    # two classes, logits (2, 0), label 0, ε = 0.2: target t = (0.9, 0.1)
    z, y = np.array([[2.0, 0.0]]), np.array([0])
    logp = np.array([2.0, 0.0]) - np.log(np.exp(2.0) + 1.0)
    loss, dz = F.softmax_cross_entropy(z, y, 0.2)
    assert loss == pytest.approx(-(0.9 * logp[0] + 0.1 * logp[1]), rel=1e-12)
    np.testing.assert_allclose(dz, [np.exp(logp) - [0.9, 0.1]], rtol=1e-12)
    # the gradient still sums to zero over the classes (softmax and t both sum to 1)
    np.testing.assert_allclose(dz.sum(), 0.0, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_smoothing_is_the_plain_loss_bit_for_bit(dtype):
    z, y = logits(n=32)
    z = z.astype(dtype)
    loss, dz = F.softmax_cross_entropy(z, y, 0.0)
    ref_loss, ref_dz = plain_cross_entropy(z.copy(), y)
    assert loss == ref_loss
    assert dz.dtype == dtype
    np.testing.assert_array_equal(dz, ref_dz)


def test_the_minimum_of_the_smoothed_loss_is_the_smoothed_target():
    """At p = t the gradient vanishes: the smoothed loss no longer asks for 100% certainty."""
    eps, k = 0.1, 10
    t = np.full(k, eps / k)
    t[3] += 1 - eps
    z = np.log(t)[None, :]  # softmax(z) = t
    loss, dz = F.softmax_cross_entropy(z, np.array([3]), eps)
    np.testing.assert_allclose(dz, 0.0, atol=1e-15)
    # the lowest the smoothed loss can go is the entropy of t (0.50 for ε = 0.1, K = 10)
    assert loss == pytest.approx(-np.sum(t * np.log(t)), rel=1e-12)
    assert round(loss, 2) == 0.50
    _, dz_plain = F.softmax_cross_entropy(z, np.array([3]))
    assert dz_plain[0, 3] < -0.05  # the plain loss still pushes the logit up


@pytest.mark.parametrize("eps", [-0.1, 1.0, 1.5, float("nan")])
def test_smoothing_outside_0_1_is_refused(eps):
    z, y = logits()
    with pytest.raises(ValueError, match="label_smoothing"):
        F.softmax_cross_entropy(z, y, eps)


# ------------------------------------------------------------------------ the PyTorch oracle


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_loss_and_gradient_equal_pytorchs(eps):
    torch = pytest.importorskip("torch")
    z, y = logits(n=16, seed=3)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(zt, torch.from_numpy(y), label_smoothing=eps)
    theirs.backward()
    loss, dz = F.softmax_cross_entropy(z, y, eps)
    assert loss == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_a_models_smoothed_loss_equals_pytorchs():
    torch = pytest.importorskip("torch")
    m = small_mlp()
    x = np.random.default_rng(1).random((8, 1, 4, 4))
    y = np.arange(8) % 10
    loss, _, z = m.loss_and_grads(x, y, training=False, return_logits=True, label_smoothing=0.2)
    theirs = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(y),
                                               label_smoothing=0.2)
    assert loss == pytest.approx(float(theirs), rel=1e-12)


# ---------------------------------------------------------------------------- through a model


def test_model_gradient_with_smoothing_matches_finite_differences():
    m = small_mlp()
    x = np.random.default_rng(1).random((5, 1, 4, 4))
    y = np.array([0, 3, 9, 3, 7])

    def rng():  # the same dropout mask on every evaluation
        return np.random.default_rng(7)

    _, grads = m.loss_and_grads(x, y, training=True, rng=rng(), label_smoothing=0.15, l2=0.01)
    errors = gradcheck(lambda: m.loss_and_grads(x, y, training=True, rng=rng(),
                                                label_smoothing=0.15, l2=0.01)[0],
                       m.params(), grads)
    assert max(errors.values()) < TOL


def test_model_without_smoothing_is_unchanged():
    m = small_mlp(dtype=np.float32)
    x = np.random.default_rng(1).random((8, 1, 4, 4)).astype(np.float32)
    y = np.arange(8) % 10
    a = m.loss_and_grads(x, y, rng=np.random.default_rng(2))
    b = m.loss_and_grads(x, y, rng=np.random.default_rng(2), label_smoothing=0.0)
    assert a[0] == b[0]
    for k in a[1]:
        np.testing.assert_array_equal(a[1][k], b[1][k])


def test_smoothing_needs_a_softmax_model():
    m = small_mlp(loss="mean_squared_error")
    x = np.random.default_rng(1).random((4, 1, 4, 4))
    with pytest.raises(ValueError, match="label_smoothing needs the softmax_cross_entropy"):
        m.loss_and_grads(x, np.arange(4), training=False, label_smoothing=0.1)


@pytest.mark.parametrize("eps", [-0.1, 1.0])
def test_loss_and_grads_refuses_smoothing_outside_0_1(eps):
    m = small_mlp()
    x = np.random.default_rng(1).random((4, 1, 4, 4))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        m.loss_and_grads(x, np.arange(4), training=False, label_smoothing=eps)


def test_the_sliced_step_passes_smoothing_on():
    m = build_model("cnn_tiny", np.random.default_rng(0))
    x = np.random.default_rng(1).random((40, 1, 28, 28), np.float32)
    y = np.arange(40) % 10
    whole = m.loss_and_grads(x, y, rng=np.random.default_rng(2), label_smoothing=0.1)
    plain = m.loss_and_grads(x, y, rng=np.random.default_rng(2))
    with SplitStep(m, threads=1) as step:
        loss, grads, _ = step(x, y, rng=np.random.default_rng(2), label_smoothing=0.1)
    assert loss == pytest.approx(whole[0], rel=1e-5) and loss != pytest.approx(plain[0], rel=1e-3)
    for k in grads:
        np.testing.assert_allclose(grads[k], whole[1][k], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------- training


def test_train_config_label_smoothing_is_validated_and_round_trips():
    c = TrainConfig(label_smoothing=0.1)
    assert c.to_dict()["label_smoothing"] == 0.1
    assert TrainConfig.from_dict(c.to_dict()) == c
    old = TrainConfig().to_dict()
    del old["label_smoothing"]  # a checkpoint saved before the option existed
    assert TrainConfig.from_dict(old).label_smoothing == 0.0
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="label_smoothing"):
            TrainConfig(label_smoothing=bad)
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({**c.to_dict(), "smoothing": 0.1})


def _fit(eps, digits, threads=None, name="logistic"):
    m = build_model(name, np.random.default_rng(0))
    x, y = digits.x_train[:256], digits.y_train[:256]
    cfg = TrainConfig(epochs=2, batch_size=64, label_smoothing=eps)
    h = fit(m, x, y, cfg, rng=np.random.default_rng(1), threads=threads,
            validation=(digits.x_test[:100], digits.y_test[:100]))
    return m, h


def test_fit_trains_with_smoothing_and_reports_the_plain_test_loss(digits):
    m0, h0 = _fit(0.0, digits)
    m1, h1 = _fit(0.2, digits)
    assert not np.allclose(m0.params()["1.W"], m1.params()["1.W"])
    # the training loss is the smoothed one: higher, since t is never reached exactly
    assert h1.epochs[0]["loss"] > h0.epochs[0]["loss"]
    # the validation / test loss is the plain cross-entropy of the trained model
    xv, yv = digits.x_test[:100], digits.y_test[:100]
    z = m1.forward(xv)
    assert h1.epochs[-1]["val_loss"] == pytest.approx(F.softmax_cross_entropy(z, yv)[0],
                                                      rel=1e-5)
    assert evaluate(m1, xv, yv)[0] == pytest.approx(F.softmax_cross_entropy(z, yv)[0], rel=1e-5)


def test_fit_with_no_smoothing_is_todays_fit(digits):
    """ε = 0 takes the same code path as before: the same weights, bit for bit, as a config that
    never mentions the option."""
    m0, _ = _fit(0.0, digits)
    m = build_model("logistic", np.random.default_rng(0))
    cfg = TrainConfig(epochs=2, batch_size=64)
    fit(m, digits.x_train[:256], digits.y_train[:256], cfg, rng=np.random.default_rng(1),
        validation=(digits.x_test[:100], digits.y_test[:100]))
    for k, v in m.params().items():
        np.testing.assert_array_equal(v, m0.params()[k])


def test_fit_passes_smoothing_to_the_sliced_step(digits):
    """The sliced step (used for every conv model, and with threads >= 2) gets ε too: its first
    batch's loss is the whole batch's smoothed loss, not the plain one."""
    _, hw = _fit(0.1, digits, threads=1, name="mlp")
    _, hs = _fit(0.1, digits, threads=2, name="mlp")
    _, hp = _fit(0.0, digits, threads=2, name="mlp")
    assert hs.batches[0]["loss"] == pytest.approx(hw.batches[0]["loss"], rel=1e-5)
    assert hs.batches[0]["loss"] != pytest.approx(hp.batches[0]["loss"], rel=1e-3)
