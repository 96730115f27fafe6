"""Fake phone photos of digits (:func:`synthetic_photo`), for testing how pre-processing copes
with paper, lighting, blur, noise and JPEG.  Everything random comes from the caller's Generator.
"""

from __future__ import annotations

import io

import numpy as np


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
