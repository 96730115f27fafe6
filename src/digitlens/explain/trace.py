"""Every layer's numbers for one image, ready to show: the forward pass written out.

:func:`trace` runs ``model.forward(x, trace=True)`` (the model's one forward pass) and summarises
each layer: its input and output shapes, its parameters (shape and range), the output numbers
themselves when there are few enough to show (a dense layer's ``z`` or ``a``), and the output
function's steps — for softmax: ``z − max(z)``, ``exp``, the sum, and the division.
"""

from __future__ import annotations

import numpy as np

from ..nn import topology as T
from ..nn.model import Sequential
from . import words
from .attribution import as_input, class_logits
from .result import LayerStep, TraceReport

MAX_VALUES = 2048  # outputs with more numbers than this are summarised, not listed


def _param_summary(p: np.ndarray) -> dict:
    # accumulate in float64 without a float64 copy of the weights first (the copy of a dense
    # layer's ~200k weights cost more than the statistics; every live request pays this)
    p = np.asarray(p)
    return {"shape": list(p.shape), "min": float(p.min()), "max": float(p.max()),
            "mean": float(p.mean(dtype=np.float64)), "std": float(p.std(dtype=np.float64))}


def param_summaries(model: Sequential) -> list[dict[str, dict]]:
    """Every layer's parameter summaries (shape, min, max, mean, std), layer by layer: what
    :func:`trace` reports.  They depend on the weights only, so a caller explaining many images
    with a model it does not change (the :class:`~digitlens.recognizer.Recognizer`) computes
    them once and passes them to :func:`trace`."""
    return [{k: _param_summary(v) for k, v in layer.params.items()} for layer in model.layers]


def softmax_steps(z: np.ndarray) -> dict:
    """The softmax of one logit vector, one visible step at a time.

    ``softmax(z) = exp(z − max z) / Σ exp(z − max z)``: subtracting the maximum changes nothing
    mathematically but keeps ``exp`` from overflowing (the largest term becomes ``exp(0) = 1``).
    """
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max()
    e = np.exp(shifted)
    total = float(e.sum())
    return {"logits": z, "shifted": shifted, "exp": e, "sum_exp": total, "probabilities": e / total}


def trace(model: Sequential, x: np.ndarray, forward=None, params=None) -> TraceReport:
    """Summarise every layer of the forward pass of one image.

    Parameters
    ----------
    model : any :class:`~digitlens.nn.model.Sequential`.
    x : one image, ``(28, 28)`` or ``(1, 1, 28, 28)``.
    forward : optional, ``model.forward(x, trace=True)`` already run on this ``x`` (the caller
        needed the logits too: one forward pass instead of two).
    params : optional, ``param_summaries(model)`` already computed (the weights did not change
        since).

    Returns
    -------
    TraceReport
        ``layers[i]`` for layer ``i`` (input/output shapes, parameter summaries, output statistics,
        the flat output values when at most 2,048 numbers) and ``softmax`` with the output
        function's steps (``None`` for identity-output models).
    """
    X = as_input(model, x)
    tr = model.forward(X, trace=True) if forward is None else forward
    if params is None:
        params = param_summaries(model)
    elif len(params) != len(model.layers):
        raise ValueError(f"params must hold one entry per layer ({len(model.layers)}), got "
                         f"{len(params)}")
    if tr.logits.shape[0] != 1:
        raise ValueError(f"forward must be the trace of one image; its logits have shape "
                         f"{tr.logits.shape}")
    steps: list[LayerStep] = []
    sentences: list[str] = []
    for lt in tr.layers:
        out = np.asarray(lt.output[0], dtype=np.float64)
        stats = {"min": float(out.min()), "max": float(out.max()), "mean": float(out.mean()),
                 "fraction_zero": float(np.mean(out == 0))}
        values = out.ravel() if out.size <= MAX_VALUES else None
        steps.append(LayerStep(lt.index, lt.name, lt.layer.type, lt.layer.describe(),
                               list(lt.input.shape[1:]), list(out.shape),
                               params[lt.index],
                               stats, values))
        if T.activation_fn(lt.layer) == "relu":
            sentences.append(words.active_units(lt.index, "relu", int(np.count_nonzero(out)),
                                                out.size))
    z = class_logits(model, tr.logits)[0]
    sm = None
    if model.loss in ("softmax_cross_entropy", "sigmoid_binary_cross_entropy"):
        # a sigmoid output is the softmax of [-z/2, z/2], so the same steps show it
        sm = softmax_steps(z)
        top = int(np.argmax(sm["probabilities"]))
        sentences.append(words.softmax(float(z.max()), sm["sum_exp"], model.classes[top],
                                       float(sm["probabilities"][top])))
    return TraceReport(steps, sm, sentences)
