"""Small helpers the step families share: resizing, sampling, robust statistics, bounding boxes.

Numbers: every image here is (H, W) float32 in [0, 1].
"""

from __future__ import annotations

import numpy as np

from ...errors import NoInkError


def rnd(v: float, n: int = 4) -> float:
    """``v`` as a plain float rounded to ``n`` decimals (the numbers a step reports)."""
    return round(float(v), n)


def box_filter():
    """Pillow's box filter (imported lazily: Pillow is only needed once an image arrives)."""
    from PIL import Image

    return Image.BOX


def resize(a: np.ndarray, width: int, height: int, resample=None) -> np.ndarray:
    """Resize a float image with Pillow (``F`` mode keeps full precision).  When shrinking,
    Pillow widens the filter by the shrink factor, i.e. it anti-aliases."""
    from PIL import Image

    if resample is None:
        # Bilinear (a triangle filter) has no negative lobes, so unlike Lanczos it adds no faint
        # ringing around strokes; on the photo-robustness test it is as accurate or better.
        resample = Image.BILINEAR
    if a.shape == (height, width):
        return a.copy()
    out = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F").resize(
        (int(width), int(height)), resample)
    return np.asarray(out, dtype=np.float32)


def sample(a: np.ndarray, limit: int = 40_000) -> np.ndarray:
    """A regular sub-grid of at most ~``limit`` pixels, for statistics on big photos."""
    stride = max(1, int(np.ceil(np.sqrt(a.size / limit))))
    return a[::stride, ::stride]


def median_spread(v: np.ndarray) -> tuple[float, float]:
    """``(median, robust spread)`` of the values ``v``: the spread is 1.4826 x the median
    absolute deviation, which equals the standard deviation for Gaussian noise but ignores the
    few far values (ink among paper pixels)."""
    med = float(np.median(v))
    return med, 1.4826 * float(np.median(np.abs(v - med)))


def border(a: np.ndarray) -> np.ndarray:
    """The pixels of a frame around the image, 4 % of its shorter side thick (at least 1)."""
    h, w = a.shape
    f = max(1, int(round(0.04 * min(h, w))))
    return np.concatenate([a[:f].ravel(), a[-f:].ravel(), a[:, :f].ravel(), a[:, -f:].ravel()])


def bbox(a: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the non-zero pixels, bottom and right exclusive."""
    rows = np.flatnonzero(a.any(axis=1))
    cols = np.flatnonzero(a.any(axis=0))
    if rows.size == 0:
        raise NoInkError("the image is empty after the previous steps")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
