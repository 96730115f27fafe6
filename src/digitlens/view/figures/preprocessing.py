"""The pre-processing strip: one panel per step, as a matplotlib figure or a PNG file.

Pictures only: every number shown comes from the :class:`~digitlens.preprocessing.Preprocessed`
it is given (no image processing here).
"""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path

import numpy as np

from ...preprocessing import Preprocessed, Step

# A few numbers worth printing under each panel, by step.
_KEY_NUMBERS = {
    "decode": lambda n: f"{n.get('size', ['?', '?'])[0]}x{n.get('size', ['?', '?'])[1]} "
                        f"{n.get('format', '')}",
    "polarity": lambda n: "inverted" if n.get("inverted") else "kept",
    "flatten_lighting": lambda n: f"paper {n.get('background_min', 0):.2f}–"
                                  f"{n.get('background_max', 0):.2f}",
    "remove_lines": lambda n: (f"{n.get('lines_across', 0) + n.get('lines_down', 0)} lines"
                               if n.get("lines_across") or n.get("lines_down") else "no lines"),
    "threshold": lambda n: f"threshold {n.get('threshold', 0):.2f}",
    "despeckle": lambda n: f"removed {n.get('removed', 0)} of {n.get('components', 0)}",
    "largest_blob": lambda n: f"kept {n.get('kept', 0)} of {n.get('components', 0)}",
    "crop": lambda n: f"{n.get('width', '?')}x{n.get('height', '?')} box",
    "scale": lambda n: "x".join(map(str, n.get("to", []))) + " px",
    "center": lambda n: "mass at ({:.1f}, {:.1f})".format(*n.get("center_of_mass", [0, 0])),
    "normalize": lambda n: f"x {n.get('scale', 1):.2f}",
}


def _caption(step: Step) -> str:
    if not step.enabled:
        return "switched off"
    fmt = _KEY_NUMBERS.get(step.name)
    try:
        return fmt(step.numbers) if fmt else ""
    except (TypeError, ValueError, KeyError, IndexError):
        return ""


def steps_figure(pre: Preprocessed, *, panel_size: float = 1.7, sentences: bool = False):
    """A matplotlib ``Figure`` with one panel per step (title, image, key number).

    Images are drawn on a fixed 0..1 gray scale (0 black, 1 white), so brightness is comparable
    across panels: the photo as decoded, then ink bright on black from ``polarity`` on.  With
    ``sentences=True`` each step's sentence is printed below the strip.
    """
    from matplotlib.figure import Figure

    steps = pre.steps
    n = len(steps)
    lines: list[str] = []
    if sentences:
        for i, s in enumerate(steps, start=1):
            lines += textwrap.wrap(f"{i}. {s.title}: {s.sentence}", width=int(19 * n),
                                   subsequent_indent="    ")
    strip_h = panel_size * 1.45                    # inches: title, image, caption
    text_h = 0.14 * len(lines) + (0.15 if lines else 0.0)
    height = strip_h + text_h
    fig = Figure(figsize=(panel_size * n, height))
    img_h = panel_size * 0.85 / height             # panel height as a figure fraction
    bottom = (text_h + panel_size * 0.25) / height
    for i, s in enumerate(steps):
        ax = fig.add_axes((i / n + 0.006, bottom, 1 / n - 0.012, img_h))
        ax.imshow(np.asarray(s.image), cmap="gray", vmin=0.0, vmax=1.0,
                  interpolation="nearest" if max(s.image.shape) <= 64 else "antialiased")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("#999" if s.enabled else "#ddd")
        ax.set_title(f"{i + 1}. {s.title}", fontsize=7, color="black" if s.enabled else "#999")
        ax.text(0.5, -0.05, _caption(s), transform=ax.transAxes, ha="center", va="top",
                fontsize=6.5, color="#333" if s.enabled else "#999")
    if lines:
        fig.text(0.01, (text_h - 0.05) / height, "\n".join(lines), ha="left", va="top",
                 fontsize=6.5, linespacing=1.3)
    return fig


def steps_png(pre: Preprocessed, *, dpi: int = 150, sentences: bool = False) -> bytes:
    """The strip as PNG bytes."""
    fig = steps_figure(pre, sentences=sentences)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def save_steps_png(pre: Preprocessed, path: str | os.PathLike, *, dpi: int = 150,
                   sentences: bool = False) -> Path:
    """Write the strip to ``path`` (PNG) atomically; returns the path."""
    from ..._util.files import atomic_write

    data = steps_png(pre, dpi=dpi, sentences=sentences)
    atomic_write(path, lambda f: f.write(data))
    return Path(path)
