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


def open_image_bytes(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS):
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


def pil_to_gray(im, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, dict[str, Any]]:
    """A loaded Pillow image -> ``(gray, info)``, ``gray`` (H, W) float32 in [0, 1].

    Opaque 8-bit images larger than :data:`WORK_MAX_SIDE` come back already reduced to it
    (``info["reduced_by"]``).  Transparency is flattened onto the background that contrasts with
    the visible ink (see :func:`flatten_alpha`); 16-bit and float images are scaled to [0, 1].
    """
    from PIL import Image

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
        rgba = im.convert("RGBA")
        # Pillow's RGBA -> L uses the same luma weights as RGB -> L and ignores alpha.
        luma = np.asarray(rgba.convert("L"), dtype=np.float32) * np.float32(1 / 255)   # (H, W)
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) * np.float32(1 / 255)
        gray, ainfo = flatten_alpha(luma, alpha)
        info.update(ainfo)
    elif mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise E.NotAnImageError("the image contains NaN or infinite pixel values")
        if mode.startswith("I;16"):
            gray = (a / 65535.0).astype(np.float32)
        elif a.min() >= 0 and a.max() <= 1:
            gray = a.astype(np.float32)
        elif a.min() >= 0 and a.max() <= 255:
            gray = (a / 255.0).astype(np.float32)
        else:  # arbitrary range (e.g. 32-bit TIFF): stretch min..max to 0..1
            lo, hi = a.min(), a.max()
            gray = ((a - lo) / (hi - lo)).astype(np.float32) if hi > lo else \
                np.zeros(a.shape, np.float32)
        info["scaled_from_mode"] = mode
    else:
        lum = im.convert("L")
        if max(lum.size) > WORK_MAX_SIDE:
            # Reduce while still 8-bit: several times cheaper than on floats, same box filter.
            f = max(lum.size) / WORK_MAX_SIDE
            lum = lum.resize((max(1, round(lum.width / f)), max(1, round(lum.height / f))),
                             Image.BOX)
            info["reduced_by"] = f
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


def load_gray(source, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
              ) -> tuple[np.ndarray, dict[str, Any]]:
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
    im, info = open_image_bytes(data, max_bytes=max_bytes, max_pixels=max_pixels)
    gray, ginfo = pil_to_gray(im, max_pixels)
    info.update(ginfo)
    info["bytes"] = len(data)
    return gray, info


def _ruling(rng: np.random.Generator, ph: int, pw: int, grid: bool) -> np.ndarray:
    """A notebook's printed lines as an (ph, pw) "ink" map in [0, 1] (see synthetic_photo)."""
    spacing = float(rng.uniform(18, 30))
    half = float(rng.uniform(0.5, 1.0))                  # half the thickness: 1-2 px lines
    level = float(rng.uniform(0.15, 0.35))               # printed lighter than the pen's ink
    tilt = np.tan(np.deg2rad(rng.uniform(-3, 3)))
    yy, xx = np.mgrid[:ph, :pw].astype(np.float32)
    out = np.zeros((ph, pw), np.float32)
    for pos in (yy - tilt * xx, xx + tilt * yy)[:2 if grid else 1]:    # across, then down
        m = (pos - rng.uniform(0, spacing)) % spacing
        dist = np.minimum(m, spacing - m)                # to the nearest line, in pixels
        out = np.maximum(out, level * np.clip(half + 0.5 - dist, 0.0, 1.0))  # anti-aliased
    return out


def synthetic_photo(digit: np.ndarray, rng: np.random.Generator, *, page: tuple[int, int] |
                    None = None, quality: int | None = None, ruled: str | None = None) -> bytes:
    """A fake phone photo of an MNIST digit, as JPEG bytes: for testing robustness.

    The digit is enlarged to a random height (25-60 % of the page's shorter side), put at a random
    place on a larger page, drawn as dark ink on light paper, lit unevenly (a linear gradient in a
    random direction), blurred slightly, given sensor noise and a few dust specks, and
    JPEG-compressed.  Everything random comes from ``rng``.

    Parameters
    ----------
    digit : (28, 28) float array in [0, 1], ink bright (MNIST convention)
    rng : numpy.random.Generator
    page : (height, width), optional
        Default: random, 160-320 pixels a side.
    quality : int, optional
        JPEG quality; default random in 55..90.
    ruled : None, "lines" or "grid"
        Paper from a notebook: ruled lines across the page (``"grid"``: and down it, squared
        paper), 18-30 pixels apart, 1-2 pixels thick, tilted up to 3 degrees, printed in a gray
        15-35 % of the way from paper to ink.  ``None`` draws (and uses the ``rng``) exactly as
        before this option existed.
    """
    from PIL import Image
    from scipy import ndimage

    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    d = np.asarray(digit, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"digit must be 2-D (28, 28); got shape {d.shape}")
    ph, pw = page if page is not None else (int(rng.integers(160, 321)),
                                             int(rng.integers(160, 321)))
    target = int(round(min(ph, pw) * rng.uniform(0.25, 0.6)))       # digit field height
    big = np.asarray(Image.fromarray(d, mode="F").resize((target, target), Image.BICUBIC))
    big = np.clip(big, 0, 1)
    top = int(rng.integers(0, ph - target + 1))
    left = int(rng.integers(0, pw - target + 1))
    ink_map = np.zeros((ph, pw), np.float32)
    ink_map[top:top + target, left:left + target] = big
    for _ in range(int(rng.integers(0, 4))):                         # dust specks
        r = float(rng.uniform(0.6, 1.5))
        cy, cx = rng.uniform(0, ph), rng.uniform(0, pw)
        yy, xx = np.ogrid[:ph, :pw]
        ink_map = np.maximum(ink_map, ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) *
                             float(rng.uniform(0.3, 0.8)))
    paper, ink = rng.uniform(0.75, 0.95), rng.uniform(0.05, 0.3)
    if ruled is not None:
        if ruled not in ("lines", "grid"):
            raise ValueError(f"ruled must be None, 'lines' or 'grid'; got {ruled!r}")
        ink_map = np.maximum(ink_map, _ruling(rng, ph, pw, ruled == "grid"))
    img = paper - (paper - ink) * ink_map                            # dark ink on light paper
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[:ph, :pw].astype(np.float32)
    ramp = (np.cos(angle) * xx / pw + np.sin(angle) * yy / ph)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)      # 0..1 across the page
    img = img * (1.0 - rng.uniform(0.2, 0.45) * ramp)                # lighting gradient
    img = ndimage.gaussian_filter(img, sigma=float(rng.uniform(0.4, 1.2)))
    img = img + rng.normal(0.0, rng.uniform(0.01, 0.04), img.shape)
    u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    q = quality if quality is not None else int(rng.integers(55, 91))
    Image.fromarray(u8, mode="L").convert("RGB").save(buf, format="JPEG", quality=q)
    return buf.getvalue()
