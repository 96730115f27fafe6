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

This module is the road: the step order, the switches, and the result objects (:class:`Step`,
:class:`Preprocessed`, plain data with ``to_dict``).  The steps themselves live in
:mod:`digitlens.preprocessing.steps`, one module per family; the strip of pictures is drawn by
:mod:`digitlens.view.figures.preprocessing`.

Example
-------
>>> import numpy as np
>>> from digitlens.preprocessing import preprocess
>>> page = np.ones((100, 80), np.float32)     # white paper...
>>> page[30:70, 35:45] = 0.0                  # ...with a dark vertical bar
>>> p = preprocess(page)
>>> p.image.shape, float(p.image.max())
((28, 28), 1.0)
>>> [s.name for s in p.steps][:3]
['decode', 'polarity', 'flatten_lighting']
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.jsonsafe import clean_meta
from .._util.png import png_data_url
from ..data import images as _images
from ..errors import NoInkError
from .steps import SIZE, otsu_threshold
from .steps import crop as _crop
from .steps import despeckle as _despeckle
from .steps import flatten_lighting as _flatten_lighting
from .steps import largest_blob as _largest_blob
from .steps import normalize as _normalize
from .steps import place as _place
from .steps import polarity as _polarity
from .steps import remove_lines as _remove_lines
from .steps import scale as _scale
from .steps import threshold as _threshold
from .steps._common import resize as _resize
from .steps._common import rnd as _r

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

#: the function behind each switchable step, ``step(a, ctx) -> (image, numbers, sentence)``
#: (``center`` is :func:`~digitlens.preprocessing.steps.place` with ``center=True``)
_RUN = {"polarity": _polarity, "flatten_lighting": _flatten_lighting,
        "remove_lines": _remove_lines, "threshold": _threshold, "despeckle": _despeckle,
        "largest_blob": _largest_blob, "crop": _crop, "scale": _scale,
        "center": lambda a, ctx: _place(a, center=True), "normalize": _normalize}


def _json_numbers(numbers: Mapping[str, Any]) -> dict[str, Any]:
    """A step's numbers made JSON-safe by :func:`digitlens._util.jsonsafe.clean_meta` (plain,
    rounded floats; ``None`` for NaN and inf), nested dicts (a box, an offset) included."""
    return {k: _json_numbers(v) if isinstance(v, Mapping) else v
            for k, v in clean_meta(dict(numbers)).items()}


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
                "sentence": self.sentence, "numbers": _json_numbers(self.numbers),
                "size": [int(w), int(h)],
                "image": image_url if image_url is not None else png_data_url(self.image,
                                                                              max_side)}


@dataclass(frozen=True)
class Preprocessed:
    """The network's input and the road that led to it.

    Plain data: the text forms below are for the terminal; the strip of pictures comes from
    :func:`digitlens.view.figures.preprocessing.steps_figure`.

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
        # Jupyter's view of the steps: thumbnails and sentences.  It stays on the object because
        # it needs nothing above this layer (PNG data URLs come from digitlens._util).
        cells = "".join(
            f'<figure style="display:inline-block;margin:4px;text-align:center">'
            f'<img src="{png_data_url(s.image, 112)}" style="width:84px;height:84px;'
            f'object-fit:contain;image-rendering:pixelated;border:1px solid #ccc'
            f'{";opacity:.4" if not s.enabled else ""}">'
            f'<figcaption style="font-size:10px;width:84px">{html.escape(s.title, quote=False)}'
            f'</figcaption></figure>'
            for s in self.steps)
        items = "".join(f"<li>{html.escape(line, quote=False)}</li>"
                        for line in self.summary_lines())
        return f"<div>{cells}<ul style='font-size:12px'>{items}</ul></div>"


# --------------------------------------------------------------------------- text forms

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


# --------------------------------------------------------------------------- the pipeline

def _switches(steps, switches: dict[str, Any]) -> dict[str, bool]:
    """Which steps run: ``preprocess``'s ``steps`` and ``**switches`` as ``{name: bool}``."""
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


def _decode_step(gray: np.ndarray, info: dict[str, Any], factor: float) -> Step:
    """The ``decode`` step's record: what was read, and what the decoder did to it."""
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
    return Step("decode", TITLES["decode"], gray, _json_numbers(dnum), "; ".join(bits) + ".", True)


def _switched_off(name: str, a: np.ndarray) -> tuple[np.ndarray, Step]:
    """What a switched-off step passes on, and its record (``enabled=False``)."""
    if name == "scale":  # the final grid must still be 28x28: stretch, ignoring shape
        hh, ww = a.shape
        a = np.clip(_resize(a, SIZE, SIZE), 0.0, 1.0)
        sent = (f"Switched off: the {ww}x{hh} image was stretched to 28x28, ignoring its "
                f"shape (what a naive app does).")
        return a, Step(name, TITLES[name], a, {"from": [ww, hh]}, sent, False)
    if name == "center":
        a, num, _ = _place(a, center=False)
        return a, Step(name, TITLES[name], a, num, "Switched off: the box was placed in the "
                       "middle, whatever its centre of mass.", False)
    if name == "normalize":
        a = np.clip(a, 0.0, 1.0).astype(np.float32)
    return a, Step(name, TITLES[name], a, {}, "Switched off.", False)


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
        All subclasses of :class:`~digitlens.errors.PreprocessError` (itself a ``ValueError``).

    Examples
    --------
    >>> import numpy as np
    >>> page = np.zeros((60, 40), np.float32)
    >>> page[10:50, 15:25] = 1.0                 # a bright bar on black
    >>> p = preprocess(page, center=False)
    >>> p.image.shape, p.step("center").enabled
    ((28, 28), False)
    """
    on = _switches(steps, switches)
    gray, info = _images.load_gray(source, max_bytes=max_bytes, max_pixels=max_pixels)
    gray, factor = _images.reduce_to_working_size(gray)
    factor *= info.pop("reduced_by", 1.0)          # the decoder may have reduced it already
    steps_out: list[Step] = [_decode_step(gray, info, factor)]
    lo, hi = float(gray.min()), float(gray.max())
    if hi - lo < 0.02:
        raise NoInkError(f"the image is one flat shade ({lo:.2f}–{hi:.2f})")

    a = gray
    ctx: dict[str, Any] = {}  # what one step leaves for later ones (connected-component labels)
    for name in SWITCHES:
        if name not in ("despeckle", "largest_blob"):  # steps that only delete whole components
            ctx.pop("labels", None)                    # keep the labels valid; others do not
        if not on[name]:
            a, step = _switched_off(name, a)
            steps_out.append(step)
            continue
        a, num, sent = _RUN[name](a, ctx)
        a = np.asarray(a, dtype=np.float32)
        steps_out.append(Step(name, TITLES[name], a, _json_numbers(num), sent, True))

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


__all__ = ["preprocess", "plain_resize", "Preprocessed", "Step", "SWITCHES", "TITLES",
           "format_grid", "compact_grid", "otsu_threshold"]
