"""Gradient checks: compare backpropagation with central finite differences, in float64.

Backpropagation is only trustworthy if it agrees with the definition of a derivative.  For a
scalar function ``f`` of an array ``x``, the central difference

    ``df/dx[i] ≈ (f(x + ε·e_i) − f(x − ε·e_i)) / (2ε)``

has error ``O(ε²)``; with ``ε = 1e-6`` in float64 both that error and the rounding error
(about ``1e-16 / ε``) are far below ``1e-6`` relative, so any larger disagreement is a bug.
In float32 the rounding error alone is ~``1e-7 / ε``: checks must run in float64 (build the
model with ``dtype=np.float64`` or call ``model.astype(np.float64)``).

The error reported for each array is ``‖analytic − numeric‖ / (‖analytic‖ + ‖numeric‖)``:
relative, symmetric, and meaningful even where single entries are near zero.

Three entry points, from general to specific:

- :func:`gradcheck` — any scalar function of some arrays, and your claimed gradients;
- :func:`check_layer` — a layer's ``backward`` (input and parameter gradients) against its
  ``forward``; dropout-style layers get the same random mask on every evaluation;
- :func:`check_model` — a :class:`~digitlens.nn.model.Sequential`'s ``loss_and_grads``
  (every parameter, L2 included) and its input gradient.

Kinks (ReLU at 0, leaky ReLU at 0) have no derivative; keep test inputs away from them.

Examples
--------
>>> import numpy as np
>>> from digitlens.nn.layers import Dense
>>> layer = Dense(3)
>>> _ = layer.build((4,), np.random.default_rng(0), dtype=np.float64)
>>> errors = check_layer(layer, np.random.default_rng(1).standard_normal((5, 4)))
>>> sorted(errors), all(e < 1e-6 for e in errors.values())
(['W', 'b', 'input'], True)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .model import LOSSES

DEFAULT_EPS = 1e-6
DEFAULT_TOL = 1e-6


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (the message lists every array's error)."""


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``‖a − n‖ / (‖a‖ + ‖n‖)``, and 0 when both are exactly zero."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.shape != n.shape:
        raise ValueError(f"gradient shapes differ: analytic {a.shape}, numeric {n.shape}")
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def numerical_gradient(f: Callable[[], float], x: np.ndarray,
                       eps: float = DEFAULT_EPS) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every entry of ``x``.

    ``x`` is perturbed **in place** (one entry at a time, then restored), so ``f`` must read the
    live array -- e.g. a model parameter from :meth:`Sequential.params` or the input it closes
    over.  Costs ``2 · x.size`` calls of ``f``.
    """
    if x.dtype != np.float64:
        raise ValueError(f"gradient checks need float64 arrays (float32 rounding swamps the "
                         f"finite differences), got {x.dtype}")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: writing flat[i] writes x
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = float(f())
        flat[i] = old - eps
        f_minus = float(f())
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def gradcheck(f: Callable[[], float], wrt: dict[str, np.ndarray],
              analytic: dict[str, np.ndarray], *, eps: float = DEFAULT_EPS,
              tol: float | None = DEFAULT_TOL) -> dict[str, float]:
    """Compare claimed gradients of a scalar function with central differences.

    Parameters
    ----------
    f : zero-argument callable returning a scalar; it must compute from the *current* contents
        of the arrays in ``wrt`` (they are perturbed in place).
    wrt : name -> float64 array that ``f`` depends on.
    analytic : name -> the gradient of ``f`` w.r.t. ``wrt[name]`` that you want to check
        (computed before calling, at the unperturbed point).
    eps : finite-difference step.
    tol : raise :class:`GradcheckError` if any relative error is >= ``tol``; None = never raise.

    Returns
    -------
    dict name -> relative error (see :func:`relative_error`).
    """
    missing = sorted(set(wrt) - set(analytic))
    if missing:
        raise ValueError(f"no analytic gradient given for {missing}")
    errors = {}
    for name, x in wrt.items():
        numeric = numerical_gradient(f, x, eps)
        errors[name] = relative_error(analytic[name], numeric)
    if tol is not None:
        bad = {k: e for k, e in errors.items() if not e < tol}
        if bad:
            detail = ", ".join(f"{k}: {e:.2e}" for k, e in errors.items())
            raise GradcheckError(f"gradient check failed for {sorted(bad)} (tolerance {tol:g}); "
                                 f"relative errors: {detail}")
    return errors


def check_layer(layer, x: np.ndarray, *, training: bool = False, seed: int = 0,
                eps: float = DEFAULT_EPS, tol: float | None = DEFAULT_TOL) -> dict[str, float]:
    """Check a built float64 layer's ``backward`` against its ``forward``.

    The scalar checked is ``f = Σ forward(x) · dy`` for a fixed random ``dy`` (so every output
    entry matters, with a different weight), whose gradient is exactly what ``backward(dy)``
    claims to return.  With ``training=True`` the layer gets a fresh
    ``np.random.default_rng(seed)`` on every evaluation, so a dropout mask is the same each time
    (the "fixed-mask mode" the function is differentiable in).

    Returns relative errors keyed ``"input"`` and by parameter name; also checks that
    ``param_grads`` agrees with ``backward``.
    """
    x = np.array(x, dtype=np.float64)  # a private copy, perturbed in place below
    for k, p in layer.params.items():
        if p.dtype != np.float64:
            raise ValueError(f"parameter {k} is {p.dtype}; build the layer with dtype=np.float64")

    def run():
        return layer.forward(x, training=training, rng=np.random.default_rng(seed))

    y, cache = run()
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    dx, grads = layer.backward(dy.copy(), cache)
    only = layer.param_grads(dy.copy(), run()[1])  # a fresh cache, in case backward consumed it
    for k in grads:
        if not np.allclose(only[k], grads[k], rtol=1e-12, atol=1e-12):
            raise GradcheckError(f"{type(layer).__name__}.param_grads disagrees with backward "
                                 f"for {k}")

    def f():
        return float(np.sum(run()[0] * dy))

    wrt = {"input": x, **layer.params}
    return gradcheck(f, wrt, {"input": dx, **grads}, eps=eps, tol=tol)


def check_model(model, x: np.ndarray, y: np.ndarray, *, l2: float = 0.0, training: bool = False,
                seed: int = 0, eps: float = DEFAULT_EPS,
                tol: float | None = DEFAULT_TOL) -> dict[str, float]:
    """Check a float64 model's ``loss_and_grads`` (every parameter) and its input gradient
    (``backward``'s ``dx``) against finite differences of the loss.

    Returns relative errors keyed like :meth:`Sequential.params` plus ``"input"``.
    """
    if model.dtype != np.float64:
        raise ValueError(f"model is {model.dtype}; use model.astype(np.float64) for gradient "
                         "checks")
    x = np.array(x, dtype=np.float64)

    def rng():
        return np.random.default_rng(seed)

    def f():
        return model.loss_and_grads(x, y, l2=l2, training=training, rng=rng())[0]

    _, grads = model.loss_and_grads(x, y, l2=l2, training=training, rng=rng())
    # the input gradient: the same loss, backpropagated all the way to the image
    z, caches = model.forward_with_caches(x, training=training, rng=rng())
    loss_fn = LOSSES[model.loss][0]  # (loss function, output function)
    _, dz = loss_fn(z, model.targets(y, z.shape[1]))
    dx, grads_full = model.backward(dz, caches)
    for k, g in grads_full.items():
        if not l2 and not np.allclose(g, grads[k], rtol=1e-12, atol=1e-12):
            raise GradcheckError(f"backward and loss_and_grads disagree for parameter {k}")
    return gradcheck(f, {"input": x, **model.params()}, {"input": dx, **grads}, eps=eps, tol=tol)


def check_loss(loss_fn: Callable, z: np.ndarray, y: np.ndarray, *, eps: float = DEFAULT_EPS,
               tol: float | None = DEFAULT_TOL) -> float:
    """Check a loss ``loss_fn(z, y) -> (loss, dz)`` w.r.t. its logits ``z``; returns the error."""
    z = np.array(z, dtype=np.float64)
    _, dz = loss_fn(z, y)
    return gradcheck(lambda: loss_fn(z, y)[0], {"z": z}, {"z": dz}, eps=eps, tol=tol)["z"]


def check_activation(forward: Callable, backward: Callable, z: np.ndarray, *, seed: int = 0,
                     eps: float = DEFAULT_EPS, tol: float | None = DEFAULT_TOL) -> float:
    """Check an activation pair ``forward(z) -> a`` / ``backward(da, z, a) -> dz`` (the
    convention of :data:`digitlens.nn.functional.ACTIVATIONS`); returns the error."""
    z = np.array(z, dtype=np.float64)
    da = np.random.default_rng(seed).standard_normal(z.shape)
    dz = backward(da.copy(), z.copy(), forward(z.copy()))
    return gradcheck(lambda: float(np.sum(forward(z) * da)), {"z": z}, {"z": dz},
                     eps=eps, tol=tol)["z"]
