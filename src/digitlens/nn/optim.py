"""Optimizers: they own their state (momentum, Adam's moments) and update parameters in place.

``step(params, grads)`` takes the dicts that :meth:`Sequential.params` and
:meth:`Sequential.loss_and_grads` return.  The learning rate can be changed between steps
(``opt.lr = ...``), which is how schedules work.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, lr: float) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a positive finite number, got {lr}")
        self.lr = float(lr)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0  # number of steps taken

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum, as in PyTorch:

    ``v = μ·v + g`` ;  ``W = W − lr·v``   (with μ = 0 this is plain ``W = W − lr·g``).
    """

    def __init__(self, lr: float = 0.1, momentum: float = 0.0) -> None:
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)

    def step(self, params, grads):
        self.t += 1
        for k, W in params.items():
            g = grads[k]
            if self.momentum:
                v = self.state.setdefault(k, {}).get("v")
                if v is None:
                    v = self.state[k]["v"] = g.astype(W.dtype, copy=True)
                else:
                    v *= self.momentum
                    v += g
                g = v
            W -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): per-parameter steps scaled by running gradient statistics.

    ``m = β1·m + (1−β1)·g`` ; ``v = β2·v + (1−β2)·g²`` ;
    ``W = W − lr · m̂ / (sqrt(v̂) + ε)`` with the bias corrections ``m̂ = m/(1−β1^t)``, ``v̂ = v/(1−β2^t)``.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # fold both bias corrections into one step size (same maths, fewer array passes)
        step = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        eps_hat = self.eps * np.sqrt(1 - b2**self.t)
        for k, W in params.items():
            g = grads[k]
            st = self.state.get(k)
            if st is None:
                st = self.state[k] = {"m": np.zeros_like(W), "v": np.zeros_like(W)}
            m, v = st["m"], st["v"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            W -= step * m / (np.sqrt(v) + eps_hat)


def make_optimizer(name: str, lr: float, momentum: float = 0.9) -> Optimizer:
    if name == "sgd":
        return SGD(lr, momentum)
    if name == "adam":
        return Adam(lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")
