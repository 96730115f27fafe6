"""The glass-box engine: layers, models, optimizers, checkpoints — NumPy only."""

from . import functional
from .conv import Conv2D, GlobalAvgPool2D, MaxPool2D
from .layers import LAYER_TYPES, Activation, Dense, Dropout, Flatten, Layer, register
from .model import LOSSES, ModelConfig, Sequential, Trace
from .optim import SGD, Adam, make_optimizer
from .zoo import MODELS, build_model, model_names

__all__ = [
    "functional", "LAYER_TYPES", "Activation", "Dense", "Dropout", "Flatten", "Layer", "register",
    "Conv2D", "MaxPool2D", "GlobalAvgPool2D",
    "LOSSES", "ModelConfig", "Sequential", "Trace", "SGD", "Adam", "make_optimizer", "MODELS",
    "build_model", "model_names",
]
