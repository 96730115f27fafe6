"""Why ``a`` and not ``b``: the logit gap split over pixels and over hidden units, and the smallest
ink edit that would change the answer.

Notation: the final Dense layer computes ``z = h @ W + b`` from ``h``, the last hidden layer's
output (for a model with no hidden layer, ``h`` is the flattened image).  With ``W`` of shape
``(D_in, K)``,

    z_a − z_b = Σ_j (W_ja − W_jb) · h_j + (b_a − b_b)

exactly: unit ``j`` argues for ``a`` when its term is positive and for ``b`` when negative.  That is
:func:`unit_contrast`.  :func:`pixel_contrast` spreads the same gap over the input pixels with
integrated gradients, and :func:`counterfactual` searches for a small edit of the ink that makes
the model answer ``b``.
"""

from __future__ import annotations

import numpy as np

from ..nn.model import Sequential, input_gradient_through
from .attribution import (_run, as_input, class_index, class_logits, class_probabilities, direction, image_shape, integrated_gradients, score_and_grad)
from .result import Attribution, Counterfactual, UnitContrast, UnitTerm

REGIONS_V = ("top", "middle", "bottom")
REGIONS_H = ("left", "centre", "right")


# ------------------------------------------------------------------------------------ helpers
def final_dense_index(model: Sequential) -> int:
    """Index of the Dense layer that produces the logits (only dropout may follow it)."""
    for i in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[i]
        if layer.type == "dense":
            return i
        if layer.type != "dropout" and not (layer.type == "activation"
                                            and getattr(layer, "fn", "") == "identity"):
            break
    raise ValueError("the model's logits do not come straight from a Dense layer, so the logit "
                     "gap cannot be split over the last hidden layer")


def _layer_input(model: Sequential, X: np.ndarray, index: int) -> np.ndarray:
    """The input of layer ``index`` (running the model's own layers up to it)."""
    a = X
    for layer in model.layers[:index]:
        a, _ = layer.forward(a)
    return a


def first_hidden_dense(model: Sequential, index: int) -> int | None:
    """If the input of layer ``index`` is ``g(Dense(Flatten(image)))`` — units that read the pixels
    directly — return that Dense layer's index (its weight columns are the units' templates)."""
    kinds = [layer.type for layer in model.layers[:index]]
    core = [k for k in kinds if k != "dropout"]
    if core in (["flatten", "dense", "activation"], ["flatten", "dense"]):
        return kinds.index("dense")
    return None


def unit_input_gradients(model: Sequential, x: np.ndarray, index: int,
                         units: list[int]) -> np.ndarray:
    """``∂h_j/∂x`` for each unit ``j`` in ``units`` of the input of layer ``index``: what each unit
    responds to around this image (for ReLU networks: the unit's effective pixel template here).

    One forward pass of ``len(units)`` copies of the image and one backward pass with a one-hot
    gradient per copy.  Returns ``(len(units), H, W)``.
    """
    X = as_input(model, x)
    n = len(units)
    if n == 0:
        return np.zeros((0,) + image_shape(model))
    a, caches = _run(model.layers[:index], np.repeat(X, n, axis=0))  # a: (n, *layer input)
    d = np.zeros_like(a).reshape(n, -1)  # (n, D)
    d[np.arange(n), units] = 1.0
    d = input_gradient_through(model.layers[:index], d.reshape(a.shape), caches)
    g = np.asarray(d, dtype=np.float64).reshape((n,) + model.input_shape)
    if g.ndim == 4:
        g = g.sum(axis=1)  # (n, H, W)
    return g.reshape((n,) + image_shape(model))


def where_words(template: np.ndarray) -> str:
    """A rough reading of a pixel template: where its positive and negative weights sit.

    The 28×28 grid is cut into 3×3 regions; the region holding the most positive weight is what
    the unit "likes" ink in, the one with the most negative weight what it "dislikes".
    """
    t = np.asarray(template, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] < 9 or not np.any(t):
        return ""
    h, w = t.shape
    rb = [0, h // 3, 2 * h // 3, h]
    cb = [0, w // 3, 2 * w // 3, w]

    def region(part: np.ndarray) -> str:
        # (3, 3) sums over the ninths: reduceat sums between consecutive boundaries
        sums = np.add.reduceat(np.add.reduceat(part, rb[:-1], axis=0), cb[:-1], axis=1)
        i, j = np.unravel_index(np.argmax(sums), sums.shape)
        if (i, j) == (1, 1):
            return "the centre"
        if i == 1:
            return f"the {REGIONS_H[j]}"
        if j == 1:
            return f"the {REGIONS_V[i]}"
        return f"the {REGIONS_V[i]} {REGIONS_H[j]}"

    pos, neg = np.maximum(t, 0), np.maximum(-t, 0)
    rp = region(pos) if pos.sum() > 0 else None
    rn = region(neg) if neg.sum() > 0 else None
    if rp is not None and rp == rn:  # a small template: an edge or stroke detector
        return f"looks at a small pattern at {rp}"
    words = []
    if rp is not None:
        words.append(f"likes ink at {rp}")
    if rn is not None:
        words.append(f"dislikes ink at {rn}")
    return ", ".join(words)


def unit_name(model: Sequential, index: int, j: int) -> str:
    """A readable name for input ``j`` of layer ``index``: ``"unit 12"``, or for a flattened stack
    of feature maps ``"map 5 at row 2, col 3"`` (the map's own coordinates)."""
    i = index - 1
    while i >= 0 and model.layers[i].type == "dropout":
        i -= 1
    if i >= 1 and model.layers[i].type == "flatten":
        shape = model.shapes[i - 1]  # per-sample (C, H, W) before flattening
        if len(shape) == 3:
            c, r, q = np.unravel_index(int(j), shape)
            return f"map {c} at row {r}, col {q}"
    return f"unit {int(j)}"


# ---------------------------------------------------------------------------------- the gap
def pixel_contrast(model: Sequential, x: np.ndarray, a: int, b: int, **ig_options) -> Attribution:
    """Integrated gradients of ``z_a − z_b``: positive pixels argue for ``a``, negative for ``b``.
    Options are those of :func:`~digitlens.explain.attribution.integrated_gradients`."""
    return integrated_gradients(model, x, (a, b), **ig_options)


def unit_contrast(model: Sequential, x: np.ndarray, a: int, b: int, *, top: int = 5,
                  atlas=None, templates: bool = True) -> UnitContrast:
    """Split ``z_a − z_b`` exactly over the inputs ``h_j`` of the final Dense layer.

    Parameters
    ----------
    model, x : the model and one image.
    a, b : class labels.
    top : how many units to detail on each side (largest positive / negative terms).
    atlas : optional :class:`~digitlens.explain.units.UnitAtlas` of the same model, for each
        unit's most exciting training digits.
    templates : compute each detailed unit's pixel template: the weight image when the unit reads
        the pixels directly, otherwise the input gradient ``∂h_j/∂x`` at this image.

    Returns
    -------
    UnitContrast
        ``contributions[j] = (W_ja − W_jb) · h_j``; ``contributions.sum() + bias_term == gap`` up
        to float64 rounding (``sum_check``).
    """
    X = as_input(model, x)
    L = final_dense_index(model)
    dense = model.layers[L]
    c = direction(model, (a, b))  # (K,)
    h = np.asarray(_layer_input(model, X, L)[0], dtype=np.float64)  # (D,)
    W = np.asarray(dense.params["W"], dtype=np.float64)  # (D, K)
    bias = np.asarray(dense.params["b"], dtype=np.float64)  # (K,)
    w_diff = W @ c  # (D,): W_ja − W_jb
    contributions = w_diff * h  # (D,)
    bias_term = float(bias @ c)
    gap = float((h @ W + bias) @ c)  # z_a − z_b computed the layer's way, in float64
    kinds = [layer.type for layer in model.layers[:L] if layer.type != "dropout"]
    kind = "pixels" if kinds in ([], ["flatten"]) else "hidden"
    order = np.argsort(contributions)
    ids_a = [int(j) for j in order[::-1][:top] if contributions[j] > 0]
    ids_b = [int(j) for j in order[:top] if contributions[j] < 0]
    terms: dict[int, UnitTerm] = {}
    if kind == "hidden":
        tmpl: dict[int, np.ndarray] = {}
        tkind = "none"
        if templates:
            first = first_hidden_dense(model, L)
            ids = ids_a + ids_b
            if first is not None:
                W0 = np.asarray(model.layers[first].params["W"], dtype=np.float64)  # (784, D)
                tmpl = {j: W0[:, j].reshape(image_shape(model)) for j in ids}
                tkind = "weights"
            else:
                g = unit_input_gradients(model, X, L, ids)  # (n, H, W)
                tmpl = dict(zip(ids, g))
                tkind = "input_gradient"
        for j in ids_a + ids_b:
            t = tmpl.get(j)
            tops: list[int] = []
            proto = None
            where = where_words(t) if t is not None else ""
            if atlas is not None:
                tops = [int(i) for i in atlas.hidden_top[j]]
                proto = atlas.x[tops, 0].astype(np.float64).mean(axis=0)  # (28, 28)
                # where its favourite digits have more (or less) ink than the average digit
                where = where_words(proto - atlas.mean_image) or where
            terms[j] = UnitTerm(j, float(h[j]), float(w_diff[j]), float(contributions[j]), t,
                                tkind, where, tops, unit_name(model, L, j), proto)
    return UnitContrast(L, kind, bias_term, contributions, gap,
                        [terms[j] for j in ids_a if j in terms],
                        [terms[j] for j in ids_b if j in terms])


def contrast_sentences(a: int, b: int, gap: float, units: UnitContrast | None,
                       pixels: Attribution | None) -> list[str]:
    """Plain words for a contrast, with the real numbers."""
    out = [f"Why {a} and not {b}: the logit of {a} is {gap:+.3g} above the logit of {b}."
           if gap >= 0 else
           f"Why not {a} but {b}: the logit of {a} is {-gap:.3g} below the logit of {b}."]
    if units is not None and units.kind == "hidden":
        def names(terms):
            return ", ".join(f"{t.name or f'unit {t.unit}'} ({t.contribution:+.2f}"
                             + (f"; {t.where}" if t.where else "") + ")" for t in terms[:3])
        if units.for_a:
            out.append(f"Hidden units feeding the output layer (layer {units.layer}) that argue "
                       f"for {a}: {names(units.for_a)}.")
        if units.for_b:
            out.append(f"Units arguing for {b}: {names(units.for_b)}.")
        pos = float(units.contributions[units.contributions > 0].sum())
        neg = float(units.contributions[units.contributions < 0].sum())
        out.append(f"All {units.n_units} units together: {pos:+.3g} for {a}, {neg:+.3g} for {b}, "
                   f"bias difference {units.bias_term:+.3g}; the sum is exactly the gap "
                   f"{units.gap:+.3g}.")
    elif units is not None:
        out.append(f"This model has no hidden layer: each pixel's term (W_ia − W_ib)·x_i is its "
                   f"exact share of the gap, plus a bias difference of {units.bias_term:+.3g}.")
    if pixels is not None:
        m = pixels.map
        out.append(f"Over the pixels (integrated gradients): ink worth {m[m > 0].sum():+.3g} "
                   f"argues for {a} and {m[m < 0].sum():+.3g} for {b} "
                   f"(completeness error {pixels.meta.get('relative_delta') or 0:.2%}).")
    return out


# ---------------------------------------------------------------------------- counterfactual
def _margin(model: Sequential, X: np.ndarray, ib: int) -> tuple[np.ndarray, np.ndarray]:
    """For each image, ``z_b − max_{c≠b} z_c`` (> 0: the model answers b) and the logits."""
    z = class_logits(model, model.forward(X))  # (N, n_classes)
    others = np.delete(z, ib, axis=1).max(axis=1)
    return z[:, ib] - others, z


_PUT_BACK_CHUNK = 8  # trials per forward pass when putting back unneeded pixels


def counterfactual(model: Sequential, x: np.ndarray, b: int, *, max_pixels: int = 40,
                   radius: int = 2, pixels_per_step: int = 3, ink_threshold: float = 0.2,
                   margin: float = 0.1, max_steps: int = 100) -> Counterfactual:
    """The smallest edit of the ink found that makes the model answer ``b``.

    Method (a greedy, gradient-guided search, then a shrink):

    1. Only pixels within ``radius`` pixels of the strokes (pixels above ``ink_threshold``) may
       change, and at most ``max_pixels`` of them, so the edit stays near the digit and small.
    2. Each step takes the gradient of ``z_b − z_r`` (``r`` the strongest rival of ``b``) and sets
       the ``pixels_per_step`` unchanged pixels whose move to full ink (gradient > 0) or no ink
       (gradient < 0) gains the most, straight to 1 or 0 — pixels always stay in [0, 1].
    3. Once ``b`` leads by ``margin`` logits, the edit is scaled down to the smallest fraction that
       still flips the answer, and pixels whose change is not needed are put back one by one.

    If the budget runs out first, ``found`` is False and the edit shows how far it got.

    Returns
    -------
    Counterfactual
        ``delta`` = new image − old image (positive: add ink), ``image`` the edited digit, the new
        probabilities, prediction and margin.
    """
    X = as_input(model, x)
    hw = image_shape(model)
    if int(np.prod(model.input_shape)) != hw[0] * hw[1]:
        raise ValueError("counterfactuals are defined for one-channel images")
    if int(max_pixels) < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels!r}")
    if int(radius) < 0:
        raise ValueError(f"radius must be >= 0, got {radius!r}")
    from scipy.ndimage import binary_dilation

    ib = class_index(model, b)
    labels = list(model.classes)
    img = X.reshape(hw).astype(np.float64)
    ink = img > ink_threshold
    allowed = binary_dilation(ink, iterations=int(radius)) if radius and ink.any() else ink.copy()
    if not allowed.any():
        allowed[:] = True
    z0 = class_logits(model, model.forward(X))[0]
    a = labels[int(np.argmax(z0))]
    cur = img.copy()
    changed = np.zeros(hw, dtype=bool)

    def batch(imgs):  # (n, H, W) -> model input (n, *input_shape)
        return np.asarray(imgs).reshape((-1,) + model.input_shape).astype(model.dtype)

    m_cur, z_cur = _margin(model, batch(cur[None]), ib)
    for _ in range(int(max_steps)):
        if m_cur[0] > margin or changed.sum() >= max_pixels:
            break
        z = z_cur[0]                         # the logits of the current edit (from its margin)
        rival = int(np.argmax(np.where(np.arange(len(z)) == ib, -np.inf, z)))
        _, g, _ = score_and_grad(model, batch(cur[None]),
                                 direction(model, (b, labels[rival])))
        g = np.asarray(g, dtype=np.float64).reshape(hw)
        gain = np.where(g > 0, g * (1.0 - cur), -g * cur)  # first-order gain of going to 1 / 0
        gain[~allowed | changed] = 0.0
        k = min(int(pixels_per_step), int(max_pixels) - int(changed.sum()))
        flat = np.argsort(gain, axis=None)[::-1][:k]
        flat = flat[gain.ravel()[flat] > 0]
        if flat.size == 0:
            break
        r, q = np.unravel_index(flat, hw)
        cur[r, q] = np.where(g[r, q] > 0, 1.0, 0.0)
        changed[r, q] = True
        m_cur, z_cur = _margin(model, batch(cur[None]), ib)
    found = bool(m_cur[0] > 0)
    delta = cur - img
    if found:
        # 3a. the smallest fraction t of the edit that still flips (one batched forward)
        ts = np.linspace(0.05, 1.0, 20)
        trial = img[None] + ts[:, None, None] * delta[None]
        mt, _ = _margin(model, batch(trial), ib)
        ok = np.flatnonzero(mt > 0)
        delta = ts[ok[0]] * delta
        # 3b. put back pixels that are not needed, smallest changes first: one pixel at a time,
        # each trial on the edit as it stands.  The trials are run CHUNK at a time against the
        # same edit: every trial before the first success would have been run (and failed) on
        # exactly that edit, so this is the one-by-one search, with fewer forward passes.
        order = [int(f) for f in np.argsort(np.abs(delta), axis=None) if delta.flat[f] != 0]
        i = 0
        while i < len(order):
            cand = order[i:i + _PUT_BACK_CHUNK]
            trials = np.repeat(delta[None], len(cand), axis=0)        # (k, H, W)
            trials.reshape(len(cand), -1)[np.arange(len(cand)), cand] = 0.0
            mt, _ = _margin(model, batch(np.clip(img[None] + trials, 0, 1)), ib)
            ok = np.flatnonzero(mt > 0)
            if ok.size == 0:
                i += len(cand)
            else:
                delta = trials[ok[0]]
                i += int(ok[0]) + 1
    new = np.clip(img + delta, 0.0, 1.0)
    delta = new - img
    m_new, z_new = _margin(model, batch(new[None]), ib)
    p_new = class_probabilities(model, model.forward(batch(new[None])))[0]
    pred = labels[int(np.argmax(z_new[0]))]
    n = int(np.count_nonzero(delta))
    add, rem = int(np.count_nonzero(delta > 0)), int(np.count_nonzero(delta < 0))
    if found and pred == b:
        parts = []
        if add:
            parts.append(f"adding ink at {add} (total {delta[delta > 0].sum():.2f})")
        if rem:
            parts.append(f"removing ink at {rem} (total {-delta[delta < 0].sum():.2f})")
        sentence = (f"Changing {n} pixel{'s' if n != 1 else ''} near the strokes — "
                    f"{' and '.join(parts)} — turns this {a} into a {b} "
                    f"(P({b}) = {p_new[ib]:.0%}).")
    else:
        found = False
        sentence = (f"No edit of up to {max_pixels} pixels within {radius} px of the strokes "
                    f"turns this {a} into a {b}; the best one found gives P({b}) = "
                    f"{p_new[ib]:.1%} (the model still says {pred}).")
    return Counterfactual(found, a, int(b), delta, new, p_new, pred, float(m_new[0]),
                          int(max_pixels), int(radius), sentence)
