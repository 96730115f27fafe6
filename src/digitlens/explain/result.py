"""The :class:`Explanation` of one digit, and the result objects it bundles (defined in
:mod:`digitlens.explain.parts`, importable from here too).

Plain data.  Everything the explain functions compute is returned as one of these small
dataclasses; each has ``to_dict()`` (plain JSON types only: lists, floats, ints, strings,
``None``) and ``from_dict()``.  NumPy arrays are kept inside the objects and only turned into
nested lists by ``to_dict()``, rounded so the JSON stays compact:

- maps (attributions, templates, gradients) keep 4 significant digits per value;
- images in [0, 1] (the digit, the counterfactual) keep 3 decimals; the training digits an
  explanation refers to are 8-bit PNG data URLs (exact: they are 8-bit);
- scalars keep 6 significant digits.

The rounding is idempotent, so ``Explanation.from_dict(e.to_dict()).to_dict() == e.to_dict()``.
Figures and HTML of an explanation are drawn by :mod:`digitlens.view.figures.explanation`.

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
      "ood": null | OODScore,                    # "I don't know": how unlike the training digits
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
                      "margin": float,      # logit_b - best other logit after the edit
                                            # (> 0: flipped)
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
    OODScore = {"score": float, "threshold": float, "flagged": bool,  # score > threshold
                "knn_distance", "knn_p", "shape_distance", "shape_p", "percentile",
                "test_flagged", "k", "sentence"}     # see digitlens.explain.ood
    Nearest = {"layer": 4, "metric": "euclidean", "space": "hidden" | "pixels",
               "examples": [{"index": 17, "label": 9, "distance": float}],
               "contrast_examples": [...same, of class b...]}

The binary (one sigmoid output) model is explained through the two logits ``[-z/2, z/2]``, whose
softmax is exactly ``[1 - sigmoid(z), sigmoid(z)]``; the gap between them is the log-odds ``z``.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.jsonsafe import arr, image_list, map_list, num, sig  # noqa: F401  (re-exported)
from .ood import OODScore
from .parts import (Attribution, Contrast, Counterfactual, KernelResponse, LayerStep, Nearest,
                    Neighbour, TraceReport, UnitContrast, UnitReport, UnitTerm, UnitView)

FORMAT_VERSION = 1


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
        if isinstance(img, str):  # a PNG data URL, read by the guarded decoder (size limits)
            from ..data.images import gray_from_data_url

            img = gray_from_data_url(img)
        return cls(d["index"], d["label"], arr(img))


@functools.lru_cache(maxsize=8192)
def _digit_png(pixels: bytes, h: int, w: int) -> str:
    """A (h, w) uint8 image's bytes as a PNG data URL (cached: the same training digits come back
    in explanation after explanation)."""
    from .._util.png import gray_png_url

    return gray_png_url(np.frombuffer(pixels, dtype=np.uint8).reshape(h, w))


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
    ood: OODScore | None = None  # how unlike the training digits (explain/ood.py)
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
            "counterfactual": (None if self.counterfactual is None
                               else self.counterfactual.to_dict()),
            "units": None if self.units is None else self.units.to_dict(),
            "nearest": None if self.nearest is None else self.nearest.to_dict(),
            "ood": None if self.ood is None else self.ood.to_dict(),
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
            ood=opt("ood", OODScore),
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

    def _repr_html_(self) -> str:
        """Jupyter: the digit the network read, its probabilities and the summary sentences (the
        full figure: :func:`digitlens.view.figures.explanation.explanation_html`)."""
        from .._util.png import png_data_url

        p = np.asarray(self.probabilities, dtype=np.float64)
        cells = "".join(f"<td style='text-align:center'>{int(c)}<br>{float(v):.0%}</td>"
                        for c, v in zip(self.classes, p))
        items = "".join(f"<li>{html.escape(s)}</li>" for s in self.sentences)
        return (f"<div><p><b>{html.escape(self.model)}</b> reads "
                f"<b>{int(self.prediction)}</b> ({float(np.max(p)):.1%})</p>"
                f"<img src='{png_data_url(self.image)}' alt='the digit the network read' "
                f"style='width:112px;height:112px;image-rendering:pixelated'/>"
                f"<table><tr>{cells}</tr></table><ul>{items}</ul></div>")

    def __repr__(self) -> str:
        methods = ", ".join(self.attributions)
        return (f"Explanation(model={self.model!r}, prediction={self.prediction}, "
                f"p={float(np.max(self.probabilities)):.3f}, runner_up={self.runner_up}, "
                f"attributions=[{methods}])")


__all__ = ["Attribution", "LayerStep", "TraceReport", "UnitTerm", "UnitContrast", "Contrast",
           "Counterfactual", "UnitView", "KernelResponse", "UnitReport", "Neighbour", "Nearest",
           "Example", "Explanation", "FORMAT_VERSION", "sig"]
