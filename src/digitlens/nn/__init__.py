"""The glass-box engine: layers, models, optimizers, checkpoints — NumPy only."""

from . import functional
from .layers import (LAYER_TYPES, Activation, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                     Layer, MaxPool2D, register)
from .model import LOSSES, ModelConfig, Sequential, Trace
from .optim import SGD, Adam, make_optimizer
from .zoo import MODELS, build_model, model_names

__all__ = [
    "functional", "LAYER_TYPES", "Activation", "Dense", "Dropout", "Flatten", "Layer", "register",
    "Conv2D", "MaxPool2D", "GlobalAvgPool2D",
    "LOSSES", "ModelConfig", "Sequential", "Trace", "SGD", "Adam", "make_optimizer", "MODELS",
    "build_model", "model_names",
]
