"""The digits' map: where the network puts each digit, seen from its last hidden layer.

The last hidden layer (the input of the final Dense layer, ``D`` numbers per digit) is where the
network has arranged the digits so that ten weighted sums can tell them apart.  To look at it we
project it onto the two directions along which the training digits vary most: principal
component analysis, computed with NumPy's SVD of the centred activations,

    ``H − mean = U S Vᵀ``,   map coordinates = ``(h − mean) · V[:, :2]``

(the rows of ``Vᵀ`` are the principal directions, ``S²/(N−1)`` the variance along each).  The two
axes keep ``explained`` of the total variance; the rest is flattened away, so dots close on the map
may still be far apart in the hidden layer.  Nearest neighbours are therefore measured in the full
hidden layer, not on the map.  For a model without a hidden layer (logistic) the "hidden layer" is
the 784 pixels themselves.

Each component's sign is fixed (its largest entry positive), so the same model gives the same map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util import jsonsafe as J
from ..nn import topology as T


def hidden_features(model, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """(N, D) float64: the input of the model's final Dense layer for every image of ``x``
    (N, 1, 28, 28) — the last hidden layer's activations (the pixels for a model without one)."""
    stop = T.final_dense(model)
    out = [np.asarray(model.forward_range(x[i:i + batch_size], 0, stop), np.float64)
           .reshape(len(x[i:i + batch_size]), -1) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0))


def pca(h: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components from NumPy's SVD.

    Parameters
    ----------
    h : (N, D) data, one row per sample (N >= 2).
    k : how many components.

    Returns
    -------
    mean : (D,); components : (k, D) unit rows, each with its largest-magnitude entry positive;
    explained : (k,) the share of the total variance along each.

    Examples
    --------
    >>> import numpy as np
    >>> h = np.array([[0., 0.], [2., 0.], [4., 0.1]])
    >>> mean, comps, expl = pca(h, 1)
    >>> np.round(comps, 2).tolist(), bool(expl[0] > 0.99)
    ([[1.0, 0.02]], True)
    """
    h = np.asarray(h, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] < 2 or not 1 <= k <= min(h.shape):
        raise ValueError(f"need (N, D) data with N >= 2 and 1 <= k <= min(N, D), got {h.shape}, "
                         f"k={k}")
    mean = h.mean(axis=0)  # (D,)
    c = h - mean  # (N, D) centred
    if c.shape[0] > 2 * c.shape[1]:
        # Many more digits than units: the SVD of the (D, D) scatter matrix CᵀC = V S² Vᵀ gives
        # the same V and the squared singular values, without the (N, D) U we do not need
        # (4,000 × 784 for logistic: several times faster).
        _, s2, vt = np.linalg.svd(c.T @ c)  # (D, D) @ ... ; s2 (D,) = S², vt (D, D)
        var = s2
    else:
        _, s, vt = np.linalg.svd(c, full_matrices=False)  # s (r,), vt (r, D)
        var = s**2
    comps = vt[:k].copy()  # (k, D)
    big = np.argmax(np.abs(comps), axis=1)
    comps *= np.sign(comps[np.arange(k), big])[:, None]  # the largest entry of each row positive
    explained = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return mean, comps, explained


@dataclass(frozen=True)
class Placement:
    """One new digit on the map: its coordinates, and its nearest training digits (measured in
    the full hidden layer) with their labels, distances and map coordinates."""

    xy: np.ndarray
    neighbours: np.ndarray
    labels: np.ndarray
    distances: np.ndarray
    neighbour_xy: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"xy": [J.num(v) for v in self.xy],
                "neighbours": [{"index": int(i), "label": int(lb), "distance": J.num(d),
                                "xy": [J.num(v) for v in p]}
                               for i, lb, d, p in zip(self.neighbours, self.labels,
                                                      self.distances, self.neighbour_xy)]}


@dataclass(frozen=True)
class DigitMap:
    """A model's map: PCA fitted on the training digits' hidden layer, test digits placed on it.

    Attributes
    ----------
    mean, components, explained : the PCA (see :func:`pca`); hidden_size : D.
    points : (N_test, 2) the test digits' coordinates; labels : (N_test,).
    train_hidden : (N_train, D) the training digits' hidden layer (for neighbours);
    train_points : (N_train, 2); train_labels : (N_train,).
    """

    mean: np.ndarray
    components: np.ndarray
    explained: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    train_hidden: np.ndarray
    train_points: np.ndarray
    train_labels: np.ndarray

    def project(self, h: np.ndarray) -> np.ndarray:
        """(N, D) hidden activations -> (N, 2) map coordinates."""
        return (np.asarray(h, np.float64) - self.mean) @ self.components.T  # (N, D) @ (D, 2)

    def place(self, model, image: np.ndarray, k: int = 5) -> Placement:
        """Put one (28, 28) image (already pre-processed) on the map, with its ``k`` nearest
        training digits in the hidden layer."""
        img = np.asarray(image, dtype=np.float32)
        if img.shape != (28, 28) or not np.all(np.isfinite(img)):
            raise ValueError(f"image must be 28×28 finite numbers, got shape {img.shape}")
        h = hidden_features(model, img[None, None])  # (1, D)
        d2 = np.sum((self.train_hidden - h) ** 2, axis=1)  # (N_train,)
        k = min(k, len(d2))
        near = np.argsort(d2, kind="stable")[:k]
        return Placement(self.project(h)[0], near, self.train_labels[near],
                         np.sqrt(d2[near]), self.train_points[near])

    def overlap(self, a: int = 4, b: int = 9) -> tuple[float, int]:
        """The share of test digits labelled ``a`` or ``b`` whose nearest such dot on the map has
        the other label, and how many there are."""
        keep = np.flatnonzero((self.labels == a) | (self.labels == b))
        if len(keep) < 2:
            return float("nan"), int(len(keep))
        p = self.points[keep]  # (M, 2)
        d2 = np.sum((p[:, None, :] - p[None, :, :]) ** 2, axis=2)  # (M, M)
        np.fill_diagonal(d2, np.inf)
        other = self.labels[keep][np.argmin(d2, axis=1)] != self.labels[keep]
        return float(other.mean()), int(len(keep))

    def to_dict(self) -> dict[str, Any]:
        from . import words

        share, n = self.overlap(4, 9)
        return {"explained": [J.num(v) for v in self.explained],
                "hidden_size": int(self.components.shape[1]),
                "points": J.map_list(self.points, 4), "labels": [int(v) for v in self.labels],
                "overlap_4_9": J.num(share), "overlap_n": n,
                "overlap_sentence": words.overlap_sentence(4, 9, share, n)}


def build_map(model, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              y_test: np.ndarray) -> DigitMap:
    """Fit the PCA on the training digits' last hidden layer and place the test digits.

    Cost: one forward pass over both sets and one SVD of (N_train, D) (≈ 0.5 s for the cnn on the
    bundled 4,000 + 1,000 digits).
    """
    h_train = hidden_features(model, x_train)  # (N_train, D)
    mean, comps, explained = pca(h_train, 2)
    h_test = hidden_features(model, x_test)  # (N_test, D)
    m = DigitMap(mean, comps, explained, np.zeros((0, 2)), np.asarray(y_test), h_train,
                 np.zeros((0, 2)), np.asarray(y_train))
    return DigitMap(mean, comps, explained, m.project(h_test), np.asarray(y_test),
                    h_train.astype(np.float32), m.project(h_train), np.asarray(y_train))


__all__ = ["DigitMap", "Placement", "build_map", "hidden_features", "pca"]
