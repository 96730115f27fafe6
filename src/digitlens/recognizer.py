"""The one object the CLI, the web server and a notebook use: trained model(s) + pre-processing +
explanations.

>>> import numpy as np, digitlens as dl
>>> from digitlens.recognizer import Recognizer
>>> rec = Recognizer({"logistic": dl.build_model("logistic", np.random.default_rng(0))})
>>> e = rec.explain(np.zeros((28, 28)), skip_preprocess=True, units=False, nearest=False,
...                 counterfactual=False)
>>> sorted(e.attributions)
['gradient_x_input', 'integrated_gradients', 'occlusion', 'saliency']

Thread safety: models keep no state between calls (every forward pass returns its own caches), so
any number of threads may call :meth:`Recognizer.explain` and :meth:`Recognizer.predict` at once.
The per-model extras built on first use — a float64 copy of the weights and the
:class:`~digitlens.explain.units.UnitAtlas` over the 4,000 bundled training digits — are built
under a lock, once, and then only read.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .explain import attribution as A
from .explain import contrast as C
from .explain import units as U
from .explain.result import Contrast, Example, Explanation
from .explain.trace import param_summaries
from .explain.trace import trace as trace_fn
from .nn.model import Sequential

DEFAULT_METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "occlusion")
REGION_NAMES = (("top left", "top", "top right"), ("left", "centre", "right"),
                ("bottom left", "bottom", "bottom right"))


@dataclass
class Prediction:
    """A model's answer for one digit."""

    model: str
    label: int
    probabilities: np.ndarray
    classes: list[int]
    image: np.ndarray  # (28, 28) what the network read

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "label": int(self.label),
                "probabilities": [round(float(p), 6) for p in self.probabilities],
                "classes": [int(c) for c in self.classes]}


def _where(m: np.ndarray) -> str:
    """Which ninth of the image holds most of the positive part of a map."""
    pos = np.maximum(np.asarray(m, dtype=np.float64), 0)
    h, w = pos.shape
    rb, cb = [0, h // 3, 2 * h // 3, h], [0, w // 3, 2 * w // 3, w]
    sums = np.add.reduceat(np.add.reduceat(pos, rb[:-1], axis=0), cb[:-1], axis=1)  # (3, 3)
    i, j = np.unravel_index(np.argmax(sums), sums.shape)
    return REGION_NAMES[i][j]


class Recognizer:
    """Trained models by name, with :meth:`predict` and :meth:`explain`.

    Parameters
    ----------
    models : ``{name: Sequential}``; more can be added with :meth:`add`.
    digits : the :class:`~digitlens.data.bundled.Digits` whose training part provides the unit
        atlas and nearest examples (default: the bundled split, loaded on first use).
    dtype : the trace, gradients, the unit split of the logit gap, units and neighbours use a
        copy of the weights in this dtype (float64: the split adds up to the gap to ~1e-15).
    attribution_dtype : integrated gradients, occlusion and the counterfactual search — many
        images per explanation — use this dtype (float32, as trained: about twice as fast; the
        completeness error they report is quadrature error, float32 rounding adds ~1e-6).
    """

    def __init__(self, models: dict[str, Sequential] | None = None, *, digits=None,
                 dtype=np.float64, attribution_dtype=np.float32) -> None:
        self._models: dict[str, Sequential] = {}
        self._digits = digits
        self._dtype = np.dtype(dtype)
        self._fast_dtype = np.dtype(attribution_dtype)
        self._fast: dict[str, Sequential] = {}
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}
        self._exact: dict[str, Sequential] = {}
        self._atlas: dict[str, U.UnitAtlas] = {}
        self._params: dict[str, list] = {}  # the trace's weight statistics, per model
        for name, m in (models or {}).items():
            self.add(name, m)

    # ------------------------------------------------------------------------------ models
    @classmethod
    def from_cache(cls, names: Iterable[str] | None = None, **kwargs) -> "Recognizer":
        """Load trained zoo models from the user cache (``digitlens._util.paths.model_path``).

        ``names=None`` loads every zoo model that has been trained; naming one that is not
        trained raises :class:`~digitlens.nn.checkpoint.CheckpointError` saying how to train it.
        """
        from ._util import paths
        from .nn.checkpoint import CheckpointError, load_model
        from .nn.zoo import model_names

        if names is None:
            names = [n for n in model_names() if paths.model_path(n).exists()]
        models = {}
        for n in names:
            p = paths.model_path(n)
            if not p.exists():
                raise CheckpointError(f"no trained {n!r} model at {p}: run "
                                      f"`digitlens train --model {n}`")
            models[n] = load_model(p)
        return cls(models, **kwargs)

    def add(self, name: str, model: Sequential) -> None:
        """Register (or replace) a model under ``name``."""
        if not isinstance(model, Sequential):
            raise TypeError(f"model {name!r} must be a Sequential, got {type(model).__name__}")
        with self._lock:
            self._models[name] = model
            self._model_locks.setdefault(name, threading.Lock())
            self._exact.pop(name, None)
            self._fast.pop(name, None)
            self._atlas.pop(name, None)
            self._params.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._models)

    def model(self, name: str | None = None) -> Sequential:
        """The model called ``name`` (default: ``mlp`` if loaded, else the first one)."""
        return self._models[self._name(name)]

    def _name(self, name: str | None) -> str:
        if not self._models:
            raise ValueError("this Recognizer has no models; train one with "
                             "`digitlens train --model mlp` or pass models={...}")
        if name is None:
            return "mlp" if "mlp" in self._models else next(iter(self._models))
        if name not in self._models:
            raise ValueError(f"model must be one of {self.names}, got {name!r}")
        return name

    def _model_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._model_locks.setdefault(name, threading.Lock())

    def _converted(self, cache: dict, dtype, name: str | None) -> Sequential:
        """The model ``name`` in ``dtype``, built once per (cache, name) under the model's lock."""
        name = self._name(name)
        m = cache.get(name)
        if m is None:
            with self._model_lock(name):
                m = cache.get(name)
                if m is None:
                    src = self._models[name]
                    m = src if src.dtype == dtype else src.astype(dtype)
                    cache[name] = m
        return m

    def exact_model(self, name: str | None = None) -> Sequential:
        """The model's copy in the explanation dtype (built once)."""
        return self._converted(self._exact, self._dtype, name)

    def attribution_model(self, name: str | None = None) -> Sequential:
        """The model's copy in the attribution dtype (built once): the many-image passes
        (integrated gradients, occlusion, the counterfactual search) run in it."""
        return self._converted(self._fast, self._fast_dtype, name)

    def digits(self):
        if self._digits is None:
            with self._lock:
                if self._digits is None:
                    from .data import load_digits

                    self._digits = load_digits()
        return self._digits

    def atlas(self, name: str | None = None) -> U.UnitAtlas:
        """Every training digit's unit activations for model ``name`` (built once, ~0.1–2 s)."""
        name = self._name(name)
        a = self._atlas.get(name)
        if a is None:
            d = self.digits()
            with self._model_lock(name):
                a = self._atlas.get(name)
                if a is None:
                    a = U.build_atlas(self._models[name], d.x_train, d.y_train)
                    self._atlas[name] = a
        return a

    # ------------------------------------------------------------------------------ input
    def prepare(self, source, *, skip_preprocess: bool = False, **switches):
        """``(image (28, 28) float32, preprocessed or None)`` for any source.

        ``source`` may be a :class:`~digitlens.preprocessing.Preprocessed`, anything
        :func:`~digitlens.preprocessing.preprocess` accepts (bytes, path, PIL image, array), or —
        with ``skip_preprocess=True`` — an already-prepared 28×28 array in [0, 1].
        """
        if hasattr(source, "image") and hasattr(source, "steps"):
            return np.asarray(source.image, dtype=np.float32), source
        if skip_preprocess:
            a = np.asarray(source, dtype=np.float64)
            if a.size != 784:
                raise ValueError(f"skip_preprocess needs a 28x28 image, got shape {a.shape}")
            a = a.reshape(28, 28)
            if not np.all(np.isfinite(a)):
                raise ValueError("image contains NaN or inf")
            if a.min() < 0 or a.max() > 1:
                raise ValueError(f"image values must be in [0, 1], got [{a.min():.3g}, "
                                 f"{a.max():.3g}]")
            return a.astype(np.float32), None
        from .preprocessing.pipeline import preprocess

        p = preprocess(source, **switches)
        return p.image, p

    # ----------------------------------------------------------------------------- answers
    def predict(self, source, model: str | None = None, **kwargs) -> Prediction:
        """The model's answer and probabilities (pre-processing as in :meth:`prepare`)."""
        name = self._name(model)
        m = self._models[name]
        image, _ = self.prepare(source, **kwargs)
        z = m.forward(image.reshape((1,) + m.input_shape).astype(m.dtype))
        p = A.class_probabilities(m, z)[0]
        return Prediction(name, int(m.classes[int(np.argmax(p))]), p, list(m.classes), image)

    def explain(self, source, model: str | None = None, vs: int | None = None, *,
                methods: Iterable[str] = DEFAULT_METHODS, contrast_maps: bool = False,
                ig_steps: int = A.DEFAULT_IG_STEPS, baseline="black",
                occlusion_patch: int = 4, occlusion_stride: int = 2,
                trace: bool = True, contrast: bool = True, counterfactual: bool = True,
                units: bool = True, nearest: bool = True, counterfactual_pixels: int = 40,
                skip_preprocess: bool = False, **switches) -> Explanation:
        """Explain what model ``model`` reads in ``source`` and why.

        Parameters
        ----------
        source : image bytes, path, PIL image, array, or ``Preprocessed`` (see :meth:`prepare`).
        model : model name (default: ``mlp`` if loaded).
        vs : the digit to contrast with (default: the runner-up).
        methods : attribution methods (keys of ``digitlens.explain.attribution.METHODS``), each
            computed for the predicted class (and for ``vs`` too with ``contrast_maps=True``).
        ig_steps, baseline : integrated-gradients settings (also used for the contrast map).
        occlusion_patch, occlusion_stride : occlusion square and step, in pixels.
        trace, contrast, counterfactual, units, nearest : switch sections on or off.  ``units``
            and ``nearest`` use the precomputed atlas (built on first use); ``counterfactual``
            runs a search of up to ``counterfactual_pixels`` pixel changes.
        skip_preprocess, **switches : passed to :meth:`prepare` / ``preprocess``.
        """
        t_all = time.perf_counter()
        timings: dict[str, float] = {}

        def tick(key: str, t0: float) -> None:
            timings[key] = (time.perf_counter() - t0) * 1e3

        t0 = time.perf_counter()
        name = self._name(model)
        image, pre = self.prepare(source, skip_preprocess=skip_preprocess, **switches)
        tick("preprocess", t0)
        m = self.exact_model(name)
        methods = list(methods)
        for meth in methods:
            if meth not in A.METHODS:
                raise ValueError(f"methods must be among {sorted(A.METHODS)}, got {meth!r}")
        x = image.reshape((1,) + m.input_shape)
        labels = list(m.classes)

        t0 = time.perf_counter()
        # with the trace on, its forward pass gives the logits too (the same one forward pass)
        fwd = m.forward(x, trace=True) if trace else None
        out = m.forward(x) if fwd is None else fwd.logits  # (1, K) logits
        z = A.class_logits(m, out)[0]
        p = A.class_probabilities(m, out)[0]
        order = np.argsort(-z)
        pred = labels[int(order[0])]
        runner = labels[int(order[1])] if len(order) > 1 else pred
        if vs is not None:
            A.class_index(m, vs)  # validates
            if int(vs) == pred:
                raise ValueError(f"vs must differ from the prediction {pred}, got {vs}")
            b = int(vs)
        else:
            b = runner
        tick("predict", t0)
        sentences = [f"The {name} model reads a {pred} with probability {p[labels.index(pred)]:.1%}"
                     f"; the runner-up is {runner} ({p[labels.index(runner)]:.1%})."]

        tr = None
        if trace:
            t0 = time.perf_counter()
            ps = self._params.get(name)
            if ps is None:  # the weights do not change once added: their statistics neither
                ps = self._params.setdefault(name, param_summaries(m))
            tr = trace_fn(m, x, forward=fwd, params=ps)
            tick("trace", t0)

        mf = self.attribution_model(name)
        options = {"occlusion": {"patch": occlusion_patch, "stride": occlusion_stride}}
        attributions: dict[str, dict[int, Any]] = {}
        targets = [pred] + ([b] if contrast_maps and b != pred else [])
        # integrated gradients of the class(es) and of the gap share one pass along the path
        ig_targets = (targets if "integrated_gradients" in methods else []) + \
            ([(pred, b)] if contrast else [])
        ig_results: dict[Any, Any] = {}
        if ig_targets:
            t0 = time.perf_counter()
            res = A.integrated_gradients_many(mf, x, ig_targets, baseline=baseline,
                                              n_steps=ig_steps)
            ig_results = dict(zip([t if isinstance(t, int) else tuple(t) for t in ig_targets],
                                  res))
            tick("integrated_gradients", t0)
        for meth in methods:
            t0 = time.perf_counter()
            if meth == "integrated_gradients":
                attributions[meth] = {t: ig_results[t] for t in targets}
                continue
            # occlusion only runs the model forward, in the attribution dtype; the gradient
            # methods are one pass each, in the exact dtype
            model_for = mf if meth == "occlusion" else m
            attributions[meth] = {t: A.attribute(model_for, x, t, meth, **options.get(meth, {}))
                                  for t in targets}
            tick(meth, t0)
        gxi = attributions.get("gradient_x_input", {}).get(pred)
        if gxi is not None and gxi.meta.get("note"):
            sentences.append(gxi.meta["note"])
        ig = attributions.get("integrated_gradients", {}).get(pred)
        if ig is not None:
            sentences.append(
                f"Integrated gradients ({ig.meta['baseline']} baseline, {ig.meta['n_steps']} "
                f"steps): the ink moves the logit of {pred} from {ig.meta['f_baseline']:.3g} to "
                f"{ig.meta['f_x']:.3g}; the pixel map adds up to {ig.map.sum():.3g} (completeness "
                f"error {ig.meta['relative_delta'] or 0:.2%}), most of it at the {_where(ig.map)}.")
        occ = attributions.get("occlusion", {}).get(pred)
        if occ is not None:
            sentences.append(
                f"Occlusion: covering a {occ.meta['patch']}×{occ.meta['patch']} square lowers the "
                f"logit of {pred} by up to {occ.meta['largest_drop']:.3g}; the most important ink "
                f"is at the {_where(occ.map)}.")

        con = None
        atlas = None
        if units or nearest or contrast:
            t0 = time.perf_counter()
            atlas = self.atlas(name)
            tick("atlas", t0)
        if contrast:
            t0 = time.perf_counter()
            pix = ig_results[(pred, b)]
            uc = C.unit_contrast(m, x, pred, b, atlas=atlas)
            zb = float(z[labels.index(b)])
            con = Contrast(pred, b, float(z[labels.index(pred)]), zb, pix, uc,
                           C.contrast_sentences(pred, b, float(z[labels.index(pred)]) - zb, uc,
                                                pix))
            sentences.extend(con.sentences)
            tick("contrast", t0)

        cf = None
        if counterfactual:
            t0 = time.perf_counter()
            cf = C.counterfactual(mf, x, b, max_pixels=counterfactual_pixels)
            sentences.append(cf.sentence)
            tick("counterfactual", t0)

        ur = None
        if units:
            t0 = time.perf_counter()
            ur = U.first_layer_units(m, x, atlas=atlas, top=6, examples=3)
            sentences.extend(ur.sentences)
            tick("units", t0)

        nr = None
        if nearest:
            t0 = time.perf_counter()
            nr = U.nearest_examples(m, x, atlas, contrast_class=b)
            labs = ", ".join(str(e.label) for e in nr.examples)
            space = ("In pixel space (this model has no hidden layer)" if nr.space == "pixels"
                     else "In the last hidden layer's space (the numbers the output layer reads)")
            s = f"{space} your digit is closest to training digits labelled {labs}"
            if nr.contrast_examples:
                s += (f"; the closest {b} is at distance {nr.contrast_examples[0].distance:.3g} "
                      f"(vs {nr.examples[0].distance:.3g} for the closest of all)")
            sentences.append(s + ".")
            tick("nearest", t0)

        examples: dict[int, Example] = {}
        if atlas is not None:
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
                examples[i] = Example(i, int(atlas.y[i]), np.asarray(atlas.x[i, 0]))

        timings["total"] = (time.perf_counter() - t_all) * 1e3
        src = self._models[name]
        return Explanation(
            model=name, classes=labels, prediction=int(pred), runner_up=int(runner),
            probabilities=p, logits=z, image=np.asarray(image, dtype=np.float64),
            output_function={"softmax_cross_entropy": "softmax",
                             "sigmoid_binary_cross_entropy": "sigmoid"}.get(src.loss, "identity"),
            model_description=src.description,
            preprocessing=pre,  # turned into JSON (step PNGs) only by to_dict()
            trace=tr, attributions=attributions, contrast=con, counterfactual=cf, units=ur,
            nearest=nr, examples=examples, sentences=sentences, timings_ms=timings)
