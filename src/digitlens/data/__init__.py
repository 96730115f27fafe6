"""Where digits come from: the bundled MNIST subset (more sources in submodules)."""

from .bundled import ATTRIBUTION, Digits, load_digits, load_raw

__all__ = ["ATTRIBUTION", "Digits", "load_digits", "load_raw"]
