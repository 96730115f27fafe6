"""Reading a user's image safely: bytes, a path, a Pillow image or a NumPy array -> grayscale.

This is the first step of pre-processing (``digitlens.preprocessing``) and the only place that
touches Pillow's decoders.  It is written for untrusted input (the web page posts whatever the
browser sends):

- only PNG, JPEG, BMP, GIF, WebP and TIFF are decoded (Pillow's other plugins, e.g. EPS which
  runs Ghostscript, are never tried);
- files over :data:`MAX_BYTES` are refused before they are read in full;
- the pixel count in the header is checked against :data:`MAX_PIXELS` *before* decoding, so a
  decompression bomb (a tiny file declaring 50,000 x 50,000 pixels) never allocates its pixels;
  we do not rely on Pillow's global ``Image.MAX_IMAGE_PIXELS``, which other code may change;
- so are the *decoded bytes* (:func:`decoded_bytes`: pixels x bytes Pillow stores per pixel)
  against :data:`MAX_DECODED_BYTES`: a 150 kB PNG of 40 million transparent pixels decodes to
  160 MB, within the pixel limit but not within this one.  A big JPEG is decoded at 1/2, 1/4 or
  1/8 scale (``draft``) first, so a phone photo passes;
- a large image is reduced to :data:`WORK_MAX_SIDE` in its own 8- or 16-bit form (transparent
  ones with their alpha, premultiplied) before any conversion to floats, so the float arrays are
  never larger than 512 x 512;
- every failure becomes one of the :class:`~digitlens.errors.PreprocessError` subclasses with a
  message a learner can act on.

The result is a 2-D float32 array in [0, 1] (0 = black, 1 = white) plus a dict of what was done:
EXIF orientation applied, transparency flattened onto which background, and whether a very
large photo was reduced to the working resolution.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import errors as E

MAX_BYTES = 20 * 1024 * 1024
"""Largest encoded image accepted (bytes)."""

MAX_PIXELS = 40_000_000
"""Largest image accepted (width x height), checked from the header before decoding."""

WORK_MAX_SIDE = 512
"""Images whose longer side exceeds this are reduced (box filter) before the other steps: the
digit ends up 20 pixels tall, so a 12-megapixel phone photo carries no extra information, only
cost.  Even a digit filling only a twentieth of the photo's width keeps 25 pixels."""

MAX_DECODED_BYTES = 48 * 2**20
"""Largest decoded image accepted (bytes Pillow allocates for its pixels), checked before decoding.
48 MiB: a 40-megapixel 8-bit gray scan, or a 12-megapixel RGBA screenshot; a JPEG photo of any
accepted size once decoded at reduced scale."""

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")

# ITU-R 601-2 luma, the weights Pillow's convert("L") uses, so RGBA and RGB agree.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def read_source_bytes(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of the file at ``path``, refusing files over ``max_bytes`` without reading them."""
    path = Path(path)
    size = path.stat().st_size  # FileNotFoundError propagates: the CLI shows it as one line
    if size > max_bytes:
        raise E.ImageTooLargeError(f"{path} is {size:,} bytes; the limit is {max_bytes:,} bytes")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since stat()
    if len(data) > max_bytes:
        raise E.ImageTooLargeError(f"{path} is over the limit of {max_bytes:,} bytes")
    return data


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise E.NotAnImageError(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise E.ImageTooLargeError(
            f"the image is {width}x{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,} pixels (a much smaller photo of the digit is plenty)")


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """The bytes Pillow allocates for a ``width`` x ``height`` image in ``mode``: one per pixel
    for 1-band 8-bit modes (``L``, ``P``, ``1``), two for 16-bit gray (``I;16``), four for
    everything else (Pillow stores RGB, LA and RGBA, 32-bit ``I`` and ``F`` in 4 bytes).

    Examples
    --------
    >>> decoded_bytes("RGBA", 1000, 1000), decoded_bytes("L", 1000, 1000)
    (4000000, 1000000)
    """
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return int(width) * int(height) * per_pixel


def _check_decoded(im, max_decoded: int) -> None:
    need = decoded_bytes(im.mode, im.width, im.height)
    if im.format == "WEBP":  # libwebp decodes into its own buffer, which Pillow then copies
        need *= 2
    if need > max_decoded:
        raise E.ImageTooLargeError(
            f"the image is {im.width}x{im.height} pixels in mode {im.mode}, which decodes to "
            f"{need / 2**20:,.0f} MiB; the limit is {max_decoded / 2**20:,.0f} MiB (a smaller "
            f"photo of the digit, or a JPEG, is plenty)")


def open_image_bytes(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                     max_decoded: int = MAX_DECODED_BYTES):
    """Decode ``data`` into a fully loaded Pillow image, with the safety checks above.

    Returns ``(image, info)`` where ``info`` has ``format``, ``size`` and ``mode``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) == 0:
        raise E.NotAnImageError("the file is empty (0 bytes), not an image")
    if len(data) > max_bytes:
        raise E.ImageTooLargeError(f"the image is {len(data):,} bytes; the limit is "
                                   f"{max_bytes:,} bytes")
    with warnings.catch_warnings(record=True) as caught:
        # Pillow warns about bombs (our stricter check below decides) and about some damaged
        # files while still returning a partial image; no warning may leak to the learner's
        # terminal, and a "truncated" warning must become an error, not half a picture.
        warnings.simplefilter("always")
        try:
            im = Image.open(io.BytesIO(data), formats=list(FORMATS))
        except UnidentifiedImageError:
            raise E.NotAnImageError(
                "this is not an image digitlens can read (expected PNG, JPEG, BMP, GIF, WebP or "
                "TIFF)") from None
        except Image.DecompressionBombError as e:
            raise E.ImageTooLargeError(f"the image declares too many pixels ({e})") from None
        except Exception as e:  # noqa: BLE001 - Pillow's header parsers raise many types on junk
            raise E.NotAnImageError(f"this is not a readable image ({type(e).__name__}: {e})") \
                from None
        fmt = im.format
        _check_pixels(im.width, im.height, max_pixels)
        info: dict[str, Any] = {"format": fmt, "size": [im.width, im.height], "mode": im.mode}
        if fmt == "JPEG" and max(im.size) > WORK_MAX_SIDE:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly, skipping most of the work for a
            # big photo; draft() picks the smallest scale still at least this size.
            f = max(im.size) / WORK_MAX_SIDE
            try:
                im.draft("L", (int(np.ceil(im.width / f)), int(np.ceil(im.height / f))))
            except Exception:  # noqa: BLE001 - draft is an optimisation; decode at full size
                pass
        _check_decoded(im, max_decoded)  # the size and mode draft() chose, before any pixel
        try:
            im.load()
        except Image.DecompressionBombError as e:
            raise E.ImageTooLargeError(f"the image declares too many pixels ({e})") from None
        except (OSError, EOFError, SyntaxError) as e:
            msg = str(e)
            if "truncated" in msg or isinstance(e, EOFError) or "broken" in msg:
                raise E.TruncatedImageError(
                    f"the {fmt} image is truncated or damaged ({msg}); try saving it again") \
                    from None
            raise E.NotAnImageError(f"the {fmt} image could not be decoded ({msg})") from None
        except Exception as e:  # noqa: BLE001 - decoders may raise ValueError, IndexError, ...
            raise E.NotAnImageError(f"the {fmt} image could not be decoded "
                                    f"({type(e).__name__}: {e})") from None
        for w in caught:
            if "truncat" in str(w.message).lower():
                raise E.TruncatedImageError(f"the {fmt} image is truncated ({w.message}); try "
                                            f"saving it again")
        try:
            orientation = im.getexif().get(0x0112, 1)
        except Exception:  # noqa: BLE001 - a damaged EXIF block should not reject the photo
            orientation = 1
        if orientation not in (None, 1):
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # noqa: BLE001
                pass
            else:
                info["exif_orientation"] = int(orientation)
    return im, info


def _working_size(im) -> tuple[tuple[int, int], float]:
    """The size ``im`` is reduced to (longer side :data:`WORK_MAX_SIDE`), and the factor."""
    f = max(im.size) / WORK_MAX_SIDE
    return (max(1, round(im.width / f)), max(1, round(im.height / f))), f


def _shrink(im, info: dict[str, Any]):
    """``im`` reduced to the working size in its own mode (box filter; RGBA and LA
    premultiplied by Pillow), or ``im`` itself when it is small enough."""
    from PIL import Image

    if max(im.size) <= WORK_MAX_SIDE:
        return im
    size, f = _working_size(im)
    info["reduced_by"] = f
    return im.resize(size, Image.BOX)


def _wide_to_gray(im) -> np.ndarray:
    """A (reduced) 16-bit, 32-bit or float image -> (H, W) float32 in [0, 1]."""
    mode = im.mode
    a = np.asarray(im, dtype=np.float64)  # at most WORK_MAX_SIDE² pixels here
    if not np.all(np.isfinite(a)):
        raise E.NotAnImageError("the image contains NaN or infinite pixel values")
    if mode.startswith("I;16"):
        return (a / 65535.0).astype(np.float32)
    if a.min() >= 0 and a.max() <= 1:
        return a.astype(np.float32)
    if a.min() >= 0 and a.max() <= 255:
        return (a / 255.0).astype(np.float32)
    lo, hi = a.min(), a.max()  # arbitrary range (e.g. 32-bit TIFF): stretch min..max to 0..1
    return ((a - lo) / (hi - lo)).astype(np.float32) if hi > lo else \
        np.zeros(a.shape, np.float32)


def pil_to_gray(im, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, dict[str, Any]]:
    """A loaded Pillow image -> ``(gray, info)``, ``gray`` (H, W) float32 in [0, 1].

    Images larger than :data:`WORK_MAX_SIDE` come back already reduced to it
    (``info["reduced_by"]``), reduced while still in their own 8- or 16-bit form, so no float
    array is ever larger than the working size.  Transparency is flattened onto the background
    that contrasts with the visible ink (see :func:`flatten_alpha`); 16-bit and float images are
    scaled to [0, 1].
    """
    _check_pixels(im.width, im.height, max_pixels)
    info: dict[str, Any] = {}
    mode = im.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info)
    if mode in ("RGBA", "LA") and im.getchannel("A").getextrema()[0] == 255:
        # an alpha channel that is opaque everywhere (a browser canvas exports RGBA even when
        # every pixel is painted): nothing to composite, read it as the opaque image it is
        has_alpha = False
    if has_alpha:
        rgba = _shrink(im if mode == "RGBA" else im.convert("RGBA"), info)
        # Pillow's RGBA -> L uses the same luma weights as RGB -> L and ignores alpha.
        luma = np.asarray(rgba.convert("L"), dtype=np.float32) * np.float32(1 / 255)   # (H, W)
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) * np.float32(1 / 255)
        gray, ainfo = flatten_alpha(luma, alpha)
        info.update(ainfo)
    elif mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        small = _shrink(im if mode in ("I", "F", "I;16") else im.convert("I"), info)
        gray = _wide_to_gray(small)
        info["scaled_from_mode"] = mode
    else:
        # reduce while still 8-bit: several times cheaper than on floats, same box filter
        lum = _shrink(im if mode == "L" else im.convert("L"), info)
        gray = np.asarray(lum, dtype=np.float32) * np.float32(1 / 255)
    return np.ascontiguousarray(gray, dtype=np.float32), info


def flatten_alpha(luma: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Composite a transparent image onto the right background colour.

    A drawing canvas typically exports black strokes (alpha 1) on fully transparent pixels whose
    hidden colour is also black (0, 0, 0, 0).  Dropping alpha would give an all-black image with
    no visible digit.  The background must contrast with what is drawn: white behind dark ink,
    black behind light ink.  We decide from the alpha-weighted mean brightness of the visible
    pixels, then composite ``gray = alpha * luma + (1 - alpha) * background``.

    Parameters
    ----------
    luma, alpha : (H, W) float32 in [0, 1]

    Returns
    -------
    gray : (H, W) float32 in [0, 1]
    info : dict with ``transparent_fraction`` and ``background`` ("white" or "black")
    """
    visible = float(alpha.sum())
    transparent = float(np.mean(alpha < 1.0))
    if transparent == 0.0:
        return luma, {}
    if visible == 0.0:
        # Nothing is drawn at all; the caller will report "no ink".
        return np.zeros_like(luma), {"transparent_fraction": 1.0, "background": "none"}
    ink_brightness = float((alpha * luma).sum() / visible)
    background = 1.0 if ink_brightness < 0.5 else 0.0
    gray = alpha * luma + (1.0 - alpha) * background
    return gray.astype(np.float32), {
        "transparent_fraction": round(transparent, 4),
        "background": "white" if background == 1.0 else "black",
        "visible_brightness": round(ink_brightness, 4),
    }


def array_to_gray(a: np.ndarray, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, dict]:
    """A NumPy image -> ``(gray, info)``.

    Accepted: shapes (H, W), (H, W, 3), (H, W, 4), and (H, W) with leading length-1 axes such as
    (1, 28, 28) or (1, 1, 28, 28); dtypes uint8 (0..255), bool, other integers within 0..255, or
    floats within [0, 1].  Anything else raises :class:`NotAnImageError` naming the rule.
    """
    a = np.asarray(a)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise E.NotAnImageError(f"array image must have shape (H, W), (H, W, 3) or (H, W, 4); "
                                f"got {np.asarray(a).shape}")
    h, w = a.shape[:2]
    _check_pixels(w, h, max_pixels)
    if a.dtype == np.bool_:
        f = a.astype(np.float32)
    elif a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise E.NotAnImageError(f"integer array image values must be in 0..255; got "
                                    f"{a.min()}..{a.max()}")
        f = a.astype(np.float32) / 255.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise E.NotAnImageError("array image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise E.NotAnImageError(f"float array image values must be in [0, 1]; got "
                                    f"{lo:.4g}..{hi:.4g} (divide 0..255 data by 255)")
        f = a.astype(np.float32)
    else:
        raise E.NotAnImageError(f"array image dtype must be uint8, bool, integer or float; got "
                                f"{a.dtype}")
    info: dict[str, Any] = {"format": "array", "size": [w, h]}
    if f.ndim == 3:
        luma = f[..., :3] @ _LUMA  # (H, W, 3) @ (3,) -> (H, W)
        if f.shape[2] == 4:
            gray, ainfo = flatten_alpha(luma, f[..., 3])
            info.update(ainfo)
        else:
            gray = luma
    else:
        gray = f
    return np.ascontiguousarray(np.clip(gray, 0.0, 1.0), dtype=np.float32), info


def reduce_to_working_size(gray: np.ndarray, max_side: int = WORK_MAX_SIDE
                           ) -> tuple[np.ndarray, float]:
    """Shrink ``gray`` with a box filter so its longer side is at most ``max_side``.

    Returns ``(gray, factor)`` where ``factor`` >= 1 is how many source pixels one working pixel
    spans."""
    from PIL import Image

    h, w = gray.shape
    side = max(h, w)
    if side <= max_side:
        return gray, 1.0
    factor = side / max_side
    new = (max(1, round(w / factor)), max(1, round(h / factor)))
    small = Image.fromarray(gray, mode="F").resize(new, Image.BOX)
    return np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0), factor


#: ``data:<image type>[;params];base64,`` — the prefix of the data URLs the page sends
_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+|application/octet-stream)?(;[a-z0-9=.+-]+)*"
                       r";base64,", re.IGNORECASE)


def decode_data_url(text: str, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URL (or of plain base64): the one decoder of
    data URLs.  The text is refused before decoding if its bytes could exceed ``max_bytes``.

    Raises :class:`~digitlens.errors.NotAnImageError` (a ``ValueError``) for a malformed URL or
    base64, :class:`~digitlens.errors.ImageTooLargeError` for one that is too long."""
    if not isinstance(text, str):
        raise E.NotAnImageError(f"a data URL must be text, got {type(text).__name__}")
    text = text.strip()
    if text.startswith("data:"):
        m = _DATA_URL.match(text)
        if m is None:
            raise E.NotAnImageError("the image must be a base64 data URL such as "
                                    "'data:image/png;base64,iVBOR...'", code="bad_data_url")
        text = text[m.end():]
    # 4 base64 characters carry 3 bytes, less one per "=" of padding at the end (at most two)
    pad = min(2, len(text) - len(text.rstrip("=")))
    if len(text) // 4 * 3 - pad > max_bytes:
        raise E.ImageTooLargeError(f"the data URL holds over {max_bytes:,} bytes, the limit")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise E.NotAnImageError("the image is not valid base64", code="bad_base64") from None


def gray_from_data_url(text: str, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
                       ) -> np.ndarray:
    """The gray levels (H, W) float32 in [0, 1] of an image data URL, decoded by
    :func:`decode_data_url` and the guarded :func:`load_gray` (size limits, truncation)."""
    return load_gray(decode_data_url(text, max_bytes), max_bytes=max_bytes,
                     max_pixels=max_pixels)[0]


def load_gray(source, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
              max_decoded: int = MAX_DECODED_BYTES) -> tuple[np.ndarray, dict[str, Any]]:
    """Any supported ``source`` -> ``(gray, info)``: (H, W) float32 in [0, 1], 1 = white.

    ``source`` may be ``bytes`` (an encoded file), a path (``str`` or ``os.PathLike``), a binary
    file object, a Pillow image, or a NumPy array (see :func:`array_to_gray`).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if isinstance(source, np.ndarray):
        return array_to_gray(source, max_pixels)
    if Image is not None and isinstance(source, Image.Image):
        _check_pixels(source.width, source.height, max_pixels)
        try:
            source.load()
        except Exception as e:  # noqa: BLE001
            raise E.TruncatedImageError(f"the image could not be loaded ({e})") from None
        gray, info = pil_to_gray(source, max_pixels)
        return gray, {"format": source.format or "PIL image", "size": [source.width,
                                                                        source.height],
                      "mode": source.mode, **info}
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        data = read_source_bytes(source, max_bytes)
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("file object must be opened in binary mode")
        if len(data) > max_bytes:
            raise E.ImageTooLargeError(f"the image is over the limit of {max_bytes:,} bytes")
    else:
        raise TypeError(f"source must be bytes, a path, a file object, a PIL image or a NumPy "
                        f"array; got {type(source).__name__}")
    im, info = open_image_bytes(data, max_bytes=max_bytes, max_pixels=max_pixels,
                                max_decoded=max_decoded)
    gray, ginfo = pil_to_gray(im, max_pixels)
    info.update(ginfo)
    info["bytes"] = len(data)
    return gray, info


# it lived here, and callers import it from here
from .synthetic import synthetic_photo  # noqa: E402,F401
