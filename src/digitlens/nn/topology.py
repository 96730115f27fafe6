"""Which layer of a :class:`~digitlens.nn.model.Sequential` does what, asked in one place.

An explanation needs to know the roles of a model's layers: which layer reads the pixels (its
weights are pictures), which Dense layer produces the logits (the logit gap splits exactly over
its inputs), which Dense layer feeds it (the "last hidden layer", where nearest neighbours are
measured), where the convolution blocks are, and which leading layers are one affine map of the
image (integrated gradients and occlusion take a shortcut through them).  These questions are
answered here, from the layers' ``type`` and :attr:`Activation.fn <digitlens.nn.layers.Activation>`
alone, so no explainer re-discovers the structure with its own string checks.

Every function takes the model (anything with ``.layers`` and ``.shapes``, i.e. a ``Sequential``)
and returns layer indices into ``model.layers``.  Nothing here runs the model.

>>> import numpy as np
>>> from digitlens.nn import build_model
>>> m = build_model("lab", np.random.default_rng(0))  # Flatten, Dense, ReLU, Dense, ReLU, Dense
>>> pixel_layer(m), unit_output(m, 1), final_dense(m), last_hidden_dense(m)
(1, 2, 5, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

from .layers import Activation, Layer

#: layer types whose units have weights (a Dense unit, a Conv2D filter)
UNIT_TYPES = ("dense", "conv2d")
#: layer types that pass numbers through unchanged when the model predicts
_PASS_THROUGH = ("dropout",)


def activation_fn(layer: Layer) -> str | None:
    """The activation function's name (``"relu"``, ...) for an :class:`Activation`, else None."""
    return layer.fn if isinstance(layer, Activation) else None


def is_identity(layer: Layer) -> bool:
    """True for a layer that changes nothing at prediction time: dropout, identity activation."""
    return layer.type in _PASS_THROUGH or activation_fn(layer) == "identity"


def unit_layers(model) -> list[int]:
    """Indices of the layers whose units have weights (Dense and Conv2D), first to last."""
    return [i for i, layer in enumerate(model.layers) if layer.type in UNIT_TYPES]


def pixel_layer(model) -> int:
    """The layer that reads the pixels: the first Dense or Conv2D layer (its weights, drawn as
    pictures, are the units' templates).  Raises ``ValueError`` if there is none."""
    units = unit_layers(model)
    if not units:
        raise ValueError("the model has no Dense or Conv2D layer")
    return units[0]


def unit_output(model, index: int) -> int:
    """The layer whose output is the activation of the units of layer ``index``: the activation
    right after it, if there is one, else the layer itself."""
    nxt = index + 1
    if nxt < len(model.layers) and model.layers[nxt].type == "activation":
        return nxt
    return index


def first_unit_layer(model) -> tuple[int, int, str]:
    """``(weights_layer, output_layer, kind)`` of the first Dense or Conv2D layer: the layer that
    holds the templates, the layer whose output is the units' activation (the following
    activation function, if any), and ``"dense"`` or ``"conv"``."""
    i = pixel_layer(model)
    return i, unit_output(model, i), ("dense" if model.layers[i].type == "dense" else "conv")


def logit_layer(model) -> int:
    """The pre-softmax layer: the last layer that changes the numbers (trailing dropout and
    identity activations pass its output to the output function unchanged)."""
    for i in range(len(model.layers) - 1, -1, -1):
        if not is_identity(model.layers[i]):
            return i
    raise ValueError("the model has no layer that computes anything")


def final_dense(model) -> int:
    """Index of the Dense layer that produces the logits (only dropout and identity activations
    may follow it).  Raises ``ValueError`` when the logits come from another kind of layer."""
    i = logit_layer(model) if model.layers else -1
    if i >= 0 and model.layers[i].type == "dense":
        return i
    raise ValueError("the model's logits do not come straight from a Dense layer, so the logit "
                     "gap cannot be split over the last hidden layer")


def last_hidden_dense(model, final: int | None = None) -> int | None:
    """The Dense layer whose (activated) output feeds the final Dense layer ``final`` (default:
    :func:`final_dense`), or None when something else (a Flatten, a pooling) comes between."""
    final = final_dense(model) if final is None else final
    for i in range(final - 1, -1, -1):
        kind = model.layers[i].type
        if kind == "dense":
            return i
        if kind not in ("activation", "dropout"):
            return None
    return None


def input_is_pixels(model, index: int) -> bool:
    """True when layer ``index`` reads the image itself: only Flatten and dropout come before it
    (a model with no hidden layer has its final Dense layer reading the pixels)."""
    return all(layer.type in ("flatten", "dropout") for layer in model.layers[:index])


def pixel_dense(model, index: int) -> int | None:
    """If the input of layer ``index`` is ``g(Dense(Flatten(image)))`` (units that read the pixels
    directly), that Dense layer's index (its weight columns are the units' templates), else None."""
    kinds = [layer.type for layer in model.layers[:index]]
    core = [k for k in kinds if k != "dropout"]
    if core in (["flatten", "dense", "activation"], ["flatten", "dense"]):
        return kinds.index("dense")
    return None


def flattened_from(model, index: int) -> tuple[int, ...] | None:
    """The per-sample shape ``(C, H, W)`` that a Flatten turned into the input of layer
    ``index`` (skipping dropout), or None when its input is not a flattened stack of maps."""
    i = index - 1
    while i >= 0 and model.layers[i].type == "dropout":
        i -= 1
    if i >= 1 and model.layers[i].type == "flatten":
        shape = tuple(model.shapes[i - 1])  # per-sample shape before flattening
        if len(shape) == 3:
            return shape
    return None


def linear_prefix(model) -> int:
    """How many leading layers together form an affine map of the input (flatten, dense, conv2d,
    dropout — the identity when not training — and identity activations), provided they hold
    parameters; 0 if none.

    Along the integrated-gradients path ``x' + α (x − x')`` such a prefix's output is exactly
    ``p(x') + α (p(x) − p(x'))``, and its input gradient does not depend on where it is taken.
    Both facts let integrated gradients run the prefix on two images instead of every path point
    and backpropagate through it once, for the weighted sum of the path's gradients.  For ``mlp``
    the prefix (784 → 256) is most of the arithmetic.
    """
    n = 0
    for layer in model.layers:
        if not (layer.type in ("flatten", "dense", "conv2d") or is_identity(layer)):
            break
        n += 1
    return n if any(layer.params for layer in model.layers[:n]) else 0


def is_linear(model) -> bool:
    """True when the logits are an affine function of the pixels (one Dense layer, no hidden
    layer): then gradient × input is exactly each pixel's term in the logit."""
    kinds = [layer.type for layer in model.layers]
    acts = [activation_fn(layer) for layer in model.layers if layer.type == "activation"]
    return (kinds.count("dense") == 1 and all(k in ("flatten", "dense", "dropout", "activation")
                                              for k in kinds)
            and all(f == "identity" for f in acts))


@dataclass(frozen=True)
class ConvBlock:
    """One round of convolution: the Conv2D layer, its activation and its pooling (None: absent)."""

    conv: int
    activation: int | None
    pool: int | None


def conv_blocks(model) -> list[ConvBlock]:
    """The model's convolution blocks, in order (empty for a model without Conv2D layers)."""
    blocks = []
    layers = model.layers
    for i, layer in enumerate(layers):
        if layer.type != "conv2d":
            continue
        act = pool = None
        j = i + 1
        if j < len(layers) and layers[j].type == "activation":
            act, j = j, j + 1
        if j < len(layers) and layers[j].type in ("maxpool2d", "global_avg_pool2d"):
            pool = j
        blocks.append(ConvBlock(i, act, pool))
    return blocks


def has_dropout(model) -> bool:
    """Whether ``model`` drops units at random while it trains (so its training accuracy, measured
    with dropout on, reads lower than its test accuracy)."""
    return any(layer.type == "dropout" for layer in model.layers)


def is_convolutional(model) -> bool:
    """True when the model has at least one Conv2D layer."""
    return any(layer.type == "conv2d" for layer in model.layers)
