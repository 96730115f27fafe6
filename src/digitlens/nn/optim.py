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
from collections.abc import Callable

import numpy as np

from .._util.checks import check_number


def _unit_interval(name: str, value) -> float:
    return check_number(name, value, "in [0, 1)", lambda v: 0.0 <= v < 1.0)


def _positive(name: str, value) -> float:
    return check_number(name, value, "a positive finite number", lambda v: v > 0)


#: arrays bigger than this are updated in pieces of at most this many numbers (see ``step``)
PIECE = 1 << 16


class Optimizer:
    """Base class: holds the learning rate, the per-parameter state and the step count.

    A subclass says what its state is (:meth:`_new_state`), what it computes once per step
    (:meth:`_constants`) and how one array moves (:meth:`_update`, element-wise), and
    :meth:`step` runs it over every parameter.
    """

    def __init__(self, lr: float) -> None:
        self.lr = _positive("learning rate", lr)  # a Python float (see the module docstring)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0  # number of steps taken

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], *,
             map: Callable = map) -> None:
        """Update every array in ``params`` in place using ``grads`` (same keys and shapes).

        Parameters
        ----------
        params, grads : dicts of arrays, as :meth:`Sequential.params` and
            :meth:`Sequential.loss_and_grads` return them.
        map : how the element-wise updates are run: the builtin ``map`` runs them one after
            another; an executor's ``map`` runs them on its threads (``fit`` passes its slices'
            threads: NumPy releases Python's lock in these loops).  Each update touches its own
            numbers, and the numbers are the same either way.  An array of more than
            :data:`PIECE` numbers (the ``cnn``'s 3,136 × 128 dense layer holds 401,408) is
            updated in pieces, so two threads share it instead of one doing it alone.
        """
        self.t += 1
        const = self._constants()
        pieces = []
        for k, W in params.items():
            g = grads[k]
            st = self.state.get(k)
            if st is None:
                st = self.state[k] = self._new_state(W, g)
            arrays = (W, g, *st.values())
            if W.size > PIECE and all(a.flags.c_contiguous for a in arrays):
                flat = [a.reshape(-1) for a in arrays]  # views: the pieces write into W itself
                pieces += [[f[i:i + PIECE] for f in flat] for i in range(0, W.size, PIECE)]
            else:
                pieces.append(arrays)
        for _ in map(lambda arrays: self._update(const, *arrays), pieces):
            pass  # (consumed so that an executor's map runs, and re-raises, every update)

    def _new_state(self, W: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
        """The per-parameter state, created on the first step (e.g. Adam's m and v)."""
        return {}

    def _constants(self) -> tuple:
        """Numbers computed once per step (Python floats), handed to every :meth:`_update`."""
        return ()

    def _update(self, const: tuple, W: np.ndarray, g: np.ndarray, *state: np.ndarray) -> None:
        """Move ``W`` in place, element by element (so any piece of it can be done alone)."""
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

    def _new_state(self, W, g):
        # v starts at 0, so the first step's v = μ·0 + g is g, as PyTorch defines it
        return {"v": np.zeros_like(W)} if self.momentum else {}

    def _constants(self):
        return float(self.lr), self.momentum

    def _update(self, const, W, g, *state):
        lr, momentum = const
        if state:  # v = μ·v + g, then W -= lr·v
            (v,) = state
            v *= momentum
            v += g
            g = v
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

    def _new_state(self, W, g):
        return {"m": np.zeros_like(W), "v": np.zeros_like(W)}

    def _constants(self):
        c1, c2 = 1.0 - self.beta1**self.t, 1.0 - self.beta2**self.t  # bias corrections
        # lr · m̂/(sqrt(v̂) + ε) = [lr·sqrt(c2)/c1] · m/(sqrt(v) + ε·sqrt(c2)): the same number with
        # the corrections folded into two scalars, so no corrected copies of m and v are made.
        return float(self.lr) * math.sqrt(c2) / c1, self.eps * math.sqrt(c2)

    def _update(self, const, W, g, m, v):
        step, eps_hat = const
        b1, b2 = self.beta1, self.beta2
        # one scratch array per update, every operation in place (this is the hot path)
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
