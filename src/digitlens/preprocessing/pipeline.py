"""Image -> the 28x28 grid of intensities the network reads, with every step visible.

This is the one road from any picture of a digit to the network's input.  Bundled digits, IDX
files, canvas drawings and phone photos all take it; draw-a-digit apps that use a different,
simpler path for user drawings than MNIST used for its training digits are the classic reason
such apps "only recognise 7".

The steps, in order (each one except ``decode`` can be switched off by keyword)::

    decode            bytes / path / PIL / array -> grayscale in [0, 1]; EXIF orientation;
                      transparency flattened onto a contrasting background
    polarity          ink must be bright on dark (MNIST convention): invert dark-on-light
    flatten_lighting  subtract a smooth surface fitted to the paper, so shadows are not ink
    remove_lines      subtract ruled / squared paper's lines (thin, across the whole picture)
    threshold         Otsu's threshold (or the paper's noise, if higher) finds the ink; the paper
                      level is subtracted, gray levels inside the ink are kept
    despeckle         drop tiny specks of "ink" (noise, dust)
    largest_blob      keep the digit: the largest connected ink and strokes close to it
    crop              cut to the ink's bounding box
    scale             longer side -> 20 px, aspect ratio kept, anti-aliased (MNIST's procedure)
    center            paste into 28x28 so the centre of mass sits at pixel (14, 14)
    normalize         intensities scaled so the brightest ink is 1.0

Numbers: all step images are (H, W) float32 in [0, 1]; after ``polarity`` 1 means ink.  MNIST
itself was made by the last four steps (bounding box, 20x20 box with anti-aliasing, centre of mass
at the centre of 28x28); measured on the bundled digits, every digit's bounding box has a longer
side of exactly 20 and the centre of mass is at (13.99, 14.00) on average, i.e. pixel (14, 14).

Example
-------
>>> import numpy as np
>>> from digitlens.preprocess import preprocess
>>> page = np.ones((100, 80), np.float32)     # white paper...
>>> page[30:70, 35:45] = 0.0                  # ...with a dark vertical bar
>>> p = preprocess(page)
>>> p.image.shape, float(p.image.max())
((28, 28), 1.0)
>>> [s.name for s in p.steps][:3]
['decode', 'polarity', 'flatten_lighting']
"""

from __future__ import annotations

from ..errors import PreprocessError, NotAnImageError, TruncatedImageError, ImageTooLargeError, NoInkError  # noqa: F401  (re-exported)
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.png import gray_png, gray_png_url, png_data_url  # noqa: F401  (re-exported)
from scipy import ndimage as ndi

from ..data import images as _images

SIZE = 28
"""Side of the network's input grid."""
BOX = 20
"""MNIST scales the digit's longer side to 20 pixels, leaving a 4-pixel margin."""
CENTER = 14.0
"""Where MNIST puts the centre of mass (row, column), in pixel-index coordinates."""
MIN_CONTRAST = 0.08
"""Ink must be at least this much brighter than the paper (on the 0..1 scale) to count."""

SWITCHES = ("polarity", "flatten_lighting", "remove_lines", "threshold", "despeckle",
            "largest_blob", "crop", "scale", "center", "normalize")
"""Names of the steps that can be switched off, in the order they run."""

TITLES = {
    "decode": "Decode to grayscale",
    "polarity": "Ink polarity",
    "flatten_lighting": "Flatten the lighting",
    "remove_lines": "Remove ruled lines",
    "threshold": "Separate ink from paper",
    "despeckle": "Drop specks",
    "largest_blob": "Keep the digit",
    "crop": "Crop to the ink",
    "scale": "Scale to 20 pixels",
    "center": "Centre in 28x28",
    "normalize": "Intensities to [0, 1]",
}


@dataclass(frozen=True)
class Step:
    """One pre-processing step: what it produced, the numbers that matter, one sentence.

    Attributes
    ----------
    name : str
        Machine name (``"threshold"``); the keyword that switches it off.
    title : str
        Human title (``"Separate ink from paper"``).
    image : ndarray, (H, W) float32 in [0, 1]
        The image after this step (from ``polarity`` on, 1 = ink).
    numbers : dict
        JSON-able numbers, e.g. ``{"threshold": 0.41}``.
    sentence : str
        What happened, in one sentence.
    enabled : bool
        False if the step was switched off (then ``image`` is its input, unchanged).
    """

    name: str
    title: str
    image: np.ndarray
    numbers: dict[str, Any] = field(default_factory=dict)
    sentence: str = ""
    enabled: bool = True

    def grid(self, decimals: int = 3) -> str:
        """This step's image as rows of numbers (sensible for small images)."""
        return format_grid(self.image, decimals)

    def summary(self) -> str:
        """``"threshold: <sentence>"``, one line."""
        return f"{self.name}: {self.sentence}"

    def to_dict(self, max_side: int = 192, *, image_url: str | None = None) -> dict[str, Any]:
        """JSON-able form; the image is a ``data:image/png;base64,...`` URL, reduced so its longer
        side is at most ``max_side`` pixels (small images are left as they are).  ``image_url``
        supplies an already-encoded URL for the same image."""
        h, w = self.image.shape
        return {"name": self.name, "title": self.title, "enabled": self.enabled,
                "sentence": self.sentence, "numbers": _jsonable(self.numbers),
                "size": [int(w), int(h)],
                "image": image_url if image_url is not None else png_data_url(self.image,
                                                                              max_side)}


@dataclass(frozen=True)
class Preprocessed:
    """The network's input and the road that led to it.

    Attributes
    ----------
    image : ndarray, (28, 28) float32 in [0, 1]
        Ink bright on dark, MNIST-style.
    steps : list of Step
        Every step in order, including switched-off ones (``enabled=False``).
    """

    image: np.ndarray
    steps: list[Step]

    @property
    def x(self) -> np.ndarray:
        """The image as a batch of one, ``(1, 1, 28, 28)``, ready for ``model.predict``."""
        return self.image[None, None]

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step named {name!r}; steps are {[s.name for s in self.steps]}")

    def grid(self, decimals: int = 3) -> str:
        """The 28x28 intensities as 28 rows of numbers, e.g. ``0.000 0.322 0.988 ...``."""
        return format_grid(self.image, decimals)

    def compact_grid(self) -> str:
        """The 28x28 grid for a terminal: one character per pixel, the intensity x 9 rounded to
        a digit 0-9, ``.`` for exactly 0."""
        return compact_grid(self.image)

    def summary_lines(self) -> list[str]:
        """One line per step: ``name: sentence`` (``(off)`` for switched-off steps)."""
        return [f"{s.name}{'' if s.enabled else ' (off)'}: {s.sentence}" for s in self.steps]

    def text(self) -> str:
        """Text form for the terminal: the compact grid, then one line per step."""
        return (self.compact_grid() + "\n(each character: intensity x 9, rounded; '.' = 0)\n\n"
                + "\n".join(self.summary_lines()))

    __str__ = text

    def to_dict(self, max_side: int = 192, decimals: int = 4, *, grid: bool = True
                ) -> dict[str, Any]:
        """JSON-able form for the web page: ``image`` as 28 lists of 28 floats (left out with
        ``grid=False``), ``steps`` with their images as PNG data URLs (reduced to ``max_side``
        pixels)."""
        steps, last = [], (None, None)
        for s in self.steps:
            if s.image is last[0]:  # unchanged by this step (switched off, nothing to do):
                d = {**s.to_dict(max_side, image_url=last[1])}   # reuse the encoded PNG
            else:
                d = s.to_dict(max_side)
            last = (s.image, d["image"])
            steps.append(d)
        d = {"shape": [SIZE, SIZE], "steps": steps}
        if grid:
            d["image"] = np.round(self.image.astype(np.float64), decimals).tolist()
        return d

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<figure style="display:inline-block;margin:4px;text-align:center">'
            f'<img src="{png_data_url(s.image, 112)}" style="width:84px;height:84px;'
            f'object-fit:contain;image-rendering:pixelated;border:1px solid #ccc'
            f'{";opacity:.4" if not s.enabled else ""}">'
            f'<figcaption style="font-size:10px;width:84px">{s.title}</figcaption></figure>'
            for s in self.steps)
        items = "".join(f"<li>{_html_escape(line)}</li>" for line in self.summary_lines())
        return f"<div>{cells}<ul style='font-size:12px'>{items}</ul></div>"


# --------------------------------------------------------------------------- formatting helpers

def format_grid(image: np.ndarray, decimals: int = 3) -> str:
    """Rows of fixed-width numbers, one row per image row."""
    if not isinstance(decimals, (int, np.integer)) or decimals < 0:
        raise ValueError(f"decimals must be a non-negative integer; got {decimals!r}")
    return "\n".join(" ".join(f"{v:.{decimals}f}" for v in row) for row in np.asarray(image))


def compact_grid(image: np.ndarray) -> str:
    """One character per pixel: round(intensity x 9) as a digit, ``.`` for exactly 0."""
    a = np.asarray(image, dtype=np.float64)
    levels = np.rint(np.clip(a, 0, 1) * 9).astype(int)
    return "\n".join("".join("." if v == 0 else str(max(lv, 0)) for v, lv in zip(r, lr))
                     for r, lr in zip(a, levels))


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return round(float(obj), 6)
    return obj


def _r(v: float, n: int = 4) -> float:
    return round(float(v), n)


# --------------------------------------------------------------------------- the steps

def _resize(a: np.ndarray, width: int, height: int, resample=None) -> np.ndarray:
    """Resize a float image with Pillow (``F`` mode keeps full precision).  When shrinking,
    Pillow widens the filter by the shrink factor, i.e. it anti-aliases."""
    from PIL import Image

    if resample is None:
        # Bilinear (a triangle filter) has no negative lobes, so unlike Lanczos it adds no faint
        # ringing around strokes; on the photo-robustness test it is as accurate or better.
        resample = Image.BILINEAR
    if a.shape == (height, width):
        return a.copy()
    out = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F").resize(
        (int(width), int(height)), resample)
    return np.asarray(out, dtype=np.float32)


def _sample(a: np.ndarray, limit: int = 40_000) -> np.ndarray:
    """A regular sub-grid of at most ~``limit`` pixels, for statistics on big photos."""
    stride = max(1, int(np.ceil(np.sqrt(a.size / limit))))
    return a[::stride, ::stride]


def _median_spread(v: np.ndarray) -> tuple[float, float]:
    """``(median, robust spread)`` of the values ``v``: the spread is 1.4826 x the median
    absolute deviation, which equals the standard deviation for Gaussian noise but ignores the
    few far values (ink among paper pixels)."""
    med = float(np.median(v))
    return med, 1.4826 * float(np.median(np.abs(v - med)))


def _border(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    f = max(1, int(round(0.04 * min(h, w))))
    return np.concatenate([a[:f].ravel(), a[-f:].ravel(), a[:, :f].ravel(), a[:, -f:].ravel()])


def _polarity(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Decide whether the ink is darker or lighter than the paper, and make it bright.

    The paper is judged from the image's border (a digit rarely touches all four edges).  Pixels
    further from the paper level than the border's own variation (``tolerance``, which absorbs
    a lighting gradient) vote, weighted by how far they are: darker pixels for dark ink, lighter
    for light ink."""
    border = _border(a)
    lo, paper, hi = (float(v) for v in np.percentile(border, [5, 50, 95]))  # 50: the median
    tol = float(hi - lo) / 2 + 0.02
    s = _sample(a)
    dark = float(np.clip(paper - tol - s, 0, None).sum())
    light = float(np.clip(s - paper - tol, 0, None).sum())
    invert = dark > light
    out = (1.0 - a) if invert else a
    numbers = {"paper_level": _r(paper), "tolerance": _r(tol), "dark_votes": _r(dark, 2),
               "light_votes": _r(light, 2), "inverted": bool(invert)}
    if invert:
        sentence = (f"The paper is light ({paper:.2f}) and the ink darker, so every pixel became "
                    f"1 - pixel: ink is now bright, as in MNIST.")
    else:
        sentence = (f"The background is dark ({paper:.2f}) and the ink lighter — already MNIST's "
                    f"convention, nothing to invert.")
    return out, numbers, sentence


LIGHTING_DEGREE = 2
"""Degree of the polynomial surface that models the paper's lighting (2: gradients, vignettes)."""


def _poly_terms(u: np.ndarray, v: np.ndarray, degree: int) -> list[np.ndarray]:
    """The monomials u^i v^j, i + j <= degree (broadcasting: u (H, 1), v (1, W) -> (H, W))."""
    return [u ** i * v ** (d - i) for d in range(degree + 1) for i in range(d, -1, -1)]


@functools.lru_cache(maxsize=16)
def _lighting_design(sh: int, sw: int) -> np.ndarray:
    """The monomials of the pixel-centre coordinates of an (sh, sw) grid, one column each:
    ``(sh*sw, k)``, read-only.  Coordinates are in [-1, 1], the same at every resolution.  Cached:
    most pictures reduce to the same few grid shapes (a square canvas always to 64 x 64)."""
    us = ((np.arange(sh) + 0.5) / sh * 2 - 1)[:, None]               # (sh, 1)
    vs = ((np.arange(sw) + 0.5) / sw * 2 - 1)[None, :]               # (1, sw)
    design = np.stack([np.broadcast_to(t, (sh, sw)).ravel()
                       for t in _poly_terms(us, vs, LIGHTING_DEGREE)], axis=1)
    design.setflags(write=False)
    return design


def _least_squares(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin_c |X c - y|^2 via the normal equations ``(X^T X) c = X^T y``.

    X has only a handful of columns (monomials of coordinates in [-1, 1], well conditioned), so
    the k x k solve is both accurate and far cheaper than ``lstsq``'s SVD of the tall matrix."""
    G = X.T @ X                                                      # (k, n) @ (n, k) -> (k, k)
    b = X.T @ y                                                      # (k, n) @ (n,) -> (k,)
    try:
        return np.linalg.solve(G, b)
    except np.linalg.LinAlgError:  # degenerate (e.g. paper only along one line): minimum norm
        return np.linalg.pinv(G) @ b


def _flatten_lighting(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Subtract a smooth model of the paper's brightness (ink is bright here).

    Lighting across a sheet of paper changes slowly (a lamp on one side, a shadow, a
    vignette), so it is modelled as a degree-2 polynomial surface in (row, column),
    fitted by least squares to the *paper* pixels.  Which pixels are paper is found by
    iterating: fit, then call paper only the pixels not clearly brighter than the surface
    (ink is bright, so it sits above), and fit again, starting from the darker half of the
    pixels.  The fit runs on a copy reduced to at
    most 64 pixels a side (the box reduction also averages away sensor noise), and the surface
    is evaluated at full size.

    A global surface has no window, so unlike a local background filter it neither leaves bands
    at the image's edges nor mistakes a large solid blob of ink for paper.
    """
    h, w = a.shape
    factor = max(1.0, max(h, w) / 64)
    small = a if factor == 1.0 else _resize(a, max(1, round(w / factor)), max(1, round(h / factor)),
                                            resample=_box())
    sh, sw = small.shape
    design = _lighting_design(sh, sw)                                 # (sh*sw, k), cached
    y = small.ravel().astype(np.float64)                              # (sh*sw,)
    # Start from the darker half (ink is bright and covers less than half of the picture),
    # then let the fit decide.
    paper = y <= np.median(y) + 0.01
    coef = np.zeros(design.shape[1])
    for _ in range(8):
        if paper.sum() < design.shape[1] * 4:  # too little paper to fit a surface
            break
        coef = _least_squares(design[paper], y[paper])                  # (k,)
        r = y - design @ coef                                         # (sh*sw,)
        med, spread = _median_spread(r[paper])
        new = r <= med + 2.5 * spread + 0.01
        if np.array_equal(new, paper):
            break
        paper = new
    # the surface's range, read on the grid it was fitted on (a smooth surface: the full-size
    # grid's range differs by a hair), decides whether there is anything to flatten
    fitted = design @ coef                                            # (sh*sw,)
    bmin, bmax = float(fitted.min()), float(fitted.max())
    numbers = {"model": f"degree-{LIGHTING_DEGREE} polynomial", "background_min": _r(bmin),
               "background_max": _r(bmax), "paper_share": _r(float(paper.mean()))}
    if bmax - bmin < 1 / 255:
        # Even lighting: nothing to flatten (the next step removes a constant paper level).
        numbers.update(noise=0.0, lift=0.0)
        return a, numbers, (f"The paper is evenly lit (level {(bmin + bmax) / 2:.2f}); "
                            f"nothing to flatten.")
    # The surface sum_{i+j<=D} c_ij u^i v^j is separable: U C V^T with U[:, i] = u^i and
    # V[:, j] = v^j, one small matrix product instead of a full-size pass per monomial.
    D = LIGHTING_DEGREE
    u = (np.arange(h) + 0.5) / h * 2 - 1                                 # (h,)
    v = (np.arange(w) + 0.5) / w * 2 - 1                                 # (w,)
    C = np.zeros((D + 1, D + 1))
    k = 0
    for d in range(D + 1):                  # the same order as _poly_terms: u^i v^(d-i)
        for i in range(d, -1, -1):
            C[i, d - i] = coef[k]
            k += 1
    U = u[:, None] ** np.arange(D + 1)                                  # (h, D+1)
    V = v[:, None] ** np.arange(D + 1)                                  # (w, D+1)
    bg = ((U @ C) @ V.T).astype(np.float32)                # (h, D+1) @ (D+1, D+1) @ (D+1, w)
    resid = a - bg
    # Paper now sits around 0 with its noise on both sides.  Clipping at 0 would hide half of
    # that noise and make the next step underestimate it; lifting the paper to 3 x noise keeps
    # (almost) all of it visible.
    med, noise = _median_spread(_sample(resid))
    lift = 3 * noise - med
    out = np.clip(resid + lift, 0.0, 1.0)
    numbers.update(noise=_r(noise), lift=_r(lift))
    sentence = (f"Modelled the paper's brightness as a smooth surface (it ranges {bmin:.2f}–"
                f"{bmax:.2f}) fitted to the pixels around the ink, and subtracted it, so shadows "
                f"and gradients are not mistaken for ink.")
    return out, numbers, sentence


def _box():
    from PIL import Image

    return Image.BOX


def otsu_threshold(a: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold for values in [0, 1]: the cut maximising the between-class variance
    ``w0 w1 (mu0 - mu1)^2``.  Pixels ``> threshold`` form the bright class."""
    q = np.minimum((a.ravel() * bins).astype(np.intp), bins - 1)
    hist = np.bincount(q, minlength=bins).astype(np.float64)
    p = hist / hist.sum()
    centers = (np.arange(bins) + 0.5) / bins
    w0 = np.cumsum(p)                       # weight of the dark class for each cut
    m0 = np.cumsum(p * centers)             # its (unnormalised) mean
    mt = m0[-1]
    denom = w0 * (1.0 - w0)
    between = np.zeros(bins)
    ok = denom > 1e-12                      # cuts with both classes non-empty
    between[ok] = (mt * w0[ok] - m0[ok]) ** 2 / denom[ok]
    k = int(np.argmax(between))
    return (k + 1) / bins


LINE_SPAN = 0.9
"""A ruled line runs across at least this fraction of the picture (a digit's stroke never does,
unless the picture is cropped to the digit)."""

MIN_LINES = 2
"""Lines are removed only when at least this many run the same way: ruled or squared paper has
many, while one long thin stroke can be a tightly cropped 7's bar."""


def _ruled_lines(a: np.ndarray, paper: float, noise: float, axis: int):
    """The long thin bright lines of ``a`` running along ``axis`` (1: across, 0: down).

    1. A grayscale opening with a run of ``L`` pixels along the axis (L = 4 % of the picture's
       length, at least 5) keeps only what is bright along L pixels in a row, with its own gray
       levels: lines (also tilted a few degrees: a 1-pixel line tilted 3 degrees still has runs
       of 19 pixels) and the long straight parts of strokes.
    2. Of that, only thin pixels count: those in a run across the axis of at most 3 pixels or
       3 % of the other side (a line is thin; a drawn stroke usually is not).
    3. Thin pieces that span ``LINE_SPAN`` of the picture are lines (pieces less than half the
       picture apart along the axis and 4 pixels across it count as one: a thick stroke
       crossing a line cuts it).
       Strokes can join several lines into one piece, so each piece counts as many lines as its
       typical cross-section has runs.

    Returns ``(removal, levels)``: how much to subtract at each pixel (the opened brightness above
    ``paper``, capped just above the line's range, so ink lying along a line keeps its excess) and
    each piece's median level, repeated once per line in it.  Pixels count when they are
    ``3 x noise + 0.01`` above the paper.
    """
    length, other = a.shape[axis], a.shape[1 - axis]
    floor = 3 * noise + 0.01
    removal = np.zeros(a.shape, dtype=np.float32)
    levels: list[float] = []
    # quick necessary condition: MIN_LINES lines running across LINE_SPAN of the picture put at
    # least MIN_LINES bright pixels in that share of its cross-sections (a drawing or a clean
    # photo stops here)
    if np.mean(((a - paper) > floor).sum(axis=1 - axis) >= MIN_LINES) < LINE_SPAN:
        return removal, levels
    run = max(5, int(round(0.04 * length)))
    opened = ndi.grey_opening(a, size=(1, run) if axis == 1 else (run, 1))
    rel = opened - paper
    bright = rel > floor
    if not bright.any():
        return removal, levels
    # the length of the run across the axis that each bright pixel sits in
    across = np.zeros((3, 3), dtype=bool)
    across[:, 1] = True
    if axis == 0:
        across = across.T
    runs, _ = ndi.label(bright, structure=across)
    thin = bright & (np.bincount(runs.ravel())[runs] <= max(3.0, 0.03 * other))
    if thin.sum() < MIN_LINES * LINE_SPAN * length:     # too few thin pixels for the lines
        return removal, levels
    # a line is cut where a thick stroke crosses it: pieces up to half the picture apart along
    # the axis, and up to 4 pixels across it (a line tilted 3 degrees drifts 4 pixels across a
    # 75-pixel stroke), belong together.  The dilation only decides what is connected; only
    # thin pixels are ever removed.
    size = (9, max(3, length // 2)) if axis == 1 else (max(3, length // 2), 9)
    joined = ndi.maximum_filter(thin.view(np.uint8), size=size)
    labels, n = ndi.label(joined, structure=np.ones((3, 3), dtype=bool))
    labels *= thin
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        extent = sl[axis].stop - sl[axis].start
        if extent < LINE_SPAN * length:
            continue
        comp = labels[sl] == i
        # runs per cross-section: a run starts where the previous pixel across the axis is off
        prev = np.zeros_like(comp)
        if axis == 1:
            prev[1:] = comp[:-1]
        else:
            prev[:, 1:] = comp[:, :-1]
        starts = (comp & ~prev).sum(axis=1 - axis)
        k = int(np.median(starts[starts > 0]))
        r = rel[sl][comp]
        # a line's brightness varies along it (the lighting scaled its contrast); what rises far
        # above its usual range is ink lying along the line, which keeps its excess
        cap = float(np.percentile(r, 95)) + 3 * noise + 0.05
        removal[sl][comp] = np.minimum(r, cap)
        levels += [float(np.median(r))] * max(k, 1)
    if len(levels) < MIN_LINES:
        return np.zeros(a.shape, dtype=np.float32), []
    return removal, levels


def _remove_lines(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Subtract ruled or squared paper's lines (ink is bright here), so they are not taken for
    ink: thin bright lines running across (or down) the whole picture, at least two of them.

    Both directions are found on the same picture (removing the horizontal lines first would cut
    the vertical ones at every crossing) and, where they cross, the larger removal is used."""
    paper, noise = _median_spread(_sample(a))  # ink covers well under half of the picture
    across, lv_h = _ruled_lines(a, paper, noise, axis=1)
    down, lv_v = _ruled_lines(a, paper, noise, axis=0)
    numbers = {"lines_across": len(lv_h), "lines_down": len(lv_v)}
    if not lv_h and not lv_v:
        return a, numbers, ("No ruled lines: nothing thin runs across the whole picture, so "
                            "nothing was removed.")
    out = np.clip(a - np.maximum(across, down), 0.0, 1.0).astype(np.float32)
    level = float(np.mean(lv_h + lv_v))
    numbers["line_level"] = _r(level)
    parts = ([f"{len(lv_h)} running across"] if lv_h else []) + \
        ([f"{len(lv_v)} running down"] if lv_v else [])
    sentence = (f"Found ruled lines ({' and '.join(parts)}, {level:.2f} brighter than the paper) "
                f"and subtracted them, so they are not taken for ink; strokes crossing them keep "
                f"what is brighter than the line.")
    return out, numbers, sentence


def _threshold(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Find the ink, then subtract the paper level, keeping the ink's gray levels.

    - The paper's level and noise are the median and the robust spread (1.4826 x median absolute
      deviation) of the pixels (ink covers well under half of a picture of a digit).
    - The ink threshold is Otsu's (the cut that best separates two classes of brightness), but
      never less than ``paper + 5 x noise``: when the digit covers only a sliver of a photo,
      Otsu splits the paper's noise in two instead.
    - A hard cut would throw away the anti-aliased edges of strokes (MNIST keeps them), so
      instead ``paper + 4 x noise`` is subtracted from every pixel, and what remains is kept only
      where it is connected to clear ink (above the threshold) — "hysteresis", as in edge
      detectors: faint pixels touching a stroke are its edge, faint pixels alone are noise.
    """
    t_otsu = otsu_threshold(a)
    s = _sample(a)
    paper_px = s if np.mean(s > t_otsu) < 0.5 else s[s <= t_otsu]
    if paper_px.size == 0:
        paper_px = s
    paper, noise = _median_spread(paper_px)
    t = max(t_otsu, paper + 5 * noise + 0.01)
    strong = a > t
    if not strong.any():
        raise NoInkError("nothing stands out from the paper")
    ink_level = float(a[strong].mean())
    contrast = ink_level - paper
    if contrast < MIN_CONTRAST:
        raise NoInkError(f"the darkest marks differ from the paper by only {contrast:.3f}")
    floor = min(paper + 4 * noise, t)
    weak = a > floor                                            # strong ⊆ weak, as t >= floor
    # Everything outside weak's bounding box ends up 0 (label 0), so the labelling and the
    # hysteresis run on that box only; the raster order inside the box is the full image's, so
    # the label numbers are the same as on the full image.
    y0, y1, x0, x1 = _bbox(weak)
    box = (slice(y0, y1), slice(x0, x1))
    sub_labels, n = ndi.label(weak[box], structure=np.ones((3, 3), dtype=bool))
    has_strong = np.zeros(n + 1, dtype=bool)
    has_strong[sub_labels[strong[box]]] = True
    has_strong[0] = False
    keep = has_strong[sub_labels]                               # (h, w) bool, in the box
    out = np.zeros(a.shape, dtype=np.float32)
    out[box] = np.where(keep, np.clip(a[box] - floor, 0.0, 1.0), 0.0)
    labels = np.zeros(a.shape, dtype=sub_labels.dtype)
    labels[box] = sub_labels
    # Every kept pixel is > floor, so out > 0 exactly on the kept components: the labels stay
    # valid for the next steps (dropped labels simply have no ink left).
    kl = sub_labels[keep]
    ctx["labels"] = (labels, np.bincount(kl, weights=out[box][keep], minlength=n + 1))
    frac = float(strong.mean())
    dropped = int(n - has_strong.sum())
    numbers = {"otsu_threshold": _r(t_otsu), "threshold": _r(t), "paper_level": _r(paper),
               "paper_noise": _r(noise), "ink_level": _r(ink_level), "subtracted": _r(floor),
               "ink_fraction": _r(frac), "faint_pieces_dropped": dropped}
    sentence = (f"Ink is what is brighter than {t:.2f} ({frac:.1%} of pixels, mean "
                f"{ink_level:.2f}); the paper (level {paper:.2f}, noise {noise:.3f}) minus "
                f"{floor:.3f} becomes exactly 0, the ink keeps its gray levels"
                + (f", and {dropped} faint pieces not touching clear ink were dropped." if dropped
                   else "."))
    return out, numbers, sentence


def _label(a: np.ndarray, ctx: dict):
    """Connected ink (8-neighbourhood) and each component's ink mass (sum of intensities).

    Labels are reused from ``ctx`` when an earlier step left them valid (it only removed whole
    components since); a label whose ink is gone has mass 0 and counts as absent."""
    if "labels" not in ctx:
        labels, n = ndi.label(a > 0, structure=np.ones((3, 3), dtype=bool))
        ink = labels > 0
        ctx["labels"] = (labels, np.bincount(labels[ink], weights=a[ink], minlength=n + 1))
    labels, mass = ctx["labels"]   # mass: (n + 1,) ink per label; [0] is the paper, always 0
    return labels, len(mass) - 1, mass


def _despeckle(a: np.ndarray, ctx: dict, frac: float = 0.02) -> tuple[np.ndarray, dict, str]:
    """Remove connected specks whose ink mass is under ``frac`` of the biggest component's."""
    labels, _, mass = _label(a, ctx)
    present = mass > 0
    n = int(present.sum())
    if n == 0:
        raise NoInkError("no ink left after separating it from the paper")
    limit = frac * mass.max()
    drop = np.flatnonzero(present & (mass < limit))
    out = a
    if drop.size:
        keep = present.copy()
        keep[drop] = False
        out = np.where(keep[labels], a, 0.0).astype(np.float32)
        ctx["labels"] = (labels, np.where(keep, mass, 0.0))
    removed = float(mass[drop].sum() / mass.sum())
    numbers = {"components": int(n), "removed": int(drop.size), "removed_ink_fraction":
               _r(removed), "speck_limit_mass": _r(limit, 3)}
    if drop.size:
        sentence = (f"Removed {drop.size} of {n} ink specks, each under {frac:.0%} of the biggest "
                    f"stroke ({removed:.1%} of all ink).")
    else:
        sentence = ("No specks: the ink is one piece." if n == 1 else
                    f"No specks: all {n} pieces of ink are substantial.")
    return out, numbers, sentence


def _largest_blob(a: np.ndarray, ctx: dict, near: float = 0.2, min_share: float = 0.1
                  ) -> tuple[np.ndarray, dict, str]:
    """Keep the digit: the largest connected ink, plus pieces close to it that are not tiny.

    A "5" or a "4" is often drawn in strokes that do not touch, so strictly "largest only" would
    cut digits apart (it turns many MNIST 5s into a hook).  Starting from the largest piece, a
    piece joins the digit if its ink mass is at least ``min_share`` of the largest's and the gap
    between its bounding box and the digit's so far is at most ``near`` x the digit's longer
    side; this repeats until nothing joins.  Anything else (a second digit further away, a
    smudge, a shadow line) is dropped."""
    labels, _, mass = _label(a, ctx)
    present = mass > 0
    n = int(present.sum())
    if n == 0:
        raise NoInkError("no ink left after removing specks")
    big = int(np.argmax(mass))
    boxes = ndi.find_objects(labels)
    keep = np.zeros(mass.shape, dtype=bool)
    keep[big] = True
    y0, y1 = boxes[big - 1][0].start, boxes[big - 1][0].stop
    x0, x1 = boxes[big - 1][1].start, boxes[big - 1][1].stop
    candidates = [i for i in np.flatnonzero(present) if i != big and
                  mass[i] >= min_share * mass[big]]
    grew = True
    while grew and candidates:
        grew = False
        limit = near * max(y1 - y0, x1 - x0)
        for i in list(candidates):
            sy, sx = boxes[i - 1]
            gap = max(sy.start - y1, y0 - sy.stop, sx.start - x1, x0 - sx.stop, 0)
            if gap <= limit:
                keep[i] = True
                candidates.remove(i)
                y0, y1 = min(y0, sy.start), max(y1, sy.stop)
                x0, x1 = min(x0, sx.start), max(x1, sx.stop)
                grew = True
    dropped = int(n - keep.sum())
    out = a if dropped == 0 else np.where(keep[labels], a, 0.0).astype(np.float32)
    ctx["labels"] = (labels, np.where(keep, mass, 0.0))
    kept_share = float(mass[keep].sum() / mass.sum())
    numbers = {"components": int(n), "kept": int(keep.sum()), "dropped": dropped,
               "kept_ink_fraction": _r(kept_share), "largest_mass": _r(mass[big], 2)}
    extra = int(keep.sum()) - 1
    if n == 1:
        sentence = "The ink is one connected stroke: that is the digit."
    else:
        parts = ["Kept the largest connected ink"]
        if extra:
            parts.append(f" and {extra} nearby stroke{'s' if extra > 1 else ''}")
        if dropped:
            parts.append(f"; dropped {dropped} other blob{'s' if dropped > 1 else ''} "
                         f"({1 - kept_share:.1%} of the ink) as not part of the digit")
        sentence = "".join(parts) + "."
    return out, numbers, sentence


def _bbox(a: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(a.any(axis=1))
    cols = np.flatnonzero(a.any(axis=0))
    if rows.size == 0:
        raise NoInkError("the image is empty after the previous steps")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _crop(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    y0, y1, x0, x1 = _bbox(a)
    out = a[y0:y1, x0:x1]
    numbers = {"box": {"top": y0, "bottom": y1, "left": x0, "right": x1},
               "width": x1 - x0, "height": y1 - y0}
    sentence = (f"The ink spans rows {y0}–{y1 - 1} and columns {x0}–{x1 - 1}: a "
                f"{x1 - x0}x{y1 - y0} box, cut out.")
    return out, numbers, sentence


def _scale(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Longer side -> 20 px, keeping the aspect ratio.  Pillow's bilinear filter anti-aliases:
    when shrinking by a factor k it averages over k times as many source pixels."""
    h, w = a.shape
    longer = max(h, w)
    f = BOX / longer
    nw, nh = max(1, int(round(w * f))), max(1, int(round(h * f)))
    out = np.clip(_resize(a, nw, nh), 0.0, 1.0)
    numbers = {"from": [w, h], "to": [nw, nh], "factor": _r(f)}
    how = ("shrinking averages neighbouring pixels (anti-aliasing)" if f < 1 else
           "enlarging interpolates between pixels" if f > 1 else "it was already that size")
    sentence = (f"Resized {w}x{h} to {nw}x{nh}: the longer side becomes {BOX} pixels, the "
                f"shape is kept, and {how}.")
    return out, numbers, sentence


def _center_of_mass(a: np.ndarray) -> tuple[float, float]:
    total = float(a.sum())
    if total <= 0:
        h, w = a.shape
        return (h - 1) / 2, (w - 1) / 2
    rows = a.sum(axis=1) @ np.arange(a.shape[0]) / total
    cols = a.sum(axis=0) @ np.arange(a.shape[1]) / total
    return float(rows), float(cols)


def _place(a: np.ndarray, center: bool) -> tuple[np.ndarray, dict, str]:
    """Paste ``a`` (at most 28x28) into a 28x28 field.  With ``center``, shift by whole pixels so
    the centre of mass lands on (14, 14), as MNIST did; otherwise centre the box."""
    h, w = a.shape
    box_top, box_left = (SIZE - h) // 2, (SIZE - w) // 2
    cy, cx = _center_of_mass(a)
    if center:
        top = int(np.clip(round(CENTER - cy), 0, SIZE - h))
        left = int(np.clip(round(CENTER - cx), 0, SIZE - w))
    else:
        top, left = box_top, box_left
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top:top + h, left:left + w] = a
    fy, fx = _center_of_mass(out)
    numbers = {"offset": {"top": top, "left": left},
               "shift_from_box_centre": [top - box_top, left - box_left],
               "center_of_mass": [_r(fy, 3), _r(fx, 3)],
               "clamped": bool(center and (top != round(CENTER - cy) or
                                           left != round(CENTER - cx)))}
    if center:
        sentence = (f"Placed so the centre of mass (the ink's balance point) is at "
                    f"({fy:.2f}, {fx:.2f}), next to MNIST's (14, 14); that moved the box "
                    f"{top - box_top:+d} rows, {left - box_left:+d} columns.")
    else:
        sentence = (f"Box placed in the middle of the 28x28 field; its centre of mass is at "
                    f"({fy:.2f}, {fx:.2f}).")
    return out, numbers, sentence


def _normalize(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    peak = float(a.max())
    if peak <= 0:
        raise NoInkError("the 28x28 image is blank")
    out = np.clip(a / peak, 0.0, 1.0).astype(np.float32)
    numbers = {"peak_before": _r(peak), "scale": _r(1 / peak)}
    sentence = (f"Multiplied by {1 / peak:.3f} so the brightest ink is 1.0 and paper stays 0: "
                f"784 numbers in [0, 1], the network's input.")
    return out, numbers, sentence


# --------------------------------------------------------------------------- the pipeline

def _switches(steps, switches: dict[str, Any]) -> dict[str, bool]:
    on = dict.fromkeys(SWITCHES, True)
    if steps is not None:
        if isinstance(steps, Mapping):
            switches = {**dict(steps), **switches}
        elif isinstance(steps, Iterable) and not isinstance(steps, (str, bytes)):
            names = list(steps)
            bad = [s for s in names if s not in SWITCHES and s != "decode"]
            if bad:
                raise ValueError(f"steps: unknown step(s) {bad}; choose from {list(SWITCHES)}")
            on = {k: k in names for k in SWITCHES}
        else:
            raise TypeError("steps must be a mapping {name: bool} or a list of step names")
    for k, v in switches.items():
        if k not in SWITCHES:
            raise TypeError(f"preprocess() got an unknown switch {k!r}; the switchable steps are "
                            f"{list(SWITCHES)}")
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"switch {k} must be True or False; got {v!r}")
        on[k] = bool(v)
    return on


def preprocess(source, *, steps=None, max_bytes: int = _images.MAX_BYTES,
               max_pixels: int = _images.MAX_PIXELS, **switches: bool) -> Preprocessed:
    """Turn a picture of one digit into the network's 28x28 input, recording every step.

    Parameters
    ----------
    source : bytes, str, os.PathLike, file object, PIL.Image.Image or ndarray
        An encoded image (PNG, JPEG, BMP, GIF, WebP, TIFF), its path, a Pillow image, or an
        array of shape (H, W), (H, W, 3) or (H, W, 4), uint8 (0..255) or float ([0, 1]).
        Leading length-1 axes are dropped, so an MNIST batch item (1, 28, 28) works.
    steps : mapping or list of names, optional
        ``{"threshold": False}`` switches steps off; a list runs exactly the named steps.
    max_bytes, max_pixels : int
        Refuse encoded files over ``max_bytes`` and images over ``max_pixels`` (checked from the
        header before decoding).
    **switches : bool
        ``polarity=False``, ``flatten_lighting=False``, ``remove_lines=False``,
        ``threshold=False``,
        ``despeckle=False``, ``largest_blob=False``, ``crop=False``, ``scale=False`` (stretch
        to 28x28 instead), ``center=False`` (centre the box, not the mass), ``normalize=False``.

    Returns
    -------
    Preprocessed
        ``.image`` (28, 28) float32 in [0, 1], ink bright; ``.steps`` every step.

    Raises
    ------
    NotAnImageError, TruncatedImageError, ImageTooLargeError, NoInkError
        All subclasses of :class:`PreprocessError` (itself a ``ValueError``).
    """
    on = _switches(steps, switches)
    gray, info = _images.load_gray(source, max_bytes=max_bytes, max_pixels=max_pixels)
    gray, factor = _images.reduce_to_working_size(gray)
    factor *= info.pop("reduced_by", 1.0)          # the decoder may have reduced it already
    steps_out: list[Step] = []

    # decode ------------------------------------------------------------------------------
    h, w = gray.shape
    dnum = {**info, "working_size": [w, h]}
    if factor > 1:
        dnum["reduced_by"] = _r(factor, 3)
    bits = [f"Read a {info.get('size', [w, h])[0]}x{info.get('size', [w, h])[1]} "
            f"{info.get('format', 'image')} as gray levels (0 = black, 1 = white)"]
    if "exif_orientation" in info:
        bits.append(f"turned upright (EXIF orientation {info['exif_orientation']})")
    if info.get("background") in ("white", "black"):
        bits.append(f"put its transparent pixels on {info['background']}, behind the "
                    f"{'dark' if info['background'] == 'white' else 'light'} ink")
    if factor > 1:
        bits.append(f"reduced to {w}x{h} to work faster")
    steps_out.append(Step("decode", TITLES["decode"], gray, _jsonable(dnum),
                          "; ".join(bits) + ".", True))
    lo, hi = float(gray.min()), float(gray.max())
    if hi - lo < 0.02:
        raise NoInkError(f"the image is one flat shade ({lo:.2f}–{hi:.2f})")

    # the switchable steps ------------------------------------------------------------------
    a = gray
    ctx: dict[str, Any] = {}  # what one step leaves for later ones (connected-component labels)
    for name in SWITCHES:
        if name not in ("despeckle", "largest_blob"):  # steps that only delete whole components
            ctx.pop("labels", None)                    # keep the labels valid; others do not
        if not on[name]:
            if name == "scale":  # the final grid must still be 28x28: stretch, ignoring shape
                hh, ww = a.shape
                a = np.clip(_resize(a, SIZE, SIZE), 0.0, 1.0)
                sent = (f"Switched off: the {ww}x{hh} image was stretched to 28x28, ignoring its "
                        f"shape (what a naive app does).")
                steps_out.append(Step(name, TITLES[name], a, {"from": [ww, hh]}, sent, False))
                continue
            if name == "center":
                a, num, _ = _place(a, center=False)
                steps_out.append(Step(name, TITLES[name], a, num, "Switched off: the box was "
                                      "placed in the middle, whatever its centre of mass.", False))
                continue
            if name == "normalize":
                a = np.clip(a, 0.0, 1.0).astype(np.float32)
            steps_out.append(Step(name, TITLES[name], a, {}, "Switched off.", False))
            continue
        if name == "center":
            a, num, sent = _place(a, center=True)
        else:
            fn = {"polarity": _polarity, "flatten_lighting": _flatten_lighting,
                  "remove_lines": _remove_lines, "threshold": _threshold, "despeckle": _despeckle,
                  "largest_blob": _largest_blob, "crop": _crop, "scale": _scale,
                  "normalize": _normalize}[name]
            a, num, sent = fn(a, ctx)
        a = np.asarray(a, dtype=np.float32)
        steps_out.append(Step(name, TITLES[name], a, _jsonable(num), sent, True))

    image = np.ascontiguousarray(a, dtype=np.float32)
    assert image.shape == (SIZE, SIZE), image.shape  # internal invariant
    if not image.any():
        raise NoInkError("the 28x28 image is blank")
    return Preprocessed(image=image, steps=steps_out)


def plain_resize(source, **kwargs) -> np.ndarray:
    """What a naive app does, for comparison: grayscale, stretch to 28x28, invert if the mean is
    light.  Returns (28, 28) float32 in [0, 1].  Not used by digitlens itself."""
    gray, _ = _images.load_gray(source, **kwargs)
    small = np.clip(_resize(gray, SIZE, SIZE), 0.0, 1.0)
    return (1.0 - small if small.mean() > 0.5 else small).astype(np.float32)


__all__ = ["preprocess", "Preprocessed", "Step", "PreprocessError", "NotAnImageError",
           "TruncatedImageError", "ImageTooLargeError", "NoInkError", "SWITCHES", "TITLES",
           "format_grid", "compact_grid", "png_data_url", "gray_png", "gray_png_url", "otsu_threshold",
           "plain_resize"]
