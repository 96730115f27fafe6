"""The result objects an :class:`~digitlens.explain.result.Explanation` bundles: attribution
maps, the trace, the contrast, the counterfactual, the units and the nearest training digits.

Plain data: each is a small dataclass holding NumPy arrays, with ``to_dict()`` (plain JSON types
only, rounded as :mod:`digitlens.explain.result` describes) and ``from_dict()``.  The JSON shape of
each is documented in :mod:`digitlens.explain.result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.jsonsafe import arr, clean_meta, image_list, map_list, num, sig
from .scale import scale_dict


# ------------------------------------------------------------------------------------- rounding
def _target_to_json(target):
    if isinstance(target, (tuple, list)):
        return [int(t) for t in target]
    return int(target)


def _target_from_json(target):
    if isinstance(target, list):
        return tuple(int(t) for t in target)
    return int(target)


# ---------------------------------------------------------------------------------- attribution
@dataclass
class Attribution:
    """One attribution map.

    ``target`` is a class label, or a pair ``(a, b)`` for the gap ``logit_a - logit_b``.
    ``map`` is (28, 28): how much each pixel pushed the target's logit (units of logit).
    """

    method: str
    target: int | tuple[int, int]
    map: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(np.sum(self.map))

    def to_dict(self) -> dict[str, Any]:
        m = sig(self.map)  # "total" is the sum of the rounded map, so the JSON is self-consistent
        # "scale": where the colours saturate (explain.scale), from the rounded map as well
        return {"method": self.method, "target": _target_to_json(self.target),
                "map": m.tolist(), "total": num(m.sum()), "meta": clean_meta(self.meta),
                "scale": clean_meta(scale_dict(m))}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Attribution":
        return cls(d["method"], _target_from_json(d["target"]), arr(d["map"]), dict(d["meta"]))


# --------------------------------------------------------------------------------------- trace
@dataclass
class LayerStep:
    """One layer of the forward pass for one image."""

    index: int
    name: str
    type: str
    describe: str
    input_shape: list[int]
    output_shape: list[int]
    params: dict[str, dict[str, Any]]
    stats: dict[str, float]
    values: np.ndarray | None  # flat output, when small enough to show

    def to_dict(self, values: bool = True) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "type": self.type,
                "describe": self.describe, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape),
                "params": {k: clean_meta(v) for k, v in self.params.items()},
                "stats": clean_meta(self.stats),
                "values": map_list(self.values, 5) if values else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LayerStep":
        return cls(d["index"], d["name"], d["type"], d["describe"], list(d["input_shape"]),
                   list(d["output_shape"]), {k: dict(v) for k, v in d["params"].items()},
                   dict(d["stats"]), arr(d["values"]))


@dataclass
class TraceReport:
    """Every layer's numbers and the output function's steps."""

    layers: list[LayerStep]
    softmax: dict[str, Any] | None
    sentences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form.  A layer that passes its input through unchanged (flatten, dropout when
        predicting) has ``"values": null`` and ``"values_same_as": i``, the index of the layer
        whose values it repeats, instead of the same numbers again."""
        sm = None
        if self.softmax is not None:
            sm = {k: (map_list(v, 6) if isinstance(v, np.ndarray) else num(v))
                  for k, v in self.softmax.items()}
        layers, prev, source = [], None, None
        for s in self.layers:
            v = s.values
            if v is not None and prev is not None and prev.shape == v.shape and \
                    np.array_equal(prev, v):
                d = {**s.to_dict(values=False), "values_same_as": source}
            else:
                d, source = s.to_dict(), s.index
            prev = v
            layers.append(d)
        return {"layers": layers, "softmax": sm, "sentences": list(self.sentences)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TraceReport":
        sm = None
        if d["softmax"] is not None:
            sm = {k: (arr(v) if isinstance(v, list) else v) for k, v in d["softmax"].items()}
        values = {s["index"]: s["values"] for s in d["layers"]}
        layers = [LayerStep.from_dict(s if s.get("values_same_as") is None else
                                      {**s, "values": values[s["values_same_as"]]})
                  for s in d["layers"]]
        return cls(layers, sm, list(d["sentences"]))


# ------------------------------------------------------------------------------------ contrast
@dataclass
class UnitTerm:
    """One hidden unit's share of a logit gap: ``contribution = weight_diff * h``.

    ``template`` is the unit's pixel template (its weight image when it reads the pixels, else
    its input gradient at this image); ``prototype`` the mean of the training digits that excite
    it most (when an atlas was given); ``name`` says where a unit of a conv model sits.
    """

    unit: int
    h: float
    weight_diff: float
    contribution: float
    template: np.ndarray | None
    template_kind: str
    where: str = ""
    top_examples: list[int] = field(default_factory=list)
    name: str = ""
    prototype: np.ndarray | None = None
    # what the page opens when the unit is clicked: layer ``open_layer``'s unit (or filter)
    # ``open_unit``; for a position in a conv map, ``box`` = (r0, c0, r1, c1) the pixels it sees
    # and ``patches`` those pixels of its most exciting training digits
    open_layer: int | None = None
    open_unit: int | None = None
    box: tuple[int, int, int, int] | None = None
    patches: list[np.ndarray] = field(default_factory=list)
    sentence: str = ""  # what it looks for, from measurements (words.unit_reading)
    # the windows (r0, c0, r1, c1), inclusive, of its template where ink raises / lowers it most
    # (units.strongest_blobs), or None
    raises: tuple[int, int, int, int] | None = None
    lowers: tuple[int, int, int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        def box4(b):
            return None if b is None else [int(v) for v in b]

        return {"unit": self.unit, "name": self.name or f"unit {self.unit}", "h": num(self.h),
                "weight_diff": num(self.weight_diff), "contribution": num(self.contribution),
                "template": map_list(self.template), "template_kind": self.template_kind,
                "where": self.where, "top_examples": [int(i) for i in self.top_examples],
                "prototype": image_list(self.prototype), "open_layer": self.open_layer,
                "open_unit": self.open_unit,
                "box": None if self.box is None else [int(v) for v in self.box],
                "patches": [image_list(p) for p in self.patches], "sentence": self.sentence,
                "raises": box4(self.raises), "lowers": box4(self.lowers)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UnitTerm":
        box = d.get("box")
        up, down = d.get("raises"), d.get("lowers")
        return cls(d["unit"], d["h"], d["weight_diff"], d["contribution"], arr(d["template"]),
                   d["template_kind"], d.get("where", ""), list(d.get("top_examples", [])),
                   d.get("name", ""), arr(d.get("prototype")), d.get("open_layer"),
                   d.get("open_unit"), None if box is None else tuple(box),
                   [arr(p) for p in d.get("patches", [])], d.get("sentence", ""),
                   None if up is None else tuple(up), None if down is None else tuple(down))


@dataclass
class UnitContrast:
    """The exact split of ``logit_a - logit_b`` over the inputs ``h`` of the final Dense layer."""

    layer: int
    kind: str  # "hidden" (the last hidden layer's units) or "pixels" (a model with no hidden layer)
    bias_term: float
    contributions: np.ndarray  # (n_units,)
    gap: float
    for_a: list[UnitTerm]
    for_b: list[UnitTerm]
    # the last layer read as a logistic regression on its features (models with few features,
    # or none hidden): the largest rows {"name", "feature", "weight_diff", "product"} by
    # |product|, and the sum of the products left out
    table: list[dict[str, Any]] = field(default_factory=list)
    table_rest: float | None = None

    @property
    def n_units(self) -> int:
        return int(self.contributions.size)

    @property
    def sum_check(self) -> float:
        return float(self.contributions.sum() + self.bias_term - self.gap)

    def to_dict(self) -> dict[str, Any]:
        # derived numbers come from the rounded values, so a JSON round trip reproduces them
        contrib = sig(self.contributions, 6)
        bias, gap = num(self.bias_term), num(self.gap)
        return {"layer": self.layer, "kind": self.kind, "n_units": self.n_units,
                "bias_term": bias, "gap": gap, "contributions": contrib.tolist(),
                "sum_check": num(float(contrib.sum()) + bias - gap),
                "for_a": [t.to_dict() for t in self.for_a],
                "for_b": [t.to_dict() for t in self.for_b],
                "table": [clean_meta(r) for r in self.table],
                "table_rest": num(self.table_rest)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UnitContrast":
        return cls(d["layer"], d["kind"], d["bias_term"], arr(d["contributions"]), d["gap"],
                   [UnitTerm.from_dict(t) for t in d["for_a"]],
                   [UnitTerm.from_dict(t) for t in d["for_b"]],
                   [dict(r) for r in d.get("table", [])], d.get("table_rest"))


@dataclass
class Contrast:
    """Why the model says ``a`` and not ``b``."""

    a: int
    b: int
    logit_a: float
    logit_b: float
    pixels: Attribution | None
    units: UnitContrast | None
    sentences: list[str] = field(default_factory=list)
    # why b: "runner-up", "usual confusion" (the runner-up was below 5%) or "chosen" (by the
    # learner); suggestions: the digits most often confused with a on the test digits,
    # [(digit, times)] (explain.confusions)
    reason: str = "runner-up"
    suggestions: list[tuple[int, int]] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return float(self.logit_a - self.logit_b)

    def to_dict(self) -> dict[str, Any]:
        la, lb = num(self.logit_a), num(self.logit_b)
        return {"a": int(self.a), "b": int(self.b), "logit_a": la, "logit_b": lb,
                "gap": num(la - lb),
                "pixels": None if self.pixels is None else self.pixels.to_dict(),
                "units": None if self.units is None else self.units.to_dict(),
                "sentences": list(self.sentences), "reason": self.reason,
                "suggestions": [{"digit": int(d), "times": int(n)} for d, n in self.suggestions]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Contrast":
        return cls(d["a"], d["b"], d["logit_a"], d["logit_b"],
                   None if d["pixels"] is None else Attribution.from_dict(d["pixels"]),
                   None if d["units"] is None else UnitContrast.from_dict(d["units"]),
                   list(d["sentences"]), d.get("reason", "runner-up"),
                   [(s["digit"], s["times"]) for s in d.get("suggestions", [])])


@dataclass
class Counterfactual:
    """The smallest ink edit found that turns answer ``a`` into ``b`` (``found=False``: none)."""

    found: bool
    a: int
    b: int
    delta: np.ndarray  # (28, 28) new image - old image
    image: np.ndarray  # (28, 28) the edited image, in [0, 1]
    probabilities: np.ndarray
    prediction: int
    margin: float  # logit_b - max other logit on the edited image (> 0 means b wins)
    max_pixels: int
    radius: int
    sentence: str = ""
    # an edit a person could make (explain.plausible), and whether the smallest edit is one a
    # person would not even see (tiny, while the plausible one moves much more ink)
    plausible: "PlausibleEdit | None" = None
    looks_unchanged: bool = False
    note: str = ""

    @property
    def n_changed(self) -> int:
        return int(np.count_nonzero(self.delta))

    @property
    def ink_added(self) -> float:
        return float(self.delta[self.delta > 0].sum())

    @property
    def ink_removed(self) -> float:
        return float(-self.delta[self.delta < 0].sum())

    def to_dict(self) -> dict[str, Any]:
        delta = np.round(np.asarray(self.delta, dtype=np.float64), 3)  # what image_list keeps
        return {"found": bool(self.found), "a": int(self.a), "b": int(self.b),
                "n_changed": int(np.count_nonzero(delta)),
                "ink_added": num(delta[delta > 0].sum()),
                "ink_removed": num(-delta[delta < 0].sum()), "delta": delta.tolist(),
                "image": image_list(self.image),
                "probabilities": map_list(self.probabilities, 6),
                "prediction": int(self.prediction), "margin": num(self.margin),
                "max_pixels": int(self.max_pixels), "radius": int(self.radius),
                "sentence": self.sentence,
                "plausible": None if self.plausible is None else self.plausible.to_dict(),
                "looks_unchanged": bool(self.looks_unchanged), "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Counterfactual":
        pl = d.get("plausible")
        return cls(d["found"], d["a"], d["b"], arr(d["delta"]), arr(d["image"]),
                   arr(d["probabilities"]), d["prediction"], d["margin"], d["max_pixels"],
                   d["radius"], d.get("sentence", ""),
                   None if pl is None else PlausibleEdit.from_dict(pl),
                   bool(d.get("looks_unchanged", False)), d.get("note", ""))


@dataclass
class PlausibleEdit:
    """An edit a person could make that turns the answer into ``b``: whole pen strokes added or
    erased near the ink (``method="strokes"``), or the nearest training ``b`` blended in
    (``"morph"``, weight ``t``, training digit ``source``); ``"none"``: neither was tried."""

    method: str
    found: bool
    b: int
    delta: np.ndarray  # (28, 28) new image - old image
    image: np.ndarray  # (28, 28) the edited digit
    probabilities: np.ndarray
    prediction: int
    strokes: list[tuple] = field(default_factory=list)  # (r0, c0, r1, c1, erased)
    t: float | None = None
    source: int | None = None
    sentence: str = ""

    @property
    def ink(self) -> float:
        """The cost: ink moved, Σ |delta| (1 = one fully inked pixel)."""
        return float(np.abs(self.delta).sum())

    def to_dict(self) -> dict[str, Any]:
        delta = np.round(np.asarray(self.delta, dtype=np.float64), 3)  # what image_list keeps
        return {"method": self.method, "found": bool(self.found), "b": int(self.b),
                "delta": delta.tolist(), "image": image_list(self.image),
                "ink": num(np.abs(delta).sum()), "n_changed": int(np.count_nonzero(delta)),
                "probabilities": map_list(self.probabilities, 6),
                "prediction": int(self.prediction),
                "strokes": [[num(v, 4) for v in s[:4]] + [bool(s[4])] for s in self.strokes],
                "t": num(self.t), "source": self.source, "sentence": self.sentence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlausibleEdit":
        return cls(d["method"], d["found"], d["b"], arr(d["delta"]), arr(d["image"]),
                   arr(d["probabilities"]), d["prediction"], [tuple(s) for s in d["strokes"]],
                   d.get("t"), d.get("source"), d.get("sentence", ""))


# --------------------------------------------------------------------------------------- units
@dataclass
class UnitView:
    """What one first-layer unit (or conv filter) looks for, and how it responds to this image."""

    unit: int
    activation: float  # dense: the unit's activation; conv: the feature map's maximum
    template: np.ndarray  # dense: (28, 28) weight image; conv: (kh, kw) filter (input channel 0)
    feature_map: np.ndarray | None = None  # conv: (H, W) activation map for this image
    top_examples: list[int] = field(default_factory=list)
    top_activations: list[float] = field(default_factory=list)
    similar_kernel: str | None = None  # set only when |similarity| >= like_threshold
    similarity: float | None = None  # cosine with the closest hand kernel (signed)
    where: str = ""
    closest_kernel: str | None = None  # the closest hand kernel, however weak the likeness
    like_threshold: float | None = None  # "like" needs |similarity| at least this

    def to_dict(self) -> dict[str, Any]:
        return {"unit": int(self.unit), "activation": num(self.activation),
                "template": map_list(self.template), "feature_map": map_list(self.feature_map),
                "top_examples": [int(i) for i in self.top_examples],
                "top_activations": [num(v) for v in self.top_activations],
                "similar_kernel": self.similar_kernel, "similarity": num(self.similarity),
                "where": self.where, "closest_kernel": self.closest_kernel,
                "like_threshold": num(self.like_threshold)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UnitView":
        return cls(d["unit"], d["activation"], arr(d["template"]), arr(d["feature_map"]),
                   list(d["top_examples"]), list(d["top_activations"]), d["similar_kernel"],
                   d["similarity"], d.get("where", ""), d.get("closest_kernel"),
                   d.get("like_threshold"))


@dataclass
class KernelResponse:
    """A hand-designed kernel and its response on this image (same cross-correlation as Conv2D)."""

    name: str
    kernel: np.ndarray
    response: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kernel": map_list(self.kernel),
                "response": map_list(self.response)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "KernelResponse":
        return cls(d["name"], arr(d["kernel"]), arr(d["response"]))


@dataclass
class UnitReport:
    """The first layer's units (dense) or filters (conv) for this image."""

    layer: int
    kind: str  # "dense" or "conv"
    units: list[UnitView]
    hand_kernels: list[KernelResponse] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    is_output: bool = False  # True when the first layer is the output layer (logistic): unit=digit

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "kind": self.kind, "units": [u.to_dict() for u in self.units],
                "hand_kernels": [k.to_dict() for k in self.hand_kernels],
                "sentences": list(self.sentences), "is_output": bool(self.is_output)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UnitReport":
        return cls(d["layer"], d["kind"], [UnitView.from_dict(u) for u in d["units"]],
                   [KernelResponse.from_dict(k) for k in d["hand_kernels"]],
                   list(d["sentences"]), bool(d.get("is_output", False)))


@dataclass
class Neighbour:
    index: int  # index into the bundled training split (load_digits().x_train)
    label: int
    distance: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": int(self.index), "label": int(self.label), "distance": num(self.distance)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Neighbour":
        return cls(d["index"], d["label"], d["distance"])


@dataclass
class Nearest:
    """Training digits closest to this one in the last hidden layer's space."""

    layer: int
    metric: str
    examples: list[Neighbour]
    contrast_examples: list[Neighbour] = field(default_factory=list)
    space: str = "hidden"  # "hidden", or "pixels" for a model without a hidden layer

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "metric": self.metric, "space": self.space,
                "examples": [e.to_dict() for e in self.examples],
                "contrast_examples": [e.to_dict() for e in self.contrast_examples]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Nearest":
        return cls(d["layer"], d["metric"], [Neighbour.from_dict(e) for e in d["examples"]],
                   [Neighbour.from_dict(e) for e in d.get("contrast_examples", [])],
                   d.get("space", "hidden"))
