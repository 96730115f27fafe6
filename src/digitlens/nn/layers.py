"""Layers: each one a forward that returns what its backward needs, and that backward.

A layer holds its parameters (``layer.params``, a dict of arrays such as ``{"W": ..., "b": ...}``)
and its hyper-parameters, but **no state from a forward pass**: ``forward`` returns ``(y, cache)``
and ``backward(dy, cache)`` returns ``(dx, grads)``.  Keeping the cache outside the layer means one
model can serve many requests at once (the web server) and gradients are returned, never applied.

Shapes are per batch: dense layers see ``(N, D)``; image layers (:class:`Conv2D`,
:class:`MaxPool2D`, :class:`GlobalAvgPool2D`) see ``(N, C, H, W)``.
A layer is described by a JSON-able ``config()`` dict whose ``"type"`` names its class in
:data:`LAYER_TYPES`; :func:`layer_from_config` rebuilds it (checkpoints rely on this).

To add a layer type, subclass :class:`Layer` and decorate it with :func:`register`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._util.checks import check_int
from . import functional as F
from .conv import (conv2d, conv2d_backward, conv2d_input_grad, conv2d_param_grads,
                   global_avg_pool, global_avg_pool_backward, maxpool2d, maxpool2d_backward)
from .functional import output_size

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
    """He (``std = sqrt(2 / fan_in)``) keeps ReLU activations' variance steady layer to layer,
    since ReLU zeroes half its inputs; Xavier/Glorot (``std = sqrt(2 / (fan_in + fan_out))``) does
    the same for activations that are symmetric around 0 (tanh, sigmoid's linear region,
    identity)."""
    if scheme == "he":
        std = np.sqrt(2.0 / fan_in)
    elif scheme == "xavier":
        std = np.sqrt(2.0 / (fan_in + fan_out))
    else:
        raise ValueError(f"init must be 'he', 'xavier' or 'auto', got {scheme!r}")
    return (rng.standard_normal(shape) * std).astype(dtype)


INITS = ("auto", "he", "xavier")


def resolve_init(init: str, next_activation: str | None) -> str:
    """The scheme a layer's weights are drawn with: its constructor's choice, or for ``"auto"``
    He before a ReLU-like activation and Xavier otherwise."""
    if init != "auto":
        return init
    return "he" if next_activation in RELU_LIKE else "xavier"


@register
class Dense(Layer):
    """Fully connected: ``z = a @ W + b`` — every output is a weighted sum of all the inputs.

    Parameters
    ----------
    units : number of outputs ``D_out``.
    init : ``"auto"`` (He before a ReLU-like activation, Xavier otherwise: the model decides at
        build time), ``"he"`` or ``"xavier"``.  A scheme given here always wins; after
        :meth:`build`, ``init_used`` says which scheme drew the weights.

    Parameters are ``W`` ``(D_in, D_out)`` and ``b`` ``(D_out,)``.
    """

    type = "dense"
    decay_params = ("W",)

    def __init__(self, units: int, init: str = "auto") -> None:
        super().__init__()
        self.units = check_int("Dense units", units, 1)
        if init not in INITS:
            raise ValueError(f"Dense init must be 'auto', 'he' or 'xavier', got {init!r}")
        self.init = init  # the constructor's choice; build never changes it
        self.init_used: str | None = None  # the scheme build drew the weights with

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        if len(in_shape) != 1:
            raise ValueError(f"Dense expects a flat input (D,), got per-sample shape {in_shape}; "
                             "put a Flatten layer first")
        (d_in,) = in_shape
        self.init_used = resolve_init(self.init, next_activation)
        self.params = {
            "W": init_weights(rng, d_in, self.units, (d_in, self.units), self.init_used, dtype),
            "b": np.zeros(self.units, dtype=dtype),
        }
        return (self.units,)

    def output_shape(self, in_shape):
        return (self.units,)

    def config(self):
        # once built, the scheme the weights were drawn with (what a checkpoint records)
        return {"type": self.type, "units": self.units, "init": self.init_used or self.init}

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
        return F.linear_input_grad(dz, x, self.params["W"])  # linear_backward's dx


@register
class Activation(Layer):
    """Element-wise non-linearity ``a = g(z)``; without it, stacked dense layers collapse into
    one."""

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
        u = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
        if not x.flags.c_contiguous:
            # x is stored otherwise (a flattened batch-last image): the same numbers, copied into
            # x's memory order, so the products here and in backward never mix two layouts (see
            # functional.linear_input_grad)
            u = F.in_layout_of(u, x)
        mask = (u >= self.p).astype(x.dtype) / (1.0 - self.p)
        return x * mask, mask

    def backward(self, dy, mask):
        return (dy if mask is None else dy * mask), {}


# ------------------------------------------------------------------------------ image layers
# They call the fast convolution and pooling of :mod:`digitlens.nn.conv`.


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``; validates integers >= ``minimum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an integer or a pair of integers, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair



@register
class Conv2D(Layer):
    """A bank of small filters, each slid across the image: ``z = W ⋆ x + b``.

    Parameters
    ----------
    filters : number of output channels ``C_out`` (one feature map per filter).
    kernel_size : filter size, ``k`` or ``(kh, kw)``.
    stride : step between positions, ``s`` or ``(sh, sw)``.
    padding : zero rows/columns added on each side, ``p`` or ``(ph, pw)``; ``k // 2`` with stride 1
        keeps the image size.
    init : ``"auto"`` (He before ReLU-like activations, Xavier otherwise), ``"he"``, ``"xavier"``.

    Parameters are ``W`` ``(C_out, C_in, kh, kw)`` and ``b`` ``(C_out,)``, as in PyTorch.

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv2D(8, 3, padding=1)
    >>> conv.build((1, 28, 28), np.random.default_rng(0))
    (8, 28, 28)
    >>> z, cache = conv.forward(np.zeros((2, 1, 28, 28), np.float32))
    >>> z.shape
    (2, 8, 28, 28)
    """

    type = "conv2d"
    decay_params = ("W",)

    def __init__(self, filters: int, kernel_size=3, stride=1, padding=0, init: str = "auto"):
        super().__init__()
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"Conv2D filters must be an integer >= 1, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "Conv2D kernel_size", 1)
        self.stride = _pair(stride, "Conv2D stride", 1)
        self.padding = _pair(padding, "Conv2D padding", 0)
        if init not in INITS:
            raise ValueError(f"Conv2D init must be 'auto', 'he' or 'xavier', got {init!r}")
        self.init = init  # the constructor's choice; build never changes it
        self.init_used: str | None = None  # the scheme build drew the weights with

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"Conv2D expects images (C, H, W), got per-sample shape {in_shape}")
        _, h, w = in_shape
        h_out = output_size(h, self.kernel_size[0], self.stride[0], self.padding[0])
        w_out = output_size(w, self.kernel_size[1], self.stride[1], self.padding[1])
        if h_out < 1 or w_out < 1:
            raise ValueError(f"Conv2D kernel {self.kernel_size} with padding {self.padding} does "
                             f"not fit a {h}x{w} input")
        return (self.filters, h_out, w_out)

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        out = self.output_shape(in_shape)
        c_in = in_shape[0]
        kh, kw = self.kernel_size
        self.init_used = resolve_init(self.init, next_activation)
        # Each output sums C_in*kh*kw inputs (fan-in); each input feeds C_out*kh*kw outputs
        # (fan-out, PyTorch's convention), so the dense-layer initialisations carry over.
        self.params = {
            "W": init_weights(rng, c_in * kh * kw, self.filters * kh * kw,
                              (self.filters, c_in, kh, kw), self.init_used, dtype),
            "b": np.zeros(self.filters, dtype=dtype),
        }
        return out

    def config(self):
        return {"type": self.type, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": list(self.padding),
                "init": self.init_used or self.init}

    def describe(self):
        kh, kw = self.kernel_size
        step = "" if self.stride == (1, 1) else f", moving {self.stride[0]} pixels at a time"
        c_in = self.params["W"].shape[1] if "W" in self.params else 1
        if c_in == 1:
            return (f"{self.filters} filters of {kh}×{kw} weights, each slid across the image"
                    f"{step}: at every position it takes a weighted sum of the pixels under it, so "
                    "each filter makes a map of where its pattern (an edge, a curve, a stroke end) "
                    "appears — the same detector everywhere in the image")
        return (f"{self.filters} filters, each reading a {kh}×{kw} patch of all {c_in} maps below "
                f"it{step}: every filter combines simpler patterns into a bigger one (strokes that "
                "meet, a loop, a corner) and maps where it appears")

    def forward(self, x, *, training=False, rng=None):
        z, cols = conv2d(x, self.params["W"], self.params["b"], self.stride, self.padding)
        return z, (x.shape, cols)  # z: (N, C_out, H_out, W_out)

    def backward(self, dz, cache):
        x_shape, cols = cache
        dx, dW, db = conv2d_backward(dz, cols, x_shape, self.params["W"], self.stride,
                                     self.padding)
        return dx, {"W": dW, "b": db}

    def param_grads(self, dz, cache):
        dW, db = conv2d_param_grads(dz, cache[1], self.params["W"].shape)
        return {"W": dW, "b": db}

    def input_grad(self, dz, cache):
        return conv2d_input_grad(dz, cache[0], self.params["W"], self.stride, self.padding)


@register
class MaxPool2D(Layer):
    """Keeps the largest value in each window (default 2×2, stride 2: halves height and width).

    Parameters
    ----------
    pool_size : window ``k`` or ``(kh, kw)``.
    stride : step between windows; defaults to the window size (non-overlapping windows).
    """

    type = "maxpool2d"

    def __init__(self, pool_size=2, stride=None) -> None:
        super().__init__()
        self.pool_size = _pair(pool_size, "MaxPool2D pool_size", 1)
        self.stride = self.pool_size if stride is None else _pair(stride, "MaxPool2D stride", 1)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"MaxPool2D expects images (C, H, W), got per-sample shape {in_shape}")
        c, h, w = in_shape
        h_out = output_size(h, self.pool_size[0], self.stride[0], 0)
        w_out = output_size(w, self.pool_size[1], self.stride[1], 0)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"MaxPool2D window {self.pool_size} does not fit a {h}x{w} input")
        return (c, h_out, w_out)

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        return self.output_shape(in_shape)

    def config(self):
        return {"type": self.type, "pool_size": list(self.pool_size), "stride": list(self.stride)}

    def describe(self):
        kh, kw = self.pool_size
        return (f"keeps only the strongest response in each {kh}×{kw} block, shrinking every map: "
                "what matters is that a pattern is present nearby, not its exact pixel")

    def forward(self, x, *, training=False, rng=None):
        y, arg = maxpool2d(x, self.pool_size, self.stride)
        return y, (x.shape, arg)  # y: (N, C, H_out, W_out)

    def backward(self, dy, cache):
        x_shape, arg = cache
        return maxpool2d_backward(dy, arg, x_shape, self.pool_size, self.stride), {}


class PoolThenReLU:
    """A ReLU directly followed by max-pooling, computed in the other order while training.

    ReLU never changes which of two numbers is larger (it is non-decreasing), so the largest of
    ``max(0, z)`` over a window is ``max(0, largest z)``: pooling first and then ReLU gives the
    same numbers, on a map 4x smaller (2x2 windows), so the ReLU does a quarter of the work.  The
    gradient is the same too: where a window's largest ``z`` is positive, both orders send the
    gradient to the same pixel (the window's first maximum); where it is not, ReLU's slope is 0
    and both send 0.  Not a layer of the model: :meth:`Sequential.loss_and_grads` uses it in
    place of the two layers, which still hold the settings (tested equal to running them one
    after the other, bit for bit).
    """

    params: dict[str, np.ndarray] = {}  # neither layer has any

    def __init__(self, relu: Activation, pool: MaxPool2D) -> None:
        self.relu, self.pool = relu, pool

    @staticmethod
    def applies(first: Layer, second: Layer) -> bool:
        """Whether ``first`` then ``second`` is a ReLU then a max-pooling layer."""
        return isinstance(first, Activation) and first.fn == "relu" \
            and isinstance(second, MaxPool2D)

    def forward(self, z, *, training=False, rng=None):
        p, pool_cache = self.pool.forward(z)  # (N, C, Ho, Wo): each window's largest z
        a, relu_cache = self.relu.forward(p)  # max(0, ·) of those
        return a, (pool_cache, relu_cache)

    def backward(self, da, cache):
        pool_cache, relu_cache = cache
        dp, _ = self.relu.backward(da, relu_cache)  # 0 where the window's largest z was <= 0
        dz, _ = self.pool.backward(dp, pool_cache)  # to each window's first maximum
        return dz, {}


@register
class GlobalAvgPool2D(Layer):
    """Averages each feature map into one number: ``(C, H, W) -> (C,)``."""

    type = "global_avg_pool2d"

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"GlobalAvgPool2D expects images (C, H, W), got per-sample shape "
                             f"{in_shape}")
        return (in_shape[0],)

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        return self.output_shape(in_shape)

    def describe(self):
        return ("averages each feature map into a single number: how strongly its pattern shows up "
                "anywhere in the image")

    def forward(self, x, *, training=False, rng=None):
        return global_avg_pool(x), x.shape  # (N, C)

    def backward(self, dy, x_shape):
        return global_avg_pool_backward(dy, x_shape), {}
