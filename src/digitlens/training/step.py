"""One training step on one digit, with every number shown: how the weights get their values.

Training repeats one move thousands of times.  Here it is once, on the learner's own digit:

1. the **loss** for the label the learner says is right, ``L = −log p_label`` (softmax cross
   entropy; for the one-sigmoid ``binary`` model the binary cross entropy);
2. its **gradient** ``∂L/∂W`` for every weight, from the engine's own
   :meth:`~digitlens.nn.model.Sequential.loss_and_grads` (nothing re-derived here); one chosen
   unit's weights are kept — for a first-layer Dense unit they form a 28×28 picture, for a
   filter its kernel(s);
3. the **update**, made by the engine's own optimizer on a copy of the model: for SGD
   (:class:`~digitlens.nn.optim.SGD`, no momentum) it is exactly ``ΔW = −lr · ∂L/∂W``; Adam's
   first step moves each weight by about ``lr`` against the sign of its gradient, whatever the
   gradient's size (``m̂/√v̂ = g/|g|`` on step 1);
4. the same digit's **probabilities before and after** the step.

Dropout is off (``training=False``) so the step is a pure function of the digit: the numbers on
the page are reproducible.  The model passed in is never changed.
Notation as in :mod:`digitlens.nn`: ``W``, ``b``, ``z``, ``p``, ``L``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.checks import check_choice, check_int, check_number
from .._util.jsonsafe import map_list, num
from ..nn import topology as T
from ..nn.model import Sequential
from ..nn.optim import Adam, SGD

OPTIMIZERS = ("sgd", "adam")
#: the page's default learning rates: large enough that one step visibly moves the probabilities
DEFAULT_LR = {"sgd": 0.1, "adam": 0.001}


@dataclass
class TrainingStep:
    """One step's numbers (float64).

    Attributes
    ----------
    label : the digit the loss is computed for.
    optimizer, lr : how the step was taken.
    layer, unit : the unit whose weights are shown (a Dense or Conv2D layer's index).
    loss_before, loss_after : the loss on this digit before and after the step.
    p_before, p_after : (K,) the probabilities (or the sigmoid score) before and after.
    grad_W, update_W, W_before : the unit's weights' gradient, change and old values: (D,) for a
        Dense unit (D inputs), (C_in, kh, kw) for a filter.
    grad_b, update_b, b_before : the same for its bias.
    grad_norm : the length of the whole gradient (every parameter).
    update_norm : the length of the whole update.
    """

    model: str
    label: int
    classes: list[int]
    optimizer: str
    lr: float
    layer: int
    unit: int
    loss_before: float
    loss_after: float
    p_before: np.ndarray
    p_after: np.ndarray
    grad_W: np.ndarray
    update_W: np.ndarray
    W_before: np.ndarray
    grad_b: float
    update_b: float
    b_before: float
    grad_norm: float
    update_norm: float
    reads_pixels: bool = False
    grads: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    updates: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def picture(self, a: np.ndarray) -> np.ndarray:
        """A unit's weight-shaped array as a 2-D picture: 28×28 for a Dense unit that reads the
        pixels, a filter's kernel (its kernels summed over the input maps when it reads several),
        else one row of numbers."""
        if self.reads_pixels and a.size == 784:
            return a.reshape(28, 28)
        if a.ndim == 3:
            return a.sum(axis=0)
        return a.reshape(1, -1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every number rounded by :mod:`digitlens._util.jsonsafe` (NaN -> null)."""
        j = int(np.argmax(np.abs(self.grad_W)))  # the weight whose gradient is largest
        idx = [int(i) for i in np.unravel_index(j, self.grad_W.shape)]
        return {
            "model": self.model, "label": self.label, "classes": self.classes,
            "optimizer": self.optimizer, "lr": num(self.lr), "layer": self.layer,
            "unit": self.unit, "reads_pixels": self.reads_pixels,
            "loss_before": num(self.loss_before), "loss_after": num(self.loss_after),
            "p_before": [num(p) for p in self.p_before], "p_after": [num(p) for p in self.p_after],
            "grad": map_list(self.picture(self.grad_W), 6),
            "update": map_list(self.picture(self.update_W), 6),
            "weights": map_list(self.picture(self.W_before), 6),
            "grad_shape": list(self.grad_W.shape),
            "grad_range": [num(self.grad_W.min()), num(self.grad_W.max())],
            "update_range": [num(self.update_W.min()), num(self.update_W.max())],
            "example": {"index": idx, "w": num(self.W_before.flat[j]),
                        "grad": num(self.grad_W.flat[j]), "update": num(self.update_W.flat[j]),
                        "w_after": num(self.W_before.flat[j] + self.update_W.flat[j])},
            "bias": {"b": num(self.b_before), "grad": num(self.grad_b),
                     "update": num(self.update_b)},
            "grad_norm": num(self.grad_norm), "update_norm": num(self.update_norm),
        }


def _unit_slice(model: Sequential, layer: int, unit: int, arrays: dict[str, np.ndarray]
                ) -> tuple[np.ndarray, float]:
    """The ``(W, b)`` slice of unit ``unit`` of layer ``layer`` in a params-like dict."""
    W, b = arrays[f"{layer}.W"], arrays[f"{layer}.b"]
    w = W[:, unit] if model.layers[layer].type == "dense" else W[unit]  # (D,) or (C_in, kh, kw)
    return np.array(w, dtype=np.float64), float(b[unit])


def training_step(model: Sequential, image: np.ndarray, label: int, *, layer: int | None = None,
                  unit: int = 0, optimizer: str = "sgd", lr: float | None = None,
                  name: str = "") -> TrainingStep:
    """Take one training step on one digit, on a float64 copy of ``model``.

    Parameters
    ----------
    model : the trained model (not changed).
    image : (28, 28) in [0, 1]: the digit the network read.
    label : the digit it should be (one of ``model.classes``).
    layer, unit : whose weights to show; ``layer`` defaults to the layer that reads the pixels.
    optimizer : ``"sgd"`` (plain gradient descent: ``ΔW = −lr·∂L/∂W``) or ``"adam"`` (its first
        step, from zero moments).
    lr : learning rate (default :data:`DEFAULT_LR`).

    Returns
    -------
    TrainingStep

    Examples
    --------
    >>> import numpy as np
    >>> from digitlens.nn import build_model
    >>> m = build_model("logistic", np.random.default_rng(0))
    >>> s = training_step(m, np.zeros((28, 28)), 3, layer=1, unit=3)
    >>> bool(s.loss_after < s.loss_before)
    True
    """
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = DEFAULT_LR[optimizer] if lr is None else check_number(
        "lr", lr, "a positive number up to 10", lambda v: 0 < v <= 10)
    if label not in model.classes:
        raise ValueError(f"label must be one of the model's digits {list(model.classes)}, "
                         f"got {label!r}")
    layer = T.pixel_layer(model) if layer is None else layer
    if not 0 <= layer < len(model.layers) or model.layers[layer].type not in T.UNIT_TYPES:
        raise ValueError(f"layer {layer} is not a Dense or Conv2D layer of this model; those "
                         f"are {T.unit_layers(model)}")
    n_units = int(model.layers[layer].params["b"].shape[0])
    unit = check_int("unit", unit, 0, n_units - 1)
    x = np.asarray(image, dtype=np.float64)
    if x.size != 784 or not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise ValueError("image must be 28×28 numbers in [0, 1]")
    m = model.astype(np.float64)  # a copy: the caller's model never moves
    X = x.reshape((1,) + m.input_shape)  # (1, 1, 28, 28)
    y = np.array([label])
    loss, grads, z = m.loss_and_grads(X, y, training=False, return_logits=True)
    p_before = np.asarray(m.output(z), dtype=np.float64)[0]
    params = m.params()
    before = {k: v.copy() for k, v in params.items()}
    opt = SGD(lr, momentum=0.0) if optimizer == "sgd" else Adam(lr)
    opt.step(params, grads)  # the engine's optimizer moves the copy's weights in place
    updates = {k: params[k] - before[k] for k in params}
    z_after = m.forward(X)
    loss_after = float(m.loss_from_logits(z_after, y))
    p_after = np.asarray(m.output(z_after), dtype=np.float64)[0]
    gW, gb = _unit_slice(m, layer, unit, grads)
    uW, ub = _unit_slice(m, layer, unit, updates)
    W0, b0 = _unit_slice(m, layer, unit, before)
    reads = layer == T.pixel_layer(model) and T.input_is_pixels(model, layer)
    norm = lambda d: float(np.sqrt(sum(float(np.vdot(v, v)) for v in d.values())))  # noqa: E731
    return TrainingStep(name or model.name, int(label), [int(c) for c in model.classes],
                        optimizer, float(lr), int(layer), int(unit), float(loss), loss_after,
                        p_before, p_after, gW, uW, W0, gb, ub, b0, norm(grads), norm(updates),
                        reads, grads, updates)
