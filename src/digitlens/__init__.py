"""digitlens: see how a neural network reads a handwritten digit.

The public API, along the road image -> pre-processing -> network -> explanation -> view::

    >>> import numpy as np, digitlens as dl
    >>> digits = dl.load_digits()                       # 4,000 train / 1,000 test real MNIST digits
    >>> model = dl.build_model("mlp", np.random.default_rng(0))
    >>> history = dl.fit(model, digits.x_train, digits.y_train, dl.TrainConfig(epochs=1),
    ...                  rng=np.random.default_rng(0))  # doctest: +SKIP
"""

from .data import ATTRIBUTION, Digits, load_digits
from .nn import ModelConfig, Sequential, build_model, model_names
from .nn.checkpoint import CheckpointError, load_model, save_model
from .train import History, TrainConfig, TrainingDiverged, evaluate, fit
from .preprocess import Preprocessed, PreprocessError, NoInkError  # noqa: E402
from .preprocess import preprocess  # noqa: E402  (digitlens.preprocess(image) is the function)
from .recognizer import Recognizer  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ATTRIBUTION", "Digits", "load_digits", "ModelConfig", "Sequential", "build_model",
    "model_names", "CheckpointError", "load_model", "save_model", "History", "TrainConfig",
    "TrainingDiverged", "evaluate", "fit", "preprocess", "Preprocessed", "PreprocessError",
    "NoInkError", "Recognizer", "__version__",
]
