"""Optimizers: SGD with momentum and Adam worked by hand on a tiny network, then checked against
``torch.optim`` over several steps.

The tiny network (float64), one example ``x = [1, 2]`` with target ``1`` and squared error:

    z1 = x @ W1 + b1,  a1 = relu(z1),  z2 = a1 @ W2 + b2,  loss = (z2 - 1)²

    W1 = [[0.5, -1.0],     b1 = [0.0, 0.5]     W2 = [[ 2.0],     b2 = [0.25]
          [0.25, 0.5]]                               [-1.0]]

Every expected number below is worked out from these with explicit arithmetic (the working is in
the comments); none comes from calling digitlens.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from digitlens.nn.layers import Activation, Dense
from digitlens.nn.model import Sequential
from digitlens.nn.optim import SGD, Adam, make_optimizer

X = np.array([[1.0, 2.0]])
Y = np.array([[1.0]])  # a real-valued target, (N, 1), for mean squared error


def tiny_network() -> Sequential:
    m = Sequential([Dense(2), Activation("relu"), Dense(1)], input_shape=(2,),
                   loss="mean_squared_error", rng=np.random.default_rng(0), dtype=np.float64)
    m.set_params({"0.W": [[0.5, -1.0], [0.25, 0.5]], "0.b": [0.0, 0.5],
                  "2.W": [[2.0], [-1.0]], "2.b": [0.25]})
    return m


def assert_params(model, expected, rel=1e-12):
    got = model.params()
    for k, v in expected.items():
        np.testing.assert_allclose(got[k], np.array(v, dtype=np.float64), rtol=rel, atol=1e-15,
                                   err_msg=k)


# The gradient at the starting point, by hand:
#   z1 = [0.5*1 + 0.25*2 + 0.0, -1.0*1 + 0.5*2 + 0.5] = [1.0, 0.5]  (both > 0: relu passes both)
#   z2 = 2.0*1.0 + (-1.0)*0.5 + 0.25 = 1.75;  loss = (1.75 - 1)² = 0.5625
#   dz2 = 2*(1.75 - 1) = 1.5
#   dW2 = a1ᵀ dz2 = [[1.0*1.5], [0.5*1.5]] = [[1.5], [0.75]];  db2 = [1.5]
#   da1 = dz2 * W2ᵀ = [1.5*2.0, 1.5*(-1.0)] = [3.0, -1.5] = dz1 (relu passes)
#   dW1 = xᵀ dz1 = [[1*3.0, 1*(-1.5)], [2*3.0, 2*(-1.5)]] = [[3.0, -1.5], [6.0, -3.0]]
#   db1 = [3.0, -1.5]
G1 = {"0.W": [[3.0, -1.5], [6.0, -3.0]], "0.b": [3.0, -1.5], "2.W": [[1.5], [0.75]], "2.b": [1.5]}


def test_hand_worked_gradient():
    model = tiny_network()
    loss, grads = model.loss_and_grads(X, Y)
    assert loss == 0.5625
    for k, v in G1.items():
        np.testing.assert_array_equal(grads[k], np.array(v), err_msg=k)


def test_sgd_with_momentum_two_steps_by_hand():
    model = tiny_network()
    opt = SGD(lr=0.1, momentum=0.9)

    # step 1: the velocity starts as the gradient, v = g1;  W <- W - 0.1 * g1
    _, g = model.loss_and_grads(X, Y)
    opt.step(model.params(), g)
    assert_params(model, {
        "0.W": [[0.5 - 0.1 * 3.0, -1.0 - 0.1 * -1.5], [0.25 - 0.1 * 6.0, 0.5 - 0.1 * -3.0]],
        "0.b": [0.0 - 0.1 * 3.0, 0.5 - 0.1 * -1.5],
        "2.W": [[2.0 - 0.1 * 1.5], [-1.0 - 0.1 * 0.75]],
        "2.b": [0.25 - 0.1 * 1.5],
    })
    # = W1 [[0.2, -0.85], [-0.35, 0.8]], b1 [-0.3, 0.65], W2 [[1.85], [-1.075]], b2 [0.1]

    # step 2, gradient at the new point:
    #   z1 = [0.2*1 + (-0.35)*2 - 0.3, -0.85*1 + 0.8*2 + 0.65] = [-0.8, 1.4]
    #   unit 0 is now negative: relu blocks it, a1 = [0, 1.4]
    #   z2 = 0*1.85 + 1.4*(-1.075) + 0.1 = -1.405;  dz2 = 2*(-1.405 - 1) = -4.81
    #   dW2 = [[0 * -4.81], [1.4 * -4.81]] = [[0], [-6.734]];  db2 = [-4.81]
    #   da1 = -4.81 * [1.85, -1.075] = [-8.8985, 5.17075];  dz1 = [0 (blocked), 5.17075]
    #   dW1 = [[1*0, 1*5.17075], [2*0, 2*5.17075]];  db1 = [0, 5.17075]
    loss, g = model.loss_and_grads(X, Y)
    assert loss == pytest.approx((-1.405 - 1) ** 2, rel=1e-12)
    # velocity v2 = 0.9 * v1 + g2;  W <- W - 0.1 * v2
    before = {"0.W": [[0.2, -0.85], [-0.35, 0.8]], "0.b": [-0.3, 0.65],
                            "2.W": [[1.85], [-1.075]], "2.b": [0.1]}
    v2 = {"0.W": [[0.9 * 3.0 + 0.0, 0.9 * -1.5 + 5.17075],
                  [0.9 * 6.0 + 0.0, 0.9 * -3.0 + 2 * 5.17075]],
          "0.b": [0.9 * 3.0 + 0.0, 0.9 * -1.5 + 5.17075],
          "2.W": [[0.9 * 1.5 + 0.0], [0.9 * 0.75 + 1.4 * -4.81]],
          "2.b": [0.9 * 1.5 + -4.81]}
    opt.step(model.params(), g)
    expected = {k: np.array(before[k]) - 0.1 * np.array(v2[k]) for k in v2}
    assert_params(model, expected)
    np.testing.assert_allclose(opt.state["2.b"]["v"], v2["2.b"], rtol=1e-12)
    assert opt.t == 2


def adam_by_hand(w0: float, grads: list[float], lr=0.1, b1=0.9, b2=0.999, eps=1e-8) -> float:
    """Adam for one scalar weight, written exactly as in Kingma & Ba's Algorithm 1."""
    m = v = 0.0
    w = w0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (math.sqrt(v_hat) + eps)
    return w


def test_adam_two_steps_by_hand():
    model = tiny_network()
    opt = Adam(lr=0.1)

    # step 1: m̂ = g and v̂ = g², so each weight moves by 0.1 * g / (|g| + 1e-8), i.e. 0.1
    # against the sign of its gradient whatever the gradient's size
    _, g = model.loss_and_grads(X, Y)
    opt.step(model.params(), g)
    s = 1e-8
    assert_params(model, {
        "0.W": [[0.5 - 0.1 * 3.0 / (3.0 + s), -1.0 + 0.1 * 1.5 / (1.5 + s)],
                [0.25 - 0.1 * 6.0 / (6.0 + s), 0.5 + 0.1 * 3.0 / (3.0 + s)]],
        "0.b": [0.0 - 0.1 * 3.0 / (3.0 + s), 0.5 + 0.1 * 1.5 / (1.5 + s)],
        "2.W": [[2.0 - 0.1 * 1.5 / (1.5 + s)], [-1.0 - 0.1 * 0.75 / (0.75 + s)]],
        "2.b": [0.25 - 0.1 * 1.5 / (1.5 + s)],
    })
    # ≈ W1 [[0.4, -0.9], [0.15, 0.6]], b1 [-0.1, 0.6], W2 [[1.9], [-1.1]], b2 [0.15]

    # step 2, gradient at the new point (to ~1e-9, the size of the eps effect above):
    #   z1 = [0.4 + 0.15*2 - 0.1, -0.9 + 0.6*2 + 0.6] = [0.6, 0.9]   (both pass relu)
    #   z2 = 1.9*0.6 + (-1.1)*0.9 + 0.15 = 0.3;  dz2 = 2*(0.3 - 1) = -1.4
    #   dW2 = [[0.6 * -1.4], [0.9 * -1.4]] = [[-0.84], [-1.26]];  db2 = [-1.4]
    #   dz1 = -1.4 * [1.9, -1.1] = [-2.66, 1.54]
    #   dW1 = [[-2.66, 1.54], [-5.32, 3.08]];  db1 = [-2.66, 1.54]
    loss, g = model.loss_and_grads(X, Y)
    assert loss == pytest.approx((0.3 - 1) ** 2, rel=1e-7)
    opt.step(model.params(), g)
    expected = {
        "0.W": [[adam_by_hand(0.5, [3.0, -2.66]), adam_by_hand(-1.0, [-1.5, 1.54])],
                [adam_by_hand(0.25, [6.0, -5.32]), adam_by_hand(0.5, [-3.0, 3.08])]],
        "0.b": [adam_by_hand(0.0, [3.0, -2.66]), adam_by_hand(0.5, [-1.5, 1.54])],
        "2.W": [[adam_by_hand(2.0, [1.5, -0.84])], [adam_by_hand(-1.0, [0.75, -1.26])]],
        "2.b": [adam_by_hand(0.25, [1.5, -1.4])],
    }
    # the hand-derived step-2 gradients are exact only to ~1e-8 (eps), hence rel=1e-7
    assert_params(model, expected, rel=1e-7)
    # and the moments themselves, for b2: m = 0.9*0.1*1.5 + 0.1*(-1.4);
    # v = 0.999*0.001*1.5² + 0.001*1.4²
    # (m = 0.135 - 0.14 = -0.005 cancels, so compare it absolutely)
    np.testing.assert_allclose(opt.state["2.b"]["m"], [0.9 * 0.1 * 1.5 + 0.1 * -1.4], atol=1e-8)
    np.testing.assert_allclose(opt.state["2.b"]["v"], [0.999 * 0.001 * 1.5**2 + 0.001 * 1.4**2],
                               rtol=1e-7)


def test_adam_folded_bias_correction_equals_the_textbook_form():
    w = np.array([0.3, -0.2, 5.0])
    grads = [np.array([0.1, -3.0, 1e-6]), np.array([-0.2, 2.0, 1e-6]), np.array([0.05, 0.5, -1.0])]
    opt = Adam(lr=0.01)
    for gr in grads:
        opt.step({"w": w}, {"w": gr})
    for i, w0 in enumerate([0.3, -0.2, 5.0]):
        assert w[i] == pytest.approx(adam_by_hand(w0, [gr[i] for gr in grads], lr=0.01), rel=1e-12)


# ----------------------------------------------------------------- against torch.optim


torch = pytest.importorskip("torch")


def run_both(make_ours, make_theirs, steps=6, lrs=None, seed=0):
    """Train a 6-4-3 tanh network on fixed random data for ``steps`` steps with our optimizer
    (our gradients) and torch's (torch autograd), and return both sets of parameters."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((10, 6))
    y = rng.integers(0, 3, 10)
    model = Sequential([Dense(4), Activation("tanh"), Dense(3)], input_shape=(6,),
                       rng=rng, dtype=np.float64)
    tp = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in model.params().items()}
    ours, theirs = make_ours(), make_theirs(list(tp.values()))
    for step in range(steps):
        if lrs is not None:  # a schedule: the learning rate changes between steps
            ours.lr = lrs[step]
            for group in theirs.param_groups:
                group["lr"] = lrs[step]
        _, grads = model.loss_and_grads(x, y)
        ours.step(model.params(), grads)
        theirs.zero_grad()
        h = torch.tanh(torch.from_numpy(x) @ tp["0.W"] + tp["0.b"])
        loss = torch.nn.functional.cross_entropy(h @ tp["2.W"] + tp["2.b"], torch.from_numpy(y))
        loss.backward()
        theirs.step()
    return model.params(), {k: v.detach().numpy() for k, v in tp.items()}


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch(momentum):
    ours, theirs = run_both(lambda: SGD(lr=0.5, momentum=momentum),
                            lambda p: torch.optim.SGD(p, lr=0.5, momentum=momentum))
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_adam_matches_torch():
    ours, theirs = run_both(lambda: Adam(lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05), steps=8)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_adam_and_sgd_match_torch_under_a_changing_learning_rate():
    lrs = [0.1, 0.08, 0.05, 0.03, 0.01, 0.005]
    for ours_f, theirs_f in [(lambda: Adam(lr=1.0), lambda p: torch.optim.Adam(p, lr=1.0)),
                             (lambda: SGD(lr=1.0, momentum=0.9),
                              lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.9))]:
        ours, theirs = run_both(ours_f, theirs_f, lrs=lrs)
        for k in ours:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_optimizer_updates_in_place_and_keeps_state_per_parameter():
    W = np.ones((2, 2), np.float32)
    alias = W
    opt = Adam(1e-2)
    opt.step({"W": W}, {"W": np.full((2, 2), 0.5, np.float32)})
    assert alias is W and np.all(W < 1)
    assert set(opt.state) == {"W"} and set(opt.state["W"]) == {"m", "v"}


@pytest.mark.parametrize("make, message", [
    (lambda: SGD(lr=0), "learning rate must be a positive finite number, got 0"),
    (lambda: SGD(lr=float("nan")), "learning rate must be a positive finite number, got nan"),
    (lambda: SGD(lr="fast"), "learning rate must be a positive finite number, got 'fast'"),
    (lambda: SGD(lr=0.1, momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
    (lambda: Adam(beta1=1.0), r"beta1 must be in \[0, 1\), got 1.0"),
    (lambda: Adam(beta2=-0.1), r"beta2 must be in \[0, 1\), got -0.1"),
    (lambda: Adam(eps=0), "eps must be a positive finite number, got 0"),
    (lambda: make_optimizer("rmsprop", 0.1), "optimizer must be one of"),
])
def test_invalid_hyperparameters_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make", [lambda: Adam(1e-3), lambda: SGD(0.05, momentum=0.9),
                                  lambda: SGD(0.05)])
def test_updates_in_pieces_on_threads_equal_one_whole_update(make, monkeypatch):
    """Arrays bigger than PIECE are updated piece by piece (views into the same arrays), and the
    pieces may run on several threads in any order: the numbers are those of one whole update,
    bit for bit, step after step."""
    from concurrent.futures import ThreadPoolExecutor

    import digitlens.nn.optim as optim

    rng = np.random.default_rng(0)
    shapes = {"a.W": (300, 7), "a.b": (7,), "b.W": (5, 3, 3, 3), "c.W": (1000,)}
    start = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
             for _ in range(3)]
    grads[1]["b.W"] = np.asfortranarray(grads[1]["b.W"])  # a gradient in another layout
    whole = {k: v.copy() for k, v in start.items()}
    opt = make()
    for g in grads:
        opt.step(whole, g)

    monkeypatch.setattr(optim, "PIECE", 64)
    pieces = {k: v.copy() for k, v in start.items()}
    calls = []
    opt = make()
    with ThreadPoolExecutor(3) as pool:
        def shuffled_map(fn, items):  # in reverse order, on three threads
            items = list(items)[::-1]
            calls.append(len(items))
            return list(pool.map(fn, items))

        for g in grads:
            opt.step(pieces, g, map=shuffled_map)
    # a.W: 2,100 numbers in 33 pieces; a.b whole; b.W: 135 in 3 pieces, but whole on the step
    # whose gradient is column-major (pieces of flat views need one layout); c.W: 16 pieces
    assert calls == [33 + 1 + 3 + 16, 33 + 1 + 1 + 16, 33 + 1 + 3 + 16]
    for k in shapes:
        np.testing.assert_array_equal(pieces[k], whole[k], err_msg=k)
