"""Model files: arrays + config JSON + format version in one ``.npz``.  No pickle, atomic writes.

Layout of the ``.npz`` (a zip of ``.npy`` arrays, readable by any NumPy):

- ``__format__``  : int64 array ``[FORMAT_VERSION]``
- ``__config__``  : uint8 bytes of the :class:`ModelConfig` JSON
- ``__meta__``    : uint8 bytes of a JSON dict of free metadata (training history summary, ...)
- ``param/<name>``: one array per parameter, named as in :meth:`Sequential.params`

Loading uses ``np.load(..., allow_pickle=False)``, so a file carrying pickled objects is refused
instead of executed.  A file is a stranger's input, so nothing is allocated or decompressed
before it is known to be small: each zip entry's *uncompressed* size is checked, then each
``.npy`` header's shape and dtype (:func:`_check_archive`); the config is checked next — at least
one layer, at most :data:`MAX_LAYERS`, every layer's shape worked out without allocating, at
most :data:`MAX_PARAMS` parameters and :data:`MAX_ACTIVATIONS` numbers per layer output, as many
outputs as classes (:func:`check_config`) — and only then is the model built.

Saving writes a temporary file next to the target and renames it over the
target only once it is complete, so an interrupted save never destroys the previous file
(:func:`digitlens._util.files.atomic_write`).  Every failure to load raises
:class:`digitlens.errors.CheckpointError`.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._util.files import atomic_write
from ..errors import CheckpointError
from .model import LOSSES, ModelConfig, Sequential

FORMAT_VERSION = 1
MAX_FILE_BYTES = 512 * 1024 * 1024
#: largest model accepted: parameters (20 M float32 = 80 MB; the zoo's cnn has ~0.2 M)
MAX_PARAMS = 20_000_000
#: most numbers one layer may output for one image (a conv layer of 1,000 filters on 28 x 28)
MAX_ACTIVATIONS = 1_000_000
MAX_LAYERS = 64
#: largest JSON entry (config, meta) accepted, uncompressed
MAX_JSON_BYTES = 4 * 1024 * 1024


def _json_bytes(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def save_model(model: Sequential, path: str | os.PathLike,
               meta: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (architecture, weights, ``meta``) to ``path`` atomically; returns the path."""
    arrays: dict[str, np.ndarray] = {
        "__format__": np.array([FORMAT_VERSION], dtype=np.int64),
        "__config__": _json_bytes(model.config.to_dict()),
        "__meta__": _json_bytes(meta or {}),
    }
    for k, v in model.params().items():
        if not np.all(np.isfinite(v)):
            raise CheckpointError(f"refusing to save: parameter {k} contains NaN or inf")
        arrays[f"param/{k}"] = v
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    return Path(path)


def _read_json(data, key: str, path) -> Any:
    arr = data[key]
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise CheckpointError(f"{path}: the {key} entry should be UTF-8 bytes (1-D uint8), "
                              f"got a {arr.dtype} array of shape {arr.shape}")
    try:
        return json.loads(arr.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: the {key} entry is not valid JSON ({e})") from None


def _read_version(arr: np.ndarray, path) -> int:
    if arr.shape != (1,) or arr.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: the __format__ entry should be one integer, got a "
                              f"{arr.dtype} array of shape {arr.shape}")
    return int(arr[0])


def _check_archive(path: Path) -> None:
    """Refuse an ``.npz`` whose entries would decompress to more than the limits allow, reading
    only the zip directory and each ``.npy`` header (a few hundred bytes each)."""
    from numpy.lib import format as npf

    limit = MAX_PARAMS * 8 + 2 * MAX_JSON_BYTES + 64 * 1024
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        if len(infos) > 4 * MAX_LAYERS + 8:
            raise CheckpointError(f"{path}: {len(infos)} entries; a model file has a few")
        total = sum(i.file_size for i in infos)
        if total > limit:
            raise CheckpointError(f"{path}: its arrays decompress to {total:,} bytes, over the "
                                  f"limit of {limit:,} (a zip bomb, or not a digitlens model)")
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{path}: unexpected entry {info.filename!r}")
            with z.open(info) as f:
                try:
                    version = npf.read_magic(f)
                    shape, _, dtype = (npf.read_array_header_1_0(f) if version == (1, 0) else
                                       npf.read_array_header_2_0(f))
                except ValueError as e:
                    raise CheckpointError(f"{path}: entry {info.filename!r} is not a valid .npy "
                                          f"array ({e})") from None
            if dtype.hasobject:
                raise CheckpointError(f"{path} contains pickled Python objects; digitlens never "
                                      "unpickles model files (it could run arbitrary code)")
            n = int(np.prod(shape, dtype=object)) if shape else 1
            if n * dtype.itemsize > info.file_size:
                raise CheckpointError(f"{path}: entry {info.filename!r} declares shape {shape} "
                                      f"but holds only {info.file_size:,} bytes")


def _param_count(layer_cfg: dict, in_shape: tuple[int, ...]) -> int:
    """Parameters of one layer from its config and input shape (no allocation)."""
    kind = layer_cfg.get("type")
    if kind == "dense":
        return (int(np.prod(in_shape)) + 1) * int(layer_cfg["units"])
    if kind == "conv2d":
        kh, kw = layer_cfg.get("kernel_size", (3, 3))
        return int(layer_cfg["filters"]) * (in_shape[0] * int(kh) * int(kw) + 1)
    return 0


def check_config(config: ModelConfig) -> None:
    """Raise ``ValueError`` unless ``config`` describes a model small enough to build: 1 to
    :data:`MAX_LAYERS` layers, each layer's output shape valid and at most
    :data:`MAX_ACTIVATIONS` numbers, at most :data:`MAX_PARAMS` parameters in all, and as many
    outputs as ``classes`` (at least two, no repeats).  Nothing is allocated.

    Examples
    --------
    >>> from digitlens.nn.model import ModelConfig
    >>> check_config(ModelConfig(layers=()))
    Traceback (most recent call last):
    ...
    ValueError: the model has no layers
    """
    from .layers import layer_from_config

    if not config.layers:
        raise ValueError("the model has no layers")
    if len(config.layers) > MAX_LAYERS:
        raise ValueError(f"{len(config.layers)} layers; the limit is {MAX_LAYERS}")
    if len(config.input_shape) != 3 or not all(1 <= s <= 4096 for s in config.input_shape):
        raise ValueError(f"input_shape must be (channels, height, width) of positive sizes, got "
                         f"{config.input_shape}")
    shape, params = tuple(config.input_shape), 0
    for i, cfg in enumerate(config.layers):
        layer = layer_from_config(cfg)  # checks its own arguments (units >= 1, ...)
        params += _param_count(cfg, shape)
        shape = tuple(int(s) for s in layer.output_shape(shape))
        if any(s < 1 for s in shape) or int(np.prod(shape)) > MAX_ACTIVATIONS:
            raise ValueError(f"layer {i} ({cfg.get('type')}) would output shape {shape}; each "
                             f"layer's output must hold 1 to {MAX_ACTIVATIONS:,} numbers")
        if params > MAX_PARAMS:
            raise ValueError(f"over {MAX_PARAMS:,} parameters by layer {i}; too big to load")
    classes = config.classes
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be two or more different digits, got {list(classes)}")
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; known: {sorted(LOSSES)}")
    # a sigmoid model reads two classes with one output (the probability of the second)
    outputs = 1 if config.loss.startswith("sigmoid") else len(classes)
    if config.loss.startswith("sigmoid") and len(classes) != 2:
        raise ValueError(f"a sigmoid model reads two classes, not {list(classes)}")
    if shape != (outputs,):
        raise ValueError(f"the last layer outputs shape {shape}, but the model reads "
                         f"{len(classes)} classes {list(classes)} (expected {outputs} outputs)")


def load_model(path: str | os.PathLike, *, with_meta: bool = False):
    """Load a model saved by :func:`save_model`.

    Raises
    ------
    CheckpointError
        naming what is wrong: missing file, not a digitlens file, truncated or corrupted,
        pickled content, wrong format version, arrays that do not match the architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise CheckpointError(f"{path} is a Python pickle, not a digitlens model file; digitlens "
                              "never unpickles files (unpickling can run arbitrary code)")
    if head[:6] == b"\x93NUMPY":
        raise CheckpointError(f"{path} is a single NumPy .npy array, not a digitlens model file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a digitlens model file (not an .npz archive; it may "
                              "be truncated or another kind of file)")
    try:
        _check_archive(path)
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            for key in ("__format__", "__config__"):
                if key not in names:
                    raise CheckpointError(f"{path} is not a digitlens model file (no {key} entry)")
            version = _read_version(data["__format__"], path)
            if version != FORMAT_VERSION:
                newer = " (written by a newer digitlens)" if version > FORMAT_VERSION else ""
                raise CheckpointError(f"{path} has model format version {version}{newer}; this "
                                      f"digitlens reads version {FORMAT_VERSION}")
            cfg_dict = _read_json(data, "__config__", path)
            meta = _read_json(data, "__meta__", path) if "__meta__" in names else {}
            try:  # the config first: nothing big is read for a model that cannot be built
                config = ModelConfig.from_dict(cfg_dict)
                check_config(config)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise CheckpointError(f"{path}: the model description is invalid: {e}") from None
            params = {k[len("param/"):]: np.array(data[k]) for k in names if k.startswith("param/")}
    except CheckpointError:
        raise
    except ValueError as e:
        # np.load raises ValueError for object arrays when allow_pickle=False
        if "pickle" in str(e).lower():
            raise CheckpointError(f"{path} contains pickled Python objects; digitlens never "
                                  "unpickles model files (it could run arbitrary code)") from None
        raise CheckpointError(f"{path} is corrupted: {e}") from None
    except Exception as e:  # noqa: BLE001
        # A damaged zip surfaces as BadZipFile, zlib.error, OSError, EOFError, NotImplementedError
        # (a garbled compression method), ...; all mean the same thing to the user.  Nothing
        # here can execute content: pickles are refused above and by allow_pickle=False.
        raise CheckpointError(f"{path} is corrupted or truncated ({type(e).__name__}: {e})") \
            from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: the __meta__ entry is not a JSON object")
    # the model computes in the dtype it was saved in: float64 (gradient checks, exact
    # explanations) comes back float64; anything else (float32, as trained) is float32
    dtypes = {v.dtype for v in params.values()}
    dtype = np.float64 if dtypes == {np.dtype(np.float64)} else np.float32
    try:
        model = Sequential.from_config(config, rng=np.random.default_rng(0), dtype=dtype)
    except (ValueError, TypeError, KeyError, ArithmeticError, MemoryError) as e:
        raise CheckpointError(f"{path}: the model description is invalid: {e}") from None
    for k, v in params.items():
        if not np.issubdtype(v.dtype, np.floating):
            raise CheckpointError(f"{path}: parameter {k} has dtype {v.dtype}, expected floats")
        if not np.all(np.isfinite(v)):
            raise CheckpointError(f"{path}: parameter {k} contains NaN or inf")
    try:
        model.set_params({k: v.astype(model.dtype) for k, v in params.items()})
    except ValueError as e:
        raise CheckpointError(f"{path}: weights do not match the architecture: {e}") from None
    return (model, meta) if with_meta else model
