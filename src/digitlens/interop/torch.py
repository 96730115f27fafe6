"""A digitlens model as PyTorch: a ``state_dict`` (weights only) and the code defining the network;
and back again.

The PyTorch network is an ``nn.Sequential`` with one module per digitlens layer, in the same order,
so module ``i`` holds layer ``i``'s weights and the ``state_dict`` keys are ``"<i>.weight"`` and
``"<i>.bias"``:

- ``Flatten`` -> ``nn.Flatten()``; ``Dropout(p)`` -> ``nn.Dropout(p)``;
  ``MaxPool2D`` -> ``nn.MaxPool2d(...)``; ``GlobalAvgPool2D`` -> ``AdaptiveAvgPool2d(1)`` then
  ``Flatten`` (one ``nn.Sequential``): no weights.
- ``Activation`` -> ``nn.ReLU()``, ``nn.Tanh()``, ... (GELU: ``nn.GELU(approximate="tanh")``).
- ``Dense(units)`` -> ``nn.Linear(D_in, units)`` with ``weight = W.T`` ``(units, D_in)`` (digitlens
  computes ``z = a @ W``, PyTorch ``z = a @ weight.T``) and ``bias = b``.
- ``Conv2D`` -> ``nn.Conv2d(...)`` with ``weight = W`` ``(C_out, C_in, kh, kw)`` and ``bias = b``.

Files are written with ``torch.save`` of a plain dict of tensors and read with
``torch.load(path, weights_only=True)``, which refuses anything but tensors and plain containers:
a file holding a pickled network (``torch.save(model)``) is rejected, never executed.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from .._util.files import atomic_write
from ..errors import CheckpointError
from ..nn.model import Sequential
from ..nn.zoo import build_model, model_names

_ACTIVATIONS = {"relu": "nn.ReLU()", "leaky_relu": "nn.LeakyReLU(0.01)",
                "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "identity": "nn.Identity()",
                "elu": "nn.ELU(1.0)", "gelu": 'nn.GELU(approximate="tanh")'}
#: state_dict entries that name PyTorch layers digitlens does not have (for a clear error)
_FOREIGN = {"running_mean": "BatchNorm", "running_var": "BatchNorm",
            "num_batches_tracked": "BatchNorm", "weight_ih_l0": "an LSTM/GRU/RNN",
            "in_proj_weight": "MultiheadAttention"}


def _require_torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("PyTorch is needed here: pip install torch") from None
    return torch


def _module_code(layer, d_in: int | None) -> str:
    """One line of PyTorch for ``layer`` (``d_in``: the number of inputs of a Dense layer or the
    input channels of a Conv2D)."""
    kind = layer.type
    if kind == "flatten":
        return "nn.Flatten()"
    if kind == "dense":
        return f"nn.Linear({d_in}, {layer.units})"
    if kind == "activation":
        return _ACTIVATIONS[layer.fn]
    if kind == "dropout":
        return f"nn.Dropout({layer.p})"
    if kind == "conv2d":
        return (f"nn.Conv2d({d_in}, {layer.filters}, kernel_size={tuple(layer.kernel_size)}, "
                f"stride={tuple(layer.stride)}, padding={tuple(layer.padding)})")
    if kind == "maxpool2d":
        return (f"nn.MaxPool2d(kernel_size={tuple(layer.pool_size)}, "
                f"stride={tuple(layer.stride)})")
    if kind == "global_avg_pool2d":
        return "nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())"
    raise ValueError(f"layer type {kind!r} has no PyTorch equivalent in digitlens's exporter")


def _inputs_of(model: Sequential) -> list[tuple[int, ...]]:
    """The per-sample input shape of every layer."""
    return [model.input_shape] + [tuple(s) for s in model.shapes[:-1]]


def torch_code(model: Sequential, weights_name: str = "weights.pt") -> str:
    """The PyTorch source defining ``model``'s network: a ``build()`` returning an
    ``nn.Sequential`` whose ``state_dict`` keys match :func:`torch_state_dict`'s, and a
    ``load()`` reading the weights file ``weights_name`` beside the source file."""
    lines = []
    for i, (layer, shape) in enumerate(zip(model.layers, _inputs_of(model))):
        kind = layer.fn if layer.type == "activation" else layer.type
        lines.append(f"        {_module_code(layer, shape[0])},  # {i}: {kind}")
    out = {"softmax_cross_entropy": "torch.softmax(logits, dim=1)",
           "sigmoid_binary_cross_entropy": "torch.sigmoid(logits)",
           "mean_squared_error": "logits"}[model.loss]
    return (
        f'"""{model.name}: the digitlens network in PyTorch (written by `digitlens export`).\n\n'
        f"Input: images (N, {', '.join(map(str, model.input_shape))}) float32 in [0, 1], ink "
        f"bright on dark.\nOutput: logits (N, {model.shapes[-1][0]}); probabilities = {out}.\n"
        f"Classes, one per output: {list(model.classes)}.\n"
        '"""\n\nfrom pathlib import Path\n\nimport torch\nfrom torch import nn\n\n'
        f"WEIGHTS = Path(__file__).with_name({weights_name!r})\n\n\n"
        "def build() -> nn.Sequential:\n    return nn.Sequential(\n" + "\n".join(lines) +
        "\n    )\n\n\ndef load(path=WEIGHTS) -> nn.Sequential:\n"
        '    """The network with the weights saved beside this file (weights only)."""\n'
        "    net = build()\n"
        "    net.load_state_dict(torch.load(path, weights_only=True))\n"
        "    return net.eval()  # eval(): dropout off, as digitlens predicts\n")


def torch_state_dict(model: Sequential) -> dict:
    """``model``'s weights as a PyTorch ``state_dict`` (``{"<i>.weight": tensor, ...}``, float32
    unless the model is float64)."""
    torch = _require_torch()
    sd = {}
    for i, layer in enumerate(model.layers):
        if not layer.params:
            continue
        W = np.asarray(layer.params["W"])
        # Dense keeps W as (D_in, D_out) (z = a @ W); nn.Linear keeps (D_out, D_in) (z = a @ W.T)
        weight = W.T if layer.type == "dense" else W
        sd[f"{i}.weight"] = torch.from_numpy(np.ascontiguousarray(weight).copy())
        sd[f"{i}.bias"] = torch.from_numpy(np.asarray(layer.params["b"]).copy())
    return sd


def save_torch(model: Sequential, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the ``state_dict`` to ``path`` (``torch.save``, tensors only) and :func:`torch_code`
    to ``path`` with the suffix ``.py``, both atomically; returns both paths."""
    torch = _require_torch()
    path = Path(path)
    code_path = path.with_suffix(".py")
    if code_path == path:
        raise ValueError(f"the weights file must not end in .py, got {path.name!r}")
    sd = torch_state_dict(model)
    atomic_write(path, lambda f: torch.save(sd, f))
    code = torch_code(model, path.name).encode("utf-8")
    atomic_write(code_path, lambda f: f.write(code))
    return path, code_path


# --------------------------------------------------------------------------------------- import


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch weights file as arrays, read with
    ``torch.load(..., weights_only=True)`` (never unpickling code).

    Raises
    ------
    CheckpointError
        the file is missing, is a pickled object rather than weights, or holds something other
        than a dict of tensors.
    """
    torch = _require_torch()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the error below says more
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (UnpicklingError, RuntimeError, EOFError, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path} cannot be read as weights only ({first[:200]}). digitlens reads PyTorch "
            "files with torch.load(weights_only=True) and never unpickles code: save the weights "
            "with torch.save(net.state_dict(), path), not torch.save(net, path)") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict (a dict of "
                              "tensors): save it with torch.save(net.state_dict(), path)")
    return {str(k): v.detach().cpu().numpy() for k, v in obj.items()}


def _unknown_entries(sd: dict, model: Sequential) -> None:
    """Raise naming every state_dict entry that is not a weight of ``model``'s layers."""
    expected = {f"{i}.{n}" for i, layer in enumerate(model.layers) if layer.params
                for n in ("weight", "bias")}
    extra = sorted(set(sd) - expected, key=lambda k: [int(t) if t.isdigit() else t
                                                      for t in re.split(r"[.]", k)])
    if not extra:
        return
    layers = {}
    for k in extra:
        idx, _, name = k.rpartition(".")
        layers.setdefault(idx, []).append(name)
    parts = []
    for idx, names in layers.items():
        kind = next((_FOREIGN[n] for n in names if n in _FOREIGN), None)
        own = ""
        if idx.isdigit() and int(idx) < len(model.layers):
            own = f", where {model.name} has a {model.layers[int(idx)].type} layer"
        what = f"a {kind} layer, which digitlens has no equivalent of" if kind else "unknown"
        parts.append(f"module {idx or '(top)'} with {', '.join(names)} ({what}{own})")
    raise CheckpointError("unsupported layer(s) in the weights file: " + "; ".join(parts)
                          + f". digitlens layers are {', '.join(sorted(_SUPPORTED))}")


_SUPPORTED = {"nn.Flatten", "nn.Linear", "nn.Conv2d", "nn.MaxPool2d", "nn.Dropout", "nn.ReLU",
              "nn.LeakyReLU", "nn.Sigmoid", "nn.Tanh", "nn.ELU", "nn.GELU", "nn.Identity"}


def model_from_state_dict(sd: dict[str, np.ndarray], arch: str | Sequential) -> Sequential:
    """A digitlens model of architecture ``arch`` with the weights of ``sd``.

    Parameters
    ----------
    sd : ``{"<i>.weight": array, "<i>.bias": array}`` as :func:`read_state_dict` returns (the
        keys of an ``nn.Sequential`` whose module ``i`` is digitlens layer ``i``).
    arch : a zoo name (``"lab"``, ``"cnn"``, ...) or a model whose architecture to copy (its
        weights are not used and not changed).

    Raises
    ------
    CheckpointError
        naming the entries that belong to no digitlens layer (e.g. BatchNorm statistics), the
        weights that are missing, or a shape that does not fit.
    """
    if isinstance(arch, Sequential):
        model = Sequential.from_config(arch.config, rng=np.random.default_rng(0))
    elif arch in model_names():
        model = build_model(arch, np.random.default_rng(0))
    else:
        raise CheckpointError(f"--arch must be one of {model_names()} or a digitlens model file, "
                              f"got {arch!r}")
    _unknown_entries(sd, model)
    params = {}
    for i, layer in enumerate(model.layers):
        if not layer.params:
            continue
        for ours, theirs in (("W", "weight"), ("b", "bias")):
            key = f"{i}.{theirs}"
            if key not in sd:
                raise CheckpointError(f"the weights file has no {key!r}: {model.name}'s layer {i} "
                                      f"is a {layer.type} layer with weights")
            v = sd[key].T if (layer.type == "dense" and ours == "W") else sd[key]
            want = layer.params[ours].shape
            if v.shape != want:
                shown = tuple(reversed(want)) if (layer.type == "dense" and ours == "W") else want
                raise CheckpointError(f"{key} has shape {tuple(sd[key].shape)}, but {model.name}'s "
                                      f"layer {i} ({layer.type}) needs {shown}")
            if v.dtype.kind != "f":
                raise CheckpointError(f"{key} has dtype {v.dtype}, expected floats")
            if not np.all(np.isfinite(v)):
                raise CheckpointError(f"{key} contains NaN or inf")
            params[f"{i}.{ours}"] = v.astype(model.dtype)
    model.set_params(params)
    return model


def load_torch(path: str | os.PathLike, arch: str | Sequential) -> Sequential:
    """Read a PyTorch weights file (:func:`read_state_dict`) into a model of architecture
    ``arch`` (:func:`model_from_state_dict`)."""
    return model_from_state_dict(read_state_dict(path), arch)
