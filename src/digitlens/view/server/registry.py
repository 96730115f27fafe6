"""The models the server offers: one loaded model per name, shared by every request.

The list of models and their order come from the zoo (:data:`digitlens.nn.zoo.MODELS`), never
typed here; the page's model switcher offers the ones that read all ten digits, simplest first
(the zoo's order, the order of :data:`digitlens.training.ladder.RUNGS`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .errors import ApiError


def custom_models_dir():
    """Where the learner's own networks (the Train tab's custom models) are saved:
    ``<models_dir>/custom/``, apart from the zoo's files so none is ever replaced."""
    from ..._util import paths

    return paths.models_dir() / "custom"


def custom_model_path(name: str):
    """The file of custom model ``name`` (checked with
    :func:`digitlens.training.custom.check_custom_name` first: never a zoo name, never a path)."""
    from ...training.custom import check_custom_name

    return custom_models_dir() / f"{check_custom_name(name)}.npz"


def saved_custom_names() -> list[str]:
    """The custom models saved so far, oldest first (names read from the folder, checked)."""
    from ...training.custom import NAME_RULE
    from ...nn.zoo import MODELS

    folder = custom_models_dir()
    try:
        files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return []
    return [p.stem for p in files if NAME_RULE.match(p.stem) and p.stem not in MODELS]


def page_ladder() -> tuple[str, ...]:
    """The zoo models the page's switcher offers: those that read all ten digits, in the zoo's
    order (simplest first; a superset of the training ladder's rungs)."""
    from ...nn.zoo import MODELS

    return tuple(n for n, e in MODELS.items() if tuple(e.classes) == tuple(range(10)))


def page_models() -> tuple[str, ...]:
    """Every zoo model the page's switcher offers: the ten-digit ladder (:func:`page_ladder`),
    then the models that read fewer digits (``binary``: 0 or 1), in the zoo's order."""
    from ...nn.zoo import MODELS

    ladder = page_ladder()
    return ladder + tuple(n for n in MODELS if n not in ladder)


class ModelRegistry:
    """One loaded model per name, shared by every request, kept in one
    :class:`~digitlens.recognizer.Recognizer`.

    A zoo model is read from :func:`digitlens._util.paths.model_path` the first time it is asked for
    (and read again if that file changes, e.g. after ``digitlens train`` in another terminal);
    :meth:`put` replaces it when the training view finishes a run.  Names are checked against
    the zoo (or the recognizer's own models) before any path is built.
    """

    def __init__(self, recognizer) -> None:
        self.rec = recognizer
        self._meta: dict[str, dict] = {}
        self._mtime: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def zoo() -> dict[str, Any]:
        from ...nn.zoo import MODELS

        return MODELS

    def names(self) -> list[str]:
        """The zoo, then the learner's custom models (saved or loaded), then any other model
        the recognizer holds."""
        zoo = list(self.zoo())
        custom = [n for n in saved_custom_names() if n not in zoo]
        return zoo + custom + [n for n in self.rec.names if n not in zoo and n not in custom]

    def is_custom(self, name: str) -> bool:
        """A model the learner trained on the Train tab (saved under its own name)."""
        return name not in self.zoo() and (name in saved_custom_names()
                                           or self._meta.get(name, {}).get("custom") is not None)

    def check_name(self, name: str) -> str:
        if name not in self.names():
            raise ApiError(404, "unknown_model", f"there is no model called {name!r}; choose one "
                           f"of {', '.join(self.names())}")
        return name

    def _path(self, name: str):
        from ..._util import paths

        if name in self.zoo():
            return paths.model_path(name)
        if name in saved_custom_names():  # a name read from the folder, never one a client sent
            return custom_model_path(name)
        return None

    def is_trained(self, name: str) -> bool:
        path = self._path(name)
        return name in self.rec.names or (path is not None and path.is_file())

    def get(self, name: str) -> tuple[Any, dict]:
        """``(model, meta)``; raises :class:`ApiError` for unknown or untrained names."""
        from ...errors import CheckpointError
        from ...nn.checkpoint import load_model

        self.check_name(name)
        path = self._path(name)
        with self._lock:
            try:
                mtime = path.stat().st_mtime if path is not None else None
            except OSError:
                mtime = None
            loaded = name in self.rec.names
            if loaded and (mtime is None or self._mtime.get(name) in (None, mtime)):
                return self.rec.model(name), self._meta.get(name, {})
            if mtime is None:
                raise ApiError(409, "model_not_trained",
                               f"the {name!r} model has not been trained yet: train it in the "
                               f"training view, or run `digitlens train --model {name}`")
            try:
                model, meta = load_model(path, with_meta=True)
            except CheckpointError as e:
                # skipped with a warning; /api/models lists it as unavailable with the reason
                logging.getLogger("digitlens.server").warning("skipping the cached %r model: %s",
                                                              name, e)
                if loaded:  # keep serving the model we have
                    return self.rec.model(name), self._meta.get(name, {})
                raise ApiError(503, "model_unreadable", f"the saved {name!r} model cannot be "
                               f"read ({e}); train it again") from None
            self.rec.add(name, model)
            self._meta[name], self._mtime[name] = meta, mtime
            return model, meta

    def put(self, name: str, model, meta: dict) -> None:
        """Serve ``model`` under ``name`` from now on (called when training completes; a
        custom model, ``meta["custom"]``, brings its own new name)."""
        if meta.get("custom") is None:
            self.check_name(name)
        path = self._path(name)
        with self._lock:
            self.rec.add(name, model)
            self._meta[name] = dict(meta)
            try:
                self._mtime[name] = path.stat().st_mtime if path is not None else None
            except OSError:
                self._mtime[name] = None

    def describe(self, name: str, status: dict | None = None) -> dict[str, Any]:
        """What the page's model switcher shows about ``name``; ``status`` is where its
        training stands (:meth:`~digitlens.view.server.training_jobs.TrainingJobs.status`)."""
        from ...training.recipes import default_recipe

        e = self.zoo().get(name)
        custom = self.is_custom(name)
        info: dict[str, Any] = {"name": name, "sentence": e.sentence if e else "",
                                "classes": list(e.classes) if e else None,
                                "trained": self.is_trained(name),
                                "custom": custom, "status": status,
                                "in_ladder": (e is None and not custom) or name in page_ladder(),
                                # offered by the page's switcher (the 0-or-1 model too)
                                "on_page": e is None or name in page_models(),
                                "recipe": default_recipe(name).to_dict() if e else None}
        if info["trained"]:
            try:
                model, meta = self.get(name)
            except ApiError as err:
                info.update(trained=False, problem=err.message)
                return info
            if custom:
                info["spec"] = meta.get("custom")
            # a checkpoint's own description first (a fine-tuned cnn_mine: "the cnn model
            # fine-tuned on your digits"), else the zoo's sentence, else the architecture's
            own = meta.get("description")
            info.update(n_params=model.n_params, test_accuracy=meta.get("test_accuracy"),
                        layers=model.summary(), kind=_kind(model), classes=list(model.classes),
                        sentence=_as_sentence(own) or info["sentence"] or model.description)
        return info


def _as_sentence(text) -> str | None:
    """A checkpoint's description as the switcher's sentence: "the cnn model fine-tuned on your
    digits" -> "The cnn model fine-tuned on your digits." (None if there is none)."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text[-1] in ".!?" else ".")


def _kind(model) -> str:
    """``"cnn"`` for a model with convolution layers, else ``"dense"`` (the page's two views)."""
    from ...nn.topology import is_convolutional

    return "cnn" if is_convolutional(model) else "dense"
