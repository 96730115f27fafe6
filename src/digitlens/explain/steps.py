"""The steps of one explanation, as :meth:`digitlens.recognizer.Recognizer.explain` runs them.

The recognizer owns the models (and their float64 and float32 copies) and the unit atlas; these
functions take them as arguments and do one step each: read off the answer, compute the
attribution maps, the contrast, and gather the training digits the explanation refers to.  Each
step is timed by a :class:`Clock` (the explanation's ``timings_ms``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..nn.model import Sequential
from . import attribution as A
from . import contrast as C
from . import words
from .result import Attribution, Contrast, Example, Explanation

#: the model's loss -> the output function an explanation names
OUTPUT_FUNCTIONS = {"softmax_cross_entropy": "softmax", "sigmoid_binary_cross_entropy": "sigmoid"}


class Clock:
    """Milliseconds per step of an explanation: ``with clock("trace"): ...``; ``timings``
    holds them, ``total()`` adds the time since the clock was made."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, key: str):
        t0 = time.perf_counter()
        yield
        self.timings[key] = (time.perf_counter() - t0) * 1e3

    def total(self) -> dict[str, float]:
        self.timings["total"] = (time.perf_counter() - self.start) * 1e3
        return self.timings


@dataclass
class Answer:
    """The model's answer for one image: its forward pass (a trace, or None), per-class logits
    ``z`` and probabilities ``p``, the labels, the prediction, the runner-up and the digit ``b``
    to contrast with."""

    forward: Any
    z: np.ndarray
    p: np.ndarray
    labels: list[int]
    pred: int
    runner: int
    b: int

    def p_of(self, label: int) -> float:
        return float(self.p[self.labels.index(label)])

    def z_of(self, label: int) -> float:
        return float(self.z[self.labels.index(label)])


def check_methods(methods) -> list[str]:
    """``methods`` as a list, each a key of :data:`~digitlens.explain.attribution.METHODS`."""
    methods = list(methods)
    for meth in methods:
        if meth not in A.METHODS:
            raise ValueError(f"methods must be among {sorted(A.METHODS)}, got {meth!r}")
    return methods


def answer(m: Sequential, x: np.ndarray, vs: int | None, trace: bool) -> Answer:
    """Run the model once on ``x`` ``(1, *input_shape)`` and read off the answer; check ``vs``
    (one of the model's classes, and not the answer)."""
    labels = list(m.classes)
    # with the trace on, its forward pass gives the logits too (the same one forward pass)
    fwd = m.forward(x, trace=True) if trace else None
    out = m.forward(x) if fwd is None else fwd.logits  # (1, K) logits
    z = A.class_logits(m, out)[0]
    p = A.class_probabilities(m, out)[0]
    order = np.argsort(-z)
    pred = labels[int(order[0])]
    runner = labels[int(order[1])] if len(order) > 1 else pred
    b = runner
    if vs is not None:
        A.class_index(m, vs)  # validates
        if int(vs) == pred:
            raise ValueError(f"vs must differ from the prediction {pred}, got {vs}")
        b = int(vs)
    return Answer(fwd, z, p, labels, pred, runner, b)


def attributions(m: Sequential, mf: Sequential, x: np.ndarray, methods: list[str],
                 targets: list[int], gap: tuple[int, int] | None, options: dict, clock: Clock):
    """``(maps, ig_results)``: ``maps[method][target]`` for every method and target, and the
    integrated gradients by target (a label, or the pair ``gap`` whose map the contrast uses).

    ``m`` is the model in the exact dtype (the gradient methods: one pass each), ``mf`` in the
    attribution dtype (integrated gradients and occlusion: many images each); ``options`` maps a
    method to its keyword arguments.
    """
    maps: dict[str, dict[int, Attribution]] = {}
    # integrated gradients of the class(es) and of the gap share one pass along the path
    ig_targets = (targets if "integrated_gradients" in methods else []) + \
        ([gap] if gap is not None else [])
    ig_results: dict[Any, Attribution] = {}
    if ig_targets:
        with clock("integrated_gradients"):
            res = A.integrated_gradients_many(mf, x, ig_targets,
                                              **options.get("integrated_gradients", {}))
            ig_results = dict(zip([t if isinstance(t, int) else tuple(t) for t in ig_targets],
                                  res))
    for meth in methods:
        if meth == "integrated_gradients":
            maps[meth] = {t: ig_results[t] for t in targets}
            continue
        with clock(meth):
            # occlusion only runs the model forward, in the attribution dtype; the gradient
            # methods are one pass each, in the exact dtype
            model_for = mf if meth == "occlusion" else m
            maps[meth] = {t: A.attribute(model_for, x, t, meth, **options.get(meth, {}))
                          for t in targets}
    return maps, ig_results


def attribution_sentences(maps: dict, pred: int) -> list[str]:
    """What the predicted class's maps say: gradient × input's note (a linear model), then
    integrated gradients and occlusion."""
    out = []
    gxi = maps.get("gradient_x_input", {}).get(pred)
    if gxi is not None and gxi.meta.get("note"):
        out.append(gxi.meta["note"])
    ig = maps.get("integrated_gradients", {}).get(pred)
    if ig is not None:
        out.append(words.integrated_gradients(pred, ig))
    occ = maps.get("occlusion", {}).get(pred)
    if occ is not None:
        out.append(words.occlusion(pred, occ))
    return out


def contrast(m: Sequential, x: np.ndarray, ans: Answer, pixels: Attribution, atlas) -> Contrast:
    """Why ``ans.pred`` and not ``ans.b``: ``pixels`` (the integrated gradients of the gap) and
    the exact split of the gap over the last hidden layer's units."""
    a, b = ans.pred, ans.b
    uc = C.unit_contrast(m, x, a, b, atlas=atlas)
    za, zb = ans.z_of(a), ans.z_of(b)
    return Contrast(a, b, za, zb, pixels, uc, words.contrast(a, b, za - zb, uc, pixels))


def examples(atlas, ur, con, nr) -> dict[int, Example]:
    """The training digits the units ``ur``, the contrast ``con`` and the nearest examples
    ``nr`` refer to (a contrast's units keep their 3 most exciting digits)."""
    out: dict[int, Example] = {}
    if atlas is None:
        return out
    refs: set[int] = set()
    if ur is not None:
        for u in ur.units:
            refs.update(u.top_examples)
    if con is not None and con.units is not None:
        for t in con.units.for_a + con.units.for_b:
            t.top_examples = t.top_examples[:3]
            refs.update(t.top_examples)
    if nr is not None:
        refs.update(e.index for e in nr.examples + nr.contrast_examples)
    for i in sorted(refs):
        out[i] = Example(i, int(atlas.y[i]), np.asarray(atlas.x[i, 0]))
    return out


def explanation(model: Sequential, name: str, image: np.ndarray, pre, ans: Answer,
                **sections) -> Explanation:
    """The :class:`Explanation` of ``image`` (what the network read; ``pre`` its
    ``Preprocessed`` or None) by ``model`` (the model as registered: its loss and description),
    with the answer ``ans`` and the ``sections`` computed (trace, attributions, ...)."""
    return Explanation(
        model=name, classes=list(ans.labels), prediction=int(ans.pred),
        runner_up=int(ans.runner), probabilities=ans.p, logits=ans.z,
        image=np.asarray(image, dtype=np.float64),
        output_function=OUTPUT_FUNCTIONS.get(model.loss, "identity"),
        model_description=model.description,
        preprocessing=pre,  # turned into JSON (step PNGs) only by to_dict()
        **sections)
