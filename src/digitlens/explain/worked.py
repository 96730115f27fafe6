"""The worked sum: one unit's arithmetic for one image, every number the engine's own.

A unit computes ``z = Σᵢ wᵢ·xᵢ + b`` and then its activation ``a = g(z)``: logistic regression,
once per unit.  :func:`worked_sum` writes that out for any Dense unit or Conv2D filter of a model:

- a **Dense unit**: the inputs it reads (pixels, the units of the layer before, or the positions
  of the pooled maps), its weights, the products ``wᵢ·xᵢ`` sorted from the largest in size down,
  and the running total, which with the bias reaches the ``z`` the forward pass computed;
- a **Conv2D filter at position (r, c)**: the window it covers on each input map (zero padding
  outside the image), its kernel numbers, the products, each map's sum, and sum + bias = the
  value of its feature map at (r, c) that the forward pass computed;
- an **output unit**: the same, then the output function: softmax with ``e^(z − max z)``, the sum
  and the division (or the sigmoid of a one-output model).

``z`` and ``a`` reported are the engine's (from ``model.forward(x, trace=True)``); the products
and the running total are computed here from the engine's own input and weights, in float64.  The
tests check that the total equals the engine's ``z`` for every layer type of every zoo model.

:func:`worked_sum` also groups the products by the unit of the previous layer they come from —
a unit, a filter's map (summed over its positions), or a pixel — and keeps those that push the
sum up and down most: the unit's **connections** for this digit.  Each names the unit it comes
from (its layer and number, and for a filter the position in its feature map that delivered the
value), so a view can follow it backwards.

Notation: ``x`` the inputs the unit reads, ``w`` its weights, ``b`` its bias, ``z`` the sum, ``a``
the activation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.jsonsafe import map_list, num
from ..nn import topology as T
from . import names as N
from .attribution import as_input, class_logits
from .trace import softmax_steps
from .unit_detail import check_unit

#: connections listed in each direction (up, down)
TOP_CONNECTIONS = 5
#: significant digits of the numbers in :meth:`WorkedSum.to_dict`
DIGITS = 10


@dataclass
class Source:
    """Where an input of a unit comes from: ``layer`` is the index of the unit layer that made it
    (-1 for the image), ``unit`` its unit (filter) there (for the image: the pixel's flat index),
    ``at`` the position in that unit's map (a filter's feature map, or the pixel's row and column),
    or None for a Dense unit."""

    layer: int
    unit: int
    at: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "unit": self.unit,
                "at": None if self.at is None else [int(v) for v in self.at]}


@dataclass
class Connection:
    """One unit of the previous layer and the part of the sum it delivers (Σ w·x over its
    inputs: for a filter's map, over every position the unit reads)."""

    source: Source
    name: str
    value: float
    n_terms: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.source.to_dict(), "name": self.name, "value": num(self.value, DIGITS),
                "n_terms": self.n_terms}


@dataclass
class WorkedSum:
    """One unit's sum for one image (see the module docstring).

    Arrays are over the *terms*: the inputs whose product ``w·x`` is not zero, sorted by
    ``|w·x|``, largest first.  ``running[k]`` is the sum of the first ``k + 1`` products, and
    ``total = running[-1] + bias``.
    """

    model: str
    layer: int
    unit: int
    kind: str                     # "dense" | "conv"
    layer_name: str
    unit_name: str
    reads: str                    # what its inputs are: "pixels", a layer's name
    n_inputs: int
    labels: list[str]             # (T,) each term's input, in words
    sources: list[Source]         # (T,) each term's source unit
    x: np.ndarray                 # (T,) the inputs
    w: np.ndarray                 # (T,) the weights
    products: np.ndarray          # (T,) w·x
    running: np.ndarray           # (T,) the running total
    bias: float
    total: float                  # running[-1] + bias (computed here)
    z: float                      # the engine's z
    activation: str | None        # "relu", ... (None: none follows)
    a: float                      # the engine's activation (z itself without one)
    up: list[Connection] = field(default_factory=list)
    down: list[Connection] = field(default_factory=list)
    conv: dict[str, Any] | None = None    # the window, kernel, maps (see _conv_part)
    output: dict[str, Any] | None = None  # the output function (see _output_part)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; numbers to :data:`DIGITS` significant digits."""
        d = lambda v: num(float(v), DIGITS)  # noqa: E731
        out = {"model": self.model, "layer": self.layer, "unit": self.unit, "kind": self.kind,
               "layer_name": self.layer_name, "unit_name": self.unit_name, "reads": self.reads,
               "n_inputs": self.n_inputs, "n_zero": self.n_inputs - len(self.labels),
               "terms": [{"label": lab, "x": d(x), "w": d(w), "product": d(p), "running": d(r),
                          "source": s.to_dict()}
                         for lab, x, w, p, r, s in zip(self.labels, self.x, self.w,
                                                       self.products, self.running,
                                                       self.sources)],
               "bias": d(self.bias), "total": d(self.total), "z": d(self.z),
               "activation": self.activation, "a": d(self.a),
               "up": [c.to_dict() for c in self.up], "down": [c.to_dict() for c in self.down],
               "conv": None, "output": None}
        if self.conv is not None:
            c = self.conv
            out["conv"] = {
                "at": list(c["at"]), "rows": list(c["rows"]), "cols": list(c["cols"]),
                "stride": list(c["stride"]), "padding": list(c["padding"]),
                "window": map_list(c["window"], DIGITS), "kernel": map_list(c["kernel"], DIGITS),
                "products": map_list(c["products"], DIGITS),
                "map_sums": map_list(c["map_sums"], DIGITS),
                "map_names": c["map_names"],
                "input_maps": map_list(c.get("input_maps"), DIGITS),
                "feature_map": map_list(c.get("feature_map"), DIGITS),
                "activation_map": map_list(c.get("activation_map"), DIGITS)}
        if self.output is not None:
            o = self.output
            out["output"] = {"function": o["function"], "classes": o["classes"],
                             "index": o["index"],
                             **{k: map_list(np.asarray(o[k]), DIGITS) if np.ndim(o[k]) else d(o[k])
                                for k in ("logits", "shifted", "exp", "sum_exp",
                                          "probabilities") if k in o},
                             "engine_probabilities": map_list(o["engine_probabilities"], DIGITS)}
        return out


# --------------------------------------------------------------------------- where inputs come from
@dataclass
class _Inputs:
    """How to name the inputs of a unit layer and find the units they come from."""

    reads: str
    label: Any          # flat input index -> words
    source: Any         # flat input index -> Source


def _conv_origin(model, tr, conv: int, c: int, r: int, q: int, via_pool: int | None):
    """The position in conv ``conv``'s feature map ``c`` behind position (r, q) of what the
    layer reads: through a max-pooling, the position of the window's largest value (the one
    the pooling passed on)."""
    if via_pool is None or model.layers[via_pool].type != "maxpool2d":
        return (r, q)
    pool = model.layers[via_pool]
    (sh, sw), (kh, kw) = pool.stride, pool.pool_size
    before = tr.layers[via_pool].input[0, c, r * sh:r * sh + kh, q * sw:q * sw + kw]
    i, j = np.unravel_index(int(np.argmax(before)), before.shape)
    return (r * sh + int(i), q * sw + int(j))


def _maps_inputs(model, tr, index: int, names) -> _Inputs | None:
    """Inputs that are positions on the maps of an earlier convolution (a conv reading pooled
    maps, or a Dense layer reading them flattened), else None."""
    blocks = [b for b in T.conv_blocks(model) if b.conv < index]
    if not blocks:
        return None
    b = blocks[-1]
    shape = model.shapes[index - 1] if model.layers[index].type == "conv2d" else \
        T.flattened_from(model, index)
    if shape is None or len(shape) != 3:
        return None
    C, H, W = shape
    conv_short = names[b.conv].short
    where = names[b.pool].short if b.pool is not None else names[b.activation or b.conv].short

    def label(i: int) -> str:
        c, r, q = np.unravel_index(i, (C, H, W))
        return f"map {c}, row {r}, column {q}"

    def source(i: int) -> Source:
        c, r, q = (int(v) for v in np.unravel_index(i, (C, H, W)))
        return Source(b.conv, c, _conv_origin(model, tr, b.conv, c, r, q, b.pool))

    return _Inputs(f"the maps of {where} (each map: one filter of {conv_short})", label, source)


def _inputs(model, tr, index: int) -> _Inputs:
    names = N.layer_names(model)
    layer = model.layers[index]
    if layer.type == "conv2d" and index == T.pixel_layer(model) or \
            layer.type == "dense" and T.input_is_pixels(model, index):
        _, H, W = model.input_shape

        def label(i: int) -> str:
            r, q = divmod(int(i), W)
            return f"pixel row {r}, column {q}"

        return _Inputs("the pixels of your digit", label,
                       lambda i: Source(-1, int(i), divmod(int(i), W)))
    maps = _maps_inputs(model, tr, index, names)
    if maps is not None:
        return maps
    prev = [i for i in T.unit_layers(model) if i < index][-1]
    return _Inputs(f"the units of {names[prev].short}",
                   lambda i: N.unit_name(model, prev, int(i)),
                   lambda i: Source(prev, int(i)))


# ------------------------------------------------------------------------------------ the sum
def _terms(flat_x: np.ndarray, flat_w: np.ndarray, flat_index: np.ndarray, inputs: _Inputs):
    """The non-zero products sorted by size, largest first, with their running total."""
    p = flat_x * flat_w
    keep = np.flatnonzero(p)
    order = keep[np.argsort(-np.abs(p[keep]), kind="stable")]
    running = np.cumsum(p[order])  # left to right, as the learner adds them
    idx = flat_index[order]
    return (order, flat_x[order], flat_w[order], p[order], running,
            [inputs.label(int(i)) for i in idx], [inputs.source(int(i)) for i in idx])


def _connections(sources: list[Source], products: np.ndarray, model, top: int):
    """The products grouped by source unit: the ``top`` groups pushing up most, and down most."""
    groups: dict[tuple[int, int], list] = {}
    for s, p in zip(sources, products):
        g = groups.setdefault((s.layer, s.unit), [0.0, 0, s, 0.0])
        g[0] += float(p)
        g[1] += 1
        if abs(p) > g[3]:  # the position delivering the largest part names where to look
            g[2], g[3] = s, abs(float(p))

    def name(s: Source) -> str:
        if s.layer < 0:
            return f"pixel row {s.at[0]}, column {s.at[1]}"
        return N.unit_name(model, s.layer, s.unit)

    cons = [Connection(g[2], name(g[2]), g[0], g[1]) for g in groups.values()]
    up = sorted((c for c in cons if c.value > 0), key=lambda c: -c.value)[:top]
    down = sorted((c for c in cons if c.value < 0), key=lambda c: c.value)[:top]
    return up, down


def _output_part(model, tr, unit: int) -> dict[str, Any] | None:
    """The output function applied to every logit, with the engine's probabilities."""
    engine = np.asarray(model.output(tr.logits), dtype=np.float64)[0]
    z = class_logits(model, tr.logits)[0]
    base = {"classes": [int(c) for c in model.classes], "engine_probabilities": engine}
    if model.loss == "softmax_cross_entropy":
        return {"function": "softmax", "index": unit, **softmax_steps(z), **base}
    if model.loss == "sigmoid_binary_cross_entropy":
        zu = float(np.asarray(tr.logits, dtype=np.float64)[0, unit])
        e = np.exp(-np.array([zu]))  # sigmoid(z) = 1 / (1 + e^-z)
        return {"function": "sigmoid", "index": unit, "logits": np.array([zu]), "exp": e,
                "probabilities": 1.0 / (1.0 + e), **base}
    return {"function": "identity", "index": unit, "logits": z, **base}


def _conv_part(model, tr, layer: int, unit: int, at, inputs: _Inputs, maps: bool):
    """A filter at one position: the window on each input map, the kernel, the products."""
    L = model.layers[layer]
    x = np.asarray(tr.layers[layer].input[0], dtype=np.float64)      # (C_in, H, W)
    zmap = np.asarray(tr.layers[layer].output[0, unit], dtype=np.float64)  # (H_out, W_out)
    out_i = T.unit_output(model, layer)
    amap = np.asarray(tr.layers[out_i].output[0, unit], dtype=np.float64)
    if at is None:  # where the filter fires most on this digit
        at = np.unravel_index(int(np.argmax(amap if amap.max() > 0 else zmap)), zmap.shape)
    r, q = (int(v) for v in at)
    if not (0 <= r < zmap.shape[0] and 0 <= q < zmap.shape[1]):
        raise ValueError(f"at: the feature maps of {N.layer_name(model, layer)} have rows 0 to "
                         f"{zmap.shape[0] - 1} and columns 0 to {zmap.shape[1] - 1}, not "
                         f"({r}, {q})")
    (sh, sw), (ph, pw) = L.stride, L.padding
    kh, kw = L.kernel_size
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))  # zero padding, as the engine's conv
    window = xp[:, r * sh:r * sh + kh, q * sw:q * sw + kw]          # (C_in, kh, kw)
    kernel = np.asarray(L.params["W"][unit], dtype=np.float64)       # (C_in, kh, kw)
    # flat index of each window cell in the (C_in, H, W) input, or -1 for the padding
    C, H, W = x.shape
    rows = np.arange(r * sh - ph, r * sh - ph + kh)
    cols = np.arange(q * sw - pw, q * sw - pw + kw)
    inside = (rows[:, None] >= 0) & (rows[:, None] < H) & (cols[None] >= 0) & (cols[None] < W)
    flat = np.where(inside[None], np.arange(C)[:, None, None] * H * W
                    + np.clip(rows, 0, H - 1)[None, :, None] * W
                    + np.clip(cols, 0, W - 1)[None, None, :], -1)    # (C_in, kh, kw)
    ins = flat.ravel() >= 0  # the padding's products are 0·w: never terms
    terms = _terms(window.ravel()[ins], kernel.ravel()[ins], flat.ravel()[ins], inputs)
    names = N.layer_names(model)
    src = [b for b in T.conv_blocks(model) if b.conv < layer]
    map_names = [f"map {c}" + (f" (filter {c} of {names[src[-1].conv].short})" if src else
                               " (the image)") for c in range(C)]
    part = {"at": (r, q), "rows": (int(rows[0]), int(rows[-1])),
            "cols": (int(cols[0]), int(cols[-1])), "stride": (sh, sw), "padding": (ph, pw),
            "window": window, "kernel": kernel, "products": window * kernel,
            "map_sums": (window * kernel).sum(axis=(1, 2)), "map_names": map_names}
    if maps:
        part.update(input_maps=x, feature_map=zmap, activation_map=amap)
    return terms, part, float(zmap[r, q]), float(amap[r, q])


def worked_sum(model, x, layer: int, unit: int, *, at=None, maps: bool = True,
               top: int = TOP_CONNECTIONS, forward=None, name: str = "") -> WorkedSum:
    """Unit ``unit`` of layer ``layer`` worked out on image ``x``.

    Parameters
    ----------
    model : a :class:`~digitlens.nn.model.Sequential` (float64 for sums exact to ~1e-15).
    x : one image, ``(28, 28)`` or ``(1, 1, 28, 28)``.
    layer, unit : a Dense or Conv2D layer's index in ``model.layers`` and a unit (filter) of it
        (see :func:`digitlens.explain.names.parse_unit` for "conv2:7").
    at : for a filter, the position ``(row, column)`` in its feature map (default: where its
        activation is largest on this image).  Ignored for a Dense unit.
    maps : for a filter, also return its input maps ``(C_in, H, W)``, its feature map ``z`` and
        its activation map ``(H_out, W_out)`` (the engine's).
    top : how many connections to keep in each direction.
    forward : optional ``model.forward(x, trace=True)`` already run on this image.
    name : the model's name, for the result.

    Returns
    -------
    WorkedSum

    Raises
    ------
    UnknownUnitError, NotAUnitLayerError
        No such layer or unit, or a layer without units.
    ValueError
        ``at`` outside the feature map, or a bad image.

    Examples
    --------
    >>> import numpy as np
    >>> from digitlens.nn import build_model
    >>> m = build_model("lab", np.random.default_rng(0), dtype=np.float64)
    >>> w = worked_sum(m, np.random.default_rng(1).random((28, 28)), 3, 4)
    >>> bool(abs(w.total - w.z) < 1e-12), w.unit_name
    (True, 'unit 4 of hidden layer 2')
    """
    check_unit(model, layer, unit, name)
    X = as_input(model, x)
    tr = model.forward(X, trace=True) if forward is None else forward
    L = model.layers[layer]
    inputs = _inputs(model, tr, layer)
    out_i = T.unit_output(model, layer)
    act = T.activation_fn(model.layers[out_i]) if out_i != layer else None
    conv = None
    if L.type == "conv2d":
        terms, conv, z, a = _conv_part(model, tr, layer, unit, at, inputs, maps)
        kind = "conv"
    else:
        xin = np.asarray(tr.layers[layer].input[0], dtype=np.float64).ravel()   # (D_in,)
        w = np.asarray(L.params["W"][:, unit], dtype=np.float64)                # (D_in,)
        terms = _terms(xin, w, np.arange(xin.size), inputs)
        z = float(tr.layers[layer].output[0, unit])
        a = float(tr.layers[out_i].output[0, unit])
        kind = "dense"
    _, tx, tw, tp, running, labels, sources = terms
    b = float(L.params["b"][unit])
    up, down = _connections(sources, tp, model, top)
    names = N.layer_names(model)
    return WorkedSum(
        model=name or model.name, layer=layer, unit=unit, kind=kind,
        layer_name=names[layer].name, unit_name=N.unit_name(model, layer, unit),
        reads=inputs.reads, n_inputs=int(np.prod(tr.layers[layer].input.shape[1:])) if
        kind == "dense" else int(conv["window"].size),
        labels=labels, sources=sources, x=tx, w=tw, products=tp, running=running, bias=b,
        total=(float(running[-1]) if running.size else 0.0) + b, z=z, activation=act, a=a,
        up=up, down=down, conv=conv,
        output=_output_part(model, tr, unit) if layer == T.logit_layer(model) else None)


def feature_maps(model, x, *, forward=None) -> list[dict[str, Any]]:
    """Every convolution's feature maps on image ``x``, after its activation function (what the
    next layer reads, before pooling): one dict per Conv2D layer, ``{"layer", "name", "key",
    "maps": (C, H, W)}``, first to last.  Empty for a model without convolutions.  When a
    max-pooling follows, also ``"pool_layer"`` (its index) and ``"pooled": (C, H', W')``, the
    maps after pooling (what the next layer reads).

    The explanation's trace lists only layers of at most 2,048 numbers; a view that shows every
    filter's map of a deep convolution asks for them here.
    """
    X = as_input(model, x)
    tr = model.forward(X, trace=True) if forward is None else forward
    names = N.layer_names(model)
    out = []
    for b in T.conv_blocks(model):
        i = b.activation if b.activation is not None else b.conv
        d = {"layer": b.conv, "name": names[b.conv].name, "key": names[b.conv].key,
             "maps": np.asarray(tr.layers[i].output[0], dtype=np.float64)}
        if b.pool is not None and tr.layers[b.pool].output.ndim == 4:  # (1, C, H', W')
            d["pool_layer"] = b.pool
            d["pooled"] = np.asarray(tr.layers[b.pool].output[0], dtype=np.float64)
        out.append(d)
    return out
