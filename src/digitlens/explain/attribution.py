"""Which pixels pushed the network toward an answer: saliency, gradient × input, integrated
gradients, occlusion.

Every method has the same signature, ``attribute(model, x, target, ...) -> Attribution``, and never
changes or keeps the model:

- ``x`` is one pre-processed image: ``(28, 28)``, ``(1, 28, 28)`` or ``(1, 1, 28, 28)`` (any shape
  that reshapes to the model's input shape with one sample).
- ``target`` is a class label (explain that class's logit ``z_c``) or a pair ``(a, b)`` (explain the
  gap ``z_a - z_b``).  All methods explain **logits**, not probabilities: a logit is a sum, so a
  map of pixel contributions can add up to it, while a probability also depends on every other
  class (softmax) and saturates near 0 and 1.
- The map is ``(28, 28)`` in units of logit; ``Attribution.meta`` carries the method's settings and
  its own error report (for integrated gradients, the completeness delta).

Gradients come from the model itself (``Sequential.forward_range`` and ``input_gradient``), so every
layer type the engine knows (dense, conv, pooling, ...) is covered without new code here; which
leading layers form one affine map (a shortcut for integrated gradients and occlusion) is asked of
:mod:`digitlens.nn.topology`.  The
gradient of a scalar ``s = c · z`` (``c`` a direction over the logits: one-hot for a class,
``e_a - e_b`` for a gap) with respect to the input is ``model.input_gradient(c, caches)``.

Accuracy: pass ``model.astype(np.float64)`` to compute in float64 (what
:class:`~digitlens.recognizer.Recognizer` does); the integrated-gradients completeness delta is then
pure integration error, not float32 rounding.

The binary (one sigmoid output) model has logit ``z`` for class 1; it is treated as the two logits
``[-z/2, z/2]`` (their softmax is exactly ``[1 - sigmoid(z), sigmoid(z)]``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from ..nn import topology as T
from ..nn.model import Sequential, input_gradient_through
from . import words
from .result import Attribution

IG_RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
            "riemann_trapezoid")
BASELINES = ("black", "blur")
DEFAULT_IG_STEPS = 32


# ------------------------------------------------------------------------------------- helpers
def as_input(model: Sequential, x: np.ndarray) -> np.ndarray:
    """One image as a batch of one, ``(1, *model.input_shape)``, in the model's dtype."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"x must be a numeric array, got dtype {a.dtype}")
    size = int(np.prod(model.input_shape))
    if a.size != size:
        raise ValueError(f"x must be one image of shape {model.input_shape} "
                         f"(or 28x28), got shape {a.shape}")
    a = a.reshape((1,) + model.input_shape).astype(model.dtype)
    if not np.all(np.isfinite(a)):
        raise ValueError("x contains NaN or inf")
    return a


def image_shape(model: Sequential) -> tuple[int, int]:
    """The (H, W) of one input channel: attribution maps have this shape."""
    return tuple(model.input_shape[-2:]) if len(model.input_shape) >= 2 else (model.input_shape[0],)


def _to_map(model: Sequential, a: np.ndarray) -> np.ndarray:
    """(1, C, H, W) or (1, D) -> (H, W) float64, summing over channels."""
    a = np.asarray(a, dtype=np.float64).reshape(model.input_shape)
    if a.ndim == 3:
        a = a.sum(axis=0)  # (H, W): one number per pixel position
    return a


def class_index(model: Sequential, label: int) -> int:
    try:
        return model.classes.index(int(label))
    except ValueError:
        raise ValueError(f"target must be one of this model's classes {list(model.classes)}, "
                         f"got {label!r}") from None


def n_logits(model: Sequential) -> int:
    return int(model.shapes[-1][0])


def direction(model: Sequential, target) -> np.ndarray:
    """The vector ``c`` over the model's outputs such that the explained scalar is ``c · z``.

    ``target`` = class label -> one-hot; ``(a, b)`` -> ``e_a - e_b``.  For a one-output (sigmoid)
    model the class logits are ``[-z/2, z/2]``, so ``c`` is ``[±0.5]``.
    """
    k = n_logits(model)
    if isinstance(target, (tuple, list, np.ndarray)):
        if len(target) != 2:
            raise ValueError(f"a contrast target must be a pair (a, b), got {target!r}")
        a, b = (int(t) for t in target)
        if a == b:
            raise ValueError(f"a contrast needs two different classes, got ({a}, {b})")
        return direction(model, a) - direction(model, b)
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"target must be a class label (int) or a pair (a, b), got {target!r}")
    i = class_index(model, int(target))
    c = np.zeros(k, dtype=np.float64)
    if k == 1 and len(model.classes) == 2:
        c[0] = 0.5 if i == 1 else -0.5
    else:
        c[i] = 1.0
    return c


def class_logits(model: Sequential, z: np.ndarray) -> np.ndarray:
    """Per-class logits ``(N, n_classes)`` (``[-z/2, z/2]`` for a one-output model)."""
    z = np.asarray(z, dtype=np.float64)
    if z.shape[1] == 1 and len(model.classes) == 2:
        return np.concatenate([-0.5 * z, 0.5 * z], axis=1)
    return z


def class_probabilities(model: Sequential, z: np.ndarray) -> np.ndarray:
    """Per-class scores after the output function ``(N, n_classes)``: the model's own output,
    except that a one-output sigmoid model gives ``[1 - sigmoid(z), sigmoid(z)]``."""
    z = np.asarray(z, dtype=np.float64)
    if z.shape[1] == 1 and len(model.classes) == 2:
        p1 = np.asarray(model.output(z), dtype=np.float64)
        return np.concatenate([1.0 - p1, p1], axis=1)
    return np.asarray(model.output(z), dtype=np.float64)


def score_and_grad(model: Sequential, X: np.ndarray, c: np.ndarray):
    """Scores ``s = z @ c`` ``(N,)``, their input gradients ``(N, *input_shape)`` and the logits.

    One forward and one backward pass over the whole batch, through the model's own layers.
    """
    z, caches = model.forward_with_caches(X)  # z: (N, K)
    dz = np.broadcast_to(c.astype(model.dtype), z.shape).copy()  # d(z @ c)/dz = c for each row
    dx = model.input_gradient(dz, caches)  # (N, *input_shape); no weight gradients needed
    return z @ c.astype(z.dtype), dx, z


def _norm_target(target):
    if isinstance(target, (tuple, list, np.ndarray)):
        return tuple(int(t) for t in target)
    return int(target)


# ------------------------------------------------------------------------------------- methods
def saliency(model: Sequential, x: np.ndarray, target) -> Attribution:
    """The gradient ``∂s/∂x``: how fast the target score changes per unit of ink at each pixel.

    Signed (Captum's ``Saliency(abs=False)``).  For a linear model it is the weight image of the
    target class.

    Examples
    --------
    >>> import numpy as np
    >>> from digitlens.nn import build_model
    >>> m = build_model("logistic", np.random.default_rng(0))
    >>> a = saliency(m, np.zeros((28, 28)), 3)
    >>> bool(np.allclose(a.map.ravel(), m.params()["1.W"][:, 3]))
    True
    """
    X = as_input(model, x)
    c = direction(model, target)
    s, g, _ = score_and_grad(model, X, c)
    return Attribution("saliency", _norm_target(target), _to_map(model, g[0]),
                       {"score": float(s[0])})


def gradient_x_input(model: Sequential, x: np.ndarray, target) -> Attribution:
    """``x · ∂s/∂x`` per pixel.

    For a linear model (``logistic``), ``z_c = Σ_i W_ic x_i + b_c``, so ``x_i · W_ic`` is *exactly*
    pixel ``i``'s term in the logit and the map sums to ``z_c - b_c``.  For a network with hidden
    layers it is a first-order (local) estimate only.
    """
    X = as_input(model, x)
    c = direction(model, target)
    s, g, _ = score_and_grad(model, X, c)
    m = _to_map(model, g[0] * X[0])
    meta = {"score": float(s[0]), "sum": float(m.sum())}
    if T.is_linear(model):
        dense = model.layers[T.final_dense(model)]
        bias = float(np.asarray(dense.params["b"], np.float64) @ c)
        meta.update(exact=True, bias=bias, note=words.linear_gradient_x_input(
            _norm_target(target), float(m.sum()), bias, float(s[0])))
    else:
        meta["exact"] = False
    return Attribution("gradient_x_input", _norm_target(target), m, meta)


def ig_weights(n_steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """See :func:`_ig_weights`; validated, and cached (Gauss–Legendre nodes take ~1 ms)."""
    n = int(n_steps)
    if rule not in IG_RULES:
        raise ValueError(f"rule must be one of {IG_RULES}, got {rule!r}")
    if n < 2 or n > 10_000:
        raise ValueError(f"n_steps must be between 2 and 10000, got {n_steps!r}")
    alphas, w = _ig_weights(n, rule)
    return alphas.copy(), w.copy()


@lru_cache(maxsize=64)
def _ig_weights(n: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes ``alphas`` in [0, 1] and weights (summing to 1) for
    ``∫_0^1 g(α) dα ≈ Σ w_k g(α_k)``.

    ``gausslegendre`` and the ``riemann_left/right/middle`` rules are Captum's.
    ``riemann_trapezoid`` here is the textbook trapezoid (weights ``1/(n-1)``, halved at the ends,
    summing to 1); Captum's uses ``1/n`` and so sums to ``1 - 1/n``.
    """
    if rule == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(n)  # on [-1, 1]
        return 0.5 * (nodes + 1.0), 0.5 * w
    if rule == "riemann_trapezoid":
        w = np.full(n, 1.0 / (n - 1))
        w[[0, -1]] *= 0.5
        return np.linspace(0.0, 1.0, n), w
    w = np.full(n, 1.0 / n)
    if rule == "riemann_left":
        return np.linspace(0.0, 1.0 - 1.0 / n, n), w
    if rule == "riemann_right":
        return np.linspace(1.0 / n, 1.0, n), w
    return np.linspace(0.5 / n, 1.0 - 0.5 / n, n), w  # middle


def make_baseline(model: Sequential, X: np.ndarray, baseline) -> tuple[np.ndarray, str]:
    """The reference image: ``"black"`` (no ink: the natural "absence of evidence" for MNIST),
    ``"blur"`` (the digit blurred with a Gaussian of σ = 3 px: keeps the rough mass, removes the
    strokes), or an array shaped like one image."""
    if isinstance(baseline, str):
        if baseline == "black":
            return np.zeros_like(X), "black"
        if baseline == "blur":
            from scipy.ndimage import gaussian_filter

            sigma = [0] * (X.ndim - 2) + [3.0, 3.0]  # blur only the two image axes
            return gaussian_filter(X.astype(np.float64), sigma=sigma).astype(X.dtype), "blur"
        raise ValueError(f"baseline must be one of {BASELINES} or an image array, got {baseline!r}")
    b = np.asarray(baseline, dtype=np.float64)
    if b.ndim == 0:
        return np.full_like(X, float(b)), f"constant {float(b):g}"
    return as_input(model, b), "custom"


def _ig_once(model: Sequential, X: np.ndarray, B: np.ndarray, C: np.ndarray, n_steps: int,
             rule: str, batch_size: int, fast: bool = True):
    """One quadrature of the path integral for each direction (row) of ``C`` ``(m, K)``:
    a list of ``(map, f(x), f(baseline))``, sharing one forward pass over the path.

    ``fast`` uses :func:`~digitlens.nn.topology.linear_prefix` (same numbers up to rounding, far
    less arithmetic): along the path ``x' + α (x − x')`` the prefix's output is exactly
    ``p(x') + α (p(x) − p(x'))`` and its input gradient is the same everywhere, so the prefix runs
    on two images instead of every path point and is backpropagated through once;
    ``fast=False`` sends every path point through the whole model.
    """
    alphas, w = ig_weights(n_steps, rule)
    diff = X.astype(np.float64) - B  # (1, *in)
    k = T.linear_prefix(model) if fast else 0
    head, rest = model.layers[:k], model.layers[k:]
    if k:
        px, cache_x = model.forward_range(X, 0, k, caches=True)  # (1, *p) at x, caches of one row
        pb = model.forward_range(B, 0, k)  # (1, *p) at the baseline
        shape = (-1,) + (1,) * (px.ndim - 1)
        path = (pb + alphas.reshape(shape) * (px - pb)).astype(model.dtype)  # (n_steps, *p)
        points = np.concatenate([path, px, pb])  # (n_steps + 2, *p): the ends give f(x), f(x')
    else:
        shape = (-1,) + (1,) * (X.ndim - 1)
        path = (B + alphas.reshape(shape) * diff).astype(model.dtype)  # (n_steps, *in)
        points = np.concatenate([path, X, B.astype(model.dtype)])  # (n_steps + 2, *in)
    C = np.atleast_2d(C)
    totals = np.zeros((len(C),) + points.shape[1:], dtype=np.float64)  # Σ_k w_k ∂s/∂(prefix)
    scores = []
    for i in range(0, len(points), batch_size):
        chunk = points[i:i + batch_size]
        # z: (n, K) logits, one forward for every direction
        z, caches = model.forward_range(chunk, k, caches=True)
        n_path = min(n_steps - i, len(chunk))  # rows of this chunk that are path points
        for j, c in enumerate(C):
            dz = np.broadcast_to(c.astype(model.dtype), z.shape).copy()  # (n, K)
            g = input_gradient_through(rest, dz, caches)  # (n, *p)
            if n_path > 0:
                # (n_path,) · (n_path, *p) -> (*p)
                totals[j] += np.tensordot(w[i:i + n_path], g[:n_path].astype(np.float64), axes=1)
        scores.append(z.astype(np.float64) @ C.T)  # (n, m)
    scores = np.concatenate(scores)
    out = []
    for j in range(len(C)):
        total = totals[j]
        if k:
            # the prefix is linear: its input gradient is the same at every point, so one backward
            # pass of the weighted sum gives Σ_k w_k ∂s/∂x (x_k)
            total = input_gradient_through(head, total[None].astype(model.dtype),
                                           cache_x)[0].astype(np.float64)
        out.append((_to_map(model, diff[0] * total), float(scores[-2, j]), float(scores[-1, j])))
    return out


def integrated_gradients(model: Sequential, x: np.ndarray, target, *, baseline="black",
                         n_steps: int = DEFAULT_IG_STEPS, rule: str = "gausslegendre",
                         tolerance: float | None = 0.01, max_steps: int = 256,
                         batch_size: int = 256, fast: bool = True) -> Attribution:
    """Integrated gradients: ``(x − x') · ∫_0^1 ∂s/∂x (x' + α (x − x')) dα`` per pixel.

    The gradient is averaged along the straight path from the baseline ``x'`` to ``x``, so the map
    adds up to ``s(x) − s(x')`` (*completeness*) up to the quadrature error, reported as
    ``meta["delta"] = Σ map − (s(x) − s(x'))`` and ``meta["relative_delta"] = |delta| /
    |s(x) − s(x')|``.  All path points go through one batched forward/backward pass (split into
    ``batch_size`` chunks only for large ``n_steps``).

    With ReLU the gradient jumps wherever a unit switches on or off along the path, so a small
    network with few, sharp kinks can need many points.  With ``tolerance`` set, the integral is
    redone with twice the points while ``relative_delta > tolerance`` (up to ``max_steps``);
    ``meta["n_steps"]`` is the number finally used.  (For a near-tie, where ``|s(x) − s(x')|``
    is below 2% of ``Σ|map|``, the target is ``|delta| ≤ tolerance · 0.02 · Σ|map|`` instead.)

    Parameters
    ----------
    baseline : ``"black"``, ``"blur"``, a number, or an image array; see :func:`make_baseline`.
    n_steps : quadrature points of the first try.
    rule : one of :data:`IG_RULES` (default Gauss–Legendre, as Captum).
    tolerance : relative completeness error to reach by refining (``None``: exactly ``n_steps``
        points, as Captum).
    max_steps : the refinement's limit.
    fast : exploit a linear first layer (see :func:`digitlens.nn.topology.linear_prefix`);
        ``False`` sends every path point through the whole model (the same numbers up to
        rounding).
    """
    return integrated_gradients_many(model, x, [target], baseline=baseline, n_steps=n_steps,
                                     rule=rule, tolerance=tolerance, max_steps=max_steps,
                                     batch_size=batch_size, fast=fast)[0]


def integrated_gradients_many(model: Sequential, x: np.ndarray, targets, **options
                              ) -> list[Attribution]:
    """:func:`integrated_gradients` for several targets of one image (e.g. the predicted class
    and the gap to the runner-up), sharing the forward pass along the path; each target is
    refined on its own if it misses the tolerance.  Options as for ``integrated_gradients``."""
    baseline = options.get("baseline", "black")
    n_steps = int(options.get("n_steps", DEFAULT_IG_STEPS))
    rule = options.get("rule", "gausslegendre")
    tolerance = options.get("tolerance", 0.01)
    max_steps = int(options.get("max_steps", 256))
    batch_size = int(options.get("batch_size", 256))
    fast = bool(options.get("fast", True))
    unknown = set(options) - {"baseline", "n_steps", "rule", "tolerance", "max_steps",
                              "batch_size", "fast"}
    if unknown:
        raise TypeError(f"unknown integrated-gradients options {sorted(unknown)}")
    X = as_input(model, x)
    targets = list(targets)
    C = np.stack([direction(model, t) for t in targets])  # (m, K)
    B, bname = make_baseline(model, X, baseline)
    results = _ig_once(model, X, B, C, n_steps, rule, batch_size, fast)
    out = []
    for t, c, (m, f_x, f_b) in zip(targets, C, results):
        steps, evaluations = n_steps, n_steps
        while True:
            delta = float(m.sum()) - (f_x - f_b)
            span = abs(f_x - f_b)
            rel = abs(delta) / span if span > 0 else None  # None: x equals the baseline
            # When the two ends almost tie (a gap between two nearly equal logits), |delta| /
            # |span| is ill-conditioned; the map's own size Σ|map| then sets the scale (2% of
            # it), so near-ties do not send the refinement to max_steps.
            scale = max(span, 0.02 * float(np.abs(m).sum()))
            if (tolerance is None or rel is None or abs(delta) <= tolerance * scale
                    or 2 * steps > max_steps):
                break
            steps *= 2
            evaluations += steps
            m, f_x, f_b = _ig_once(model, X, B, c, steps, rule, batch_size, fast)[0]
        out.append(with_sum(Attribution("integrated_gradients", _norm_target(t), m, {
            "baseline": bname, "n_steps": steps, "n_steps_requested": n_steps,
            "evaluations": evaluations, "rule": rule, "f_x": f_x, "f_baseline": f_b,
            "delta": delta, "relative_delta": rel})))
    return out


def occlusion_windows(shape: tuple[int, int], patch: int, stride: int):
    """Top-left corners of the occluding squares (Captum's placement: ``ceil((H - p) / s) + 1``
    positions per axis, the last one clipped at the border)."""
    h, w = shape
    if not 1 <= patch <= min(h, w):
        raise ValueError(f"patch must be between 1 and {min(h, w)}, got {patch!r}")
    if not 1 <= stride <= patch:
        raise ValueError(f"stride must be between 1 and patch ({patch}), got {stride!r}")
    rows = [i * stride for i in range(int(np.ceil((h - patch) / stride)) + 1)]
    cols = [j * stride for j in range(int(np.ceil((w - patch) / stride)) + 1)]
    return [(r, q) for r in rows for q in cols]


@lru_cache(maxsize=32)
def _window_pixels(shape: tuple[int, int], patch: int, stride: int):
    """``(idx, count)``: idx ``(n_windows, patch²)`` flat pixel indices of each window (padded
    with ``H·W`` where a border window is clipped) and count ``(H·W,)`` windows per pixel."""
    h, w = shape
    wins = occlusion_windows(shape, patch, stride)
    idx = np.full((len(wins), patch * patch), h * w, dtype=np.int64)
    for k, (r, q) in enumerate(wins):
        rr, qq = np.mgrid[r:min(r + patch, h), q:min(q + patch, w)]
        ids = (rr * w + qq).ravel()
        idx[k, :ids.size] = ids
    count = np.bincount(idx.ravel(), minlength=h * w + 1)[:h * w].astype(np.float64)
    idx.setflags(write=False)
    count.setflags(write=False)
    return idx, count


def occlusion(model: Sequential, x: np.ndarray, target, *, patch: int = 4, stride: int = 2,
              baseline: float = 0.0, batch_size: int = 512, fast: bool = True) -> Attribution:
    """Cover a ``patch × patch`` square with ``baseline`` (0 = erase the ink), see how much the
    target score drops, and give that drop to every covered pixel; a pixel under several squares
    gets the average of their drops (as Captum's ``Occlusion``).

    No gradients: it measures what the model does when ink is really removed.  All occluded copies
    go through one batched forward pass; when the first layer is Dense on the pixels (``fast``),
    its output for each copy is updated from the few covered pixels instead of recomputed.
    """
    X = as_input(model, x)
    c = direction(model, target)
    hw = image_shape(model)
    patch, stride = int(patch), int(stride)
    baseline = float(baseline)
    if not np.isfinite(baseline):
        raise ValueError(f"baseline must be a finite number, got {baseline!r}")
    if X.shape[1:] != (1,) + tuple(hw) and len(model.input_shape) != 1:
        raise ValueError("occlusion is defined for one-channel images")
    idx, count = _window_pixels(tuple(hw), patch, stride)  # (n_w, p²), (H·W,)
    n_w = len(idx)
    flat = np.append(X.reshape(-1).astype(np.float64), 0.0)  # (H·W + 1,): the pad index reads 0
    valid = idx < hw[0] * hw[1]
    # a window whose pixels all equal the baseline already (no ink under it) changes nothing:
    # its drop is exactly 0 and it needs no forward pass
    live = np.flatnonzero(np.any(valid & (flat[idx] != baseline), axis=1))
    all_idx, idx = idx, idx[live]
    valid = valid[live]
    n_live = len(live)
    k = T.linear_prefix(model) if fast else 0
    head = model.layers[:k]
    if [layer.type for layer in head if layer.type not in ("dropout", "activation")] \
            == ["flatten", "dense"]:
        # z = x @ W + b is linear: covering window P changes it by Σ_{i∈P} (baseline − x_i) W_i,
        # a sum over the window's p² rows of W instead of a product with all H·W of them
        dense = next(layer for layer in head if layer.type == "dense")
        W = np.asarray(dense.params["W"])  # (H·W, D)
        Wx = np.concatenate([W, np.zeros((1, W.shape[1]), W.dtype)])  # row H·W: "no pixel"
        dx = np.where(valid, baseline - flat[idx], 0.0).astype(W.dtype)  # (n_live, p²)
        zx = model.forward_range(X, 0, k)  # (1, D)
        dz = np.einsum("wp,wpd->wd", dx, Wx[idx])  # (n_live, D)
        firsts = np.concatenate([zx, zx + dz]).astype(model.dtype)  # (1 + n_live, D)
        scores = np.concatenate([model.forward_range(firsts[i:i + batch_size], k)
                                 .astype(np.float64) @ c
                                 for i in range(0, len(firsts), batch_size)])
    else:
        copies = np.repeat(X.reshape(1, -1), n_live + 1, axis=0)  # (1 + n_live, H·W); row 0 = x
        copies = np.concatenate([copies, np.zeros((n_live + 1, 1), copies.dtype)], axis=1)
        copies[np.arange(1, n_live + 1)[:, None], idx] = baseline  # the pad column absorbs pads
        copies = copies[:, :-1].reshape((n_live + 1,) + model.input_shape)
        scores = np.concatenate([model.forward(copies[i:i + batch_size]).astype(np.float64) @ c
                                 for i in range(0, len(copies), batch_size)])  # (1 + n_w,)
    base = float(scores[0])
    drops = np.zeros(n_w)
    drops[live] = base - scores[1:]  # (n_w,)
    total = np.bincount(all_idx.ravel(), weights=np.repeat(drops, all_idx.shape[1]),
                        minlength=hw[0] * hw[1] + 1)[:hw[0] * hw[1]]
    m = (total / count).reshape(hw)
    return Attribution("occlusion", _norm_target(target), m, {
        "patch": patch, "stride": stride, "baseline": baseline, "n_windows": n_w,
        "n_evaluated": n_live,
        "score": base, "largest_drop": float(drops.max())})


def with_sum(attr: Attribution) -> Attribution:
    """Record in ``attr.meta`` what the map's values add up to: ``"adds_up_to"`` (the number
    the sum should equal, or None when the sum means nothing for this method) and
    ``"sum_note"`` (the sentence the page and the CLI show instead of a bare total)."""
    meta = attr.meta
    target = None
    if attr.method == "integrated_gradients":
        target = meta["f_x"] - meta["f_baseline"]
    elif attr.method == "gradient_x_input" and meta.get("exact"):
        target = meta["score"] - meta["bias"]
    meta["adds_up_to"] = target
    meta["sum_note"] = words.map_sum(attr.method, attr.target, attr.total, meta)
    return attr


METHODS: dict[str, Callable[..., Attribution]] = {
    "saliency": saliency,
    "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients,
    "occlusion": occlusion,
}
"""name -> function, all with the signature ``(model, x, target, **options) -> Attribution``."""

TITLES = words.METHOD_TITLES
"""method -> its title (the one table, in :mod:`digitlens.explain.words`)."""


def attribute(model: Sequential, x: np.ndarray, target, method: str = "integrated_gradients",
              **options) -> Attribution:
    """Run attribution ``method`` (a key of :data:`METHODS`) with its ``options``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    return with_sum(METHODS[method](model, x, target, **options))
