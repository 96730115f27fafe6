"""The digits a model is evaluated on.

=========  ==========================================================================
bundled    the 1,000 bundled test digits (MNIST writers; the models never trained on them)
mnist      MNIST's official 10,000 test digits (after ``digitlens data download mnist``)
optdigits  scikit-learn's ``load_digits``: 1,797 digits by *other* writers (UCI optdigits),
           8×8 with 17 grey levels, upscaled to 32×32 and brought through digitlens's own
           pre-processing (the same path as a drawing) to 28×28
mine       the learner's own digits (``digitlens.data.mine``, when installed)
=========  ==========================================================================

scikit-learn is a test and benchmark dependency only: it is imported when ``optdigits`` is asked
for, with a clear error if it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

import numpy as np

DATA_CHOICES = ("bundled", "mnist", "optdigits", "mine")
#: optdigits are 8×8; upscaling by 4 gives the pre-processing a picture it can crop and centre
OPTDIGITS_UPSCALE = 4


@dataclass(frozen=True)
class EvalSet:
    """Digits to evaluate on: ``x`` (N, 1, 28, 28) float32 in [0, 1], ``y`` (N,) int64, and
    where they come from."""

    name: str
    x: np.ndarray
    y: np.ndarray
    description: str


def load_eval_set(name: str = "bundled", *, limit: int | None = None) -> EvalSet:
    """The evaluation digits called ``name`` (one of :data:`DATA_CHOICES`).

    ``limit`` keeps the first ``limit`` digits (optdigits' pre-processing takes ~2 ms a digit).
    Raises ``ValueError`` for an unknown name, ``FileNotFoundError`` when MNIST was not
    downloaded, ``ImportError`` when scikit-learn (optdigits) or ``digitlens.data.mine`` (mine)
    is not available.
    """
    if name not in DATA_CHOICES:
        raise ValueError(f"data must be one of {list(DATA_CHOICES)}, got {name!r}")
    if name == "bundled":
        from ..data import load_digits

        d = load_digits()
        s = EvalSet("bundled", d.x_test, d.y_test, "the 1,000 bundled test digits (MNIST)")
    elif name == "mnist":
        from ..data.mnist import load_mnist

        d = load_mnist()
        s = EvalSet("mnist", d.x_test, d.y_test, "MNIST's official 10,000 test digits")
    elif name == "optdigits":
        s = _optdigits(limit)
    else:
        s = _mine()
    if limit is not None and limit < len(s.y):
        s = EvalSet(s.name, s.x[:limit], s.y[:limit], f"the first {limit:,} of {s.description}")
    return s


def _optdigits(limit: int | None) -> EvalSet:
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as e:
        raise ImportError("--data optdigits needs scikit-learn (pip install scikit-learn): its "
                          f"load_digits ships the optdigits images ({e})") from None
    from scipy.ndimage import zoom

    from ..preprocessing import preprocess

    d = sk_digits()
    images, labels = d.images, d.target
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    out = np.zeros((len(images), 1, 28, 28), np.float32)
    for i, img in enumerate(images):  # (8, 8) grey levels 0..16, ink bright
        big = zoom(img / 16.0, OPTDIGITS_UPSCALE, order=1)  # (32, 32) bilinear
        big = np.pad(np.clip(big, 0, 1), 4)  # a margin, as a scanned page has
        out[i, 0] = preprocess(big.astype(np.float32)).image
    return EvalSet("optdigits", out, labels.astype(np.int64),
                   f"{len(labels):,} optdigits digits by other writers (scikit-learn), "
                   "upscaled and pre-processed like a drawing")


def _mine() -> EvalSet:
    if importlib.util.find_spec("digitlens.data.mine") is None:
        raise ImportError("--data mine needs your own digits (digitlens.data.mine), which this "
                          "version of digitlens does not have yet")
    mine = importlib.import_module("digitlens.data.mine")
    x, y, _ = mine.DigitStore().arrays()  # (N, 1, 28, 28) grids, already pre-processed
    if len(x) == 0:
        raise ValueError("you have no digits of your own yet: draw some and save them with "
                         "their labels first")
    return EvalSet("mine", x, y, f"your own {len(x)} digits")


__all__ = ["DATA_CHOICES", "EvalSet", "load_eval_set"]
