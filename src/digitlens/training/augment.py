"""Data augmentation: new training digits made from old ones by small, label-preserving changes.

4,000 training digits are few.  A 7 tilted by 10°, a bit larger, two pixels to the left, or written
with a slightly thicker pen is still a 7, so showing the network such variants teaches it to ignore
those differences instead of memorising exact pixel positions.

Every transformation is vectorised over the batch (no Python loop over images), draws its random
numbers only from the ``numpy.random.Generator`` it is given, and leaves labels alone.  With all
strengths at zero the output is exactly the input.

How it works: each output pixel ``p`` looks up where it came from in the input,

    ``source(p) = c + R(-θ) · (p - c - t) / s  +  d(p)``

(``c`` the image centre, ``θ`` the rotation, ``s`` the scale, ``t`` the shift and ``d`` an optional
smooth random "elastic" displacement), and reads the input there by bilinear interpolation; outside
the image counts as 0 (background).  One sampling per image, however many transformations are on.

Rotation follows the screen convention: a positive angle turns the digit counter-clockwise as you
look at it (rows grow downwards).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

Augmenter = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly to vary each training digit (all draws are uniform and independent per image).

    Parameters
    ----------
    rotation : largest rotation in degrees; each image turns by an angle in
        ``[-rotation, rotation]``.
    scale : largest relative size change; each image is zoomed by a factor in
        ``[1-scale, 1+scale]``.
    shift : largest shift in pixels, drawn separately for rows and columns in ``[-shift, shift]``.
    elastic : typical size in pixels (RMS) of a smooth random displacement field, as if the paper
        were gently warped (Simard et al., 2003); 0 = off.
    elastic_sigma : smoothness of that field in pixels (a Gaussian blur's σ); larger = smoother.
    thickness : strongest pen-width change, in ``[0, 1]``: each image gets ``a`` in
        ``[-thickness, thickness]`` and moves the fraction ``|a|`` of the way towards a one-pixel
        thicker (``a > 0``) or thinner (``a < 0``) version of itself.  0 = off.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((2, 1, 28, 28), np.float32); x[:, 0, 10:18, 13:15] = 1.0
    >>> cfg = AugmentConfig(rotation=10, shift=2)
    >>> cfg(x, np.random.default_rng(0)).shape           # a config is the augment function
    (2, 1, 28, 28)
    >>> bool(np.array_equal(cfg.scaled(0)(x, np.random.default_rng(0)), x))
    True
    """

    rotation: float = 10.0
    scale: float = 0.1
    shift: float = 2.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0
    thickness: float = 0.0

    def __post_init__(self) -> None:
        for name in ("rotation", "scale", "shift", "elastic", "elastic_sigma", "thickness"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"augment {name} must be a finite number >= 0, got {v!r}")
        if self.rotation > 180:
            raise ValueError(f"augment rotation must be <= 180 degrees, got {self.rotation}")
        if self.scale >= 1:
            raise ValueError(f"augment scale must be < 1 (a factor in [1-scale, 1+scale] must stay "
                             f"positive), got {self.scale}")
        if self.thickness > 1:
            raise ValueError(f"augment thickness must be in [0, 1], got {self.thickness}")
        if self.elastic > 0 and self.elastic_sigma <= 0:
            raise ValueError("augment elastic_sigma must be > 0 when elastic is on, "
                             f"got {self.elastic_sigma}")

    @property
    def is_identity(self) -> bool:
        return self.rotation == self.scale == self.shift == self.elastic == self.thickness == 0

    def scaled(self, strength: float) -> "AugmentConfig":
        """The same recipe with every strength multiplied by ``strength`` (0 turns it all off)."""
        if not (math.isfinite(strength) and strength >= 0):
            raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
        return dataclasses.replace(
            self, rotation=self.rotation * strength, scale=self.scale * strength,
            shift=self.shift * strength, elastic=self.elastic * strength,
            thickness=min(1.0, self.thickness * strength))

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``augment(x, rng, self)``: a config is itself the ``(x, rng) -> x`` function that
        :func:`digitlens.training.fit` takes as ``augment=``, and it still says what it does."""
        return augment(x, rng, self)

    apply = __call__

    def draw(self, x: np.ndarray, rng: np.random.Generator) -> "Draws":
        """The random half of :meth:`__call__`: every number it draws for the batch ``x``, in the
        same order.  ``self.apply_drawn(x, self.draw(x, rng))`` is ``self(x, rng)``, and
        ``apply_drawn`` of a slice of rows with the same slice of the draws gives those rows:
        ``fit`` draws in one thread and lets each thread transform its own slice."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        n, _, h, w = _check_images(x).shape
        # One draw of each kind per image, always in the same order, so a generator in the same
        # state gives the same batch whatever the strengths.
        angle = rng.uniform(-1.0, 1.0, n) * self.rotation  # (N,) degrees
        zoom = 1.0 + rng.uniform(-1.0, 1.0, n) * self.scale  # (N,)
        shift = rng.uniform(-1.0, 1.0, (2, n)) * self.shift  # (2, N) rows, columns
        ink = rng.uniform(-1.0, 1.0, n) * self.thickness  # (N,)
        noise = rng.standard_normal((2, n, h, w)) if self.elastic > 0 else None  # white noise
        return Draws(angle, zoom, shift[0], shift[1], ink, noise)

    def apply_drawn(self, x: np.ndarray, draws: "Draws") -> np.ndarray:
        """The deterministic half of :meth:`__call__`: transform ``x`` with ``draws``."""
        x = _check_images(x)
        if len(draws) != len(x):
            raise ValueError(f"{len(draws)} sets of draws for {len(x)} images")
        return self._apply(x, draws)

    def _apply(self, x: np.ndarray, draws: "Draws") -> np.ndarray:
        """:meth:`apply_drawn` for images already checked (by :meth:`draw`)."""
        displacement = None
        if draws.noise is not None:
            displacement = _elastic_field(draws.noise, self.elastic, self.elastic_sigma)
        return _transform(x, draws.angle, draws.scale, draws.shift_row, draws.shift_col,
                          draws.thickness, displacement)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def augment(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None, *,
            return_params: bool = False):
    """Randomly rotate, scale, shift (and optionally warp and re-ink) every image in a batch.

    Parameters
    ----------
    x : (N, C, H, W) images (float, values in [0, 1], ink bright on dark).
    rng : the only source of randomness; the same generator state gives the same batch.
    config : :class:`AugmentConfig` (its defaults if None).
    return_params : also return the drawn per-image parameters.

    Returns
    -------
    x_aug : (N, C, H, W) array of ``x``'s dtype, clipped to [0, 1]; a new array (``x`` is
        untouched).
    params : only with ``return_params=True``: dict of (N,) arrays ``angle`` (degrees), ``scale``,
        ``shift_row``, ``shift_col``, ``thickness``.
    """
    config = config or AugmentConfig()
    draws = config.draw(x, rng)  # checks x
    out = config._apply(np.asarray(x), draws)
    if return_params:
        return out, {"angle": draws.angle, "scale": draws.scale, "shift_row": draws.shift_row,
                     "shift_col": draws.shift_col, "thickness": draws.thickness}
    return out


@dataclass(frozen=True)
class Draws:
    """The random numbers :meth:`AugmentConfig.draw` drew for a batch: per image ``(N,)`` its
    ``angle`` (degrees), ``scale``, ``shift_row``, ``shift_col`` and ``thickness``, and the
    elastic white ``noise`` ``(2, N, H, W)`` (None when elastic is off).  ``draws[rows]`` is the
    draws of those images."""

    angle: np.ndarray
    scale: np.ndarray
    shift_row: np.ndarray
    shift_col: np.ndarray
    thickness: np.ndarray
    noise: np.ndarray | None

    def __len__(self) -> int:
        return len(self.angle)

    def __getitem__(self, rows) -> "Draws":
        return Draws(self.angle[rows], self.scale[rows], self.shift_row[rows],
                     self.shift_col[rows], self.thickness[rows],
                     None if self.noise is None else self.noise[:, rows])


def transform(x: np.ndarray, angle=0.0, scale=1.0, shift_row=0.0, shift_col=0.0,
              thickness=0.0) -> np.ndarray:
    """Apply one known change to every image (the deterministic core of :func:`augment`).

    Parameters
    ----------
    x : (N, C, H, W) float images in [0, 1].
    angle : degrees, counter-clockwise on screen; a number or one per image ``(N,)``.
    scale : size factor (> 0); ``shift_row`` / ``shift_col`` : pixels (down / right);
    thickness : in [-1, 1], pen-width change (see :class:`AugmentConfig`).

    Returns
    -------
    (N, C, H, W) array of ``x``'s dtype, clipped to [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 1, 5, 5), np.float32); x[0, 0, 2, 4] = 1.0   # right of the centre
    >>> np.argwhere(transform(x, angle=90)[0, 0] > 0.5).tolist()      # now above it
    [[0, 2]]
    """
    x = _check_images(x)
    n = x.shape[0]
    per_image = [np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))
                 for v in (angle, scale, shift_row, shift_col, thickness)]
    for name, v in zip(("angle", "scale", "shift_row", "shift_col", "thickness"), per_image):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"transform {name} must be finite, got {v}")
    if np.any(per_image[1] <= 0):
        raise ValueError(f"transform scale must be > 0, got {scale}")
    if np.any(np.abs(per_image[4]) > 1):
        raise ValueError(f"transform thickness must be in [-1, 1], got {thickness}")
    return _transform(x, *per_image, None)


def _check_images(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or inf")
    return x


def _transform(x, angle, zoom, shift_row, shift_col, ink, displacement) -> np.ndarray:
    out = x
    if np.any(ink != 0):
        out = _change_thickness(out, ink.astype(x.dtype))
    out = _resample(out, angle, zoom, shift_row, shift_col, displacement)
    # Bilinear interpolation is a convex combination of [0, 1] values, so only rounding can step
    # outside; clipping makes the range exact (and is the identity on inputs already in [0, 1]).
    return np.clip(out, 0.0, 1.0, out=out)


def _change_thickness(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Move each image the fraction ``|a|`` of the way to its dilation (a > 0) or erosion (a < 0).

    Dilation/erosion use the 3×3 cross: a pixel becomes the max/min of itself and its 4 neighbours,
    which widens/narrows a stroke by about one pixel.  Both are computed with shifted slices.
    """
    n, c, h, w = x.shape
    pad_hi = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # zeros outside: background
    up, down = pad_hi[:, :, :-2, 1:-1], pad_hi[:, :, 2:, 1:-1]  # (N, C, H, W) neighbours
    left, right = pad_hi[:, :, 1:-1, :-2], pad_hi[:, :, 1:-1, 2:]
    thick = np.maximum(np.maximum(np.maximum(x, up), np.maximum(down, left)), right)
    thin = np.minimum(np.minimum(np.minimum(x, up), np.minimum(down, left)), right)
    a = a[:, None, None, None]  # (N, 1, 1, 1)
    target = np.where(a > 0, thick, thin)
    return x + np.abs(a) * (target - x)  # a == 0 gives x exactly


def _resample(x: np.ndarray, angle_deg: np.ndarray, zoom: np.ndarray, shift_row: np.ndarray,
              shift_col: np.ndarray, displacement) -> np.ndarray:
    """Bilinear resampling of every image at its own transformed grid (see the module doc)."""
    n, c, h, w = x.shape
    ftype = x.dtype
    cr, cc = (h - 1) / 2.0, (w - 1) / 2.0  # centre between the middle pixels
    rows = np.arange(h, dtype=ftype)[:, None] - cr  # (H, 1) output coordinates about the centre
    cols = np.arange(w, dtype=ftype)[None, :] - cc  # (1, W)
    theta = np.deg2rad(angle_deg)[:, None, None]  # (N, 1, 1)
    cos, sin = np.cos(theta).astype(ftype), np.sin(theta).astype(ftype)
    inv = (1.0 / zoom).astype(ftype)[:, None, None]  # (N, 1, 1)
    r = rows - shift_row.astype(ftype)[:, None, None]  # (N, H, 1)
    q = cols - shift_col.astype(ftype)[:, None, None]  # (N, 1, W)
    # Undo the counter-clockwise (on screen) rotation: with rows pointing down, a forward turn by
    # θ maps (r, q) to (r cosθ - q sinθ, q cosθ + r sinθ), so the inverse turns by -θ.
    src_r = (r * cos + q * sin) * inv + cr  # (N, H, W)
    src_c = (q * cos - r * sin) * inv + cc  # (N, H, W)
    if displacement is not None:
        src_r = src_r + displacement[0].astype(ftype)
        src_c = src_c + displacement[1].astype(ftype)
    return _bilinear(x, src_r, src_c)


def _elastic_field(noise: np.ndarray, alpha: float, sigma: float) -> np.ndarray:
    """Two smooth random displacement maps (rows, columns), ``(2, N, H, W)``, RMS ``alpha``, from
    white ``noise`` of that shape (each image's maps depend only on its own noise)."""
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(noise, sigma=(0, 0, sigma, sigma), mode="constant")
    rms = np.sqrt((smooth**2).mean(axis=(2, 3), keepdims=True))  # (2, N, 1, 1)
    return alpha * smooth / np.maximum(rms, np.finfo(np.float64).tiny)  # (2, N, H, W)


def _bilinear(x: np.ndarray, src_r: np.ndarray, src_c: np.ndarray) -> np.ndarray:
    """Read ``x`` at real-valued positions ``(src_r, src_c)`` ``(N, H, W)``; zero outside.

    Each value is a weighted average of the 4 surrounding pixels, weights ``(1-fr)(1-fc)``,
    ``(1-fr)fc``, ``fr(1-fc)``, ``fr·fc`` for the fractional parts ``fr, fc``.  At integer
    positions the weights are exactly 1, 0, 0, 0, which makes the identity transform exact.
    """
    n, c, h, w = x.shape
    r0 = np.floor(src_r)
    c0 = np.floor(src_c)
    fr = (src_r - r0)[:, None]  # (N, 1, H, W)
    fc = (src_c - c0)[:, None]
    r0 = r0.astype(np.intp)
    c0 = c0.astype(np.intp)
    flat = x.reshape(n, c, h * w)  # (N, C, H*W)
    out = np.zeros(x.shape, dtype=x.dtype)
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                           (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc  # (N, H, W) integer source pixels
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        idx = np.where(inside, rr * w + cc, 0).reshape(n, 1, h * w)  # (N, 1, H*W)
        vals = np.take_along_axis(flat, idx, axis=2).reshape(n, c, h, w)  # (N, C, H, W)
        out += np.where(inside[:, None], vals, 0) * weight  # outside the image reads as 0
    return out


__all__ = ["AugmentConfig", "Augmenter", "Draws", "augment", "transform"]
