"""Layers: each one a forward that returns what its backward needs, and that backward.

A layer holds its parameters (``layer.params``, a dict of arrays such as ``{"W": ..., "b": ...}``)
and its hyper-parameters, but **no state from a forward pass**: ``forward`` returns ``(y, cache)``
and ``backward(dy, cache)`` returns ``(dx, grads)``.  Keeping the cache outside the layer means one
model can serve many requests at once (the web server) and gradients are returned, never applied.

Shapes are per batch: dense layers see ``(N, D)``; image layers see ``(N, C, H, W)``.
A layer is described by a JSON-able ``config()`` dict whose ``"type"`` names its class in
:data:`LAYER_TYPES`; :func:`layer_from_config` rebuilds it (checkpoints rely on this).

To add a layer type, subclass :class:`Layer` and decorate it with :func:`register`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from . import functional as F

LAYER_TYPES: dict[str, type["Layer"]] = {}


def register(cls: type["Layer"]) -> type["Layer"]:
    """Class decorator: make ``cls`` buildable from its config ``{"type": cls.type, ...}``."""
    if cls.type in LAYER_TYPES and LAYER_TYPES[cls.type] is not cls:
        raise ValueError(f"layer type {cls.type!r} is registered twice")
    LAYER_TYPES[cls.type] = cls
    return cls


def layer_from_config(config: dict[str, Any]) -> "Layer":
    """Rebuild a layer (without parameters) from ``layer.config()``."""
    cfg = dict(config)
    kind = cfg.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; known types: {sorted(LAYER_TYPES)}")
    return LAYER_TYPES[kind](**cfg)


class Layer:
    """Base class.  Subclasses set ``type`` and implement ``forward``/``backward``."""

    type: ClassVar[str] = ""
    #: parameter names that L2 regularisation applies to (weights, not biases)
    decay_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}

    # -- building -------------------------------------------------------------------------------
    def build(self, in_shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32,
              next_activation: str | None = None) -> tuple[int, ...]:
        """Create the parameters for a per-sample input shape; return the per-sample output shape.

        ``next_activation`` is the activation that follows (if any), used to pick the
        initialisation (He for ReLU-like, Xavier/Glorot otherwise).
        """
        return self.output_shape(in_shape)

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return in_shape

    def config(self) -> dict[str, Any]:
        return {"type": self.type}

    def describe(self) -> str:
        """One sentence, in the learner's terms, on what this layer does."""
        return ""

    # -- computing ------------------------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, cache: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def param_grads(self, dy: np.ndarray, cache: Any) -> dict[str, np.ndarray]:
        """Only the parameter gradients of :meth:`backward` (training never needs ``dx`` for the
        first layer with parameters).  Override it when skipping ``dx`` saves work."""
        return self.backward(dy, cache)[1]

    def input_grad(self, dy: np.ndarray, cache: Any) -> np.ndarray:
        """Only the input gradient ``dx`` of :meth:`backward` (explanations differentiate with
        respect to the image, never the weights).  Override it when skipping the parameter
        gradients saves work."""
        return self.backward(dy, cache)[0]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


RELU_LIKE = {"relu", "leaky_relu", "elu", "gelu"}


def init_weights(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...],
                 scheme: str, dtype) -> np.ndarray:
    """He (``std = sqrt(2 / fan_in)``) keeps ReLU activations' variance steady layer to layer, since
    ReLU zeroes half its inputs; Xavier/Glorot (``std = sqrt(2 / (fan_in + fan_out))``) does the same
    for activations that are symmetric around 0 (tanh, sigmoid's linear region, identity)."""
    if scheme == "he":
        std = np.sqrt(2.0 / fan_in)
    elif scheme == "xavier":
        std = np.sqrt(2.0 / (fan_in + fan_out))
    else:
        raise ValueError(f"init must be 'he', 'xavier' or 'auto', got {scheme!r}")
    return (rng.standard_normal(shape) * std).astype(dtype)


def resolve_init(init: str, next_activation: str | None) -> str:
    if init != "auto":
        return init
    return "he" if next_activation in RELU_LIKE else "xavier"


@register
class Dense(Layer):
    """Fully connected: ``z = a @ W + b`` — every output is a weighted sum of all the inputs."""

    type = "dense"
    decay_params = ("W",)

    def __init__(self, units: int, init: str = "auto") -> None:
        super().__init__()
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense units must be a whole number >= 1, got {units!r}")
        if init not in ("auto", "he", "xavier"):
            raise ValueError(f"Dense init must be 'auto', 'he' or 'xavier', got {init!r}")
        self.units = int(units)
        self.init = init

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        if len(in_shape) != 1:
            raise ValueError(f"Dense expects a flat input (D,), got per-sample shape {in_shape}; "
                             "put a Flatten layer first")
        (d_in,) = in_shape
        self.init = resolve_init(self.init, next_activation)
        self.params = {
            "W": init_weights(rng, d_in, self.units, (d_in, self.units), self.init, dtype),
            "b": np.zeros(self.units, dtype=dtype),
        }
        return (self.units,)

    def output_shape(self, in_shape):
        return (self.units,)

    def config(self):
        return {"type": self.type, "units": self.units, "init": self.init}

    def describe(self):
        return (f"{self.units} units; each computes a weighted sum of all its inputs plus a bias "
                "(z = W·a + b)")

    def forward(self, x, *, training=False, rng=None):
        return F.linear(x, self.params["W"], self.params["b"]), x  # z: (N, units)

    def backward(self, dz, x):
        dx, dW, db = F.linear_backward(dz, x, self.params["W"])
        return dx, {"W": dW, "b": db}

    def param_grads(self, dz, x):
        dW, db = F.linear_param_grads(dz, x)
        return {"W": dW, "b": db}

    def input_grad(self, dz, x):
        return dz @ self.params["W"].T  # (N, D_out) @ (D_out, D_in): linear_backward's dx


@register
class Activation(Layer):
    """Element-wise non-linearity ``a = g(z)``; without it, stacked dense layers collapse into one."""

    type = "activation"

    def __init__(self, fn: str) -> None:
        super().__init__()
        if fn not in F.ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(F.ACTIVATIONS)}, got {fn!r}")
        self.fn = fn
        self._forward, self._backward = F.ACTIVATIONS[fn]

    def config(self):
        return {"type": self.type, "fn": self.fn}

    def describe(self):
        return {
            "relu": "ReLU: keeps positive sums, sets negative ones to 0 (a = max(0, z))",
            "leaky_relu": "leaky ReLU: like ReLU but lets 1% of a negative sum through",
            "sigmoid": "sigmoid: squashes each sum into 0..1 (a = 1 / (1 + e^-z))",
            "tanh": "tanh: squashes each sum into -1..1",
            "identity": "identity: passes the sum through unchanged",
            "elu": "ELU: like ReLU for positive sums, smoothly saturating at -1 for negative ones",
            "gelu": "GELU: a smooth ReLU that weights each sum by how likely it is to be positive",
        }[self.fn]

    def forward(self, z, *, training=False, rng=None):
        a = self._forward(z)
        return a, (z, a)

    def backward(self, da, cache):
        z, a = cache
        return self._backward(da, z, a), {}


@register
class Flatten(Layer):
    """Unrolls an image ``(C, H, W)`` into one long vector of ``C*H*W`` numbers."""

    type = "flatten"

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def describe(self):
        return "unrolls the image grid row by row into one long list of numbers"

    def forward(self, x, *, training=False, rng=None):
        return x.reshape(x.shape[0], -1), x.shape  # (N, C*H*W)

    def backward(self, dy, shape):
        return dy.reshape(shape), {}


@register
class Dropout(Layer):
    """During training, zeroes each input with probability ``p`` and scales the rest by 1/(1-p)
    ("inverted dropout"), so nothing changes at prediction time, when it is the identity.

    The mask is drawn from the ``rng`` passed to ``forward``; passing a generator in the same state
    gives the same mask (what the gradient checks do).
    """

    type = "dropout"

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p}")
        self.p = float(p)

    def config(self):
        return {"type": self.type, "p": self.p}

    def describe(self):
        return (f"while training, randomly silences {self.p:.0%} of the inputs so no unit can rely "
                "on any single other unit")

    def forward(self, x, *, training=False, rng=None):
        if not training or self.p == 0.0:
            return x, None
        if rng is None:
            raise ValueError("Dropout in training mode needs rng=np.random.Generator (it draws "
                             "which inputs to silence); pass rng=..., or training=False to "
                             "switch dropout off")
        keep = (rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
                >= self.p)
        mask = keep.astype(x.dtype) / (1.0 - self.p)
        return x * mask, mask

    def backward(self, dy, mask):
        return (dy if mask is None else dy * mask), {}
