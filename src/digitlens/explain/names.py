"""Names for people: every layer and every unit of a model, as a learner would say them.

A model is a list of layers, but "layer 4" and "unit 44 of layer 11" are list positions, not
names.  This module is the one place that turns positions into names, so the page (through the
API), the CLI and the figures all say the same thing:

============================  ====================================  =========
layer                         name                                  key
============================  ====================================  =========
the first Conv2D              convolution 1 (16 filters)            conv1
a Dense layer feeding others  hidden layer 1 (256 units)            hidden1
the Dense layer of the logits output layer (10 digits)               output
a max-pooling after conv k    max-pooling after convolution k       pool{k}
============================  ====================================  =========

Units are named within their layer: "filter 7 of convolution 2", "unit 44 of hidden layer 1",
"the output unit for the digit 3".  :func:`parse_unit` reads the short form a learner types on
the command line (``"conv2:7"``, ``"hidden1:44"``, ``"output:3"``) back into list positions.

>>> import numpy as np
>>> from digitlens.nn import build_model
>>> m = build_model("mlp", np.random.default_rng(0))
>>> [n.name for n in layer_names(m) if n.key]
['hidden layer 1 (256 units)', 'hidden layer 2 (128 units)', 'output layer (10 digits)']
>>> unit_name(m, 1, 44), parse_unit(m, "hidden1:44")
('unit 44 of hidden layer 1', (1, 44))
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ..errors import UnknownUnitError
from ..nn import topology as T

#: how an activation function is called in a sentence
ACTIVATION_NAMES = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "sigmoid": "sigmoid",
                    "tanh": "tanh", "identity": "identity", "elu": "ELU", "gelu": "GELU"}


@dataclass(frozen=True)
class LayerName:
    """One layer's name.

    Attributes
    ----------
    index : its position in ``model.layers`` (for the code; never shown to a learner).
    type : the layer type (``"dense"``, ``"conv2d"``, ...).
    name : the full name, with its size: ``"convolution 2 (32 filters)"``.
    short : the name without the size: ``"convolution 2"``.
    key : the short form typed on the command line (``"conv2"``, ``"hidden1"``, ``"output"``,
        ``"pool1"``), or None for a layer nobody addresses (flatten, dropout, activations).
    n_units : units (filters) with weights, for Dense and Conv2D layers; else None.
    """

    index: int
    type: str
    name: str
    short: str
    key: str | None
    n_units: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _output_size(model) -> str:
    n_out = model.shapes[T.final_dense(model)][0] if model.layers else 0
    if n_out == len(model.classes):
        return f"{n_out} digits"
    return f"{n_out} unit" + ("" if n_out == 1 else "s")


def _unit_layer_name(model, i: int, counts: dict[str, int]) -> LayerName:
    layer = model.layers[i]
    n = int(layer.params["b"].shape[0]) if "b" in layer.params else int(model.shapes[i][0])
    if layer.type == "conv2d":
        counts["conv"] += 1
        short = f"convolution {counts['conv']}"
        return LayerName(i, layer.type, f"{short} ({n} filter{'s' * (n != 1)})", short,
                         f"conv{counts['conv']}", n)
    if i == T.logit_layer(model):
        return LayerName(i, layer.type, f"output layer ({_output_size(model)})", "output layer",
                         "output", n)
    counts["dense"] += 1
    short = f"hidden layer {counts['dense']}"
    return LayerName(i, layer.type, f"{short} ({n} unit{'s' * (n != 1)})", short,
                     f"hidden{counts['dense']}", n)


def layer_names(model) -> list[LayerName]:
    """Every layer's :class:`LayerName`, in order (``layer_names(m)[i]`` names ``m.layers[i]``).

    Dense and Conv2D layers are counted by kind ("convolution 2", "hidden layer 1"); the Dense
    layer that gives the logits is the "output layer".  The other layers are named after the
    one they serve: "ReLU of hidden layer 1", "max-pooling after convolution 1".
    """
    counts = {"conv": 0, "dense": 0}
    names: list[LayerName] = []
    owner: LayerName | None = None  # the last layer with units
    for i, layer in enumerate(model.layers):
        kind = layer.type
        if kind in T.UNIT_TYPES:
            owner = _unit_layer_name(model, i, counts)
            names.append(owner)
            continue
        of = f" of {owner.short}" if owner else ""
        if kind == "activation":
            fn = ACTIVATION_NAMES.get(layer.fn, layer.fn)
            names.append(LayerName(i, kind, f"{fn}{of}", f"{fn}{of}", None, None))
        elif kind == "maxpool2d":
            k = counts["conv"]
            short = f"max-pooling after convolution {k}" if k else "max-pooling"
            names.append(LayerName(i, kind, f"{short} ({'×'.join(map(str, model.shapes[i]))})",
                                   short, f"pool{k}" if k else None, None))
        elif kind == "global_avg_pool2d":
            names.append(LayerName(i, kind, f"average of each map{of}", "average of each map",
                                   None, None))
        elif kind == "flatten":
            n = int(model.shapes[i][0])
            names.append(LayerName(i, kind, f"flatten (the maps as one list of {n} numbers)"
                                   if i else f"flatten (the image as {n} numbers)", "flatten",
                                   None, None))
        elif kind == "dropout":
            names.append(LayerName(i, kind, "dropout (only while training)", "dropout", None,
                                   None))
        else:
            names.append(LayerName(i, kind, kind, kind, None, None))
    return names


def layer_name(model, index: int) -> str:
    """The full name of layer ``index`` (``"convolution 2 (32 filters)"``)."""
    return layer_names(model)[index].name


def unit_name(model, layer: int, unit: int) -> str:
    """A unit's name: ``"filter 7 of convolution 2"``, ``"unit 44 of hidden layer 1"``, ``"the
    output unit for the digit 3"`` (a one-output model: ``"the output unit (the chance of a
    1)"``)."""
    n = layer_names(model)[layer]
    if n.key == "output":
        if n.n_units == len(model.classes):
            return f"the output unit for the digit {model.classes[unit]}"
        return f"the output unit (the chance of a {model.classes[-1]})"
    what = "filter" if n.type == "conv2d" else "unit"
    return f"{what} {unit} of {n.short}"


def unit_keys(model) -> list[str]:
    """The layer keys :func:`parse_unit` accepts for this model (``["conv1", "conv2",
    "hidden1", "output"]``)."""
    return [n.key for n in layer_names(model) if n.n_units is not None]


_SPEC = re.compile(r"^\s*([a-z]+\d*)\s*:\s*(\d+)\s*$")


def parse_unit(model, spec: str) -> tuple[int, int]:
    """``(layer index, unit)`` for a unit named the short way: ``"conv2:7"`` (filter 7 of the
    second convolution), ``"hidden1:44"``, or ``"output:3"`` (the output unit for the digit 3).

    Raises
    ------
    UnknownUnitError
        ``"unknown_layer"``: no layer has that key (the message lists the model's keys);
        ``"unknown_unit"``: the layer has no such unit, or the model no such digit.
    """
    keys = unit_keys(model)
    m = _SPEC.match(str(spec).lower())
    if not m:
        raise UnknownUnitError("unknown_layer", f"name a unit as LAYER:NUMBER, e.g. "
                               f"'{keys[0]}:0'; this model's layers are {keys}, got {spec!r}")
    key, number = m.group(1), int(m.group(2))
    found = [n for n in layer_names(model) if n.key == key and n.n_units is not None]
    if not found:
        raise UnknownUnitError("unknown_layer", f"this model has no layer {key!r}; its layers "
                               f"are {keys}")
    n = found[0]
    if key == "output" and n.n_units == len(model.classes):
        if number not in model.classes:
            raise UnknownUnitError("unknown_unit", f"the output layer has one unit per digit "
                                   f"{list(model.classes)}, not {number}")
        return n.index, list(model.classes).index(number)
    if not 0 <= number < n.n_units:
        raise UnknownUnitError("unknown_unit", f"{n.name} has units 0 to {n.n_units - 1}, "
                               f"not {number}")
    return n.index, number
