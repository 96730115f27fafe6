"""What each filter (at every depth) and each hidden unit looks for, measured two ways.

1. **The training patches that excite it most.**  A unit at output position ``(i, j)`` of a
   convolution layer reads only a window of the image, its *receptive field*, computed here from
   the layers' kernel sizes, strides and paddings (:func:`receptive_field`; for ``cnn``'s second
   convolution it is 8×8 pixels).  :class:`FilterAtlas` runs every training digit through the
   model once and keeps, for every unit, its strongest activation and where it happened; a unit's
   top patches are the windows of the image at those positions.  A Dense unit reads the whole
   image, so its "patch" is the whole digit.
2. **Response curves to synthetic strokes.**  A straight line, and an arc of a stated radius,
   drawn at a series of orientations and shifted across the window (:func:`stroke_image`); the
   engine runs on these images and the unit's weighted sum ``z`` (before its activation) is read
   at one position near the image centre.  For each orientation the curve keeps the best shift,
   so "this filter detects an arc opening to the left" becomes a number per direction.

The hand-made kernels of :func:`digitlens.explain.units.hand_kernels` get the same curves, by the
same code: they are put in a one-layer engine model (:func:`hand_kernel_model`).  A learned
first-layer filter is called "like" a hand-made one only when the cosine of the two (zero-mean)
kernels is at least :data:`LIKE_THRESHOLD`, and the threshold travels with the answer.

Angles: a line at 0° is horizontal, 90° vertical, 45° runs up to the right ("/").  An arc
"opens" towards 0° (right), 90° (up), 180° (left) or 270° (down): a ∩ opens down.
Coordinates are pixels, rows down, columns right.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util.jsonsafe import image_list, map_list, num
from ..nn import topology as T
from ..nn.layers import Conv2D
from ..nn.model import Sequential
from .units import hand_kernels

#: a learned filter is "like" a hand-made kernel only at |cosine| >= this (stated on the page)
LIKE_THRESHOLD = 0.6
#: how many top training patches a filter's card lists
TOP_PATCHES = 8
LINE_ANGLES = tuple(range(0, 180, 15))  # a line at 180° is the line at 0°
ARC_OPENINGS = tuple(range(0, 360, 30))
STROKE_WIDTH = 2.0  # pixels: about the width of an MNIST pen stroke after pre-processing


# ------------------------------------------------------------------------- receptive fields
@dataclass(frozen=True)
class ReceptiveField:
    """The input window one output position of a layer reads.

    Output position ``(i, j)`` reads rows ``start[0] + i·jump[0]`` to that ``+ size[0] − 1`` and
    the columns likewise (rows or columns outside the image are the zero padding).
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` of position ``(i, j)``'s window (bottom, right
        excluded)."""
        top, left = self.start[0] + i * self.jump[0], self.start[1] + j * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]

    def centre(self, i: int, j: int) -> tuple[float, float]:
        """The window's centre ``(row, column)`` in pixel coordinates (pixel k spans k..k+1)."""
        top, left, bottom, right = self.window(i, j)
        return (top + bottom) / 2.0, (left + right) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start)}


def receptive_field(model: Sequential, layer: int) -> ReceptiveField:
    """The receptive field of the outputs of layer ``layer``, from the layers up to it.

    Each convolution or pooling with kernel ``k``, stride ``s`` and padding ``p`` widens the window
    by ``(k − 1)·J`` and moves its start by ``−p·J``, where ``J`` is the input pixels between
    neighbouring positions so far; then ``J`` grows ``s`` times.  Activations and dropout change
    nothing; a Flatten or Dense layer reads everything (the whole image).

    >>> import numpy as np
    >>> from digitlens.nn import build_model
    >>> m = build_model("cnn", np.random.default_rng(0))
    >>> receptive_field(m, 0).size, receptive_field(m, 3).size   # conv 1, conv 2
    ((3, 3), (8, 8))
    """
    if not 0 <= layer < len(model.layers):
        raise ValueError(f"layer must be in 0..{len(model.layers) - 1}, got {layer}")
    h, w = model.input_shape[-2:]
    size, jump, start = [1, 1], [1, 1], [0, 0]
    for L in model.layers[:layer + 1]:
        if L.type in ("conv2d", "maxpool2d"):
            k = L.kernel_size if L.type == "conv2d" else L.pool_size
            pad = L.padding if L.type == "conv2d" else (0, 0)
            for a in (0, 1):
                size[a] += (k[a] - 1) * jump[a]
                start[a] -= pad[a] * jump[a]
                jump[a] *= L.stride[a]
        elif L.type in ("flatten", "dense", "global_avg_pool2d"):
            return ReceptiveField((h, w), (0, 0), (0, 0))
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


def crop(image: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of ``image`` (H, W) inside ``window`` ``(top, left, bottom, right)``, with zeros
    (paper) where the window hangs over the edge: what the padded convolution reads."""
    top, left, bottom, right = window
    h, w = image.shape
    out = np.zeros((bottom - top, right - left), dtype=np.float64)
    t, b, lft, r = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
    if t < b and lft < r:
        out[t - top:b - top, lft - left:r - left] = image[t:b, lft:r]
    return out


# ------------------------------------------------------------------------------- the atlas
@dataclass
class FilterAtlas:
    """Every training digit's strongest activation of every unit, and where it was, per layer.

    Attributes
    ----------
    x : (N, 1, 28, 28) the digits; y : (N,) their labels.
    best : ``{layer: (N, U)}`` each unit's largest activation on each digit (over positions).
    where : ``{layer: (N, U)}`` for conv layers, the flat position of that largest activation in
        the unit's (H_out, W_out) map.
    """

    x: np.ndarray
    y: np.ndarray
    best: dict[int, np.ndarray]
    where: dict[int, np.ndarray]


def build_filter_atlas(model: Sequential, x: np.ndarray, y: np.ndarray, *,
                       batch_size: int = 250) -> FilterAtlas:
    """Run ``model`` over ``x`` (N, 1, 28, 28) once and keep each unit layer's strongest
    activations (the output of the activation after a Dense or Conv2D layer, else the layer's
    own).  About a second for ``cnn`` on the 4,000 bundled training digits."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x must be (N, 1, 28, 28) with N = len(y) > 0, got {x.shape} and "
                         f"{y.shape}")
    layers = T.unit_layers(model)
    best: dict[int, list] = {i: [] for i in layers}
    where: dict[int, list] = {i: [] for i in layers}
    for s in range(0, len(x), batch_size):
        tr = model.forward(x[s:s + batch_size].astype(model.dtype), trace=True)
        for i in layers:
            a = np.asarray(tr.layers[T.unit_output(model, i)].output)
            if a.ndim == 4:
                flat = a.reshape(a.shape[0], a.shape[1], -1)  # (n, C, H_out*W_out)
                where[i].append(flat.argmax(axis=2).astype(np.int32))
                best[i].append(flat.max(axis=2).astype(np.float32))
            else:
                best[i].append(a.astype(np.float32))  # (n, U)
    return FilterAtlas(x, y, {i: np.concatenate(v) for i, v in best.items()},
                       {i: np.concatenate(v) for i, v in where.items() if v})


@dataclass
class Patch:
    """One training digit's window that excites a unit strongly."""

    index: int
    label: int
    activation: float
    position: tuple[int, int] | None  # (i, j) in the unit's map; None for a Dense unit
    window: tuple[int, int, int, int]  # (top, left, bottom, right) in the 28×28 digit
    pixels: np.ndarray  # the window's pixels (zeros outside the image)
    digit: np.ndarray | None = None  # the whole digit (28, 28), to show where the window is

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "activation": num(self.activation),
                "position": list(self.position) if self.position is not None else None,
                "window": list(self.window), "pixels": image_list(self.pixels),
                "digit": image_list(self.digit)}


def top_patches(model: Sequential, atlas: FilterAtlas, layer: int, unit: int,
                k: int = TOP_PATCHES) -> list[Patch]:
    """The ``k`` training digits on which unit ``unit`` of layer ``layer`` fires most, each cropped
    to the receptive field of the position where it fired most (one patch per digit)."""
    acts = atlas.best[layer][:, unit]  # (N,)
    order = np.argsort(-acts, kind="stable")[:k]
    rf = receptive_field(model, layer)
    shape = model.shapes[layer]
    out = []
    for n in order:
        img = np.asarray(atlas.x[n, 0], dtype=np.float64)
        if layer in atlas.where:
            i, j = divmod(int(atlas.where[layer][n, unit]), int(shape[2]))
            win = rf.window(i, j)
            out.append(Patch(int(n), int(atlas.y[n]), float(acts[n]), (i, j), win, crop(img, win),
                             img))
        else:
            out.append(Patch(int(n), int(atlas.y[n]), float(acts[n]), None,
                             (0, 0) + img.shape, img))
    return out


# --------------------------------------------------------------------------- synthetic strokes
def _ink(d: np.ndarray, width: float) -> np.ndarray:
    """A pen of ``width`` pixels with a one-pixel soft edge: 1 on the stroke, 0 beyond it."""
    return np.clip(width / 2.0 + 0.5 - d, 0.0, 1.0)


def stroke_image(kind: str, angle: float, *, centre=(14.0, 14.0), length: float = 40.0,
                 radius: float = 4.0, shift: float = 0.0, width: float = STROKE_WIDTH,
                 size: int = 28) -> np.ndarray:
    """A white stroke on black, ``(size, size)`` in [0, 1].

    Parameters
    ----------
    kind : ``"line"`` (a segment of ``length`` through ``centre`` at ``angle`` degrees, 0 =
        horizontal, counter-clockwise) or ``"arc"`` (half a circle of ``radius`` that opens
        towards ``angle``: 0 right, 90 up, 180 left, 270 down; the half circle's middle sits
        near ``centre``).
    shift : pixels the stroke is moved across itself (a line along its normal, an arc along the
        direction it opens to).
    """
    a = np.deg2rad(angle)
    r, c = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5  # pixel centres (row, column)
    if kind == "line":
        u = np.array([-np.sin(a), np.cos(a)])  # direction (row, column): rows grow downwards
        nrm = np.array([np.cos(a), np.sin(a)])  # its normal
        p0 = np.asarray(centre, dtype=np.float64) + shift * nrm
        dr, dc = r - p0[0], c - p0[1]
        t = np.clip(dr * u[0] + dc * u[1], -length / 2.0, length / 2.0)
        d = np.hypot(dr - t * u[0], dc - t * u[1])  # distance to the segment
    elif kind == "arc":
        opening = np.array([-np.sin(a), np.cos(a)])  # (row, column) towards the open side
        # the half circle's centre lies on the open side, so its curve bulges through ``centre``
        q = np.asarray(centre, dtype=np.float64) + (0.5 * radius + shift) * opening
        dr, dc = r - q[0], c - q[1]
        rho = np.hypot(dr, dc)
        on_arc = (dr * opening[0] + dc * opening[1]) <= 0  # the half away from the opening
        side = np.array([opening[1], -opening[0]]) * radius  # the two ends of the half circle
        ends = np.minimum(np.hypot(dr - side[0], dc - side[1]),
                          np.hypot(dr + side[0], dc + side[1]))
        d = np.where(on_arc, np.abs(rho - radius), ends)
    else:
        raise ValueError(f"kind must be 'line' or 'arc', got {kind!r}")
    return _ink(d, width)


def _probe_position(model: Sequential, layer: int) -> tuple[tuple[int, int] | None,
                                                            tuple[float, float]]:
    """The output position of layer ``layer`` whose window is centred nearest the image centre,
    and that window's centre (None and the image centre for a Dense layer)."""
    h, w = model.input_shape[-2:]
    shape = model.shapes[layer]
    if len(shape) != 3:
        return None, (h / 2.0, w / 2.0)
    rf = receptive_field(model, layer)
    ii, jj = np.mgrid[0:shape[1], 0:shape[2]]
    cr = rf.start[0] + ii * rf.jump[0] + rf.size[0] / 2.0
    cc = rf.start[1] + jj * rf.jump[1] + rf.size[1] / 2.0
    k = int(np.argmin((cr - h / 2.0) ** 2 + (cc - w / 2.0) ** 2))
    i, j = divmod(k, shape[2])
    return (int(i), int(j)), rf.centre(int(i), int(j))


@dataclass
class ResponseCurves:
    """A unit's weighted sum ``z`` for lines and arcs at every orientation (best shift kept)."""

    layer: int
    position: tuple[int, int] | None
    centre: tuple[float, float]
    radius: float
    shifts: np.ndarray  # (S,) the shifts tried, pixels
    line_angles: np.ndarray  # (A,)
    line: np.ndarray  # (U, A) best z over the shifts, per unit and angle
    line_shift: np.ndarray  # (U, A) the shift that gave it
    arc_openings: np.ndarray  # (B,)
    arc: np.ndarray  # (U, B)
    arc_shift: np.ndarray  # (U, B)

    def unit_dict(self, unit: int) -> dict[str, Any]:
        """One unit's curves, and its preferred line and arc, JSON-ready."""
        li, ai = int(np.argmax(self.line[unit])), int(np.argmax(self.arc[unit]))
        return {"position": list(self.position) if self.position is not None else None,
                "centre": [num(v) for v in self.centre], "radius": num(self.radius),
                "width": STROKE_WIDTH, "shifts": [num(s) for s in self.shifts],
                "line": {"angles": [int(a) for a in self.line_angles],
                         "z": [num(v) for v in self.line[unit]],
                         "shift": [num(v) for v in self.line_shift[unit]],
                         "best": int(self.line_angles[li])},
                "arc": {"openings": [int(a) for a in self.arc_openings],
                        "z": [num(v) for v in self.arc[unit]],
                        "shift": [num(v) for v in self.arc_shift[unit]],
                        "best": int(self.arc_openings[ai])}}


def stroke_set(kind: str, angles, shifts, centre, radius: float) -> np.ndarray:
    """``(len(angles) * len(shifts), 1, 28, 28)`` stroke images, angle-major."""
    return np.stack([stroke_image(kind, a, centre=centre, radius=radius, shift=s)
                     for a in angles for s in shifts])[:, None]


def response_curves(model: Sequential, layer: int, *, radius: float | None = None,
                    line_angles=LINE_ANGLES, arc_openings=ARC_OPENINGS) -> ResponseCurves:
    """Every unit of layer ``layer`` (a Dense or Conv2D layer) on synthetic lines and arcs.

    The engine runs the layers up to ``layer`` on each stroke image; the response is the unit's
    weighted sum ``z`` at the position nearest the image centre (:func:`_probe_position`), the
    strokes centred on that position's window.  Each orientation is tried at shifts of up to half
    the window (at most ±5 pixels) and the largest ``z`` is kept, with its shift.

    ``radius`` (pixels) defaults to 0.4 × the window side, between 2 and 6.
    Returns :class:`ResponseCurves` with arrays ``(units, orientations)``.
    """
    if model.layers[layer].type not in T.UNIT_TYPES:
        raise ValueError(f"layer {layer} ({model.layers[layer].type}) has no units")
    pos, centre = _probe_position(model, layer)
    side = receptive_field(model, layer).size[0]
    half = min(side // 2, 5)
    shifts = np.arange(-2 * half, 2 * half + 1) / 2.0  # half-pixel steps
    radius = float(np.clip(round(0.4 * side), 2, 6)) if radius is None else float(radius)
    out = {}
    for kind, angles in (("line", line_angles), ("arc", arc_openings)):
        X = stroke_set(kind, angles, shifts, centre, radius).astype(model.dtype)
        z = np.asarray(model.forward_range(X, 0, layer + 1), dtype=np.float64)
        z = z[:, :, pos[0], pos[1]] if pos is not None else z  # (A*S, U)
        z = z.reshape(len(angles), len(shifts), -1)  # (A, S, U)
        k = z.argmax(axis=1)  # (A, U)
        out[kind] = (z.max(axis=1).T, shifts[k].T, np.asarray(angles))
    return ResponseCurves(layer, pos, centre, radius, shifts, out["line"][2], out["line"][0],
                          out["line"][1], out["arc"][2], out["arc"][0], out["arc"][1])


# ------------------------------------------------------------------------ hand-made kernels
def hand_kernel_model(size: int = 5, arc_size: int = 7) -> tuple[Sequential, list[str]]:
    """The hand-made kernels as one Conv2D layer of the engine (zero bias, "same" padding), so
    their response curves come from the same code as a learned filter's.  Smaller kernels sit in
    the middle of the largest one's grid (zeros around change no sum).  Returns the model and
    the kernels' names in filter order."""
    ks = hand_kernels(size, max(arc_size, size))
    k = max(K.shape[0] for K in ks.values())
    W = np.zeros((len(ks), 1, k, k))  # (C_out, C_in, kh, kw)
    for n, K in enumerate(ks.values()):
        o = (k - K.shape[0]) // 2
        W[n, 0, o:o + K.shape[0], o:o + K.shape[1]] = K
    m = Sequential([Conv2D(len(ks), k, padding=k // 2)], name="hand-made kernels",
                   rng=np.random.default_rng(0), dtype=np.float64)
    m.set_params({"0.W": W, "0.b": np.zeros(len(ks))})
    return m, list(ks)


def likeness(filt: np.ndarray, threshold: float = LIKE_THRESHOLD) -> dict[str, Any]:
    """How much a first-layer filter ``(kh, kw)`` resembles each hand-made kernel of its size.

    The cosine of the zero-mean filter and each (zero-mean, unit-length) hand kernel: 1 for the
    same pattern, −1 for its negative, near 0 for unrelated ones.  ``like`` names the closest
    kernel only when ``|cosine| >= threshold``, else it is None: a cosine of 0.3 is no likeness.
    """
    f = np.asarray(filt, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != f.shape[1] or f.shape[0] < 3:
        return {"threshold": threshold, "cosines": {}, "best": None, "cosine": None, "like": None}
    f = f - f.mean()
    nf = np.linalg.norm(f)
    ks = hand_kernels(f.shape[0])
    cos = {name: (float((f * K).sum() / nf) if nf > 0 else 0.0) for name, K in ks.items()}
    best = max(cos, key=lambda n: abs(cos[n]))
    return {"threshold": threshold, "cosines": {n: num(v) for n, v in cos.items()},
            "best": best, "cosine": num(cos[best]),
            "like": best if abs(cos[best]) >= threshold else None}


# ---------------------------------------------------------------------------- one filter's card
@functools.lru_cache(maxsize=1)
def hand_kernel_curves() -> list[dict[str, Any]]:
    """The hand-made kernels, each with its response curves (computed once: they never change)."""
    m, kernel_names = hand_kernel_model()
    curves = response_curves(m, 0)
    ks = hand_kernels(5, 7)
    return [{"name": n, "kernel": map_list(ks[n]), **curves.unit_dict(u)}
            for u, n in enumerate(kernel_names)]


class FilterCache:
    """Per model object: its :class:`FilterAtlas` and each layer's response curves, built on first
    use under a lock.  Keyed weakly by the model, so a retrained model (a new object) starts
    afresh and a dropped one frees its atlas."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._atlas: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._curves: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def atlas(self, model: Sequential, digits) -> FilterAtlas:
        """``digits``: a callable returning ``(x, y)``, called only when the atlas is built."""
        with self._lock:
            a = self._atlas.get(model)
            if a is None:
                a = self._atlas[model] = build_filter_atlas(model, *digits())
        return a

    def curves(self, model: Sequential, layer: int) -> ResponseCurves:
        with self._lock:
            per = self._curves.setdefault(model, {})
            if layer not in per:
                per[layer] = response_curves(model, layer)
            return per[layer]


def filter_detail(model: Sequential, layer: int, unit: int, *, atlas: FilterAtlas,
                  curves: ResponseCurves | None = None, name: str = "") -> dict[str, Any]:
    """What unit ``unit`` of layer ``layer`` (any Dense or Conv2D layer) looks for, JSON-ready.

    Returns
    -------
    dict
        ``model, layer, unit, layer_name, unit_name, kind ("conv" | "dense"),
        receptive_field {size, jump, start}, patches [Patch.to_dict()], curves
        (ResponseCurves.unit_dict), hand [the hand-made kernels with their curves],
        likeness (first-layer filters reading one map: :func:`likeness`; else None),
        like_threshold, sentences``.
    """
    from . import names as N
    from . import words
    from .unit_detail import check_unit

    check_unit(model, layer, unit, name)
    curves = curves if curves is not None else response_curves(model, layer)
    L = model.layers[layer]
    W = np.asarray(L.params["W"], dtype=np.float64)
    like = None
    if L.type == "conv2d" and W.shape[1] == 1 and T.input_is_pixels(model, layer):
        like = likeness(W[unit, 0])
    cd = curves.unit_dict(unit)
    rf = receptive_field(model, layer)
    unit_name = N.unit_name(model, layer, unit)
    return {
        "model": name, "layer": layer, "unit": unit, "layer_name": N.layer_name(model, layer),
        "unit_name": unit_name, "kind": "conv" if L.type == "conv2d" else "dense",
        "receptive_field": rf.to_dict(),
        "patches": [p.to_dict() for p in top_patches(model, atlas, layer, unit)],
        "curves": cd, "hand": hand_kernel_curves(), "likeness": like,
        "like_threshold": LIKE_THRESHOLD,
        "sentences": words.filter_looks(unit_name, L.type == "conv2d", rf.size, cd, like,
                                        LIKE_THRESHOLD),
    }


def on_digit(model: Sequential, layer: int, unit: int, image: np.ndarray, *,
             top: int = 6) -> dict[str, Any]:
    """Unit ``unit`` on one digit ``image`` (28, 28): its strongest activation, where, and the
    window of the digit it read there; and the ``top`` units of its layer that fire most on the
    digit (a filter's strength is the maximum of its map).  Activations after the activation
    function, from the engine's forward pass."""
    x = np.asarray(image, dtype=np.float64).reshape((1,) + model.input_shape)
    a = np.asarray(model.forward_range(x, 0, T.unit_output(model, layer) + 1),
                   dtype=np.float64)[0]  # (C, H, W) or (U,)
    strength = a.reshape(a.shape[0], -1).max(axis=1) if a.ndim == 3 else a  # (U,)
    order = np.argsort(-strength, kind="stable")[:top]
    out: dict[str, Any] = {"activation": num(strength[unit]), "position": None,
                           "window": None, "pixels": None,
                           "strongest": [{"unit": int(u), "activation": num(strength[u])}
                                         for u in order]}
    if a.ndim == 3:
        i, j = divmod(int(np.argmax(a[unit])), a.shape[2])
        win = receptive_field(model, layer).window(i, j)
        out.update(position=[i, j], window=list(win),
                   pixels=image_list(crop(x[0, 0], win)))
    return out
