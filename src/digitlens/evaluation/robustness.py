"""Robustness curves: accuracy as the test digits are changed more and more, one change at a time.

Seven changes, each with a strength whose value 0 leaves the digit exactly as it was:

=========  ================================================  =====================
kind       what it does                                      strengths (default)
=========  ================================================  =====================
rotation   turn about the centre, degrees (+ = anticlockwise)  −45 … 45
scale      change the size by this many percent               −40 … 40
shift      move this many pixels right *and* down             0 … 6
thickness  a pen this many pixels thinner (−) or thicker (+)  −2 … 2
blur       a Gaussian blur of this σ, pixels                  0 … 2.5
noise      add Gaussian speckle of this σ (then clip to [0,1])  0 … 0.5
elastic    warp the paper smoothly, typical displacement px   0 … 5
=========  ================================================  =====================

Rotation, scale, shift, thickness and the elastic warp reuse the augmentation's own code
(:mod:`digitlens.training.augment`), so the curves test exactly the changes training can teach.
Randomness (noise, the elastic field) comes only from an explicit ``numpy.random.Generator``; one
seed per kind gives every strength the same random pattern, only scaled, so the curves are smooth
and every model sees the same changed digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util import jsonsafe as J
from ..training import augment as A

KINDS = ("rotation", "scale", "shift", "thickness", "blur", "noise", "elastic")
LEVELS = {
    "rotation": (-45, -30, -15, 0, 15, 30, 45),
    "scale": (-40, -20, 0, 20, 40),
    "shift": (0, 1, 2, 3, 4, 5, 6),
    "thickness": (-2, -1, -0.5, 0, 0.5, 1, 2),
    "blur": (0, 0.5, 1.0, 1.5, 2.0, 2.5),
    "noise": (0, 0.1, 0.2, 0.3, 0.4, 0.5),
    "elastic": (0, 1, 2, 3, 4, 5),
}
#: the elastic warp's smoothness (σ of the field's Gaussian blur, pixels), as in augmentation
ELASTIC_SIGMA = 4.0


def transform(x: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Change every image of ``x`` by ``kind`` at strength ``level`` (0: an exact copy).

    Parameters
    ----------
    x : (N, 1, 28, 28) float images in [0, 1].
    kind : one of :data:`KINDS`.
    level : the strength (units in the module table).
    rng : the Generator for ``noise`` and ``elastic`` (drawn from for every kind, so a generator
        in the same state gives the same pattern at every strength).

    Returns
    -------
    (N, 1, 28, 28) array of ``x``'s dtype in [0, 1], a new array.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 1, 28, 28), np.float32); x[0, 0, 8:20, 13:15] = 1
    >>> bool(np.array_equal(transform(x, "rotation", 0, np.random.default_rng(0)), x))
    True
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    level = float(level)
    if not math.isfinite(level):
        raise ValueError(f"level must be finite, got {level}")
    x = np.asarray(x)
    if kind == "rotation":
        return A.transform(x, angle=level)
    if kind == "scale":
        if level <= -100:
            raise ValueError(f"scale level must be > -100 (percent), got {level}")
        return A.transform(x, scale=1.0 + level / 100.0)
    if kind == "shift":
        return A.transform(x, shift_row=level, shift_col=level)
    if kind == "thickness":
        return _thickness(x, level)
    if kind == "blur":
        return _blur(x, level)
    if kind == "noise":
        if level < 0:
            raise ValueError(f"noise level must be >= 0, got {level}")
        z = rng.standard_normal(x.shape).astype(x.dtype)  # (N, 1, 28, 28)
        return np.clip(x + level * z, 0.0, 1.0)
    if level < 0:
        raise ValueError(f"elastic level must be >= 0, got {level}")
    cfg = A.AugmentConfig(rotation=0, scale=0, shift=0, elastic=level,
                          elastic_sigma=ELASTIC_SIGMA)
    return A.augment(x, rng, cfg)


def _thickness(x: np.ndarray, level: float) -> np.ndarray:
    """Whole one-pixel dilations (erosions) for the integer part of ``level``, then the fraction
    of one more (the augmentation's pen-width change, applied ``ceil(|level|)`` times)."""
    out = np.array(x, copy=True)
    sign = 1.0 if level > 0 else -1.0
    left = abs(level)
    while left > 0:
        step = min(1.0, left)
        out = A.transform(out, thickness=sign * step)
        left -= step
    return out


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0:
        raise ValueError(f"blur level must be >= 0, got {sigma}")
    if sigma == 0:
        return np.array(x, copy=True)
    from scipy.ndimage import gaussian_filter

    return np.clip(gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="constant"),
                   0.0, 1.0).astype(x.dtype)


@dataclass(frozen=True)
class Robustness:
    """Accuracy curves of several models under every change.

    Attributes
    ----------
    levels : ``{kind: (L,) strengths}``.
    accuracy : ``{model: {kind: (L,) accuracy}}``.
    examples : ``{kind: (L, 28, 28)}`` one test digit at every strength (what that level looks
        like).
    n : how many digits each accuracy is measured on; example_label : the example's label.
    """

    levels: dict
    accuracy: dict
    examples: dict
    n: int
    example_label: int

    def to_dict(self) -> dict[str, Any]:
        from . import words

        return {"kinds": list(self.levels), "n": self.n, "example_label": self.example_label,
                "titles": {k: words.KIND_TITLES[k] for k in self.levels},
                "levels": {k: [J.num(v) for v in lv] for k, lv in self.levels.items()},
                "accuracy": {m: {k: [J.num(v) for v in a] for k, a in per.items()}
                             for m, per in self.accuracy.items()},
                "examples": {k: [J.image_list(img) for img in ex]
                             for k, ex in self.examples.items()}}


def robustness(models: dict, x: np.ndarray, y: np.ndarray, *, kinds=KINDS, levels=None,
               seed: int = 0, example: int = 0, batch_size: int = 500) -> Robustness:
    """Every model's accuracy on ``x`` changed by every kind at every strength.

    Parameters
    ----------
    models : ``{name: Sequential}`` (each must answer every label in ``y``).
    x : (N, 1, 28, 28) test digits; y : (N,) labels.
    kinds : which changes (default all of :data:`KINDS`); levels : ``{kind: strengths}``
        overrides :data:`LEVELS`.
    seed : one Generator per kind, ``default_rng([seed, k])``, re-made at every strength.
    example : index of the digit shown at every strength.

    Cost: ``len(models) × Σ levels`` passes over ``x`` (about 45 per model by default).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x must be (N, 1, 28, 28) with N = len(y) > 0, got {x.shape}, "
                         f"{y.shape}")
    if not 0 <= example < len(x):
        raise ValueError(f"example must be in [0, {len(x) - 1}], got {example}")
    for name, m in models.items():
        missing = set(np.unique(y).tolist()) - {int(c) for c in m.classes}
        if missing:
            raise ValueError(f"model {name!r} cannot answer digits {sorted(missing)}")
    levels = {k: np.asarray((levels or {}).get(k, LEVELS[k]), np.float64) for k in kinds}
    acc = {name: {} for name in models}
    examples = {}
    for ki, kind in enumerate(kinds):
        shown = []
        for name in models:
            acc[name][kind] = np.zeros(len(levels[kind]))
        for li, level in enumerate(levels[kind]):
            xt = transform(x, kind, level, np.random.default_rng([seed, ki]))
            shown.append(xt[example, 0])
            for name, m in models.items():
                pred = m.predict(xt, batch_size=batch_size)
                acc[name][kind][li] = float(np.mean(pred == y))
        examples[kind] = np.stack(shown)  # (L, 28, 28)
    return Robustness(levels, acc, examples, len(x), int(y[example]))


__all__ = ["KINDS", "LEVELS", "Robustness", "robustness", "transform"]
