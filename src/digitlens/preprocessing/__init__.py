"""Image -> the 28×28 grid MNIST networks read, every step recorded (see :mod:`.pipeline`)."""

from .pipeline import SWITCHES, Preprocessed, Step, preprocess

__all__ = ["SWITCHES", "Preprocessed", "Step", "preprocess"]
