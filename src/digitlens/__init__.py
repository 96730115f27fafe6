"""digitlens: see how a neural network reads a handwritten digit.

The public API, along the road image -> pre-processing -> network -> explanation -> view::

    >>> import numpy as np, digitlens as dl
    >>> digits = dl.load_digits()                       # 4,000 train / 1,000 test real MNIST digits
    >>> model = dl.build_model("mlp", np.random.default_rng(0))
    >>> history = dl.fit(model, digits.x_train, digits.y_train, dl.TrainConfig(epochs=1),
    ...                  rng=np.random.default_rng(0))  # doctest: +SKIP

The names are loaded lazily (PEP 562): ``import digitlens`` imports nothing else, and
``import digitlens.nn.functional`` loads the engine alone.  ``dl.preprocess(image)`` is the
function; the module is :mod:`digitlens.preprocessing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "ATTRIBUTION": "digitlens.data", "Digits": "digitlens.data", "load_digits": "digitlens.data",
    "ModelConfig": "digitlens.nn.model", "Sequential": "digitlens.nn.model",
    "build_model": "digitlens.nn.zoo", "model_names": "digitlens.nn.zoo",
    "CheckpointError": "digitlens.errors", "load_model": "digitlens.nn.checkpoint",
    "save_model": "digitlens.nn.checkpoint",
    "History": "digitlens.training.fit", "TrainConfig": "digitlens.training.fit",
    "TrainingDiverged": "digitlens.errors", "evaluate": "digitlens.training.fit",
    "fit": "digitlens.training.fit",
    "preprocess": "digitlens.preprocessing", "Preprocessed": "digitlens.preprocessing",
    "PreprocessError": "digitlens.errors", "NoInkError": "digitlens.errors",
    "Recognizer": "digitlens.recognizer",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'digitlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from .data import ATTRIBUTION, Digits, load_digits  # noqa: F401
    from .errors import CheckpointError, NoInkError, PreprocessError, TrainingDiverged  # noqa: F401
    from .nn.checkpoint import load_model, save_model  # noqa: F401
    from .nn.model import ModelConfig, Sequential  # noqa: F401
    from .nn.zoo import build_model, model_names  # noqa: F401
    from .preprocessing import Preprocessed, preprocess  # noqa: F401
    from .recognizer import Recognizer  # noqa: F401
    from .training.fit import History, TrainConfig, evaluate, fit  # noqa: F401
