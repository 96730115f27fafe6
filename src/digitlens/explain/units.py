"""What each hidden unit or filter looks for, and which training digits look alike to the network.

- A first-layer **dense** unit computes ``z_j = Σ_i W_ij x_i + b_j``: its weight column ``W[:, j]``,
  shown as a 28×28 image, *is* its template — bright where ink raises ``z_j``, dark where ink
  lowers it.
- A first-layer **conv** filter is a small template slid over the image; its feature map for this
  image shows where the pattern appears.  Hand-designed kernels (edges in four directions and an
  arc) run over the same image with the same cross-correlation, so "this filter finds vertical
  strokes" can be checked by eye.
- The training digits that excite a unit most show what it responds to in real data.  They come
  from a :class:`UnitAtlas`: the activations of every training digit, computed once per model.
- Nearest neighbours are measured in the last hidden layer's space (the input of the final Dense
  layer): the numbers the network actually decides from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn import topology as T
from ..nn.model import Sequential, input_gradient_through
from . import words
from .attribution import as_input, image_shape
from .result import KernelResponse, Nearest, Neighbour, UnitReport, UnitView


# ------------------------------------------------------------------------------------ the atlas
@dataclass
class UnitAtlas:
    """Activations of a model's units over a set of (training) digits, computed once.

    Attributes
    ----------
    x : (N, 1, 28, 28) the digits; y : (N,) their labels.
    first_layer, first_output, first_kind : see :func:`digitlens.nn.topology.first_unit_layer`.
    first : (N, U) each first-layer unit's activation (a conv filter's maximum over its map).
    first_top : (U, k) indices of the digits exciting each first-layer unit most.
    hidden_layer : index of the final Dense layer; ``hidden`` (N, D) is its input for each digit.
    hidden_top : (D, k) indices of the digits exciting each last-hidden unit most.
    mean_image : (28, 28) the average digit (prototypes are compared with it).
    """

    x: np.ndarray
    y: np.ndarray
    first_layer: int
    first_output: int
    first_kind: str
    first: np.ndarray
    first_top: np.ndarray
    hidden_layer: int
    hidden: np.ndarray
    hidden_sq: np.ndarray
    hidden_top: np.ndarray
    mean_image: np.ndarray


def _top_indices(acts: np.ndarray, k: int) -> np.ndarray:
    """(N, U) -> (U, k) indices of the k largest activations per unit, largest first."""
    k = min(k, acts.shape[0])
    part = np.argpartition(-acts, k - 1, axis=0)[:k].T  # (U, k), unordered
    order = np.argsort(-np.take_along_axis(acts.T, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def build_atlas(model: Sequential, x: np.ndarray, y: np.ndarray, *, top_k: int = 8,
                batch_size: int = 500) -> UnitAtlas:
    """Run the model over ``x`` once and keep what unit summaries and neighbours need.

    Cost: one forward pass over the digits (≈ 0.1 s for ``mlp`` on the 4,000 bundled training
    digits).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x must be (N, 1, 28, 28) with N = len(y) > 0, got {x.shape} and "
                         f"{y.shape}")
    wl, ol, kind = T.first_unit_layer(model)
    L = T.final_dense(model)
    firsts, hiddens = [], []
    for i in range(0, len(x), batch_size):
        tr = model.forward(x[i:i + batch_size].astype(model.dtype), trace=True)
        f = tr.layers[ol].output
        if f.ndim == 4:
            f = f.reshape(f.shape[0], f.shape[1], -1).max(axis=2)  # (n, C): strongest response
        firsts.append(np.asarray(f, dtype=np.float32))
        hiddens.append(np.asarray(tr.layers[L].input, dtype=np.float32).reshape(len(f), -1))
    first = np.concatenate(firsts)
    hidden = np.concatenate(hiddens)
    return UnitAtlas(x, y, wl, ol, kind, first, _top_indices(first, top_k), L, hidden,
                     (hidden.astype(np.float64) ** 2).sum(axis=1), _top_indices(hidden, top_k),
                     x[:, 0].astype(np.float64).mean(axis=0))


def unit_input_gradients(model: Sequential, x: np.ndarray, index: int,
                         units: list[int]) -> np.ndarray:
    """``∂h_j/∂x`` for each unit ``j`` in ``units`` of the input of layer ``index``: what each unit
    responds to around this image (for ReLU networks: the unit's effective pixel template here).

    One forward pass of ``len(units)`` copies of the image and one backward pass with a one-hot
    gradient per copy.  Returns ``(len(units), H, W)``.
    """
    X = as_input(model, x)
    n = len(units)
    if n == 0:
        return np.zeros((0,) + image_shape(model))
    # a: (n, *layer input), one copy of the image per unit
    a, caches = model.forward_range(np.repeat(X, n, axis=0), 0, index, caches=True)
    d = np.zeros_like(a).reshape(n, -1)  # (n, D)
    d[np.arange(n), units] = 1.0
    d = input_gradient_through(model.layers[:index], d.reshape(a.shape), caches)
    g = np.asarray(d, dtype=np.float64).reshape((n,) + model.input_shape)
    if g.ndim == 4:
        g = g.sum(axis=1)  # (n, H, W)
    return g.reshape((n,) + image_shape(model))


# ---------------------------------------------------------------------------- hand kernels
def hand_kernels(size: int = 5, arc_size: int | None = None) -> dict[str, np.ndarray]:
    """Hand-designed detectors, each zero-mean with unit length (L2 norm 1):

    - four ``size × size`` **edge** detectors (derivative of a Gaussian): positive on one side of
      the centre line, negative on the other — they respond where brightness changes across it;
    - an ``arc_size × arc_size`` **arc** (default ``size``): the upper half of a ring drawn with a
      soft pen, minus its mean — a matched filter for the round top of a loop (9, 8, 0, 2, 3).
      Seven pixels is the smallest size at which it prefers a loop's top to a straight stroke.
    """
    k = int(size)
    ka = int(arc_size or size)
    if k < 3 or ka < 3:
        raise ValueError(f"kernel sizes must be >= 3, got {size!r} and {arc_size!r}")
    c = (k - 1) / 2.0
    v, u = np.mgrid[0:k, 0:k].astype(np.float64) - c  # v down, u right
    sigma = max(k / 4.0, 0.75)
    g = np.exp(-(u ** 2 + v ** 2) / (2 * sigma ** 2))
    s2 = np.sqrt(0.5)
    kernels = {
        "horizontal edge": -v * g,  # ink above the centre line, none below -> positive
        "vertical edge": -u * g,  # ink left of the centre line, none right -> positive
        "diagonal edge /": -(u + v) * s2 * g,  # ink above-left of a "/" line -> positive
        "diagonal edge \\": -(v - u) * s2 * g,  # ink above-right of a "\\" line -> positive
    }
    ca = (ka - 1) / 2.0
    va, ua = np.mgrid[0:ka, 0:ka].astype(np.float64) - ca
    centre = 0.5 * ca  # the circle's centre sits below the kernel's centre: the arc fills the top
    d = np.hypot(ua, va - centre)
    kernels["arc (top of a loop)"] = np.exp(-((d - ca) ** 2) / (2 * 0.5 ** 2)) * (va < centre)
    out = {}
    for name, K in kernels.items():
        K = K - K.mean()
        out[name] = K / np.linalg.norm(K)
    return out


def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Slide ``kernel`` over ``image`` (zero padding, same size): the cross-correlation Conv2D
    computes, ``r[i, j] = Σ_uv K[u, v] · x[i + u − c, j + v − c]``."""
    from scipy.ndimage import correlate as _corr

    return _corr(np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64),
                 mode="constant", cval=0.0)


def kernel_responses(image: np.ndarray, size: int = 5, arc_size: int = 7) -> list[KernelResponse]:
    """Each hand-designed kernel's response map on the 28×28 ``image``."""
    img = np.asarray(image, dtype=np.float64).reshape(28, 28)
    return [KernelResponse(name, K, correlate(img, K))
            for name, K in hand_kernels(size, max(arc_size, size)).items()]


def _best_match(filt: np.ndarray, kernels: dict[str, np.ndarray]
                ) -> tuple[str | None, float | None]:
    """The hand kernel most like ``filt`` (cosine similarity of the zero-mean filter)."""
    f = np.asarray(filt, dtype=np.float64)
    f = f - f.mean()
    nf = np.linalg.norm(f)
    if nf == 0:
        return None, None
    best, best_s = None, 0.0
    for name, K in kernels.items():
        if K.shape != f.shape:
            continue
        s = float((f * K).sum() / nf)
        if abs(s) > abs(best_s):
            best, best_s = name, s
    return best, (best_s if best is not None else None)


# ------------------------------------------------------------------------------ the report
def first_layer_units(model: Sequential, x: np.ndarray, *, atlas: UnitAtlas | None = None,
                      top: int = 8, examples: int = 4, kernel_size: int | None = None
                      ) -> UnitReport:
    """What the first layer's units look for, and how they respond to this image.

    Dense: the ``top`` units most active for this image, each with its 28×28 weight image.
    Conv: every filter (up to 32) with its kernel and its feature map for this image, the hand
    kernel it most resembles, and the hand kernels' own responses on the image.
    With an ``atlas``, each unit also lists its ``examples`` most exciting training digits.
    """
    X = as_input(model, x)
    wl, ol, kind = T.first_unit_layer(model)
    no_hidden = wl == T.final_dense(model)
    act = np.asarray(model.forward_range(X, 0, ol + 1)[0], dtype=np.float64)  # this image's output
    W = np.asarray(model.layers[wl].params["W"], dtype=np.float64)
    img = X.reshape(image_shape(model)) if int(np.prod(model.input_shape)) == 784 else None
    units: list[UnitView] = []
    if kind == "dense":
        order = np.argsort(-act)[:top]
        hw = image_shape(model)
        for j in order:
            j = int(j)
            t = W[:, j].reshape(hw) if W.shape[0] == hw[0] * hw[1] else W[:, j]
            tops = [] if atlas is None else [int(i) for i in atlas.first_top[j][:examples]]
            tacts = [] if atlas is None else [float(atlas.first[i, j]) for i in tops]
            units.append(UnitView(j, float(act[j]), t, None, tops, tacts,
                                  where=words.blob_short(*strongest_blobs(t)) if t.ndim == 2
                                  else ""))
        sentences = words.first_layer(
            "dense", no_hidden=no_hidden, binary=act.size == 1 and len(model.classes) == 2,
            act=act, classes=model.classes, top=int(order[0]))
        ks = kernel_size or 5
    else:
        kh, kw = W.shape[2:]
        ks = kernel_size or max(int(kh), 3)
        from .filters import LIKE_THRESHOLD  # (filters imports this module)

        hk = hand_kernels(ks)
        maxes = act.reshape(act.shape[0], -1).max(axis=1)  # (C,)
        for j in range(min(W.shape[0], 32)):
            name, s = _best_match(W[j, 0], hk) if W.shape[2] == ks else (None, None)
            tops = [] if atlas is None else [int(i) for i in atlas.first_top[j][:examples]]
            tacts = [] if atlas is None else [float(atlas.first[i, j]) for i in tops]
            # "like" a hand kernel only at |cosine| >= the threshold; a weak one is only the closest
            like = name if s is not None and abs(s) >= LIKE_THRESHOLD else None
            units.append(UnitView(j, float(maxes[j]), W[j, 0], act[j], tops, tacts, like, s,
                                  closest_kernel=name, like_threshold=LIKE_THRESHOLD))
        strong = [u for u in units if u.similar_kernel is not None]
        sentences = words.first_layer("conv", no_hidden=no_hidden, n_filters=W.shape[0],
                                      kh=kh, kw=kw, similar=strong, threshold=LIKE_THRESHOLD)
    responses = kernel_responses(img, ks) if img is not None else []
    return UnitReport(wl, kind, units, responses, sentences, is_output=no_hidden)


def nearest_examples(model: Sequential, x: np.ndarray, atlas: UnitAtlas, *, k: int = 6,
                     contrast_class: int | None = None, k_contrast: int = 3) -> Nearest:
    """The ``k`` training digits whose last-hidden-layer vectors are closest (Euclidean) to this
    image's, and the ``k_contrast`` closest of ``contrast_class``."""
    X = as_input(model, x)
    h = np.asarray(model.forward_range(X, 0, atlas.hidden_layer), dtype=np.float64).reshape(-1)
    # |H_n − h|² = |H_n|² − 2 H_n·h + |h|², all rows at once: (N, D) @ (D,) -> (N,)
    d2 = atlas.hidden_sq - 2.0 * (atlas.hidden.astype(np.float64) @ h) + h @ h
    dist = np.sqrt(np.maximum(d2, 0.0))  # rounding can make an exact match slightly negative
    order = np.argsort(dist)[:k]
    ex = [Neighbour(int(i), int(atlas.y[i]), float(dist[i])) for i in order]
    cx: list[Neighbour] = []
    if contrast_class is not None:
        idx = np.flatnonzero(atlas.y == int(contrast_class))
        if idx.size:
            sel = idx[np.argsort(dist[idx])[:k_contrast]]
            cx = [Neighbour(int(i), int(atlas.y[i]), float(dist[i])) for i in sel]
    space = "pixels" if T.input_is_pixels(model, atlas.hidden_layer) else "hidden"
    return Nearest(atlas.hidden_layer, "euclidean", ex, cx, space)


# --------------------------------------------------------------- a contrast unit, measured
def receptive_field(model: Sequential, index: int, row: int, col: int
                    ) -> tuple[int, int, int, int]:
    """The pixels that position ``(row, col)`` of the maps feeding layer ``index`` can see:
    ``(r0, c0, r1, c1)``, inclusive, clipped to the image.

    Walks the layers before ``index`` backwards: a convolution with kernel ``k``, stride ``s``
    and padding ``p`` widens ``[r0, r1]`` to ``[r0·s − p, r1·s − p + k − 1]``; a max-pool with
    window ``k`` and stride ``s`` to ``[r0·s, r1·s + k − 1]``; activations, dropout and flatten
    change nothing.

    Examples
    --------
    >>> from digitlens.nn import build_model
    >>> m = build_model("cnn_tiny", np.random.default_rng(0))  # conv 5×5 pad 2, pool 2
    >>> receptive_field(m, 4, 0, 3)
    (0, 4, 3, 9)
    """
    r0, r1, c0, c1 = int(row), int(row), int(col), int(col)
    for layer in reversed(model.layers[:index]):
        if layer.type == "conv2d":
            (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
            r0, r1 = r0 * sh - ph, r1 * sh - ph + kh - 1
            c0, c1 = c0 * sw - pw, c1 * sw - pw + kw - 1
        elif layer.type == "maxpool2d":
            (kh, kw), (sh, sw) = layer.pool_size, layer.stride
            r0, r1 = r0 * sh, r1 * sh + kh - 1
            c0, c1 = c0 * sw, c1 * sw + kw - 1
        elif layer.type not in ("activation", "dropout", "flatten"):
            raise ValueError(f"no receptive field through a {layer.type} layer")
    h, w = image_shape(model)
    return max(r0, 0), max(c0, 0), min(r1, h - 1), min(c1, w - 1)


def label_counts(labels) -> list[tuple[int, int]]:
    """``[(label, count), ...]``, most frequent first (ties: smaller label first)."""
    labels = [int(v) for v in labels]
    return sorted(((v, labels.count(v)) for v in set(labels)), key=lambda t: (-t[1], t[0]))


def ink_difference(atlas: UnitAtlas, tops) -> np.ndarray:
    """(28, 28): the mean of the training digits ``tops`` minus the average training digit —
    where a unit's favourite digits have more ink (> 0) or less (< 0) than digits in general."""
    proto = atlas.x[list(tops), 0].astype(np.float64).mean(axis=0)  # (28, 28)
    return proto - atlas.mean_image


# --------------------------------------------------------- where a unit's template is strongest
@dataclass(frozen=True)
class Blob:
    """The window of a template where its values are strongest in one sign.

    Attributes
    ----------
    sign : +1 (ink here raises the unit) or -1 (ink here lowers it).
    rows, cols : the window's first and last pixel row and column, inclusive.
    mean : the mean of this sign's part of the template over the window, with its sign.
    share : the window's part of all the template's mass of that sign, in [0, 1].
    """

    sign: int
    rows: tuple[int, int]
    cols: tuple[int, int]
    mean: float
    share: float


def strongest_blobs(template: np.ndarray, *, window: int = 7, stride: int = 3
                    ) -> tuple[Blob | None, Blob | None]:
    """The ``window × window`` squares (every ``stride`` pixels) holding the most positive and
    the most negative mass of a 2-D template ``(H, W)``: ``(raises, lowers)``, each a
    :class:`Blob` or None when the template has no mass of that sign.

    A 7-pixel square on a 3-pixel grid places a blob to within 3 pixels on a 28×28 digit (8×8
    positions), finer than thirds of the image, so two units that both "like the centre" are
    told apart by where exactly.

    >>> t = np.zeros((28, 28)); t[3:8, 20:25] = 1.0; t[14:18, 2:6] = -0.5
    >>> up, down = strongest_blobs(t)
    >>> up.rows, up.cols, down.rows, down.cols
    ((3, 9), (18, 24), (12, 18), (0, 6))
    """
    t = np.asarray(template, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"template must be 2-D (H, W), got shape {t.shape}")
    h, w = t.shape
    win = max(1, min(int(window), h, w))
    # window sums by a summed-area table: S[i, j] = sum of t[:i, :j]; (H+1, W+1)
    out: list[Blob | None] = []
    for sign in (1, -1):
        part = np.maximum(sign * t, 0.0)
        total = float(part.sum())
        if total <= 0:
            out.append(None)
            continue
        S = np.zeros((h + 1, w + 1))
        S[1:, 1:] = part.cumsum(axis=0).cumsum(axis=1)
        starts_r = sorted(set(list(range(0, h - win + 1, stride)) + [h - win]))
        starts_c = sorted(set(list(range(0, w - win + 1, stride)) + [w - win]))
        r = np.array(starts_r)[:, None]
        c = np.array(starts_c)[None, :]
        sums = S[r + win, c + win] - S[r, c + win] - S[r + win, c] + S[r, c]  # (nr, nc)
        i, j = np.unravel_index(np.argmax(sums), sums.shape)
        r0, c0 = starts_r[i], starts_c[j]
        # the mean of this sign's part over the window (signed): how much a fully inked pixel
        # there moves the unit, on average
        out.append(Blob(sign, (r0, r0 + win - 1), (c0, c0 + win - 1),
                        float(sign * sums[i, j] / win ** 2), float(sums[i, j] / total)))
    return out[0], out[1]
