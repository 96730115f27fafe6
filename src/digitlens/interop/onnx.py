"""A digitlens model as an ONNX graph, built with the ``onnx`` package's helper API.

Every digitlens layer becomes one or two standard ONNX operators, with the weights stored as
initializers (named like :meth:`Sequential.params`, e.g. ``"1.W"``):

============================ ==============================================================
digitlens layer              ONNX operator(s)
============================ ==============================================================
``Flatten``                  ``Flatten(axis=1)``: ``(N, C, H, W) -> (N, C*H*W)``, row by row
``Dense``                    ``Gemm(a, W, b)``: ``z = a @ W + b`` with ``W`` ``(D_in, D_out)``
``Activation``               ``Relu``, ``LeakyRelu(alpha=0.01)``, ``Sigmoid``, ``Tanh``,
                             ``Identity``, ``Elu(alpha=1)``, ``Gelu(approximate="tanh")``
``Dropout``                  nothing: at prediction time dropout is the identity
``Conv2D``                   ``Conv`` (weights ``(C_out, C_in, kh, kw)``, as in ONNX)
``MaxPool2D``                ``MaxPool`` (no padding, windows that do not fit are dropped)
``GlobalAvgPool2D``          ``GlobalAveragePool`` then ``Flatten``: ``(N, C, H, W) -> (N, C)``
============================ ==============================================================

The graph has one input, ``image`` ``(N, 1, 28, 28)`` float32 (any ``N``), and two outputs:
``logits`` ``(N, K)`` (the last layer's ``z``) and ``probabilities`` ``(N, K)``, the model's
output function (softmax, or sigmoid for the one-unit binary model) applied to them.

>>> import numpy as np
>>> from digitlens.nn import build_model
>>> g = to_onnx(build_model("logistic", np.random.default_rng(0)))  # doctest: +SKIP
>>> [n.op_type for n in g.graph.node]  # doctest: +SKIP
['Flatten', 'Gemm', 'Softmax']
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._util.files import atomic_write
from ..nn.model import Sequential

#: the ONNX operator set the graph uses (``Gelu`` needs 20; models without GELU use 17, which more
#: tools read)
OPSET = 17
OPSET_GELU = 20

_ACTIVATIONS = {  # digitlens activation -> (ONNX op, attributes)
    "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "identity": ("Identity", {}),
    "elu": ("Elu", {"alpha": 1.0}),
    "gelu": ("Gelu", {"approximate": "tanh"}),
}
_OUTPUT_OPS = {"softmax_cross_entropy": ("Softmax", {"axis": -1}),
               "sigmoid_binary_cross_entropy": ("Sigmoid", {}),
               "mean_squared_error": ("Identity", {})}


def _require_onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("exporting to ONNX needs the onnx package: "
                          "pip install 'digitlens[export]'") from None
    return onnx


def _layer_nodes(helper, i: int, layer, x: str) -> tuple[list, str]:
    """The ONNX nodes computing layer ``i`` from tensor ``x``; returns ``(nodes, output name)``."""
    kind, out = layer.type, f"{i}:{layer.type}"
    if kind == "flatten":
        return [helper.make_node("Flatten", [x], [out], axis=1, name=out)], out
    if kind == "dense":
        return [helper.make_node("Gemm", [x, f"{i}.W", f"{i}.b"], [out], name=out)], out
    if kind == "activation":
        op, attrs = _ACTIVATIONS[layer.fn]
        return [helper.make_node(op, [x], [out], name=out, **attrs)], out
    if kind == "dropout":  # the identity when predicting: no node at all
        return [], x
    if kind == "conv2d":
        (ph, pw), (sh, sw) = layer.padding, layer.stride
        return [helper.make_node("Conv", [x, f"{i}.W", f"{i}.b"], [out], name=out,
                                 kernel_shape=list(layer.kernel_size), strides=[sh, sw],
                                 pads=[ph, pw, ph, pw])], out
    if kind == "maxpool2d":
        return [helper.make_node("MaxPool", [x], [out], name=out,
                                 kernel_shape=list(layer.pool_size),
                                 strides=list(layer.stride))], out
    if kind == "global_avg_pool2d":
        mid = f"{out}/pooled"  # (N, C, 1, 1)
        return [helper.make_node("GlobalAveragePool", [x], [mid], name=mid),
                helper.make_node("Flatten", [mid], [out], axis=1, name=out)], out
    raise ValueError(f"layer {i} ({kind}) has no ONNX equivalent in digitlens's exporter; "
                     f"exportable layers: {sorted(EXPORTABLE)}")


EXPORTABLE = ("flatten", "dense", "activation", "dropout", "conv2d", "maxpool2d",
              "global_avg_pool2d")


def to_onnx(model: Sequential, *, opset: int | None = None):
    """The ONNX graph of ``model`` (an ``onnx.ModelProto``), checked with ``onnx.checker``.

    Parameters
    ----------
    model : a built :class:`~digitlens.nn.model.Sequential`.  Its weights are stored as float32
        (a float64 model is converted).
    opset : ONNX operator-set version (default :data:`OPSET`, or :data:`OPSET_GELU` when the model
        has a GELU).

    Returns
    -------
    onnx.ModelProto with input ``image`` ``(N, *model.input_shape)`` and outputs ``logits`` and
    ``probabilities`` ``(N, K)``.
    """
    onnx = _require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    nodes, x = [], "image"
    for i, layer in enumerate(model.layers):
        new, x = _layer_nodes(helper, i, layer, x)
        nodes += new
    nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits"))
    op, attrs = _OUTPUT_OPS[model.loss]
    nodes.append(helper.make_node(op, ["logits"], ["probabilities"], name="probabilities",
                                  **attrs))
    inits = [numpy_helper.from_array(np.asarray(v, dtype=np.float32), name=k)
             for k, v in model.params().items()]
    k = model.shapes[-1][0] if model.shapes else None
    graph = helper.make_graph(
        nodes, model.name, [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                          ["N", *model.input_shape])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", k])
         for o in ("logits", "probabilities")],
        initializer=inits)
    graph.doc_string = (model.description or model.name) + (
        f" Classes (one per output): {list(model.classes)}.")
    uses_gelu = any(getattr(layer, "fn", None) == "gelu" for layer in model.layers)
    version = opset if opset is not None else (OPSET_GELU if uses_gelu else OPSET)
    proto = helper.make_model(graph, producer_name="digitlens",
                              opset_imports=[helper.make_opsetid("", version)])
    proto.ir_version = min(proto.ir_version, 9)  # readable by ONNX Runtime releases since 1.16
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save_onnx(model: Sequential, path: str | os.PathLike, *, opset: int | None = None) -> Path:
    """Write :func:`to_onnx` of ``model`` to ``path`` atomically; returns the path."""
    proto = to_onnx(model, opset=opset)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return Path(path)


def onnxruntime_difference(model: Sequential, path: str | os.PathLike, x: np.ndarray) -> dict:
    """Run the ONNX file ``path`` in ONNX Runtime on images ``x`` ``(N, *input_shape)`` and
    compare with ``model``'s own numbers.

    Returns
    -------
    dict with ``logits`` and ``probabilities``: the largest absolute difference between ONNX
    Runtime's output and digitlens's, and ``n``: how many images were compared.
    """
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("checking an ONNX file needs onnxruntime: "
                          "pip install 'digitlens[export]'") from None
    x = model.as_input(x).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, probs = session.run(["logits", "probabilities"], {"image": x})
    z = model.forward(x)  # (N, K) digitlens's logits
    return {"logits": float(np.max(np.abs(logits - z))),
            "probabilities": float(np.max(np.abs(probs - model.output(z)))), "n": int(len(x))}
