"""The :class:`Explanation` of one digit, and the result objects it bundles.

Everything the explain functions compute is returned as one of the small dataclasses below; each
has ``to_dict()`` (plain JSON types only: lists, floats, ints, strings, ``None``) and
``from_dict()``.  NumPy arrays are kept inside the objects and only turned into nested lists by
``to_dict()``, rounded so the JSON stays compact:

- maps (attributions, templates, gradients) keep 4 significant digits per value;
- images in [0, 1] (the digit, the counterfactual) keep 3 decimals; the training digits an
  explanation refers to are 8-bit PNG data URLs (exact: they are 8-bit);
- scalars keep 6 significant digits.

The rounding is idempotent, so ``Explanation.from_dict(e.to_dict()).to_dict() == e.to_dict()``.

JSON shape of ``Explanation.to_dict()`` (version 1; fields are only ever *added*)::

    {
      "version": 1,
      "model": "mlp",                       # model name
      "model_description": "...",           # the zoo's sentence
      "classes": [0, 1, ..., 9],            # label of each output
      "output_function": "softmax",         # or "sigmoid" / "identity"
      "prediction": 9,                      # the answer (a label)
      "runner_up": 4,                       # second most likely label
      "probabilities": [10 floats],         # per class, after the output function
      "logits": [10 floats],                # per class (binary model: [-z/2, z/2], see below)
      "image": 28x28,                       # what the network read, floats in [0, 1]
      "preprocessing": null | {...},        # Preprocessed.to_dict(): "image", "steps" (with PNGs)
      "trace": {                            # section 1: every layer's numbers
        "layers": [{"index": 1, "name": "1:dense", "type": "dense", "describe": "...",
                    "input_shape": [784], "output_shape": [256],
                    "params": {"W": {"shape": [784, 256], "min", "max", "mean", "std"}, ...},
                    "stats": {"min", "max", "mean", "fraction_zero"},
                    "values": [floats] | null}, ...],   # flat output; null when > 2048 numbers
        "softmax": {"logits": [...], "shifted": [...],   # z - max(z)
                    "exp": [...], "sum_exp": float, "probabilities": [...]} | null,
        "sentences": ["..."]
      },
      "attributions": {                     # section 2: method -> class label (string) -> map
        "saliency": {"9": Attribution, "4": Attribution}, "gradient_x_input": {...},
        "integrated_gradients": {...}, "occlusion": {...}
      },
      "contrast": null | {                  # section 3: why A and not B
        "a": 9, "b": 4, "logit_a", "logit_b", "gap",             # gap = logit_a - logit_b
        "pixels": Attribution,              # integrated gradients of the gap (target [a, b])
        "units": null | {                   # exact split of the gap over the last hidden layer
            "layer": 4, "kind": "hidden" | "pixels", "n_units": 128,
            "bias_term": float,             # b_a - b_b
            "contributions": [n_units floats],   # (W_ja - W_jb) * h_j, sum + bias_term == gap
            "sum_check": float,             # sum(contributions) + bias_term - gap (rounding only)
            "for_a": [UnitTerm], "for_b": [UnitTerm]   # the strongest units each way
        },
        "sentences": ["..."]
      },
      "counterfactual": null | Counterfactual,   # section 4
      "units": null | UnitReport,                # section 5
      "nearest": null | Nearest,                 # section 6
      "examples": [{"index": 17, "label": 9, "image": "data:image/png;base64,..."}],  # 28x28
      "sentences": ["..."],                 # the plain-words summary the CLI prints
      "timings_ms": {"preprocess": 4.1, "trace": 0.4, ..., "total": 9.0}
    }

    Attribution = {"method": "integrated_gradients", "target": 9 | [9, 4], "map": 28x28,
                   "total": float,          # sum of the map
                   "meta": {...}}           # the method's settings and own error report:
        # saliency {"score"}; gradient_x_input {"score", "sum", "exact", and for a linear model
        #   "bias" and "note" (the plain-words statement that it is each pixel's exact term)};
        # integrated_gradients {"baseline", "n_steps" (used), "n_steps_requested", "evaluations",
        #   "rule", "f_x", "f_baseline", "delta" (Σ map − (f_x − f_baseline)),
        #   "relative_delta" (|delta| / |f_x − f_baseline|, null if x == baseline)};
        # occlusion {"patch", "stride", "baseline", "n_windows", "n_evaluated", "score",
        #   "largest_drop"}
    UnitTerm = {"unit": 12, "name": "unit 12" | "map 5 at row 2, col 3",
                "h": float, "weight_diff": float, "contribution": float,
                "template": 28x28, "template_kind": "weights" | "input_gradient",
                "where": "likes ink at the top, ...",   # a short reading of where it looks
                "top_examples": [training indices],     # may be empty
                "prototype": 28x28 | null}  # mean of its most exciting training digits
    Counterfactual = {"found": bool, "a": 9, "b": 4, "n_changed": int, "ink_added": float,
                      "ink_removed": float, "delta": 28x28,     # new image - old image
                      "image": 28x28, "probabilities": [...], "prediction": int,
                      "margin": float,      # logit_b - best other logit after the edit (> 0: flipped)
                      "max_pixels": int, "radius": int, "sentence": "..."}
    UnitReport = {"layer": 1, "kind": "dense" | "conv",
                  "units": [{"unit": 3, "activation": float, "template": 28x28 | kh x kw,
                             "feature_map": null | H x W, "top_examples": [indices],
                             "top_activations": [floats], "similar_kernel": null | str,
                             "similarity": null | float, "where": "..."}],
                  "hand_kernels": [{"name": "vertical edge", "kernel": k x k,
                                    "response": 28x28}],
                  "sentences": ["..."],
                  "is_output": false}      # true: the first layer is the output (logistic)
    Nearest = {"layer": 4, "metric": "euclidean", "space": "hidden" | "pixels",
               "examples": [{"index": 17, "label": 9, "distance": float}],
               "contrast_examples": [...same, of class b...]}

The binary (one sigmoid output) model is explained through the two logits ``[-z/2, z/2]``, whose
softmax is exactly ``[1 - sigmoid(z), sigmoid(z)]``; the gap between them is the log-odds ``z``.
"""

from __future__ import annotations

import base64
import functools
import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.jsonsafe import arr, clean_meta, image_list, map_list, num, sig  # noqa: F401  (re-exported)

FORMAT_VERSION = 1


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
        return {"method": self.method, "target": _target_to_json(self.target),
                "map": m.tolist(), "total": num(m.sum()), "meta": clean_meta(self.meta)}

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

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "name": self.name or f"unit {self.unit}", "h": num(self.h),
                "weight_diff": num(self.weight_diff), "contribution": num(self.contribution),
                "template": map_list(self.template), "template_kind": self.template_kind,
                "where": self.where, "top_examples": [int(i) for i in self.top_examples],
                "prototype": image_list(self.prototype)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UnitTerm":
        return cls(d["unit"], d["h"], d["weight_diff"], d["contribution"], arr(d["template"]),
                   d["template_kind"], d.get("where", ""), list(d.get("top_examples", [])),
                   d.get("name", ""), arr(d.get("prototype")))


@dataclass
class UnitContrast:
    """The exact split of ``logit_a - logit_b`` over the inputs ``h`` of the final Dense layer."""

    layer: int
    kind: str  # "hidden" (units of the last hidden layer) or "pixels" (a model with no hidden layer)
    bias_term: float
    contributions: np.ndarray  # (n_units,)
    gap: float
    for_a: list[UnitTerm]
    for_b: list[UnitTerm]

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
                "for_b": [t.to_dict() for t in self.for_b]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UnitContrast":
        return cls(d["layer"], d["kind"], d["bias_term"], arr(d["contributions"]), d["gap"],
                   [UnitTerm.from_dict(t) for t in d["for_a"]],
                   [UnitTerm.from_dict(t) for t in d["for_b"]])


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

    @property
    def gap(self) -> float:
        return float(self.logit_a - self.logit_b)

    def to_dict(self) -> dict[str, Any]:
        la, lb = num(self.logit_a), num(self.logit_b)
        return {"a": int(self.a), "b": int(self.b), "logit_a": la, "logit_b": lb,
                "gap": num(la - lb),
                "pixels": None if self.pixels is None else self.pixels.to_dict(),
                "units": None if self.units is None else self.units.to_dict(),
                "sentences": list(self.sentences)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Contrast":
        return cls(d["a"], d["b"], d["logit_a"], d["logit_b"],
                   None if d["pixels"] is None else Attribution.from_dict(d["pixels"]),
                   None if d["units"] is None else UnitContrast.from_dict(d["units"]),
                   list(d["sentences"]))


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
                "sentence": self.sentence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Counterfactual":
        return cls(d["found"], d["a"], d["b"], arr(d["delta"]), arr(d["image"]),
                   arr(d["probabilities"]), d["prediction"], d["margin"], d["max_pixels"],
                   d["radius"], d.get("sentence", ""))


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
    similar_kernel: str | None = None
    similarity: float | None = None
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"unit": int(self.unit), "activation": num(self.activation),
                "template": map_list(self.template), "feature_map": map_list(self.feature_map),
                "top_examples": [int(i) for i in self.top_examples],
                "top_activations": [num(v) for v in self.top_activations],
                "similar_kernel": self.similar_kernel, "similarity": num(self.similarity),
                "where": self.where}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UnitView":
        return cls(d["unit"], d["activation"], arr(d["template"]), arr(d["feature_map"]),
                   list(d["top_examples"]), list(d["top_activations"]), d["similar_kernel"],
                   d["similarity"], d.get("where", ""))


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
    is_output: bool = False  # True when the first layer is the output layer (logistic): unit = digit

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


@dataclass
class Example:
    """A bundled training digit an explanation refers to.

    In JSON its image is an 8-bit grayscale PNG data URL: the training digits are 8-bit (MNIST
    stores 0..255), so this is exact, and about 500 bytes instead of ~4 kB of numbers (a full
    explanation refers to some 80 of them)."""

    index: int
    label: int
    image: np.ndarray  # (28, 28) in [0, 1]

    def to_dict(self) -> dict[str, Any]:
        u8 = np.rint(np.clip(np.asarray(self.image, dtype=np.float64), 0, 1) * 255)
        return {"index": int(self.index), "label": int(self.label),
                "image": _digit_png(u8.astype(np.uint8).tobytes(), *np.shape(self.image))}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Example":
        img = d["image"]
        if isinstance(img, str):
            img = _png_url_pixels(img)
        return cls(d["index"], d["label"], arr(img))


@functools.lru_cache(maxsize=8192)
def _digit_png(pixels: bytes, h: int, w: int) -> str:
    """A (h, w) uint8 image's bytes as a PNG data URL (cached: the same training digits come back
    in explanation after explanation)."""
    from .._util.png import gray_png_url

    return gray_png_url(np.frombuffer(pixels, dtype=np.uint8).reshape(h, w))


def _png_url_pixels(url: str) -> np.ndarray:
    """The gray levels in [0, 1] of a PNG data URL, decoded with the pre-processing's guarded
    reader (size limits, truncation)."""
    from ..data.images import load_gray

    head, _, data = url.partition(",")
    if head != "data:image/png;base64":
        raise ValueError(f"an example image must be a PNG data URL, got {head[:40]!r}")
    return load_gray(base64.b64decode(data, validate=True))[0]


# --------------------------------------------------------------------------------- explanation
@dataclass
class Explanation:
    """Everything digitlens can say about one digit and one model (see the module docstring for
    the JSON shape of :meth:`to_dict`).

    ``attributions[method][label]`` is an :class:`Attribution` for that class's logit.
    """

    model: str
    classes: list[int]
    prediction: int
    runner_up: int
    probabilities: np.ndarray
    logits: np.ndarray
    image: np.ndarray
    output_function: str = "softmax"
    model_description: str = ""
    preprocessing: Any = None  # Preprocessed (or its to_dict() after a JSON round trip)
    trace: TraceReport | None = None
    attributions: dict[str, dict[int, Attribution]] = field(default_factory=dict)
    contrast: Contrast | None = None
    counterfactual: Counterfactual | None = None
    units: UnitReport | None = None
    nearest: Nearest | None = None
    examples: dict[int, Example] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    # -------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (``json.dumps`` works on the result)."""
        return {
            "version": self.version,
            "model": self.model,
            "model_description": self.model_description,
            "classes": [int(c) for c in self.classes],
            "output_function": self.output_function,
            "prediction": int(self.prediction),
            "runner_up": int(self.runner_up),
            "probabilities": map_list(self.probabilities, 6),
            "logits": map_list(self.logits, 6),
            "image": image_list(self.image),
            "preprocessing": self.preprocessing_dict(),
            "trace": None if self.trace is None else self.trace.to_dict(),
            "attributions": {m: {str(c): a.to_dict() for c, a in per.items()}
                             for m, per in self.attributions.items()},
            "contrast": None if self.contrast is None else self.contrast.to_dict(),
            "counterfactual": None if self.counterfactual is None else self.counterfactual.to_dict(),
            "units": None if self.units is None else self.units.to_dict(),
            "nearest": None if self.nearest is None else self.nearest.to_dict(),
            "examples": [e.to_dict() for _, e in sorted(self.examples.items())],
            "sentences": list(self.sentences),
            "timings_ms": {k: num(v, 4) for k, v in self.timings_ms.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Explanation":
        """Rebuild from :meth:`to_dict` output (e.g. after ``json.loads``)."""
        version = d.get("version")
        if version != FORMAT_VERSION:
            raise ValueError(f"explanation version must be {FORMAT_VERSION}, got {version!r}")

        def opt(key, kind):
            return None if d.get(key) is None else kind.from_dict(d[key])

        return cls(
            model=d["model"], classes=list(d["classes"]), prediction=d["prediction"],
            runner_up=d["runner_up"], probabilities=arr(d["probabilities"]),
            logits=arr(d["logits"]), image=arr(d["image"]),
            output_function=d["output_function"], model_description=d["model_description"],
            preprocessing=d.get("preprocessing"),
            trace=opt("trace", TraceReport),
            attributions={m: {int(c): Attribution.from_dict(a) for c, a in per.items()}
                          for m, per in d["attributions"].items()},
            contrast=opt("contrast", Contrast),
            counterfactual=opt("counterfactual", Counterfactual),
            units=opt("units", UnitReport), nearest=opt("nearest", Nearest),
            examples={e["index"]: Example.from_dict(e) for e in d.get("examples", [])},
            sentences=list(d.get("sentences", [])),
            timings_ms=dict(d.get("timings_ms", {})), version=version,
        )

    def preprocessing_dict(self) -> dict[str, Any] | None:
        """The pre-processing steps as JSON (``Preprocessed.to_dict()`` without its ``image``:
        the explanation's own ``image`` is that grid), or ``None``."""
        pre = self.preprocessing
        return pre.to_dict(grid=False) if hasattr(pre, "to_dict") else pre

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text (written by orjson, in C: an explanation holds
        thousands of numbers)."""
        import orjson

        return orjson.dumps(self.to_dict()).decode("utf-8")

    # ---------------------------------------------------------------------------- display
    def summary(self) -> str:
        """The plain-words explanation, one sentence per line."""
        return "\n".join(self.sentences)

    def figure(self, **kwargs):
        """A matplotlib figure of the whole explanation (see :mod:`digitlens.view.figures`)."""
        from ..view.figures.explanation import explanation_figure

        return explanation_figure(self, **kwargs)

    def _repr_html_(self) -> str:
        """Jupyter: the summary sentences and the figure as an embedded PNG."""
        from ..view.figures.explanation import figure_png

        png = figure_png(self.figure())
        data = base64.b64encode(png).decode("ascii")
        items = "".join(f"<li>{html.escape(s)}</li>" for s in self.sentences)
        return (f"<div><p><b>{html.escape(self.model)}</b> reads "
                f"<b>{int(self.prediction)}</b> ({float(np.max(self.probabilities)):.1%})</p>"
                f"<ul>{items}</ul><img src='data:image/png;base64,{data}'/></div>")

    def __repr__(self) -> str:
        methods = ", ".join(self.attributions)
        return (f"Explanation(model={self.model!r}, prediction={self.prediction}, "
                f"p={float(np.max(self.probabilities)):.3f}, runner_up={self.runner_up}, "
                f"attributions=[{methods}])")


__all__ = ["Attribution", "LayerStep", "TraceReport", "UnitTerm", "UnitContrast", "Contrast",
           "Counterfactual", "UnitView", "KernelResponse", "UnitReport", "Neighbour", "Nearest",
           "Example", "Explanation", "FORMAT_VERSION", "sig"]
