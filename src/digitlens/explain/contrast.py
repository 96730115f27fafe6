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

from ..nn import topology as T
from ..nn.model import Sequential
from . import words
from .attribution import (as_input, class_index, class_logits, class_probabilities, direction,
                          image_shape, integrated_gradients, score_and_grad)
from .names import unit_name
from .result import Attribution, Counterfactual, UnitContrast, UnitTerm
from .units import (ink_difference, label_counts, receptive_field, strongest_blobs,
                    unit_input_gradients)


# ---------------------------------------------------------------------------------- the gap
def pixel_contrast(model: Sequential, x: np.ndarray, a: int, b: int, **ig_options) -> Attribution:
    """Integrated gradients of ``z_a − z_b``: positive pixels argue for ``a``, negative for ``b``.
    Options are those of :func:`~digitlens.explain.attribution.integrated_gradients`."""
    return integrated_gradients(model, x, (a, b), **ig_options)


def _templates(model: Sequential, X: np.ndarray, L: int, ids: list[int]):
    """``({unit: (H, W) template}, kind)`` for units ``ids`` of the input of layer ``L``: their
    weight images when they read the pixels directly (``"weights"``), else their input gradients
    at this image (``"input_gradient"``)."""
    first = T.pixel_dense(model, L)
    if first is not None:
        W0 = np.asarray(model.layers[first].params["W"], dtype=np.float64)  # (784, D)
        return {j: W0[:, j].reshape(image_shape(model)) for j in ids}, "weights"
    g = unit_input_gradients(model, X, L, ids)  # (n, H, W)
    return dict(zip(ids, g)), "input_gradient"


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
    L = T.final_dense(model)
    dense = model.layers[L]
    c = direction(model, (a, b))  # (K,)
    h = np.asarray(model.forward_range(X, 0, L)[0], dtype=np.float64)  # (D,): the layer's input
    W = np.asarray(dense.params["W"], dtype=np.float64)  # (D, K)
    bias = np.asarray(dense.params["b"], dtype=np.float64)  # (K,)
    w_diff = W @ c  # (D,): W_ja − W_jb
    contributions = w_diff * h  # (D,)
    bias_term = float(bias @ c)
    gap = float((h @ W + bias) @ c)  # z_a − z_b computed the layer's way, in float64
    kind = "pixels" if T.input_is_pixels(model, L) else "hidden"
    order = np.argsort(contributions)
    ids_a = [int(j) for j in order[::-1][:top] if contributions[j] > 0]
    ids_b = [int(j) for j in order[:top] if contributions[j] < 0]
    terms: dict[int, UnitTerm] = {}
    if kind == "hidden":
        tmpl, tkind = _templates(model, X, L, ids_a + ids_b) if templates else ({}, "none")
        for j in ids_a + ids_b:
            terms[j] = _unit_term(model, L, j, h, w_diff, contributions, tmpl.get(j), tkind,
                                  atlas)
    table, rest = _coefficient_table(model, L, kind, h, w_diff, contributions)
    return UnitContrast(L, kind, bias_term, contributions, gap,
                        [terms[j] for j in ids_a if j in terms],
                        [terms[j] for j in ids_b if j in terms], table, rest)


#: the coefficient table is shown for a final layer reading at most this many features (lab's
#: 15 hidden units), or the pixels themselves (logistic)
TABLE_MAX_FEATURES = 64
TABLE_ROWS = 12


def _coefficient_table(model: Sequential, L: int, kind: str, h, w_diff, contributions):
    """The final layer as a logistic regression on its features: its largest rows by
    ``|weight difference × feature|`` and the sum of the others (None: no table)."""
    n = contributions.size
    if kind != "pixels" and n > TABLE_MAX_FEATURES:
        return [], None
    order = np.argsort(-np.abs(contributions), kind="stable")
    shown = order[:TABLE_ROWS] if kind == "pixels" else order
    width = image_shape(model)[-1]
    rows = [{"name": (words.pixel_name(j, width) if kind == "pixels" else words.unit_name(j, None)),
             "index": int(j), "feature": float(h[j]), "weight_diff": float(w_diff[j]),
             "product": float(contributions[j])} for j in shown]
    rest = float(contributions[order[len(shown):]].sum())
    return rows, rest


def _unit_term(model: Sequential, L: int, j: int, h, w_diff, contributions, template, tkind,
               atlas) -> UnitTerm:
    """One hidden unit (or one position of a conv map) of a contrast: its numbers, where the
    page opens it, and what it looks for, measured on its most exciting training digits."""
    maps = T.flattened_from(model, L)
    open_layer, open_unit, box = T.last_hidden_dense(model, L), j, None
    pooled = False
    if maps is not None:
        c, r, q = (int(v) for v in np.unravel_index(j, maps))
        convs = [i for i in range(L) if model.layers[i].type == "conv2d"]
        pooled = any(model.layers[i].type == "maxpool2d" for i in range(convs[-1], L)) \
            if convs else False
        open_layer, open_unit = (convs[-1] if convs else None), c
        box = receptive_field(model, L, r, q)
    tops: list[int] = []
    proto = None
    patches: list[np.ndarray] = []
    extra = None
    counts: list[tuple[int, int]] = []
    if atlas is not None:
        tops = [int(i) for i in atlas.hidden_top[j]]
        diff = ink_difference(atlas, tops)  # (28, 28)
        proto = atlas.x[tops, 0].astype(np.float64).mean(axis=0)  # (28, 28)
        if box is not None:  # only the pixels this position sees
            r0, c0, r1, c1 = box
            inside = np.zeros_like(diff)
            inside[r0:r1 + 1, c0:c1 + 1] = diff[r0:r1 + 1, c0:c1 + 1]
            diff = inside
            patches = [np.asarray(atlas.x[i, 0, r0:r1 + 1, c0:c1 + 1], dtype=np.float64)
                       for i in tops[:3]]
        if (diff > 0.05).any():
            extra = strongest_blobs(diff)[0]
        counts = label_counts(atlas.y[tops])
    # where, around the learner's digit, ink raises or lowers the unit most: windows of its
    # template (input gradient or weights) on a 3-pixel grid, finer than thirds of the image
    raises = lowers = None
    if template is not None and np.ndim(template) == 2 and np.any(template):
        raises, lowers = strongest_blobs(template)
    where = words.blob_short(raises, lowers)
    sentence = words.unit_reading(counts, len(tops), extra, raises, lowers, box)
    # a dense unit by its name for people ("unit 5 of hidden layer 2"); a position in pooled
    # maps by its filter and place
    name = (unit_name(model, open_layer, open_unit) if maps is None and open_layer is not None
            else words.unit_name(j, maps, pooled))
    return UnitTerm(j, float(h[j]), float(w_diff[j]), float(contributions[j]), template, tkind,
                    where, tops, name, proto, open_layer, open_unit, box, patches, sentence,
                    _corners(raises), _corners(lowers))


def _corners(blob) -> tuple[int, int, int, int] | None:
    """A :class:`~digitlens.explain.units.Blob` as ``(r0, c0, r1, c1)``, inclusive."""
    return None if blob is None else (blob.rows[0], blob.cols[0], blob.rows[1], blob.cols[1])


# ---------------------------------------------------------------------------- counterfactual
def _margin(model: Sequential, X: np.ndarray, ib: int) -> tuple[np.ndarray, np.ndarray]:
    """For each image, ``z_b − max_{c≠b} z_c`` (> 0: the model answers b) and the logits."""
    z = class_logits(model, model.forward(X))  # (N, n_classes)
    others = np.delete(z, ib, axis=1).max(axis=1)
    return z[:, ib] - others, z


_PUT_BACK_CHUNK = 8  # trials per forward pass when putting back unneeded pixels


def _batch(model: Sequential, imgs) -> np.ndarray:
    """(n, H, W) images -> the model's input (n, *input_shape) in its dtype."""
    return np.asarray(imgs).reshape((-1,) + model.input_shape).astype(model.dtype)


def _grow(model: Sequential, img: np.ndarray, allowed: np.ndarray, b: int, *, max_pixels: int,
          pixels_per_step: int, margin: float, max_steps: int) -> tuple[np.ndarray, float]:
    """Step 2 of :func:`counterfactual`: the greedy, gradient-guided edit; returns the edited
    image (H, W) and its margin ``z_b − max_{c≠b} z_c``."""
    ib = class_index(model, b)
    labels = list(model.classes)
    hw = img.shape
    cur = img.copy()
    changed = np.zeros(hw, dtype=bool)
    m_cur, z_cur = _margin(model, _batch(model, cur[None]), ib)
    for _ in range(int(max_steps)):
        if m_cur[0] > margin or changed.sum() >= max_pixels:
            break
        z = z_cur[0]                         # the logits of the current edit (from its margin)
        rival = int(np.argmax(np.where(np.arange(len(z)) == ib, -np.inf, z)))
        _, g, _ = score_and_grad(model, _batch(model, cur[None]),
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
        m_cur, z_cur = _margin(model, _batch(model, cur[None]), ib)
    return cur, float(m_cur[0])


def _shrink(model: Sequential, img: np.ndarray, delta: np.ndarray, ib: int) -> np.ndarray:
    """Step 3 of :func:`counterfactual`, for an edit ``delta`` that flips the answer: the
    smallest fraction of it that still flips, then without the pixels that are not needed."""
    # 3a. the smallest fraction t of the edit that still flips (one batched forward)
    ts = np.linspace(0.05, 1.0, 20)
    trial = img[None] + ts[:, None, None] * delta[None]
    mt, _ = _margin(model, _batch(model, trial), ib)
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
        mt, _ = _margin(model, _batch(model, np.clip(img[None] + trials, 0, 1)), ib)
        ok = np.flatnonzero(mt > 0)
        if ok.size == 0:
            i += len(cand)
        else:
            delta = trials[ok[0]]
            i += int(ok[0]) + 1
    return delta


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
    a = labels[int(np.argmax(class_logits(model, model.forward(X))[0]))]
    cur, m_cur = _grow(model, img, allowed, b, max_pixels=max_pixels,
                       pixels_per_step=pixels_per_step, margin=margin, max_steps=max_steps)
    delta = cur - img
    found = m_cur > 0
    if found:
        delta = _shrink(model, img, delta, ib)
    new = np.clip(img + delta, 0.0, 1.0)
    delta = new - img
    m_new, z_new = _margin(model, _batch(model, new[None]), ib)
    p_new = class_probabilities(model, model.forward(_batch(model, new[None])))[0]
    pred = labels[int(np.argmax(z_new[0]))]
    found = found and pred == b
    sentence = words.counterfactual(found, a, b, delta, float(p_new[ib]), pred, int(max_pixels),
                                    int(radius))
    return Counterfactual(found, a, int(b), delta, new, p_new, pred, float(m_new[0]),
                          int(max_pixels), int(radius), sentence)
