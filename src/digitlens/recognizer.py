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

Why this file is longer than the ~500 lines the rest keep to: it is the whole public surface of
one thread-safe object that the CLI, the server and notebooks share (explain, the worked sums,
filters, the training step, trust, "I don't know", the evaluation caches).  Each method only
checks its arguments, takes the cached per-model extras and calls one function of
:mod:`digitlens.explain`, :mod:`digitlens.training` or :mod:`digitlens.evaluation`; the numerics
live there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .explain import attribution as A
from .explain import confusions as CF
from .explain import contrast as C
from .explain import plausible as PL
from .explain import steps as S
from .explain import unit_detail as D
from .explain import units as U
from .explain import ood as O
from .explain import words
from .explain.result import Explanation
from .explain.names import layer_names
from .explain.trace import param_summaries
from .explain.trace import trace as trace_fn
from .nn.model import Sequential

DEFAULT_METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "occlusion")
#: the attribution settings :meth:`Recognizer.explain` uses unless told otherwise — the one table
#: of defaults (its keyword defaults read it, and so do the extra targets of :meth:`explain_dict`)
METHOD_OPTIONS = {"integrated_gradients": {"baseline": "black", "n_steps": A.DEFAULT_IG_STEPS},
                  "occlusion": {"patch": 4, "stride": 2}}
_IG, _OCC = METHOD_OPTIONS["integrated_gradients"], METHOD_OPTIONS["occlusion"]
#: the ``detail`` levels of :meth:`Recognizer.explain_dict`
DETAILS = ("full", "live")


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
        self._confusions: dict[str, CF.Confusions] = {}
        self._confusions: dict[str, CF.Confusions] = {}
        self._params: dict[str, list] = {}  # the trace's weight statistics, per model
        self._ood: dict[str, O.OODCalibration] = {}  # the "I don't know" score, per model
        self._trust: dict[tuple, dict] = {}  # trust reports, newest last (see trust())
        self._ood_shape: O.ShapeReference | None = None
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
        from .errors import CheckpointError
        from .nn.checkpoint import load_model
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
            self._confusions.pop(name, None)
            self._confusions.pop(name, None)
            self._params.pop(name, None)
            self._ood.pop(name, None)
            self._trust = {k: v for k, v in self._trust.items() if k[0] != name}

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

    def confusions(self, name: str | None = None) -> CF.Confusions:
        """Model ``name``'s confusion counts on the bundled test digits (built once)."""
        name = self._name(name)
        c = self._confusions.get(name)
        if c is None:
            d = self.digits()
            with self._model_lock(name):
                c = self._confusions.get(name)
                if c is None:
                    c = CF.confusions(self._models[name], d.x_test, d.y_test)
                    self._confusions[name] = c
        return c

    def ood_calibration(self, name: str | None = None) -> O.OODCalibration:
        """Model ``name``'s "I don't know" score, fitted on the bundled training digits and its
        threshold set on the test digits, those of its own classes
        (:func:`digitlens.explain.ood.calibrate`; built once, about a second, from the atlas's
        activations)."""
        name = self._name(name)
        c = self._ood.get(name)
        if c is None:
            atlas, d = self.atlas(name), self.digits()
            with self._model_lock(name):
                c = self._ood.get(name)
                if c is None:
                    if self._ood_shape is None:  # the model-free half, shared by all models
                        self._ood_shape = O.ShapeReference.of(atlas.x, d.x_test)
                    m = self._models[name]
                    if sorted(m.classes) == list(range(10)):
                        c = O.calibrate(m, atlas.x, d.x_test, h_train=atlas.hidden,
                                        shape=self._ood_shape)
                    else:  # a model of some digits (binary: 0 and 1) is measured against them
                        tr, te = np.isin(atlas.y, m.classes), np.isin(d.y_test, m.classes)
                        c = O.calibrate(m, atlas.x[tr], d.x_test[te], h_train=atlas.hidden[tr])
                    self._ood[name] = c
        return c

    def trust(self, image, model: str | None = None, *, method: str = "integrated_gradients",
              target: int | None = None, seed: int = 0) -> dict[str, Any]:
        """"Can I trust this map?": :func:`digitlens.explain.trust.trust_report` as JSON, for
        the ``method`` map of ``target`` (default: the answer) on ``image`` (a 28×28 array in
        [0, 1], what the network read), with the explanation's settings
        (:data:`METHOD_OPTIONS`) and model copy.  Random weights and orders come from
        ``numpy.random.default_rng(seed)``.  Cached (the last 64 reports)."""
        from .explain import trust as TR

        name = self._name(model)
        img, _ = self.prepare(image, skip_preprocess=True)
        m = self.attribution_model(name)
        if target is None:
            target = self.predict(img, model=name, skip_preprocess=True).label
        A.class_index(m, target)  # validates
        key = (name, img.tobytes(), method, int(target), int(seed))
        hit = self._trust.get(key)
        if hit is None:
            hit = TR.trust_report(m, img, int(target), method, rng=np.random.default_rng(seed),
                                  options=METHOD_OPTIONS.get(method, {}), name=name,
                                  seed=int(seed)).to_dict()
            with self._lock:
                self._trust[key] = hit
                while len(self._trust) > 64:
                    self._trust.pop(next(iter(self._trust)))
        return hit

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
        from .preprocessing import preprocess

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
                ig_steps: int = _IG["n_steps"], baseline=_IG["baseline"],
                occlusion_patch: int = _OCC["patch"], occlusion_stride: int = _OCC["stride"],
                trace: bool = True, contrast: bool = True, counterfactual: bool = True,
                units: bool = True, nearest: bool = True, counterfactual_pixels: int = 40,
                skip_preprocess: bool = False, ood: bool = True,
                **switches) -> Explanation:
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
        ood : score how unlike the training digits the input is ("I don't know",
            :mod:`digitlens.explain.ood`; its calibration is built on first use).

        The steps, each timed in ``timings_ms``: pre-processing, the answer, the trace, the
        attribution maps, the atlas, the contrast, the counterfactual, the units, the nearest
        training digits.
        """
        clock = S.Clock()
        with clock("preprocess"):
            name = self._name(model)
            image, pre = self.prepare(source, skip_preprocess=skip_preprocess, **switches)
        m = self.exact_model(name)
        methods = S.check_methods(methods)
        x = image.reshape((1,) + m.input_shape)
        with clock("predict"):
            ans = S.answer(m, x, vs, trace)
        why_b = ("chosen", []) if vs is not None else ("runner-up", [])
        if contrast and len(ans.labels) > 2:
            with clock("confusions"):  # the digits usually confused with this one (cached)
                why_b = CF.contrast_for(ans, vs, self.confusions(name))
        pred, b = ans.pred, ans.b
        sentences = [words.answer(name, pred, ans.p_of(pred), ans.runner, ans.p_of(ans.runner))]
        oo = None
        if ood:
            with clock("ood"):
                oo = O.score(self._models[name], self.ood_calibration(name), x)
                oo.sentence = words.ood(oo, pred, ans.p_of(pred))
                sentences.append(oo.sentence)
        tr = None
        if trace:
            with clock("trace"):
                tr = trace_fn(m, x, forward=ans.forward, params=self._param_summaries(name, m))
        options = {"integrated_gradients": {"baseline": baseline, "n_steps": ig_steps},
                   "occlusion": {"patch": occlusion_patch, "stride": occlusion_stride}}
        targets = [pred] + ([b] if contrast_maps and b != pred else [])
        maps, ig_results = S.attributions(m, self.attribution_model(name), x, methods, targets,
                                          (pred, b) if contrast else None, options, clock)
        sentences.extend(S.attribution_sentences(maps, pred))

        atlas = con = cf = ur = nr = None
        if units or nearest or contrast:
            with clock("atlas"):
                atlas = self.atlas(name)
        if contrast:
            with clock("contrast"):
                con = self._contrast(name, m, x, ans, ig_results[(pred, b)], atlas, why_b)
                sentences.extend(con.sentences)
        if counterfactual:
            cf = self._counterfactual(name, x, b, atlas, counterfactual_pixels, clock)
            sentences.extend(([cf.note] if cf.note else []) + [cf.sentence])
        if units:
            with clock("units"):
                ur = U.first_layer_units(m, x, atlas=atlas, top=6, examples=3)
                sentences.extend(ur.sentences)
        if nearest:
            with clock("nearest"):
                nr = U.nearest_examples(m, x, atlas, contrast_class=b)
                sentences.append(words.nearest(nr, b))

        return S.explanation(
            self._models[name], name, image, pre, ans, trace=tr, attributions=maps,
            contrast=con, counterfactual=cf, units=ur, nearest=nr, ood=oo,
            examples=S.examples(atlas, ur, con, nr), sentences=sentences,
            timings_ms=clock.total())

    def _contrast(self, name: str, m: Sequential, x: np.ndarray, ans, ig, atlas, why_b):
        """Why ``ans.pred`` and not ``ans.b``: the pixel and unit split of the gap, with the
        reason the rival was chosen (``why_b``: ``(reason, suggestions)``) said first."""
        con = S.contrast(m, x, ans, ig, atlas)
        con.reason, con.suggestions = why_b
        con.sentences.insert(0, words.contrast_choice(ans, why_b[0], why_b[1],
                                                      self.confusions(name).n))
        return con

    def _counterfactual(self, name: str, x: np.ndarray, b: int, atlas, max_pixels: int, clock):
        """The smallest ink edit that makes the model read ``b``, and beside it an edit a person
        could make (whole strokes), with its cost."""
        with clock("counterfactual"):
            cf = C.counterfactual(self.attribution_model(name), x, b, max_pixels=max_pixels)
        with clock("plausible"):
            PL.attach(cf, self.attribution_model(name), x,
                      training=(atlas.x, atlas.y) if atlas is not None else None)
        return cf

    def _param_summaries(self, name: str, m: Sequential) -> list:
        ps = self._params.get(name)
        if ps is None:  # the weights do not change once added: their statistics neither
            ps = self._params.setdefault(name, param_summaries(m))
        return ps

    # ------------------------------------------------------------------------ the JSON API
    def explain_dict(self, source, model: str | None = None, *, detail: str = "full",
                     vs: int | None = None, method: str | None = None, target: int | None = None,
                     counterfactual: bool = True, **switches) -> dict[str, Any]:
        """The web page's explanation: :meth:`explain` as JSON, with ``detail`` and ``notes``.

        Parameters
        ----------
        source, model, **switches : as for :meth:`explain` (``switches`` go to :meth:`prepare`;
            ``vs`` and ``target`` are checked before the image is pre-processed).
        detail : ``"live"`` (the answer, pre-processing and every layer's numbers: what the page
            asks for while a stroke is drawn) or ``"full"`` (adds the attributions, the
            contrast, the counterfactual, the units and the nearest training digits).
        vs : the digit to contrast with (default: the runner-up).  If the network reads this
            very digit, the runner-up is used instead and ``notes`` says so.
        method : compute only this attribution method (default: all of :data:`DEFAULT_METHODS`).
        target : also compute the attribution maps for this digit, with :data:`METHOD_OPTIONS`.
        counterfactual : search for the smallest ink edit that changes the answer to ``vs``.

        Returns
        -------
        dict
            ``Explanation.to_dict()`` plus ``"detail"`` and ``"notes"`` (a list of sentences).

        Raises
        ------
        ValueError
            ``detail``, ``method``, ``vs`` or ``target`` not among the allowed values (a digit
            the model does not know: ``"options.vs: the 'binary' model only knows the digits
            [0, 1], got 7"``); a :class:`~digitlens.errors.PreprocessError` for a bad image.
        """
        name = self._name(model)
        classes = list(self._models[name].classes)
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {list(DETAILS)}, got {detail!r}")
        if method is not None and method not in A.METHODS:
            raise ValueError(f"method must be one of {sorted(A.METHODS)}, got {method!r}")
        for key, v in (("vs", vs), ("target", target)):
            if v is not None and v not in classes:
                raise ValueError(f"options.{key}: the {name!r} model only knows the digits "
                                 f"{classes}, got {v}")
        image, pre = self.prepare(source, **switches)
        prepared = {"source": pre, "skip_preprocess": False} if pre is not None else \
            {"source": image, "skip_preprocess": True}
        notes: list[str] = []
        live = detail == "live"
        asked_is_answer = None
        if live:
            vs = None  # no contrast while a stroke is drawn (the digit may well read as vs)
        elif vs is not None and self.predict(model=name, **prepared).label == vs:
            asked_is_answer, vs = vs, None
        methods = () if live else ((method,) if method else DEFAULT_METHODS)
        e = self.explain(model=name, vs=vs, methods=methods, trace=True, contrast=not live,
                         counterfactual=not live and counterfactual, units=not live,
                         nearest=not live, ood=not live, **prepared)
        if not live and target is not None and target != e.prediction:
            m = self.exact_model(name)
            for meth in methods:
                e.attributions.setdefault(meth, {})[target] = A.attribute(
                    m, e.image, target, meth, **METHOD_OPTIONS.get(meth, {}))
        if asked_is_answer is not None and e.contrast is not None:
            # the note names the digit the explanation really compares with (the runner-up, or
            # the digit people usually confuse with this one when the runner-up has under 5%)
            notes.append(words.vs_is_the_answer(asked_is_answer, e.contrast.b, e.contrast.reason))
        d = e.to_dict()
        d["detail"] = detail
        d["notes"] = notes
        # every layer's name for people ("convolution 2 (32 filters)"), by layer index
        d["layer_names"] = self.layer_names(name)
        return d

    def layer_names(self, name: str | None = None) -> list[dict]:
        """Every layer of model ``name`` named for people (:func:`explain.names.layer_names`),
        as JSON data: the names the page, the CLI and the figures share."""
        return [n.to_dict() for n in layer_names(self.model(name))]

    def worked_sum(self, source, name: str | None, layer: int, unit: int, *, at=None,
                   maps: bool = True, skip_preprocess: bool = False,
                   **switches) -> dict[str, Any]:
        """Unit ``unit`` of layer ``layer`` worked out on ``source`` (pre-processed as in
        :meth:`prepare`, so the numbers are those of :meth:`explain` on the same source), as
        JSON data: :func:`digitlens.explain.worked.worked_sum` on the explanation's float64
        copy of the model.  ``at``: a filter's position (default: where it fires most)."""
        from .explain import worked as W

        name = self._name(name)
        image, _ = self.prepare(source, skip_preprocess=skip_preprocess, **switches)
        return W.worked_sum(self.exact_model(name), image, layer, unit, at=at, maps=maps,
                            name=name).to_dict()

    def feature_maps(self, source, name: str | None = None, *, skip_preprocess: bool = False,
                     **switches) -> list[dict[str, Any]]:
        """Every convolution's feature maps on ``source``
        (:func:`digitlens.explain.worked.feature_maps`), numbers as JSON data."""
        from ._util.jsonsafe import map_list
        from .explain import worked as W

        name = self._name(name)
        image, _ = self.prepare(source, skip_preprocess=skip_preprocess, **switches)
        return [{**d, "maps": map_list(d["maps"]),
                 **({"pooled": map_list(d["pooled"])} if "pooled" in d else {})}
                for d in W.feature_maps(self.exact_model(name), image)]

    def unit_detail(self, name: str | None, layer: int, unit: int, image=None) -> dict[str, Any]:
        """What unit ``unit`` of layer ``layer`` of model ``name`` looks for: its bias, weights,
        pixel template (for a deeper Dense unit only with ``image``, a 28×28 array in [0, 1]) and
        the training digits exciting it most.  See
        :func:`digitlens.explain.unit_detail.unit_detail` for the dict and the errors
        (:class:`~digitlens.errors.UnknownUnitError`,
        :class:`~digitlens.errors.NotAUnitLayerError`, ``ValueError`` for a bad image)."""
        name = self._name(name)
        return D.unit_detail(self._models[name], layer, unit, atlas=lambda: self.atlas(name),
                             image=image, gradient_model=lambda: self.exact_model(name),
                             name=name)

    # ------------------------------------------- what a filter looks for; one training step
    def _filter_cache(self):
        """The per-model filter atlases and response curves (built on first use)."""
        from .explain.filters import FilterCache

        with self._lock:
            return self.__dict__.setdefault("_filters", FilterCache())

    def filter_detail(self, name: str | None, layer: int, unit: int, source=None, *,
                      skip_preprocess: bool = False, **switches) -> dict[str, Any]:
        """What unit ``unit`` of layer ``layer`` (any Dense or Conv2D layer) looks for: its top
        training patches cropped to its receptive field, its response curves to synthetic lines
        and arcs, the hand-made kernels beside them, and its likeness to them
        (:func:`digitlens.explain.filters.filter_detail`; the atlas over the bundled training
        digits is built once per model, about a second for ``cnn``).  With a ``source``
        (pre-processed as in :meth:`prepare`), also ``"digit"``: the unit on that digit and the
        layer's strongest units (:func:`digitlens.explain.filters.on_digit`)."""
        from .explain import filters as FL

        name = self._name(name)
        m = self._models[name]
        D.check_unit(m, layer, unit, name)  # before anything slow is built
        cache = self._filter_cache()
        atlas = cache.atlas(m, lambda: (self.digits().x_train, self.digits().y_train))
        out = FL.filter_detail(m, layer, unit, atlas=atlas, curves=cache.curves(m, layer),
                               name=name)
        if source is not None:
            image, _ = self.prepare(source, skip_preprocess=skip_preprocess, **switches)
            out["digit"] = FL.on_digit(self.exact_model(name), layer, unit, image)
        return out

    def training_step(self, source, name: str | None = None, label: int | None = None, *,
                      layer: int | None = None, unit: int = 0, optimizer: str = "sgd",
                      lr: float | None = None, skip_preprocess: bool = False,
                      **switches) -> dict[str, Any]:
        """One training step on ``source`` (pre-processed as in :meth:`prepare`) towards
        ``label`` (default: the model's answer), on a copy of the model:
        :func:`digitlens.training.step.training_step` as JSON data.  The model never moves."""
        from .training.step import training_step

        name = self._name(name)
        image, _ = self.prepare(source, skip_preprocess=skip_preprocess, **switches)
        if label is None:
            label = self.predict(image, model=name, skip_preprocess=True).label
        return training_step(self._models[name], image, label, layer=layer, unit=unit,
                             optimizer=optimizer, lr=lr, name=name).to_dict()
