"""A plausible edit: how a *person* would change the digit to make the model answer ``b``.

The smallest edit (:func:`digitlens.explain.contrast.counterfactual`) moves single pixels
wherever the gradient says; a handful of them can flip a network while the digit looks the same
to anyone (an *adversarial example*, see ``docs/adversarial.md``).  To tell the two apart, this
module looks for an edit a person could make with a pen or an eraser:

1. **Strokes.**  Whole straight stroke segments, pen-wide, either *added* (starting and ending
   within ``reach`` pixels of the existing ink) or *erased* (running along the ink).  A greedy
   search tries every candidate stroke on the current image in one batched forward pass, keeps
   the one that raises ``z_b − max_{c≠b} z_c`` most (once some flip the answer: the one of those
   moving the least ink), and repeats up to ``max_strokes`` times.
2. **Morphing**, when no few strokes do it: the training digit of class ``b`` nearest to this one
   (in pixels) is blended in, ``(1 − t)·x + t·x_b``, with the smallest ``t`` (in steps of 0.05)
   that flips the answer.

Cost is the ink moved, ``Σ |new − old|`` (1 = one fully inked pixel), so it compares directly
with the smallest edit's.  :func:`verdict` says when the smallest edit is tiny and the plausible
one much larger: then the small edit changes the network's answer, not the digit.
"""

from __future__ import annotations

import numpy as np

from ..nn.model import Sequential
from .attribution import as_input, class_index, class_logits, class_probabilities, image_shape
from . import words
from .parts import Counterfactual, PlausibleEdit

#: the smallest edit counts as "a few pixels" up to this many changed pixels ...
FEW_PIXELS = 20
#: ... and looks like no change to a person when the plausible edit moves this many times more ink
MUCH_LARGER = 3.0


def _margins(model: Sequential, imgs: np.ndarray, ib: int, batch: int = 512) -> np.ndarray:
    """``z_b − max_{c≠b} z_c`` for each image of ``imgs`` ``(n, H, W)``."""
    out = []
    for i in range(0, len(imgs), batch):
        xb = imgs[i:i + batch].reshape((-1,) + model.input_shape).astype(model.dtype)
        z = class_logits(model, model.forward(xb))  # (n, K)
        out.append(z[:, ib] - np.delete(z, ib, axis=1).max(axis=1))
    return np.concatenate(out)


def stroke_masks(segments: np.ndarray, shape: tuple[int, int], width: float) -> np.ndarray:
    """Pen strokes as soft masks in [0, 1]: ``(n, H, W)`` for ``segments`` ``(n, 4)`` rows of
    ``(r0, c0, r1, c1)``; 1 within ``width / 2`` of the segment, fading to 0 over one pixel."""
    h, w = shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)  # (H, W) pixel centres
    p0 = segments[:, None, None, 0:2]  # (n, 1, 1, 2)
    d = segments[:, None, None, 2:4] - p0  # (n, 1, 1, 2): the segment's direction
    pts = np.stack([rr, cc], axis=-1)[None]  # (1, H, W, 2)
    L2 = np.maximum((d ** 2).sum(-1), 1e-12)  # (n, 1, 1)
    t = np.clip(((pts - p0) * d).sum(-1) / L2, 0.0, 1.0)  # (n, H, W): nearest point's position
    dist = np.linalg.norm(pts - (p0 + t[..., None] * d), axis=-1)  # (n, H, W)
    return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)


def candidate_strokes(img: np.ndarray, rng: np.random.Generator, *, reach: int = 3,
                      ink_threshold: float = 0.3, max_candidates: int = 600,
                      lengths: tuple[float, float] = (4.0, 12.0)) -> tuple[np.ndarray, np.ndarray]:
    """``(segments (n, 4), erase (n,) bool)``: straight strokes a person might add (both ends
    within ``reach`` px of the ink) or erase (both ends on the ink), ``lengths`` px long, every
    other pixel as an end point; at most ``max_candidates``, drawn with ``rng`` when more."""
    from scipy.ndimage import binary_dilation

    ink = img > ink_threshold
    if not ink.any():
        near = np.ones_like(ink)
    else:  # (scipy dilates until nothing changes when iterations=0, so reach 0 is the ink)
        near = binary_dilation(ink, iterations=int(reach)) if int(reach) > 0 else ink
    grid = np.zeros_like(ink)
    grid[::2, ::2] = True
    ends = {"add": np.argwhere(near & grid), "erase": np.argwhere(ink & grid)}
    segs, kinds = [], []
    for kind, pts in ends.items():
        if len(pts) < 2:
            continue
        a, b = np.triu_indices(len(pts), k=1)  # every pair of end points once
        length = np.linalg.norm(pts[a] - pts[b], axis=1)
        keep = (length >= lengths[0]) & (length <= lengths[1])
        segs.append(np.concatenate([pts[a[keep]], pts[b[keep]]], axis=1))
        kinds.append(np.full(int(keep.sum()), kind == "erase"))
    if not segs:
        return np.zeros((0, 4)), np.zeros(0, dtype=bool)
    segs_a, erase = np.concatenate(segs).astype(np.float64), np.concatenate(kinds)
    if len(segs_a) > max_candidates:
        pick = np.sort(rng.choice(len(segs_a), size=max_candidates, replace=False))
        segs_a, erase = segs_a[pick], erase[pick]
    return segs_a, erase


def _apply(img: np.ndarray, masks: np.ndarray, erase: np.ndarray) -> np.ndarray:
    """Each mask drawn on ``img`` with the pen (``max``) or the eraser (``× (1 − mask)``)."""
    added = np.maximum(img[None], masks)
    erased = img[None] * (1.0 - masks)
    return np.where(erase[:, None, None], erased, added)


def _by_strokes(model, img, ib, rng, *, max_strokes, reach, width, max_candidates):
    """Greedy stroke search: ``(image, strokes [(r0, c0, r1, c1, erase)], flipped)``."""
    cur = img.copy()
    strokes: list[tuple] = []
    for _ in range(int(max_strokes)):
        segs, erase = candidate_strokes(cur, rng, reach=reach, max_candidates=max_candidates)
        if not len(segs):
            break
        trials = _apply(cur, stroke_masks(segs, img.shape, width), erase)  # (n, H, W)
        m = _margins(model, trials, ib)
        best = int(np.argmax(m))
        if m[best] > 0:  # of the strokes that flip the answer, the one moving the least ink
            cost = np.abs(trials - cur[None]).reshape(len(trials), -1).sum(axis=1)  # (n,)
            best = int(np.flatnonzero(m > 0)[np.argmin(cost[m > 0])])
        if strokes and m[best] <= _margins(model, cur[None], ib)[0]:
            break  # no stroke helps any more
        cur = trials[best]
        strokes.append(tuple(float(v) for v in segs[best]) + (bool(erase[best]),))
        if m[best] > 0:
            return cur, strokes, True
    return cur, strokes, False


def _by_morph(model, img, ib, b, train_x, train_y):
    """Blend in the nearest training digit of class ``b``: ``(image, t, index, flipped)``, or
    None when there is no ``b`` to blend in."""
    idx = np.flatnonzero(np.asarray(train_y) == int(b))
    if not idx.size:
        return None
    xs = np.asarray(train_x)[idx].reshape(len(idx), -1).astype(np.float64)  # (n_b, H·W)
    nearest = int(idx[np.argmin(((xs - img.reshape(1, -1)) ** 2).sum(axis=1))])
    other = np.asarray(train_x)[nearest].reshape(img.shape).astype(np.float64)
    ts = np.linspace(0.05, 1.0, 20)
    trials = (1 - ts[:, None, None]) * img[None] + ts[:, None, None] * other[None]  # (20, H, W)
    ok = np.flatnonzero(_margins(model, trials, ib) > 0)
    if not ok.size:
        return trials[-1], 1.0, nearest, False
    return trials[ok[0]], float(ts[ok[0]]), nearest, True


def plausible_edit(model: Sequential, x: np.ndarray, b: int, *, training=None,
                   rng: np.random.Generator | None = None, max_strokes: int = 3, reach: int = 3,
                   width: float = 2.0, max_candidates: int = 600) -> PlausibleEdit:
    """An edit a person could make that turns the model's answer into ``b``, and its cost.

    Parameters
    ----------
    model, x : the model and one image (28×28 in [0, 1]).
    b : the digit to turn it into.
    training : optional ``(x_train (N, 1, 28, 28), y_train (N,))`` for the morphing fallback.
    rng : draws the candidate strokes when there are more than ``max_candidates`` (default
        ``numpy.random.default_rng(0)``: the same digit always gets the same answer).
    max_strokes, reach, width : at most this many strokes, added within ``reach`` px of the
        ink, ``width`` px wide (MNIST's pen is about 2–3 px).

    Returns
    -------
    PlausibleEdit
        ``method`` ("strokes", "morph" or "none"), ``found``, the edited image and ``delta``,
        ``ink`` (= Σ |delta|, the cost), the strokes or the training digit blended in.
    """
    X = as_input(model, x)
    hw = image_shape(model)
    if int(np.prod(model.input_shape)) != hw[0] * hw[1]:
        raise ValueError("plausible edits are defined for one-channel images")
    ib = class_index(model, b)
    rng = np.random.default_rng(0) if rng is None else rng
    img = X.reshape(hw).astype(np.float64)
    new, strokes, found = _by_strokes(model, img, ib, rng, max_strokes=max_strokes, reach=reach,
                                      width=width, max_candidates=max_candidates)
    method, t, source = "strokes", None, None
    if not found and training is not None:
        morph = _by_morph(model, img, ib, b, *training)
        if morph is not None and (morph[3] or not strokes):
            new, t, source, found = morph
            method, strokes = "morph", []
    if not found and not strokes and method == "strokes":
        method = "none"
    new = np.clip(new, 0.0, 1.0)
    p = class_probabilities(model, model.forward(new.reshape((1,) + model.input_shape)
                                                 .astype(model.dtype)))[0]
    labels = list(model.classes)
    return PlausibleEdit(method, bool(found), int(b), new - img, new, p,
                         labels[int(np.argmax(p))], strokes, t, source)


def verdict(cf: Counterfactual, pl: PlausibleEdit) -> bool:
    """True when the smallest edit is tiny (at most :data:`FEW_PIXELS` pixels) and a person's
    edit needs much more ink (:data:`MUCH_LARGER` times, or none of a few strokes or a blend
    did it): the small edit flips the network while a person would still see the old digit."""
    if not cf.found or cf.n_changed > FEW_PIXELS:
        return False
    small = cf.ink_added + cf.ink_removed
    return (not pl.found) or pl.ink >= MUCH_LARGER * small


def attach(cf: Counterfactual, model: Sequential, x: np.ndarray, *, training=None,
           rng: np.random.Generator | None = None) -> Counterfactual:
    """Put the plausible edit next to the smallest one: ``cf.plausible``, ``cf.looks_unchanged``
    (:func:`verdict`) and ``cf.note`` (the plain statement when it holds).  Returns ``cf``."""
    pl = plausible_edit(model, x, cf.b, training=training, rng=rng)
    pl.sentence = words.plausible(pl, cf.a)
    cf.plausible = pl
    cf.looks_unchanged = verdict(cf, pl)
    cf.note = words.adversarial(cf, pl) if cf.looks_unchanged else ""
    return cf
