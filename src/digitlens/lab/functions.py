"""The activation functions themselves: each one's curve ``a = g(z)`` and slope ``g'(z)``, computed
by the engine's own forward and backward pass, and where a learner's own sums ``z`` fall on them.

Notation as in :mod:`digitlens.nn.functional`: ``z`` is a unit's weighted sum, ``a = g(z)`` its
activation, ``g'(z)`` the slope that backpropagation multiplies the gradient by.

The slope is never written down by hand here: :func:`curves` asks
:class:`digitlens.nn.layers.Activation` for its forward (``a``) and its backward with an upstream
gradient of ones (``g'(z)``), in float64, exactly as training does (the lab's
:func:`~digitlens.lab.measure.local_slopes`).  So the slope the page plots is the slope the engine
trains with, including ReLU's choice of 0 at ``z = 0``.

:func:`rug` places a layer's sums ``z`` for one digit on a function: each sum's activation and
slope, and how many units sit where the slope is almost flat (*saturated*: below
:data:`~digitlens.lab.specs.SATURATION_FRACTION` of the function's steepest slope, the lab's own
definition) or exactly flat (a ReLU unit below zero passes no gradient at all).

Example
-------
>>> c = curves(["sigmoid"], z_min=-2, z_max=2, points=5)
>>> c["z"]
[-2.0, -1.0, 0.0, 1.0, 2.0]
>>> round(c["functions"]["sigmoid"]["peak_slope"], 4)
0.25
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._util.checks import check_choice, check_int, check_number
from ..errors import LabError
from ..nn import functional as F
from ..nn.layers import Activation
from .measure import local_slopes, peak_slope
from .specs import SATURATION_FRACTION

#: the order the panel shows them in (every activation of the engine)
FUNCTIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "elu", "identity")

#: what the learner reads beside each curve
TITLES = {
    "relu": "ReLU: a = max(0, z)",
    "leaky_relu": f"leaky ReLU: a = z for z > 0, {F.LEAKY_SLOPE} z otherwise",
    "sigmoid": "sigmoid: a = 1 / (1 + e^-z), the function of logistic regression",
    "tanh": "tanh: a = (e^z - e^-z) / (e^z + e^-z)",
    "gelu": "GELU: a = z times (roughly) the chance that a normal variable is below z",
    "elu": "ELU: a = z for z > 0, e^z - 1 otherwise",
    "identity": "identity: a = z (no activation: the network stays linear)",
}

#: the sentence under each curve: what its slope does to learning
SLOPE_NOTES = {
    "relu": "Slope 1 for every positive sum, 0 for every negative one: a unit whose sums are "
            "negative on every digit passes no gradient and stops learning (it has died).",
    "leaky_relu": "Like ReLU, but the slope is 0.01 instead of 0 on the left, so no unit dies.",
    "sigmoid": "The slope is at most 0.25 (at z = 0) and almost 0 beyond |z| > 5: each sigmoid "
               "layer multiplies the gradient by 0.25 or less, so deep sigmoid stacks learn "
               "slowly.",
    "tanh": "Slope at most 1 (at z = 0), almost 0 beyond |z| > 3: steeper than sigmoid, but "
            "it flattens out the same way.",
    "gelu": "Close to ReLU for large |z|, smooth near 0, with a small dip below zero.",
    "elu": "Slope 1 on the right, e^z on the left: it never reaches exactly 0, so no unit dies.",
    "identity": "Slope 1 everywhere: stacking such layers is still one linear map.",
}


def _check_fn(name: str) -> str:
    return check_choice("activation", name, sorted(F.ACTIVATIONS), error=LabError)


def evaluate(name: str, z) -> tuple[np.ndarray, np.ndarray]:
    """``(a, slope)`` of activation ``name`` at every ``z``, from the engine's forward and
    backward in float64.

    Parameters
    ----------
    name : one of :data:`digitlens.nn.functional.ACTIVATIONS`.
    z : array-like of sums, any shape.

    Returns
    -------
    a, slope : arrays of ``z``'s shape.
    """
    _check_fn(name)
    z = np.asarray(z, dtype=np.float64)
    if not np.all(np.isfinite(z)):
        raise LabError("z must be finite numbers")
    layer = Activation(name)
    a, _ = layer.forward(z)
    return np.asarray(a, dtype=np.float64), local_slopes(layer, z)


def curves(names: Sequence[str] | None = None, *, z_min: float = -6.0, z_max: float = 6.0,
           points: int = 241) -> dict[str, Any]:
    """Each activation's curve and slope on one grid of ``z``.

    Parameters
    ----------
    names : activations (default: :data:`FUNCTIONS`).
    z_min, z_max : the grid's ends.
    points : grid points, ``z_min`` and ``z_max`` included (241 gives steps of 0.05 on -6..6).

    Returns
    -------
    dict
        ``{"z": [points], "saturation_fraction", "functions": {name: {"title", "note", "a":
        [points], "slope": [points], "peak_slope", "range": [min a, max a]}}}``; plain floats.
    """
    names = list(FUNCTIONS if names is None else names)
    z_min = check_number("z_min", z_min, "a finite number", error=LabError)
    z_max = check_number("z_max", z_max, f"above z_min ({z_min})", lambda v: v > z_min,
                         error=LabError)
    points = check_int("points", points, 3, 5001, error=LabError)
    z = np.linspace(z_min, z_max, points)  # (points,)
    out = {}
    for name in names:
        a, slope = evaluate(name, z)
        out[name] = {"title": TITLES.get(name, name), "note": SLOPE_NOTES.get(name, ""),
                     "a": [float(v) for v in a], "slope": [float(v) for v in slope],
                     "peak_slope": peak_slope(name), "range": [float(a.min()), float(a.max())]}
    return {"z": [float(v) for v in z], "saturation_fraction": SATURATION_FRACTION,
            "functions": out}


def rug(name: str, z) -> dict[str, Any]:
    """Where one layer's sums ``z`` (one digit, one value per unit) fall on activation ``name``.

    Parameters
    ----------
    name : the activation to place them on.
    z : (units,) the layer's sums for the learner's digit.

    Returns
    -------
    dict
        ``{"activation", "z", "a", "slope", "units", "saturated", "flat", "sentence"}``:
        ``saturated`` counts units whose slope is below ``SATURATION_FRACTION`` of the steepest,
        ``flat`` those whose slope is exactly 0.
    """
    z = np.asarray(z, dtype=np.float64).ravel()  # (units,)
    if z.size == 0 or z.size > 4096:
        raise LabError(f"z must hold 1 to 4096 sums, got {z.size}")
    a, slope = evaluate(name, z)
    peak = peak_slope(name)
    saturated = int((np.abs(slope) < SATURATION_FRACTION * peak).sum())
    flat = int((slope == 0).sum())
    from .words import rug_sentence

    return {"activation": name, "z": [float(v) for v in z], "a": [float(v) for v in a],
            "slope": [float(v) for v in slope], "units": int(z.size), "saturated": saturated,
            "flat": flat, "sentence": rug_sentence(name, int(z.size), saturated, flat, peak)}


__all__ = ["FUNCTIONS", "SLOPE_NOTES", "TITLES", "curves", "evaluate", "rug"]
