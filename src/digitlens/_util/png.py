"""PNG files and ``data:image/png;base64,`` URLs for gray images (the page and the JSON carry
them).  Decoding them back is :func:`digitlens.data.images.decode_data_url`'s job (guarded)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def png_data_url(image: np.ndarray, max_side: int = 192) -> str:
    """A (H, W) image in [0, 1] as a ``data:image/png;base64,`` URL, reduced so its longer side
    is at most ``max_side``: by the smallest whole factor k that does it, each output pixel the
    mean of a k x k block (a 280-pixel canvas becomes 140 pixels for ``max_side=192``)."""
    from PIL import Image

    a = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    h, w = a.shape
    if max(h, w) > max_side:
        # A whole-factor box reduction is exact block averaging and several times cheaper than a
        # fractional resize; the PNG it gives is smaller too (the page asks on every stroke).
        k = -(-max(h, w) // max_side)                                # ceil(side / max_side)
        small = Image.fromarray(np.ascontiguousarray(a), mode="F").reduce(k)
        a = np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)
    return gray_png_url(np.rint(a * 255).astype(np.uint8))


def gray_png_url(u8: np.ndarray) -> str:
    """:func:`gray_png` as a ``data:image/png;base64,`` URL."""
    return "data:image/png;base64," + base64.b64encode(gray_png(u8)).decode("ascii")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def gray_png(u8: np.ndarray, level: int = 1) -> bytes:
    """A (H, W) uint8 array as an 8-bit grayscale PNG file (the bytes).

    Written directly (signature, ``IHDR``, one zlib-compressed ``IDAT`` of the rows, each
    behind filter byte 0, ``IEND``; see the PNG specification, sections 5 and 11): the
    step thumbnails are encoded on every stroke the page sends, and Pillow's general-purpose
    writer spends more time setting up than compressing such small images.  zlib ``level`` 1:
    fast; these images are mostly black."""
    u8 = np.asarray(u8)
    if u8.dtype != np.uint8 or u8.ndim != 2 or 0 in u8.shape:
        raise ValueError(f"need a non-empty (H, W) uint8 array, got {u8.dtype} {u8.shape}")
    h, w = u8.shape
    rows = np.zeros((h, w + 1), np.uint8)                # column 0: filter type 0 (None)
    rows[:, 1:] = u8
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit, grayscale, deflate, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _png_chunk(b"IEND", b""))
