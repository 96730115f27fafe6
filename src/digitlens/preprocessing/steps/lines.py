"""Ruled and squared paper: find the thin lines running across the whole picture; subtract them.

A notebook page's printed lines look like ink to the threshold (they are darker than the paper),
and would join the digit.  They differ from strokes in two ways: they are thin, and they run across
(or down) the whole picture, several of them.  ``remove_lines`` uses exactly that.

Each step is ``step(a, ctx) -> (image, numbers, sentence)`` on an (H, W) float32 image in [0, 1],
ink bright.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._common import median_spread, rnd, sample

LINE_SPAN = 0.9
"""A ruled line runs across at least this fraction of the picture (a digit's stroke never does,
unless the picture is cropped to the digit)."""

MIN_LINES = 2
"""Lines are removed only when at least this many run the same way: ruled or squared paper has
many, while one long thin stroke can be a tightly cropped 7's bar."""


def _thin_bright(a: np.ndarray, paper: float, noise: float, axis: int
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Steps 1 and 2 of :func:`_ruled_lines`: ``(thin, rel)``, the thin pixels that are bright
    along a run of the axis ``(H, W)`` bool, and the opened brightness above the paper
    ``(H, W)``; ``None`` when there cannot be enough of them for ``MIN_LINES`` lines."""
    length, other = a.shape[axis], a.shape[1 - axis]
    floor = 3 * noise + 0.01
    # quick necessary condition: MIN_LINES lines running across LINE_SPAN of the picture put at
    # least MIN_LINES bright pixels in that share of its cross-sections (a drawing or a clean
    # photo stops here)
    if np.mean(((a - paper) > floor).sum(axis=1 - axis) >= MIN_LINES) < LINE_SPAN:
        return None
    run = max(5, int(round(0.04 * length)))
    opened = ndi.grey_opening(a, size=(1, run) if axis == 1 else (run, 1))
    rel = opened - paper
    bright = rel > floor
    if not bright.any():
        return None
    # the length of the run across the axis that each bright pixel sits in
    across = np.zeros((3, 3), dtype=bool)
    across[:, 1] = True
    if axis == 0:
        across = across.T
    runs, _ = ndi.label(bright, structure=across)
    thin = bright & (np.bincount(runs.ravel())[runs] <= max(3.0, 0.03 * other))
    if thin.sum() < MIN_LINES * LINE_SPAN * length:     # too few thin pixels for the lines
        return None
    return thin, rel


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
    length = a.shape[axis]
    removal = np.zeros(a.shape, dtype=np.float32)
    levels: list[float] = []
    found = _thin_bright(a, paper, noise, axis)
    if found is None:
        return removal, levels
    thin, rel = found
    # a line is cut where a thick stroke crosses it: pieces up to half the picture apart along
    # the axis, and up to 4 pixels across it (a line tilted 3 degrees drifts 4 pixels across a
    # 75-pixel stroke), belong together.  The dilation only decides what is connected; only
    # thin pixels are ever removed.
    size = (9, max(3, length // 2)) if axis == 1 else (max(3, length // 2), 9)
    joined = ndi.maximum_filter(thin.view(np.uint8), size=size)
    labels, _ = ndi.label(joined, structure=np.ones((3, 3), dtype=bool))
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


def remove_lines(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Subtract ruled or squared paper's lines (ink is bright here), so they are not taken for
    ink: thin bright lines running across (or down) the whole picture, at least two of them.

    Both directions are found on the same picture (removing the horizontal lines first would cut
    the vertical ones at every crossing) and, where they cross, the larger removal is used."""
    paper, noise = median_spread(sample(a))  # ink covers well under half of the picture
    across, lv_h = _ruled_lines(a, paper, noise, axis=1)
    down, lv_v = _ruled_lines(a, paper, noise, axis=0)
    numbers = {"lines_across": len(lv_h), "lines_down": len(lv_v)}
    if not lv_h and not lv_v:
        return a, numbers, ("No ruled lines: nothing thin runs across the whole picture, so "
                            "nothing was removed.")
    out = np.clip(a - np.maximum(across, down), 0.0, 1.0).astype(np.float32)
    level = float(np.mean(lv_h + lv_v))
    numbers["line_level"] = rnd(level)
    parts = ([f"{len(lv_h)} running across"] if lv_h else []) + \
        ([f"{len(lv_v)} running down"] if lv_v else [])
    sentence = (f"Found ruled lines ({' and '.join(parts)}, {level:.2f} brighter than the paper) "
                f"and subtracted them, so they are not taken for ink; strokes crossing them keep "
                f"what is brighter than the line.")
    return out, numbers, sentence
