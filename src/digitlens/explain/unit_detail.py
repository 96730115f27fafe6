"""What one unit (a Dense unit or a Conv2D filter) looks for: the page's unit card, as plain data.

A unit that reads the pixels has a fixed template: a Dense unit's 784 weights drawn as a 28×28
picture, or a filter's small grid of weights.  A unit deeper in the network reads other units, so
it has no fixed picture; around one image, the input gradient of its activation shows what it
responds to.  With a :class:`~digitlens.explain.units.UnitAtlas`, the card also lists the training
digits that excite the unit most (for the first layer's units and the last hidden layer's).

:func:`unit_detail` returns a JSON-ready dict; :meth:`digitlens.recognizer.Recognizer.unit_detail`
calls it with the recognizer's cached atlas.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._util.jsonsafe import map_list, num
from ..errors import NotAUnitLayerError, UnknownUnitError
from ..nn import topology as T
from ..nn.model import Sequential
from . import words
from .result import Example
from .units import UnitAtlas, unit_input_gradients

#: how many of a unit's most exciting training digits the card lists
TOP_EXAMPLES = 8


def check_unit(model: Sequential, layer: int, unit: int, name: str = "") -> None:
    """Raise :class:`~digitlens.errors.UnknownUnitError` (``"unknown_layer"`` or
    ``"unknown_unit"``) or :class:`~digitlens.errors.NotAUnitLayerError` unless layer ``layer`` of
    ``model`` is a Dense or Conv2D layer with a unit ``unit``."""
    if not 0 <= layer < len(model.layers):
        raise UnknownUnitError("unknown_layer", f"the {name!r} model has layers 0 to "
                               f"{len(model.layers) - 1}, not {layer}")
    L = model.layers[layer]
    if L.type not in T.UNIT_TYPES:
        raise NotAUnitLayerError(f"layer {layer} ({L.type}) has no units; units with weights live "
                                 "in dense and conv2d layers")
    n_units = int(L.params["b"].shape[0])
    if not 0 <= unit < n_units:
        raise UnknownUnitError("unknown_unit", f"layer {layer} has units 0 to {n_units - 1}, "
                               f"not {unit}")


def _check_image(image) -> np.ndarray:
    x = np.asarray(image, dtype=np.float64)
    if x.shape != (28, 28) or not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise ValueError("image must be 28 rows of 28 numbers in [0, 1]")
    return x


def _template(model: Sequential, layer: int, unit: int, image, gradient_model) -> dict[str, Any]:
    """The card's template keys: the unit's weights or filter when it reads the pixels, else its
    input gradient at ``image`` (a Dense unit, when an image is given), else nothing."""
    L = model.layers[layer]
    w = L.params["W"][:, unit] if L.type == "dense" else L.params["W"][unit]
    reads_pixels = T.pixel_dense(model, layer + 1) == layer or layer == T.pixel_layer(model)
    if reads_pixels and L.type == "dense" and w.size == 784:
        t = np.asarray(w, dtype=np.float64).reshape(28, 28)  # its 784 weights as a picture
        return {"template": map_list(t), "template_kind": "weights",
                "template_caption": words.UNIT_WEIGHTS_CAPTION, "sentence": words.pixel_unit(t)}
    if reads_pixels and L.type == "conv2d":
        f = np.asarray(w, dtype=np.float64).sum(axis=0)  # (kh, kw) over input channels
        return {"template": map_list(f), "template_kind": "filter",
                "template_caption": words.filter_caption(*f.shape),
                "sentence": words.FILTER_SENTENCE}
    out: dict[str, Any] = {}
    if image is not None:
        x = _check_image(image)
        if L.type == "dense":
            # the unit's activation (the layer after its activation function reads it), not
            # just its weighted sum
            nxt = T.unit_output(model, layer) + 1
            gm = gradient_model() if callable(gradient_model) else gradient_model
            g = unit_input_gradients(gm, x, nxt, [unit])[0]  # (28, 28)
            out = {"template": map_list(g), "template_kind": "input_gradient",
                   "template_caption": words.UNIT_GRADIENT_CAPTION,
                   "sentence": words.DEEP_UNIT_SENTENCE}
    if not out.get("sentence") and L.type == "dense":
        out["sentence"] = words.DEEP_UNIT_NO_IMAGE
    return out


def _top_examples(model: Sequential, layer: int, unit: int, atlas: UnitAtlas) -> list[dict]:
    """The training digits exciting the unit most, when the atlas holds its layer (the first
    layer's units, or the last hidden layer's)."""
    acts = top = None
    if layer == atlas.first_layer:
        acts, top = atlas.first[:, unit], atlas.first_top[unit]
    elif T.last_hidden_dense(model, atlas.hidden_layer) == layer:
        acts, top = atlas.hidden[:, unit], atlas.hidden_top[unit]
    if top is None:
        return []
    # as in explanations: training digits travel as 8-bit PNG data URLs (exact)
    return [{**Example(int(i), int(atlas.y[i]), atlas.x[i, 0]).to_dict(),
             "activation": num(float(acts[i]))} for i in top[:TOP_EXAMPLES]]


def unit_detail(model: Sequential, layer: int, unit: int, *,
                atlas: UnitAtlas | Callable[[], UnitAtlas], image=None,
                gradient_model: Sequential | Callable[[], Sequential] | None = None,
                name: str = "") -> dict[str, Any]:
    """What unit ``unit`` of layer ``layer`` looks for, as a JSON-ready dict.

    Parameters
    ----------
    model : the model.
    layer, unit : a Dense or Conv2D layer's index in ``model.layers``, and a unit (or filter) of it.
    atlas : the model's :class:`~digitlens.explain.units.UnitAtlas`, or a function returning it
        (called only once the request is known to be valid: building one takes a while).
    image : optional (28, 28) image in [0, 1]: for a Dense unit that reads other units, its
        pixel template at this image (the input gradient of its activation).
    gradient_model : the model the input gradient is computed with, or a function returning it
        (called only when a gradient is needed; default ``model``; the recognizer passes its
        float64 copy).
    name : the model's name, for the dict and the error messages.

    Returns
    -------
    dict
        ``model, layer, unit, type, n_units, bias, n_weights, weights {min, max}, template (2-D
        list or None), template_kind ("weights" | "filter" | "input_gradient" | None),
        template_caption, sentence, top_examples [{index, label, image, activation}]``.

    Raises
    ------
    UnknownUnitError, NotAUnitLayerError
        See :func:`check_unit`.
    ValueError
        ``image`` is not 28×28 numbers in [0, 1] (checked only when it is used).
    """
    check_unit(model, layer, unit, name)
    L = model.layers[layer]
    W, b = L.params["W"], L.params["b"]
    w = W[:, unit] if L.type == "dense" else W[unit]
    out: dict[str, Any] = {
        "model": name, "layer": layer, "unit": unit, "type": L.type, "n_units": int(b.shape[0]),
        "bias": num(float(b[unit])), "n_weights": int(w.size),
        "weights": {"min": num(float(w.min())), "max": num(float(w.max()))},
        "template": None, "template_kind": None, "template_caption": "", "sentence": "",
        "top_examples": []}
    out.update(_template(model, layer, unit, image, gradient_model or model))
    if callable(atlas):
        atlas = atlas()
    out["top_examples"] = _top_examples(model, layer, unit, atlas)
    return out
