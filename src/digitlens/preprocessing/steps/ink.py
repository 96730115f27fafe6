"""Ink and paper: separate the ink from the paper, then keep the digit's connected ink.

``threshold`` finds the ink (Otsu's cut, or the paper's noise if higher) and subtracts the paper
level, keeping the ink's gray levels; ``despeckle`` drops tiny specks; ``largest_blob`` keeps the
largest connected ink and the strokes close to it.  The three share connected-component labels
through ``ctx["labels"]`` (the pipeline drops them after any step that changes more than whole
components).

Each step is ``step(a, ctx) -> (image, numbers, sentence)`` on an (H, W) float32 image in [0, 1],
ink bright.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ...errors import NoInkError
from ._common import bbox, median_spread, rnd, sample

MIN_CONTRAST = 0.08
"""Ink must be at least this much brighter than the paper (on the 0..1 scale) to count."""


def otsu_threshold(a: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold for values in [0, 1]: the cut maximising the between-class variance
    ``w0 w1 (mu0 - mu1)^2``.  Pixels ``> threshold`` form the bright class."""
    q = np.minimum((a.ravel() * bins).astype(np.intp), bins - 1)
    hist = np.bincount(q, minlength=bins).astype(np.float64)
    p = hist / hist.sum()
    centers = (np.arange(bins) + 0.5) / bins
    w0 = np.cumsum(p)                       # weight of the dark class for each cut
    m0 = np.cumsum(p * centers)             # its (unnormalised) mean
    mt = m0[-1]
    denom = w0 * (1.0 - w0)
    between = np.zeros(bins)
    ok = denom > 1e-12                      # cuts with both classes non-empty
    between[ok] = (mt * w0[ok] - m0[ok]) ** 2 / denom[ok]
    k = int(np.argmax(between))
    return (k + 1) / bins


def threshold(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Find the ink, then subtract the paper level, keeping the ink's gray levels.

    - The paper's level and noise are the median and the robust spread (1.4826 x median absolute
      deviation) of the pixels (ink covers well under half of a picture of a digit).
    - The ink threshold is Otsu's (the cut that best separates two classes of brightness), but
      never less than ``paper + 5 x noise``: when the digit covers only a sliver of a photo,
      Otsu splits the paper's noise in two instead.
    - A hard cut would throw away the anti-aliased edges of strokes (MNIST keeps them), so
      instead ``paper + 4 x noise`` is subtracted from every pixel, and what remains is kept only
      where it is connected to clear ink (above the threshold) — "hysteresis", as in edge
      detectors: faint pixels touching a stroke are its edge, faint pixels alone are noise.
    """
    t_otsu = otsu_threshold(a)
    s = sample(a)
    paper_px = s if np.mean(s > t_otsu) < 0.5 else s[s <= t_otsu]
    if paper_px.size == 0:
        paper_px = s
    paper, noise = median_spread(paper_px)
    t = max(t_otsu, paper + 5 * noise + 0.01)
    strong = a > t
    if not strong.any():
        raise NoInkError("nothing stands out from the paper")
    ink_level = float(a[strong].mean())
    contrast = ink_level - paper
    if contrast < MIN_CONTRAST:
        raise NoInkError(f"the darkest marks differ from the paper by only {contrast:.3f}")
    floor = min(paper + 4 * noise, t)
    weak = a > floor                                            # strong ⊆ weak, as t >= floor
    # Everything outside weak's bounding box ends up 0 (label 0), so the labelling and the
    # hysteresis run on that box only; the raster order inside the box is the full image's, so
    # the label numbers are the same as on the full image.
    y0, y1, x0, x1 = bbox(weak)
    box = (slice(y0, y1), slice(x0, x1))
    sub_labels, n = ndi.label(weak[box], structure=np.ones((3, 3), dtype=bool))
    has_strong = np.zeros(n + 1, dtype=bool)
    has_strong[sub_labels[strong[box]]] = True
    has_strong[0] = False
    keep = has_strong[sub_labels]                               # (h, w) bool, in the box
    out = np.zeros(a.shape, dtype=np.float32)
    out[box] = np.where(keep, np.clip(a[box] - floor, 0.0, 1.0), 0.0)
    labels = np.zeros(a.shape, dtype=sub_labels.dtype)
    labels[box] = sub_labels
    # Every kept pixel is > floor, so out > 0 exactly on the kept components: the labels stay
    # valid for the next steps (dropped labels simply have no ink left).
    kl = sub_labels[keep]
    ctx["labels"] = (labels, np.bincount(kl, weights=out[box][keep], minlength=n + 1))
    frac = float(strong.mean())
    dropped = int(n - has_strong.sum())
    numbers = {"otsu_threshold": rnd(t_otsu), "threshold": rnd(t), "paper_level": rnd(paper),
               "paper_noise": rnd(noise), "ink_level": rnd(ink_level), "subtracted": rnd(floor),
               "ink_fraction": rnd(frac), "faint_pieces_dropped": dropped}
    sentence = (f"Ink is what is brighter than {t:.2f} ({frac:.1%} of pixels, mean "
                f"{ink_level:.2f}); the paper (level {paper:.2f}, noise {noise:.3f}) minus "
                f"{floor:.3f} becomes exactly 0, the ink keeps its gray levels"
                + (f", and {dropped} faint pieces not touching clear ink were dropped." if dropped
                   else "."))
    return out, numbers, sentence


def _label(a: np.ndarray, ctx: dict):
    """Connected ink (8-neighbourhood) and each component's ink mass (sum of intensities).

    Labels are reused from ``ctx`` when an earlier step left them valid (it only removed whole
    components since); a label whose ink is gone has mass 0 and counts as absent."""
    if "labels" not in ctx:
        labels, n = ndi.label(a > 0, structure=np.ones((3, 3), dtype=bool))
        ink = labels > 0
        ctx["labels"] = (labels, np.bincount(labels[ink], weights=a[ink], minlength=n + 1))
    labels, mass = ctx["labels"]   # mass: (n + 1,) ink per label; [0] is the paper, always 0
    return labels, len(mass) - 1, mass


def despeckle(a: np.ndarray, ctx: dict, frac: float = 0.02) -> tuple[np.ndarray, dict, str]:
    """Remove connected specks whose ink mass is under ``frac`` of the biggest component's."""
    labels, _, mass = _label(a, ctx)
    present = mass > 0
    n = int(present.sum())
    if n == 0:
        raise NoInkError("no ink left after separating it from the paper")
    limit = frac * mass.max()
    drop = np.flatnonzero(present & (mass < limit))
    out = a
    if drop.size:
        keep = present.copy()
        keep[drop] = False
        out = np.where(keep[labels], a, 0.0).astype(np.float32)
        ctx["labels"] = (labels, np.where(keep, mass, 0.0))
    removed = float(mass[drop].sum() / mass.sum())
    numbers = {"components": int(n), "removed": int(drop.size), "removed_ink_fraction":
               rnd(removed), "speck_limit_mass": rnd(limit, 3)}
    if drop.size:
        sentence = (f"Removed {drop.size} of {n} ink specks, each under {frac:.0%} of the biggest "
                    f"stroke ({removed:.1%} of all ink).")
    else:
        sentence = ("No specks: the ink is one piece." if n == 1 else
                    f"No specks: all {n} pieces of ink are substantial.")
    return out, numbers, sentence


def largest_blob(a: np.ndarray, ctx: dict, near: float = 0.2, min_share: float = 0.1
                  ) -> tuple[np.ndarray, dict, str]:
    """Keep the digit: the largest connected ink, plus pieces close to it that are not tiny.

    A "5" or a "4" is often drawn in strokes that do not touch, so strictly "largest only" would
    cut digits apart (it turns many MNIST 5s into a hook).  Starting from the largest piece, a
    piece joins the digit if its ink mass is at least ``min_share`` of the largest's and the gap
    between its bounding box and the digit's so far is at most ``near`` x the digit's longer
    side; this repeats until nothing joins.  Anything else (a second digit further away, a
    smudge, a shadow line) is dropped."""
    labels, _, mass = _label(a, ctx)
    present = mass > 0
    n = int(present.sum())
    if n == 0:
        raise NoInkError("no ink left after removing specks")
    big = int(np.argmax(mass))
    boxes = ndi.find_objects(labels)
    keep = np.zeros(mass.shape, dtype=bool)
    keep[big] = True
    y0, y1 = boxes[big - 1][0].start, boxes[big - 1][0].stop
    x0, x1 = boxes[big - 1][1].start, boxes[big - 1][1].stop
    candidates = [i for i in np.flatnonzero(present) if i != big and
                  mass[i] >= min_share * mass[big]]
    grew = True
    while grew and candidates:
        grew = False
        limit = near * max(y1 - y0, x1 - x0)
        for i in list(candidates):
            sy, sx = boxes[i - 1]
            gap = max(sy.start - y1, y0 - sy.stop, sx.start - x1, x0 - sx.stop, 0)
            if gap <= limit:
                keep[i] = True
                candidates.remove(i)
                y0, y1 = min(y0, sy.start), max(y1, sy.stop)
                x0, x1 = min(x0, sx.start), max(x1, sx.stop)
                grew = True
    dropped = int(n - keep.sum())
    out = a if dropped == 0 else np.where(keep[labels], a, 0.0).astype(np.float32)
    ctx["labels"] = (labels, np.where(keep, mass, 0.0))
    kept_share = float(mass[keep].sum() / mass.sum())
    numbers = {"components": int(n), "kept": int(keep.sum()), "dropped": dropped,
               "kept_ink_fraction": rnd(kept_share), "largest_mass": rnd(mass[big], 2)}
    extra = int(keep.sum()) - 1
    if n == 1:
        sentence = "The ink is one connected stroke: that is the digit."
    else:
        parts = ["Kept the largest connected ink"]
        if extra:
            parts.append(f" and {extra} nearby stroke{'s' if extra > 1 else ''}")
        if dropped:
            parts.append(f"; dropped {dropped} other blob{'s' if dropped > 1 else ''} "
                         f"({1 - kept_share:.1%} of the ink) as not part of the digit")
        sentence = "".join(parts) + "."
    return out, numbers, sentence
