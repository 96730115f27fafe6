"""``Sequential``: layers applied in order, with every intermediate number available.

The model returns **logits** (the last layer's ``z``); its ``loss`` names both the loss and the
output function that turns logits into the model's answer:

=============================== ============================ =====================================
loss                            output function              targets
=============================== ============================ =====================================
``softmax_cross_entropy``       softmax (sums to 1)          integer class labels
``sigmoid_binary_cross_entropy``sigmoid per output (0..1)    0/1 per output (labels -> one-hot)
``mean_squared_error``          identity (raw scores)        real numbers (labels -> one-hot)
=============================== ============================ =====================================

``loss_and_grads`` returns gradients and never applies them: an optimizer does that
(:mod:`digitlens.nn.optim`), and a gradient check can compare them with finite differences.

Every forward pass runs through one loop, ``Sequential._run``: through
:meth:`Sequential.forward_range`, which runs any slice of the layers (an explanation splits a model
into parts: up to the last hidden layer, the rest), and through :meth:`Sequential.loss_and_grads`,
which runs a ReLU and the max-pooling after it as one step (pooling first; the same numbers, see
:class:`~digitlens.nn.layers.PoolThenReLU`).  Which layer plays which role is asked of
:mod:`digitlens.nn.topology`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import functional as F
from .layers import Activation, Layer, PoolThenReLU, layer_from_config

LOSSES = {
    "softmax_cross_entropy": (F.softmax_cross_entropy, F.softmax),
    "sigmoid_binary_cross_entropy": (F.sigmoid_binary_cross_entropy, F.sigmoid),
    "mean_squared_error": (F.mean_squared_error, F.identity),
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (not its weights)."""

    layers: tuple[dict[str, Any], ...]
    input_shape: tuple[int, ...] = (1, 28, 28)
    loss: str = "softmax_cross_entropy"
    name: str = "custom"
    description: str = ""
    classes: tuple[int, ...] = tuple(range(10))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = [dict(layer) for layer in self.layers]
        d["input_shape"] = list(self.input_shape)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(
            layers=tuple(dict(layer) for layer in d["layers"]),
            input_shape=tuple(int(s) for s in d.get("input_shape", (1, 28, 28))),
            loss=d.get("loss", "softmax_cross_entropy"),
            name=d.get("name", "custom"),
            description=d.get("description", ""),
            classes=tuple(int(c) for c in d.get("classes", range(10))),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass
class LayerTrace:
    """One layer's part in one forward pass."""

    index: int
    name: str  # e.g. "1:dense"
    layer: Layer
    input: np.ndarray
    output: np.ndarray


@dataclass
class Trace:
    """Every intermediate of a forward pass: ``layers[i].output`` is ``layers[i+1].input``."""

    input: np.ndarray
    layers: list[LayerTrace] = field(default_factory=list)
    logits: np.ndarray | None = None
    output: np.ndarray | None = None  # the output function applied to the logits


def input_gradient_through(layers, d: np.ndarray, caches) -> np.ndarray:
    """Backpropagate ``d`` through ``layers`` (the last first, each with its cache from the
    forward pass) asking each only for its input gradient (:meth:`Layer.input_grad`); returns
    the gradient w.r.t. the first layer's input.  ``layers`` may be any run of a model's layers
    (an explanation splits a model into parts)."""
    for layer, cache in zip(reversed(layers), reversed(caches)):
        d = layer.input_grad(d, cache)
    return d


class Sequential:
    """Layers in order.  Build one with :func:`digitlens.nn.zoo.build_model` or directly::

        >>> import numpy as np
        >>> from digitlens.nn import Sequential, Flatten, Dense, Activation
        >>> m = Sequential([Flatten(), Dense(32), Activation("relu"), Dense(10)],
        ...                rng=np.random.default_rng(0))
        >>> m.forward(np.zeros((2, 1, 28, 28), np.float32)).shape
        (2, 10)

    Parameters
    ----------
    layers : list of Layer
    input_shape : per-sample input shape, default ``(1, 28, 28)``.
    loss : one of :data:`LOSSES`.
    rng : Generator used to initialise the weights (required unless ``build=False``).
    dtype : float32 for training, float64 for gradient checks.
    """

    def __init__(self, layers: list[Layer], *, input_shape=(1, 28, 28),
                 loss: str = "softmax_cross_entropy", name: str = "custom",
                 description: str = "", classes=tuple(range(10)),
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 build: bool = True) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.layers = list(layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.loss = loss
        self.name = name
        self.description = description
        self.classes = tuple(int(c) for c in classes)
        self.dtype = np.dtype(dtype)
        self._loss_fn, self._output_fn = LOSSES[loss]
        self.shapes: list[tuple[int, ...]] = []  # per-sample output shape of each layer
        if build:
            if rng is None:
                raise ValueError("building a model needs rng=np.random.Generator "
                                 "(randomness is always explicit)")
            self._build(rng)
        else:
            self._infer_shapes()

    # ----------------------------------------------------------------------------- construction
    def _next_activation(self, i: int) -> str | None:
        """The activation that follows layer ``i`` (skipping dropout), for choosing its init."""
        for layer in self.layers[i + 1:]:
            if isinstance(layer, Activation):
                return layer.fn
            if layer.type != "dropout":
                return None
        return None

    def _build(self, rng: np.random.Generator) -> None:
        shape = self.input_shape
        self.shapes = []
        for i, layer in enumerate(self.layers):
            shape = layer.build(shape, rng, self.dtype, next_activation=self._next_activation(i))
            self.shapes.append(tuple(shape))

    def _infer_shapes(self) -> None:
        shape = self.input_shape
        self.shapes = []
        for layer in self.layers:
            shape = layer.output_shape(shape)
            self.shapes.append(tuple(shape))

    @property
    def config(self) -> ModelConfig:
        return ModelConfig(layers=tuple(layer.config() for layer in self.layers),
                           input_shape=self.input_shape, loss=self.loss, name=self.name,
                           description=self.description, classes=self.classes)

    @classmethod
    def from_config(cls, config: ModelConfig, *, rng: np.random.Generator | None = None,
                    dtype=np.float32, build: bool = True) -> "Sequential":
        return cls([layer_from_config(c) for c in config.layers], input_shape=config.input_shape,
                   loss=config.loss, name=config.name, description=config.description,
                   classes=config.classes, rng=rng, dtype=dtype, build=build)

    # ------------------------------------------------------------------------------- parameters
    def params(self) -> dict[str, np.ndarray]:
        """Live references to every parameter, keyed ``"<layer index>.<name>"`` (e.g. ``"1.W"``)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Copy values into the existing parameter arrays (shapes must match exactly)."""
        own = self.params()
        if set(own) != set(params):
            missing, extra = sorted(set(own) - set(params)), sorted(set(params) - set(own))
            raise ValueError(f"parameter names differ: missing {missing}, unexpected {extra}")
        for k, v in params.items():
            if own[k].shape != np.shape(v):
                raise ValueError(f"parameter {k}: expected shape {own[k].shape}, got {np.shape(v)}")
            own[k][...] = v

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params().values()))

    def copy(self) -> "Sequential":
        return copy.deepcopy(self)

    def astype(self, dtype) -> "Sequential":
        """A copy whose parameters (and computations) use ``dtype``."""
        m = self.copy()
        m.dtype = np.dtype(dtype)
        for layer in m.layers:
            layer.params = {k: v.astype(dtype) for k, v in layer.params.items()}
        return m

    # ---------------------------------------------------------------------------------- forward
    def as_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` checked as a batch of this model's inputs ``(N, *input_shape)`` of floats, in the
        model's dtype (converted once, so a caller can reuse it batch after batch)."""
        x = np.asarray(x)
        if x.shape[1:] != self.input_shape:
            dims = ", ".join(map(str, self.input_shape))
            if x.shape == self.input_shape:
                raise ValueError(f"expected a batch of shape (N, {dims}), got a single sample of "
                                 f"shape {x.shape}; use x[None]")
            raise ValueError(f"expected input of shape (N, {dims}), got {x.shape}")
        if x.dtype.kind != "f":
            # uint8 pixels 0..255 would be read as intensities 255 times too bright
            raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}"
                             + (" (divide uint8 pixels by 255)" if x.dtype.kind in "ui" else ""))
        return x.astype(self.dtype, copy=False)

    def forward_range(self, x: np.ndarray, start: int = 0, stop: int | None = None, *,
                      caches: bool = False, training: bool = False,
                      rng: np.random.Generator | None = None):
        """Run layers ``start`` to ``stop - 1`` (a slice of ``self.layers``) on ``x``: the one
        forward loop every other pass uses.

        Parameters
        ----------
        x : the input of layer ``start``: ``(N, *input_shape)`` when ``start == 0`` (checked as
            :meth:`forward` does), otherwise what layer ``start - 1`` outputs, e.g. ``(N, D)``.
            It is cast to the model's dtype.
        start, stop : the slice, as in ``self.layers[start:stop]`` (``stop=None``: to the end).
        caches : also return each layer's cache, for :meth:`input_gradient` /
            :func:`input_gradient_through` over the same slice.
        training, rng : dropout on (it needs ``rng``), as in :meth:`loss_and_grads`.

        Returns
        -------
        a : the output of layer ``stop - 1`` (``x`` itself, cast, for an empty slice).
        caches : list, one per layer of the slice, only with ``caches=True``.

        Examples
        --------
        >>> import numpy as np
        >>> from digitlens.nn import build_model
        >>> m = build_model("lab", np.random.default_rng(0))
        >>> x = np.zeros((2, 1, 28, 28), np.float32)
        >>> h = m.forward_range(x, 0, 3)          # (2, 25): the first hidden layer after ReLU
        >>> bool(np.array_equal(m.forward_range(h, 3), m.forward(x)))
        True
        """
        n = len(self.layers)
        stop = n if stop is None else stop
        if not (isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer))
                and 0 <= start <= stop <= n):
            raise ValueError(f"need 0 <= start <= stop <= {n} (the number of layers), got "
                             f"start={start!r}, stop={stop!r}")
        a = self.as_input(x) if start == 0 else np.asarray(x).astype(self.dtype, copy=False)
        steps = list(enumerate(self.layers))[start:stop]
        return self._run(steps, a, caches=caches, training=training, rng=rng)

    @staticmethod
    def _run(steps, a, *, caches: bool, training: bool, rng):
        """The forward loop: ``steps`` is a list of ``(layer index, layer)``; returns the output
        (and the caches)."""
        kept = []
        for _, layer in steps:
            a, cache = layer.forward(a, training=training, rng=rng)
            if caches:
                kept.append(cache)
        return (a, kept) if caches else a

    def _training_steps(self) -> list:
        """What :meth:`loss_and_grads` runs: ``(index, layer)`` for every layer, except that a
        ReLU directly followed by max-pooling runs as one
        :class:`~digitlens.nn.layers.PoolThenReLU` (pooling first: the same numbers and
        gradients, with a quarter of the ReLU's work)."""
        steps, i = [], 0
        while i < len(self.layers):
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if nxt is not None and PoolThenReLU.applies(self.layers[i], nxt):
                steps.append((i, PoolThenReLU(self.layers[i], nxt)))
                i += 2
            else:
                steps.append((i, self.layers[i]))
                i += 1
        return steps

    def forward_with_caches(self, x: np.ndarray, *, training: bool = False,
                            rng: np.random.Generator | None = None):
        """Run every layer; return ``(logits, caches)`` for :meth:`backward`."""
        return self.forward_range(x, caches=True, training=training, rng=rng)

    def forward(self, x: np.ndarray, *, trace: bool = False, training: bool = False,
                rng: np.random.Generator | None = None):
        """Logits ``(N, K)`` for inputs ``(N, *input_shape)``; with ``trace=True`` a :class:`Trace`
        holding every layer's input and output, the logits and the output function's result."""
        if not trace:
            return self.forward_range(x, training=training, rng=rng)
        a = self.as_input(x)
        tr = Trace(input=a)
        for i, layer in enumerate(self.layers):
            out = self.forward_range(a, i, i + 1, training=training, rng=rng)
            tr.layers.append(LayerTrace(i, f"{i}:{layer.type}", layer, a, out))
            a = out
        tr.logits = a
        tr.output = self._output_fn(a)
        return tr

    def output(self, logits: np.ndarray) -> np.ndarray:
        """The output function (softmax, sigmoid or identity) applied to logits."""
        return self._output_fn(logits)

    def predict_proba(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Scores per class after the output function (probabilities for softmax models)."""
        x = np.asarray(x)
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise ValueError("input contains NaN or inf")
        outs = [self._output_fn(self.forward(x[i:i + batch_size]))
                for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, len(self.classes)), self.dtype)

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Predicted class labels ``(N,)``."""
        scores = self.predict_proba(x, batch_size)
        if scores.shape[1] == 1:  # one sigmoid unit: P(second class)
            idx = (scores[:, 0] >= 0.5).astype(np.int64)
        else:
            idx = scores.argmax(axis=1)
        return np.asarray(self.classes)[idx]

    # --------------------------------------------------------------------------------- backward
    def backward(self, dout: np.ndarray, caches: list) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Backpropagate ``dout`` (gradient w.r.t. the logits) through every layer.

        Returns ``(dx, grads)``: the gradient w.r.t. the input ``(N, *input_shape)`` (what
        saliency maps are made of) and a dict keyed like :meth:`params`.
        """
        return self._backward(dout, caches, need_input_grad=True)

    def input_gradient(self, dout: np.ndarray, caches: list) -> np.ndarray:
        """Only the ``dx`` of :meth:`backward`: the gradient w.r.t. the input, without computing
        any parameter gradient (what attributions need; about half the work of a conv layer's
        backward)."""
        return input_gradient_through(self.layers, dout, caches)

    def _backward(self, dout, caches, *, need_input_grad: bool, steps=None):
        """The backward pass over ``steps`` (default: every layer; the caches are the forward's,
        one per step); without ``need_input_grad`` it stops at the first layer that has
        parameters and asks it only for its parameter gradients.  Training never needs ``dx``
        for the image, and for the first dense layer it is a whole ``(N, D_out) @ (D_out, 784)``
        matmul -- a third of the matmul work of a one-hidden-layer network."""
        steps = list(enumerate(self.layers)) if steps is None else steps
        grads: dict[str, np.ndarray] = {}
        d = dout
        first = 0
        if not need_input_grad:
            first = next((k for k, (_, layer) in enumerate(steps) if layer.params), len(steps))
        for k in range(len(steps) - 1, first - 1, -1):
            i, layer = steps[k]
            if k == first and not need_input_grad:
                g = layer.param_grads(d, caches[k])
                d = None
            else:
                d, g = layer.backward(d, caches[k])
            for name, v in g.items():
                grads[f"{i}.{name}"] = v
        return d, grads

    def targets(self, y: np.ndarray, n_out: int) -> np.ndarray:
        """Turn labels into what the loss compares against (one-hot for BCE/MSE with K > 1)."""
        y = np.asarray(y)
        if self.loss == "softmax_cross_entropy":
            return self.class_index(y)
        if y.ndim == 1 and n_out > 1:
            return F.one_hot(self.class_index(y), n_out, self.dtype)
        if y.ndim == 1 and n_out == 1:
            return self.class_index(y).astype(self.dtype)
        return y.astype(self.dtype)

    def class_index(self, y: np.ndarray) -> np.ndarray:
        """Map labels (e.g. digits 0 and 1 for the binary model) to output indices."""
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            if y.dtype.kind != "f" or not np.all(y == np.round(y)):
                raise ValueError(f"labels must be whole numbers (class labels), got dtype "
                                 f"{y.dtype}")
        if self.classes == tuple(range(len(self.classes))):
            idx = y.astype(np.int64, copy=False)
        else:
            lut = {c: i for i, c in enumerate(self.classes)}
            try:
                idx = np.array([lut[int(v)] for v in y], dtype=np.int64)
            except KeyError as e:
                raise ValueError(f"label {e.args[0]} is not one of this model's classes "
                                 f"{self.classes}") from None
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.classes)):
            raise ValueError(f"labels must be in {self.classes}, got values in "
                             f"[{idx.min()}, {idx.max()}]")
        return idx

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, *, l2: float = 0.0,
                       training: bool = True, rng: np.random.Generator | None = None,
                       return_logits: bool = False, label_smoothing: float = 0.0,
                       scale: float = 1.0):
        """Mean loss on the batch and its gradient for every parameter.  Nothing is updated.

        Parameters
        ----------
        x : (N, *input_shape) inputs.
        y : (N,) labels (or targets shaped like the logits for BCE/MSE).
        l2 : L2 strength λ; adds ``λ/2 · Σ W²`` over weights (not biases) to the loss.
        training : dropout active (needs ``rng``) when True.
        label_smoothing : ε in ``[0, 1)``: train towards ``(1-ε)·onehot + ε/K`` instead of the
            one-hot labels (softmax cross-entropy only; see
            :func:`~digitlens.nn.functional.softmax_cross_entropy`).  The loss returned is the
            smoothed one; :meth:`loss_from_logits` (test loss) stays the plain loss.

        Returns
        -------
        loss : float
        grads : dict like :meth:`params`
        logits : (N, K), only with ``return_logits=True``
        """
        if label_smoothing and self.loss != "softmax_cross_entropy":  # (its range: the loss's)
            raise ValueError(f"label_smoothing needs the softmax_cross_entropy loss; this "
                             f"model's loss is {self.loss!r} (got label_smoothing="
                             f"{label_smoothing!r})")
        steps = self._training_steps()
        z, caches = self._run(steps, self.as_input(x), caches=True, training=training, rng=rng)
        if label_smoothing:
            loss, dz = F.softmax_cross_entropy(z, self.targets(y, z.shape[1]), label_smoothing)
        else:
            loss, dz = self._loss_fn(z, self.targets(y, z.shape[1]))
        if scale != 1.0:
            loss *= scale
            dz *= np.asarray(scale, dz.dtype)  # (N, K): every gradient below scales with it
        _, grads = self._backward(dz, caches, need_input_grad=False, steps=steps)
        if l2:
            for i, layer in enumerate(self.layers):
                for k in layer.decay_params:
                    W = layer.params[k]
                    loss += 0.5 * l2 * float(np.vdot(W, W))
                    grads[f"{i}.{k}"] = grads[f"{i}.{k}"] + l2 * W
        return (loss, grads, z) if return_logits else (loss, grads)

    def loss_from_logits(self, z: np.ndarray, y: np.ndarray, *, grad: bool = False):
        """The mean loss of logits ``z`` ``(N, K)`` against labels ``y`` ``(N,)`` (or targets
        shaped like ``z``), computed by the model's loss; nothing else is run.

        With ``grad=True`` returns ``(loss, dz)``, ``dz = ∂loss/∂z`` ``(N, K)`` (what
        :meth:`backward` takes), else the loss alone (a float).
        """
        loss, dz = self._loss_fn(z, self.targets(y, z.shape[1]))
        return (loss, dz) if grad else loss

    # ------------------------------------------------------------------------------ description
    def summary(self) -> list[dict[str, Any]]:
        """One row per layer: index, type, output shape, parameter count, what it does."""
        rows = []
        for i, (layer, shape) in enumerate(zip(self.layers, self.shapes)):
            rows.append({"index": i, "type": layer.type, "config": layer.config(),
                         "output_shape": list(shape),
                         "params": int(sum(p.size for p in layer.params.values())),
                         "describe": layer.describe()})
        return rows

    def _repr_html_(self) -> str:
        from .model_html import model_html  # a notebook's view: a table of the layers

        return model_html(self)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential(name={self.name!r}, [{inner}], loss={self.loss!r})"
