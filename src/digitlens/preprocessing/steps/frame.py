"""MNIST's frame: crop to the ink, scale the longer side to 20 pixels, centre the mass, normalize.

MNIST itself was made by these last four steps (bounding box, 20x20 box with anti-aliasing, centre
of mass at the centre of 28x28); measured on the bundled digits, every digit's bounding box has a
longer side of exactly 20 and the centre of mass is at (13.99, 14.00) on average, i.e. pixel
(14, 14).

Each step is ``step(a, ctx) -> (image, numbers, sentence)`` on an (H, W) float32 image in [0, 1],
ink bright; :func:`place` (the ``center`` step) takes whether to centre the mass instead of ``ctx``.
"""

from __future__ import annotations

import numpy as np

from ...errors import NoInkError
from ._common import bbox, resize, rnd

SIZE = 28
"""Side of the network's input grid."""
BOX = 20
"""MNIST scales the digit's longer side to 20 pixels, leaving a 4-pixel margin."""
CENTER = 14.0
"""Where MNIST puts the centre of mass (row, column), in pixel-index coordinates."""


def crop(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Cut the image to the ink's bounding box (the smallest rectangle holding every non-zero
    pixel)."""
    y0, y1, x0, x1 = bbox(a)
    out = a[y0:y1, x0:x1]
    numbers = {"box": {"top": y0, "bottom": y1, "left": x0, "right": x1},
               "width": x1 - x0, "height": y1 - y0}
    sentence = (f"The ink spans rows {y0}–{y1 - 1} and columns {x0}–{x1 - 1}: a "
                f"{x1 - x0}x{y1 - y0} box, cut out.")
    return out, numbers, sentence


def scale(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Longer side -> 20 px, keeping the aspect ratio.  Pillow's bilinear filter anti-aliases:
    when shrinking by a factor k it averages over k times as many source pixels."""
    h, w = a.shape
    longer = max(h, w)
    f = BOX / longer
    nw, nh = max(1, int(round(w * f))), max(1, int(round(h * f)))
    out = np.clip(resize(a, nw, nh), 0.0, 1.0)
    numbers = {"from": [w, h], "to": [nw, nh], "factor": rnd(f)}
    how = ("shrinking averages neighbouring pixels (anti-aliasing)" if f < 1 else
           "enlarging interpolates between pixels" if f > 1 else "it was already that size")
    sentence = (f"Resized {w}x{h} to {nw}x{nh}: the longer side becomes {BOX} pixels, the "
                f"shape is kept, and {how}.")
    return out, numbers, sentence


def center_of_mass(a: np.ndarray) -> tuple[float, float]:
    """``(row, column)`` of the ink's balance point, the intensity-weighted mean pixel index
    (the middle of the image when it holds no ink)."""
    total = float(a.sum())
    if total <= 0:
        h, w = a.shape
        return (h - 1) / 2, (w - 1) / 2
    rows = a.sum(axis=1) @ np.arange(a.shape[0]) / total
    cols = a.sum(axis=0) @ np.arange(a.shape[1]) / total
    return float(rows), float(cols)


def place(a: np.ndarray, center: bool) -> tuple[np.ndarray, dict, str]:
    """Paste ``a`` (at most 28x28) into a 28x28 field.  With ``center``, shift by whole pixels so
    the centre of mass lands on (14, 14), as MNIST did; otherwise centre the box."""
    h, w = a.shape
    box_top, box_left = (SIZE - h) // 2, (SIZE - w) // 2
    cy, cx = center_of_mass(a)
    if center:
        top = int(np.clip(round(CENTER - cy), 0, SIZE - h))
        left = int(np.clip(round(CENTER - cx), 0, SIZE - w))
    else:
        top, left = box_top, box_left
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top:top + h, left:left + w] = a
    fy, fx = center_of_mass(out)
    numbers = {"offset": {"top": top, "left": left},
               "shift_from_box_centre": [top - box_top, left - box_left],
               "center_of_mass": [rnd(fy, 3), rnd(fx, 3)],
               "clamped": bool(center and (top != round(CENTER - cy) or
                                           left != round(CENTER - cx)))}
    if center:
        sentence = (f"Placed so the centre of mass (the ink's balance point) is at "
                    f"({fy:.2f}, {fx:.2f}), next to MNIST's (14, 14); that moved the box "
                    f"{top - box_top:+d} rows, {left - box_left:+d} columns.")
    else:
        sentence = (f"Box placed in the middle of the 28x28 field; its centre of mass is at "
                    f"({fy:.2f}, {fx:.2f}).")
    return out, numbers, sentence


def normalize(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Scale the intensities so the brightest ink is exactly 1.0 (paper stays 0)."""
    peak = float(a.max())
    if peak <= 0:
        raise NoInkError("the 28x28 image is blank")
    out = np.clip(a / peak, 0.0, 1.0).astype(np.float32)
    numbers = {"peak_before": rnd(peak), "scale": rnd(1 / peak)}
    sentence = (f"Multiplied by {1 / peak:.3f} so the brightest ink is 1.0 and paper stays 0: "
                f"784 numbers in [0, 1], the network's input.")
    return out, numbers, sentence
