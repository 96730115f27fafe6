"""Optimizers: they own their state (momentum, Adam's moments) and update parameters in place.

``step(params, grads)`` takes the dicts that :meth:`Sequential.params` and
:meth:`Sequential.loss_and_grads` return and changes the parameter arrays in place (so a model's
live parameters move; nothing is returned).  The learning rate can be changed between steps
(``opt.lr = ...``), which is how schedules work.

Both follow PyTorch's definitions exactly (``torch.optim.SGD`` with ``dampening=0, nesterov=False``
and ``torch.optim.Adam`` without weight decay), so the tests can use PyTorch as the reference.

Every update is computed in the parameter's own dtype: hyper-parameters are kept as Python floats,
because a NumPy float64 *scalar* times a float32 array gives a float64 array (NEP 50), which
would silently make every float32 update twice as slow.
"""

from __future__ import annotations

import math

import numpy as np

from .._util.checks import check_number


def _unit_interval(name: str, value) -> float:
    return check_number(name, value, "in [0, 1)", lambda v: 0.0 <= v < 1.0)


def _positive(name: str, value) -> float:
    return check_number(name, value, "a positive finite number", lambda v: v > 0)


class Optimizer:
    """Base class: holds the learning rate, the per-parameter state and the step count."""

    def __init__(self, lr: float) -> None:
        self.lr = _positive("learning rate", lr)  # a Python float (see the module docstring)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0  # number of steps taken

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every array in ``params`` in place using ``grads`` (same keys and shapes)."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum, as in PyTorch:

    ``v = μ·v + g`` (``v = g`` on the first step) ;  ``W = W − lr·v``
    (with μ = 0 this is plain ``W = W − lr·g``).

    Examples
    --------
    >>> W = np.array([1.0, 2.0]); opt = SGD(lr=0.1, momentum=0.9)
    >>> opt.step({"W": W}, {"W": np.array([1.0, -1.0])}); W
    array([0.9, 2.1])
    """

    def __init__(self, lr: float = 0.1, momentum: float = 0.0) -> None:
        super().__init__(lr)
        self.momentum = _unit_interval("momentum", momentum)

    def step(self, params, grads):
        self.t += 1
        lr = float(self.lr)
        for k, W in params.items():
            g = grads[k]
            if self.momentum:
                st = self.state.setdefault(k, {})
                if "v" not in st:
                    st["v"] = np.array(g, dtype=W.dtype)  # a copy: v = g on the first step
                else:
                    st["v"] *= self.momentum
                    st["v"] += g
                g = st["v"]
            W -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): per-parameter steps scaled by running gradient statistics.

    ``m = β1·m + (1−β1)·g`` ; ``v = β2·v + (1−β2)·g²`` ;
    ``W = W − lr · m̂ / (sqrt(v̂) + ε)`` with the bias corrections ``m̂ = m/(1−β1^t)``,
    ``v̂ = v/(1−β2^t)`` (t = 1, 2, ... counts steps).  The corrections undo the pull towards 0
    of starting ``m`` and ``v`` at 0.

    Examples
    --------
    On the first step ``m̂ = g`` and ``v̂ = g²``, so every weight moves by about ``lr`` against the
    sign of its gradient, whatever the gradient's size:

    >>> W = np.array([1.0, 1.0]); opt = Adam(lr=0.1)
    >>> opt.step({"W": W}, {"W": np.array([1e-3, -50.0])}); W.round(4)
    array([0.9, 1.1])
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1 = _unit_interval("beta1", beta1)
        self.beta2 = _unit_interval("beta2", beta2)
        self.eps = _positive("eps", eps)

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t  # bias corrections (Python floats)
        # lr · m̂/(sqrt(v̂) + ε) = [lr·sqrt(c2)/c1] · m/(sqrt(v) + ε·sqrt(c2)): the same number with
        # the corrections folded into two scalars, so no corrected copies of m and v are made.
        step = float(self.lr) * math.sqrt(c2) / c1
        eps_hat = self.eps * math.sqrt(c2)
        for k, W in params.items():
            g = grads[k]
            st = self.state.get(k)
            if st is None:
                st = self.state[k] = {"m": np.zeros_like(W), "v": np.zeros_like(W)}
            m, v = st["m"], st["v"]
            # one scratch array per step, every operation in place (this loop is the hot path)
            tmp = np.multiply(g, 1.0 - b1, dtype=W.dtype)  # (1−β1)·g
            m *= b1
            m += tmp
            np.multiply(g, g, out=tmp)  # g²
            tmp *= 1.0 - b2
            v *= b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += eps_hat
            np.divide(m, tmp, out=tmp)  # m / (sqrt(v) + ε̂)
            tmp *= step
            W -= tmp


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float, momentum: float = 0.9) -> Optimizer:
    """``"sgd"`` (with ``momentum``) or ``"adam"`` (default betas) at learning rate ``lr``."""
    if name == "sgd":
        return SGD(lr, momentum)
    if name == "adam":
        return Adam(lr)
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
