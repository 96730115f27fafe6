"""MNIST's IDX file format: read and write, every field validated.

An IDX file is a tiny header followed by raw big-endian numbers::

    byte 0-1   0x00 0x00                     magic: always two zero bytes
    byte 2     type code                     0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                             0x0D float32, 0x0E float64
    byte 3     number of dimensions d        (1 for labels, 3 for images)
    4 * d      each dimension, uint32 big-endian   e.g. 60000, 28, 28
    ...        the data, row-major, exactly prod(dims) * itemsize bytes

The official MNIST files are gzip-compressed IDX files (``train-images-idx3-ubyte.gz``);
:func:`read_idx` recognises gzip by its own magic bytes and decompresses transparently, with a
limit so that a small "gzip bomb" cannot expand into gigabytes.

A file that is truncated, has trailing bytes, an unknown type code or absurd dimensions is
rejected with :class:`IDXError` saying which rule it broke — never a crash, never a silently
short array.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import IDXError  # noqa: F401  (callers catch them here too)

MAX_BYTES = 512 * 1024 * 1024
"""Largest (decompressed) IDX payload accepted; full MNIST train images are 47 MB."""

DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {(v.kind, v.itemsize): k for k, v in DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
#: most dimensions read from a header (NumPy arrays have at most 64; MNIST uses 1 or 3)
MAX_DIMS = 16


def _read_bytes(source, max_bytes: int) -> tuple[bytes, str]:
    """Raw bytes of ``source`` (path or bytes), gunzipped if needed, at most ``max_bytes``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw, name = bytes(source), "<bytes>"
    else:
        path = Path(source)
        name = str(path)
        size = path.stat().st_size
        # a compressed file can be much smaller than its content; the content limit is below
        if size > max_bytes:
            raise IDXError(f"{name}: {size:,} bytes is over the limit of {max_bytes:,}")
        raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
                data = g.read(max_bytes + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{name}: damaged gzip data ({e})") from None
        if len(data) > max_bytes:
            raise IDXError(f"{name}: decompresses to more than the limit of {max_bytes:,} bytes")
        return data, name
    return raw, name


def parse_idx(data: bytes, name: str = "<bytes>", max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Parse uncompressed IDX ``data`` into an array (native byte order, read-only copy).

    Raises
    ------
    IDXError
        Bad magic, unknown type, zero dimensions, size mismatch (truncated or trailing bytes).
    """
    if len(data) < 4:
        raise IDXError(f"{name}: only {len(data)} bytes; an IDX header needs at least 4")
    if data[0] != 0 or data[1] != 0:
        raise IDXError(f"{name}: bad magic number {data[:4].hex()} (an IDX file starts with "
                       f"two zero bytes; is this an IDX file?)")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise IDXError(f"{name}: unknown data type code 0x{code:02X}; expected one of "
                       f"{', '.join(f'0x{k:02X}' for k in DTYPES)}")
    if ndim == 0:
        raise IDXError(f"{name}: the header declares 0 dimensions")
    if ndim > MAX_DIMS:
        raise IDXError(f"{name}: the header declares {ndim} dimensions; at most {MAX_DIMS} are "
                       f"read (MNIST uses 1 or 3)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{name}: truncated header: {ndim} dimensions need {header} bytes, the "
                       f"file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = DTYPES[code]
    count = 1
    for d in dims:
        count *= d  # Python ints: no overflow even for absurd headers
    expected = count * dtype.itemsize
    if expected > max_bytes:
        raise IDXError(f"{name}: the header declares shape {dims} = {expected:,} bytes, over "
                       f"the limit of {max_bytes:,}")
    actual = len(data) - header
    if actual < expected:
        raise IDXError(f"{name}: truncated: shape {dims} needs {expected:,} data bytes, the file "
                       f"has {actual:,}")
    if actual > expected:
        raise IDXError(f"{name}: {actual - expected:,} unexpected bytes after the data of shape "
                       f"{dims} (oversized or not an IDX file)")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native order, a writable copy


def read_idx(source, *, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Read an IDX file (path or bytes; gzip-compressed or not) into a NumPy array.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    >>> read_idx(to_idx_bytes(a)).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    data, name = _read_bytes(source, max_bytes)
    return parse_idx(data, name, max_bytes)


def to_idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX bytes (uncompressed)."""
    a = np.asarray(array)
    code = _CODES.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise ValueError(f"array dtype {a.dtype} has no IDX type; use uint8, int8, int16, int32, "
                         f"float32 or float64")
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"array must have 1 to 255 dimensions; got {a.ndim}")
    if any(d >= 2 ** 32 for d in a.shape):
        raise ValueError(f"every dimension must be below 2**32; got shape {a.shape}")
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + np.ascontiguousarray(a, dtype=DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None
              ) -> Path:
    """Write ``array`` to ``path`` as IDX, atomically; gzip-compressed if ``compress`` is True
    or (by default) if the name ends in ``.gz``.  Returns the path."""
    from .._util.files import atomic_write

    path = Path(path)
    payload = to_idx_bytes(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        # mtime=0: the same array always gives the same bytes (and the same checksum)
        payload = gzip.compress(payload, mtime=0)
    atomic_write(path, lambda f: f.write(payload))
    return path


def read_mnist_pair(images_path, labels_path, *, max_bytes: int = MAX_BYTES
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST-style image file and label file and check that they belong together.

    Returns ``images`` (N, 28, 28) uint8 and ``labels`` (N,) uint8 with values 0..9.
    """
    images = read_idx(images_path, max_bytes=max_bytes)
    labels = read_idx(labels_path, max_bytes=max_bytes)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IDXError(f"{images_path}: expected uint8 images of shape (N, 28, 28); got "
                       f"{images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXError(f"{labels_path}: expected uint8 labels of shape (N,); got "
                       f"{labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise IDXError(f"{images_path} has {len(images)} images but {labels_path} has "
                       f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise IDXError(f"{labels_path}: labels must be digits 0..9; found {int(labels.max())}")
    return images, labels
