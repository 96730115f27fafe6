""""I don't know": how unlike the training digits an input is (an out-of-distribution score).

Softmax always turns the ten logits into ten probabilities that add up to 1, so a network must
pick a digit even for a dot or a scribble — and may pick it with 93% "confidence".  The score
here measures, instead, whether the input looks like anything the network was trained on.  It
combines two tail p-values, each measured against the 4,000 bundled training digits:

- **kNN distance** (Sun et al. 2022, "Out-of-distribution detection with deep nearest
  neighbors"): ``d_knn`` is the Euclidean distance from ``u = h / |h|`` to its ``k``-th nearest
  training digit's ``u`` (k = 10), where ``h`` is the input of the final Dense layer — the
  numbers the network decides from (the 784 pixels for a model without a hidden layer).
- **shape distance**: ``d_shape`` is the squared Mahalanobis distance of 7 statistics of the
  ink mask ``x > 0.5 max(x)`` (log area, log perimeter per area, box height and width, log fill
  of the box, log(1 + #pieces), #holes) from the training digits' mean, with their covariance.
  It is blind to blur and pen pressure and catches a dot or a filled blob, which some networks
  place right among the digits.

Each distance ``d`` becomes a tail p-value among the training digits,
``p(d) = (1 + #{training digits with d_i >= d}) / (N + 1)`` (a training digit's own kNN distance
leaves itself out), and the score is Fisher's combination ``S = -log p_knn - log p_shape``
(beyond the largest training distance ``p`` is floored, and ``(d - max) / (p95 - median)`` is
added so that far-out inputs stay ordered).  Higher ``S`` = less like a digit.

The **threshold** is the 95th percentile of ``S`` over the 1,000 bundled *test* digits: by
construction 5% of real test digits are flagged.  The 95th rather than the 99th: on the design
spike's 1,200 generated non-digits it flags 82% (mlp) and 90% (cnn) of them, against 53% and
72% at the 99th, and the test digits it does flag are hard ones (the mlp reads 66% of them
correctly, against 96% of the others), so the note is informative even when it fires on a real
digit.

Everything is plain data computed once per model (:func:`calibrate`, about a second) and then
only read; :func:`score` takes one batch of images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util.checks import check_int, check_number
from .._util.jsonsafe import num
from ..nn import topology as T
from ..nn.model import Sequential

#: the shape statistics, in order (see :func:`shape_stats`)
SHAPE_NAMES = ("log area", "log perimeter per area", "box height", "box width", "log box fill",
               "log(1 + pieces)", "holes")
#: the default neighbour (k) and threshold percentile
K_NEIGHBOUR = 10
PERCENTILE = 95.0
_BATCH = 500


# ------------------------------------------------------------------------------ features
def shape_stats(x: np.ndarray) -> np.ndarray:
    """7 statistics of each image's ink mask ``x > 0.5 max(x)`` (see :data:`SHAPE_NAMES`).

    Parameters
    ----------
    x : (N, 1, 28, 28) or (N, 28, 28) images, ink bright.

    Returns
    -------
    (N, 7) float64.  ``#holes`` counts the background pieces (4-connected) minus one: the
    pieces of paper the ink encloses.
    """
    from scipy import ndimage

    a = np.asarray(x, dtype=np.float64).reshape(len(x), 28, 28)  # (N, 28, 28)
    m = a > 0.5 * a.reshape(len(a), -1).max(axis=1)[:, None, None]  # an all-black image: no ink
    area = m.sum(axis=(1, 2)) + 1
    mi = m.astype(np.int8)
    per = (np.diff(mi, axis=1) != 0).sum(axis=(1, 2)) + (np.diff(mi, axis=2) != 0).sum(axis=(1, 2))
    rows, cols = m.any(axis=2), m.any(axis=1)
    h = np.where(rows.any(axis=1), 28 - rows.argmax(axis=1) - rows[:, ::-1].argmax(axis=1), 0)
    w = np.where(cols.any(axis=1), 28 - cols.argmax(axis=1) - cols[:, ::-1].argmax(axis=1), 0)
    pieces = np.array([ndimage.label(k)[1] for k in m])
    holes = np.array([max(ndimage.label(~k)[1] - 1, 0) for k in m])
    return np.stack([np.log(area), np.log((per + 1) / area), h, w, np.log(area / (h * w + 1)),
                     np.log1p(pieces), holes], axis=1).astype(np.float64)


def hidden_features(model: Sequential, x: np.ndarray) -> np.ndarray:
    """``h``: the input of the model's final Dense layer for each image, ``(N, D)`` float64
    (for a model without a hidden layer, the pixels)."""
    L = T.final_dense(model)
    out = []
    for i in range(0, len(x), _BATCH):
        xb = np.asarray(x[i:i + _BATCH]).reshape((-1,) + model.input_shape).astype(model.dtype)
        h = model.forward_range(xb, 0, L)  # (n, ...) the input of layer L
        out.append(np.asarray(h, dtype=np.float64).reshape(len(xb), -1))  # (n, D)
    return np.concatenate(out)


def _unit(h: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(h, axis=1, keepdims=True)
    return np.divide(h, n, out=np.zeros_like(h), where=n > 0)  # all-zero h stays zero


def knn_distance(u: np.ndarray, bank: np.ndarray, k: int, *, exclude_self: bool = False
                 ) -> np.ndarray:
    """Distance from each row of ``u`` (N, D), unit-normalised, to its ``k``-th nearest row of
    ``bank`` (M, D), unit-normalised.  ``exclude_self``: ``u`` *is* ``bank`` and each row's own
    zero distance is skipped.  An all-zero row (every ReLU off) is at distance sqrt(2) from
    everything, as far as two unit vectors at right angles."""
    out = np.empty(len(u))
    j = k - 1 + int(exclude_self)
    bank = np.asarray(bank, dtype=np.float32)  # float32 dot products: twice as fast, and
    for i in range(0, len(u), _BATCH):         # distances only need to be ranked
        ub = np.asarray(u[i:i + _BATCH], dtype=np.float32)
        # |a - b|^2 = 2 - 2 a.b for unit vectors; clipped at 0 against rounding
        d2 = np.maximum(2.0 - 2.0 * (ub @ bank.T).astype(np.float64), 0.0)  # (n, M)
        d2[~ub.any(axis=1)] = 2.0
        out[i:i + _BATCH] = np.sqrt(np.partition(d2, j, axis=1)[:, j])
    return out


# ------------------------------------------------------------------------------ reference
@dataclass
class TailReference:
    """One distance's values over the training digits, sorted: turns a distance into
    ``-log p`` (see the module docstring)."""

    sorted_values: np.ndarray  # (N,)
    median: float
    p95: float

    @classmethod
    def of(cls, values: np.ndarray) -> "TailReference":
        v = np.sort(np.asarray(values, dtype=np.float64))
        return cls(v, float(np.median(v)), float(np.percentile(v, 95)))

    def p_value(self, d: np.ndarray) -> np.ndarray:
        """``(1 + #{d_i >= d}) / (N + 1)``."""
        ref = self.sorted_values
        ge = len(ref) - np.searchsorted(ref, np.asarray(d, dtype=np.float64), side="left")
        return (ge + 1.0) / (len(ref) + 1.0)

    def neg_log_p(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=np.float64)
        spread = max(self.p95 - self.median, 1e-12)
        beyond = np.maximum(d - self.sorted_values[-1], 0.0) / spread
        return -np.log(self.p_value(d)) + beyond


@dataclass
class Gaussian:
    """Squared Mahalanobis distance from one Gaussian (mean, precision matrix)."""

    mean: np.ndarray       # (F,)
    precision: np.ndarray  # (F, F)

    @classmethod
    def fit(cls, f: np.ndarray, shrink: float = 1e-3) -> "Gaussian":
        """Fit rows of ``f`` (N, F); the covariance gets ``shrink`` × its mean variance on the
        diagonal so it stays invertible (a statistic that never varies, e.g. holes in 1s)."""
        mu = f.mean(axis=0)
        c = np.cov(f - mu, rowvar=False)  # (F, F)
        c = c + shrink * np.mean(np.diag(c)) * np.eye(len(c))
        return cls(mu, np.linalg.inv(c))

    def distance(self, f: np.ndarray) -> np.ndarray:
        d = f - self.mean  # (N, F)
        return np.einsum("ij,jk,ik->i", d, self.precision, d)


# ---------------------------------------------------------------------------- calibration
@dataclass
class OODCalibration:
    """What :func:`score` needs for one model, computed once by :func:`calibrate`.

    Attributes
    ----------
    bank : (N, D) the training digits' ``h / |h|`` (float32).
    k : which neighbour's distance counts.
    knn_ref, shape_ref : the training digits' kNN and shape distances.
    shape : the Gaussian of the training digits' shape statistics.
    threshold : ``S`` above it is flagged; the ``percentile``-th percentile of ``S`` over the
        ``n_test`` bundled test digits.
    test_flagged : the fraction of those test digits above the threshold.
    """

    bank: np.ndarray
    k: int
    knn_ref: TailReference
    shape: Gaussian
    shape_ref: TailReference
    threshold: float
    percentile: float
    n_train: int
    n_test: int
    test_flagged: float

    def to_dict(self) -> dict[str, Any]:
        """A summary (not the bank): what the page says about the threshold."""
        return {"k": self.k, "threshold": num(self.threshold), "percentile": self.percentile,
                "n_train": self.n_train, "n_test": self.n_test,
                "test_flagged": num(self.test_flagged)}


@dataclass
class ShapeReference:
    """The model-free half of the score: the training digits' shape Gaussian and distances, and
    the test digits' shape distances (the same for every model, so computed once)."""

    shape: Gaussian
    shape_ref: TailReference
    test_distances: np.ndarray  # (M,)

    @classmethod
    def of(cls, x_train: np.ndarray, x_test: np.ndarray) -> "ShapeReference":
        f = shape_stats(x_train)
        g = Gaussian.fit(f)
        return cls(g, TailReference.of(g.distance(f)), g.distance(shape_stats(x_test)))


def _combined(cal_knn: TailReference, cal_shape: TailReference, d_knn, d_shape) -> np.ndarray:
    return cal_knn.neg_log_p(d_knn) + cal_shape.neg_log_p(d_shape)


def calibrate(model: Sequential, x_train: np.ndarray, x_test: np.ndarray, *,
              h_train: np.ndarray | None = None, k: int = K_NEIGHBOUR,
              percentile: float = PERCENTILE,
              shape: ShapeReference | None = None) -> OODCalibration:
    """Fit the score to ``model`` on the training digits and set its threshold on the test
    digits.

    Parameters
    ----------
    model : the network.
    x_train : (N, 1, 28, 28) the training digits (the 4,000 bundled ones).
    x_test : (M, 1, 28, 28) the digits the threshold is set on (the 1,000 bundled test digits).
    h_train : (N, D) the training digits' final-Dense inputs if already computed (the unit
        atlas holds them), else computed here.
    k : the neighbour whose distance counts (default 10).
    percentile : the threshold is this percentile of ``S`` on ``x_test`` (default 95).
    shape : :meth:`ShapeReference.of` ``(x_train, x_test)`` if already computed (it does not
        depend on the model).

    Cost: one forward pass over both sets, and N×N dot products of D numbers (mlp: ~1 s).
    """
    k = check_int("k", k, 1, max(len(x_train) - 1, 1))
    percentile = check_number("percentile", percentile, "in (0, 100)", lambda v: 0 < v < 100)
    if len(x_test) == 0:
        raise ValueError("x_test must hold at least one digit")
    h = hidden_features(model, x_train) if h_train is None else np.asarray(h_train, np.float64)
    if len(h) != len(x_train):
        raise ValueError(f"h_train must have one row per training digit ({len(x_train)}), "
                         f"got {len(h)}")
    bank = _unit(h.reshape(len(h), -1))
    knn_ref = TailReference.of(knn_distance(bank, bank, k, exclude_self=True))
    sh = ShapeReference.of(x_train, x_test) if shape is None else shape
    if len(sh.test_distances) != len(x_test):
        raise ValueError("shape must be the ShapeReference of these x_train and x_test")
    s_test = _combined(knn_ref, sh.shape_ref,
                       knn_distance(_unit(hidden_features(model, x_test)), bank, k),
                       sh.test_distances)
    thr = float(np.percentile(s_test, percentile))
    return OODCalibration(bank.astype(np.float32), k, knn_ref, sh.shape, sh.shape_ref, thr,
                          float(percentile), len(x_train), len(x_test),
                          float(np.mean(s_test > thr)))


# ---------------------------------------------------------------------------------- score
@dataclass
class OODScore:
    """How unlike the training digits one input is.

    ``score`` is ``S = -log p_knn - log p_shape`` (higher: less like a digit); ``flagged`` is
    ``score > threshold``.  ``knn_p`` is the fraction of training digits at least as far from
    their own 10th-nearest neighbour as this input is; ``shape_p`` likewise for the shape
    statistics.
    """

    score: float
    threshold: float
    flagged: bool
    knn_distance: float
    knn_p: float
    shape_distance: float
    shape_p: float
    percentile: float
    test_flagged: float
    k: int = K_NEIGHBOUR
    sentence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"score": num(self.score), "threshold": num(self.threshold),
                "flagged": bool(self.flagged), "knn_distance": num(self.knn_distance),
                "knn_p": num(self.knn_p), "shape_distance": num(self.shape_distance),
                "shape_p": num(self.shape_p), "percentile": num(self.percentile),
                "test_flagged": num(self.test_flagged), "k": int(self.k),
                "sentence": self.sentence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OODScore":
        return cls(**{k: d[k] for k in ("score", "threshold", "flagged", "knn_distance",
                                         "knn_p", "shape_distance", "shape_p", "percentile",
                                         "test_flagged", "k", "sentence")})


def scores(model: Sequential, cal: OODCalibration, x: np.ndarray, *,
           h: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The score's parts for a batch ``x`` (N, 1, 28, 28): ``"score"``, ``"knn_distance"``,
    ``"knn_p"``, ``"shape_distance"``, ``"shape_p"``, each (N,).  ``h``: the final-Dense inputs
    if the caller has them (else one forward pass)."""
    x = np.asarray(x)
    h = hidden_features(model, x) if h is None else np.asarray(h, np.float64).reshape(len(x), -1)
    d_knn = knn_distance(_unit(h), cal.bank, cal.k)
    d_shape = cal.shape.distance(shape_stats(x))
    return {"score": _combined(cal.knn_ref, cal.shape_ref, d_knn, d_shape),
            "knn_distance": d_knn, "knn_p": cal.knn_ref.p_value(d_knn),
            "shape_distance": d_shape, "shape_p": cal.shape_ref.p_value(d_shape)}


def score(model: Sequential, cal: OODCalibration, x: np.ndarray, *,
          h: np.ndarray | None = None) -> OODScore:
    """The :class:`OODScore` of one image ``x`` (28×28 or (1, 1, 28, 28)), without its
    sentence (:func:`digitlens.explain.words.ood` writes it)."""
    x = np.asarray(x).reshape(1, 1, 28, 28)
    s = {k: float(v[0]) for k, v in scores(model, cal, x, h=h).items()}
    return OODScore(s["score"], cal.threshold, s["score"] > cal.threshold, s["knn_distance"],
                    s["knn_p"], s["shape_distance"], s["shape_p"], cal.percentile,
                    cal.test_flagged, cal.k)


def auroc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """P(score of an out-of-distribution input > score of an in-distribution one), ties count
    one half: the Mann-Whitney U statistic over ``len(s_in) * len(s_out)``."""
    from scipy.stats import rankdata

    s_in, s_out = np.asarray(s_in, np.float64), np.asarray(s_out, np.float64)
    r = rankdata(np.concatenate([s_in, s_out]))  # average ranks for ties
    n0, n1 = len(s_in), len(s_out)
    return float((r[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))
