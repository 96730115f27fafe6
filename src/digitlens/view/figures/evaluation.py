"""Figures of the evaluation studio: :mod:`digitlens.evaluation` results -> matplotlib.

No numerics here: every number comes from a result object (the page draws the same numbers from
the same objects' ``to_dict``).  Each function returns a :class:`matplotlib.figure.Figure` (no
pyplot state); :func:`save_evaluation_figure` writes the whole studio for ``digitlens evaluate
--out``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ...evaluation import words

#: one colour per digit on the map (matplotlib's tab10)
DIGIT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"]
MODEL_COLORS = {"logistic": "#7f7f7f", "lab": "#1f77b4", "mlp": "#2ca02c", "cnn_tiny": "#ff7f0e",
                "cnn": "#d62728"}


def draw_confusion(ax, ev) -> None:
    """The confusion matrix of a :class:`~digitlens.evaluation.ModelEvaluation` on ``ax``."""
    c = ev.confusion
    m = c.matrix
    ax.imshow(np.log1p(m), cmap="Blues")
    for t in range(m.shape[0]):
        for p in range(m.shape[1]):
            if m[t, p]:
                ax.text(p, t, str(m[t, p]), ha="center", va="center", fontsize=7,
                        color="white" if m[t, p] > m.max() / 3 else "black")
    ax.set_xticks(range(len(c.classes)), [str(v) for v in c.classes])
    ax.set_yticks(range(len(c.classes)), [str(v) for v in c.classes])
    ax.set_xlabel("the model's answer")
    ax.set_ylabel("true digit")
    ax.set_title(f"{ev.model} on {ev.data}: {100 * ev.accuracy:.1f}% right", fontsize=10)


def draw_precision_recall(ax, ev) -> None:
    c = ev.confusion
    k = np.arange(len(c.classes))
    ax.bar(k - 0.2, np.nan_to_num(c.precision), 0.4, label="precision", color="#1f77b4")
    ax.bar(k + 0.2, c.recall, 0.4, label="recall", color="#ff7f0e")
    lo = float(np.nanmin(np.concatenate([c.precision, c.recall])))
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_xticks(k, [str(v) for v in c.classes])
    ax.set_xlabel("digit")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Precision and recall per digit", fontsize=10)


def draw_reliability(ax, cal) -> None:
    """A reliability diagram of a :class:`~digitlens.evaluation.Calibration`."""
    centres = (cal.edges[:-1] + cal.edges[1:]) / 2
    width = cal.edges[1] - cal.edges[0]
    filled = cal.count > 0
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfectly calibrated")
    ax.bar(centres[filled], cal.accuracy[filled], width * 0.9, color="#1f77b4",
           label="share right")
    ax.hlines(cal.confidence[filled], centres[filled] - width * 0.45,
              centres[filled] + width * 0.45, color="#d62728", lw=2, label="mean confidence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("how sure the model was")
    ax.set_ylabel("share it got right")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"Calibration: ECE {100 * cal.ece:.1f}%", fontsize=10)


def draw_map(ax, dmap, placement=None) -> None:
    """The digits' map of a :class:`~digitlens.evaluation.DigitMap` (and a placed digit)."""
    for d in range(10):
        p = dmap.points[dmap.labels == d]
        ax.scatter(p[:, 0], p[:, 1], s=5, color=DIGIT_COLORS[d], label=str(d), alpha=0.7)
    if placement is not None:
        ax.scatter(placement.neighbour_xy[:, 0], placement.neighbour_xy[:, 1], s=40,
                   facecolors="none", edgecolors="black")
        ax.scatter([placement.xy[0]], [placement.xy[1]], marker="*", s=160, color="black")
    ex = dmap.explained
    ax.set_xlabel(f"direction 1 ({100 * ex[0]:.0f}% of the variance)")
    ax.set_ylabel(f"direction 2 ({100 * ex[1]:.0f}%)")
    ax.legend(fontsize=7, markerscale=2, ncol=2, loc="best")
    ax.set_title("The digits' map (last hidden layer, PCA)", fontsize=10)


def robustness_figure(rob) -> Figure:
    """Every model's accuracy against each change, one panel per change, with the example digit
    at each strength under the curve."""
    kinds = list(rob.levels)
    fig = Figure(figsize=(4.2 * min(4, len(kinds)), 3.6 * ((len(kinds) + 3) // 4)),
                 layout="constrained")
    axes = fig.subplots((len(kinds) + 3) // 4, min(4, len(kinds)), squeeze=False).ravel()
    for ax, kind in zip(axes, kinds):
        lv = rob.levels[kind]
        for name, per in rob.accuracy.items():
            ax.plot(lv, 100 * per[kind], "o-", ms=3, label=name,
                    color=MODEL_COLORS.get(name))
        ax.set_ylim(0, 100)
        ax.set_title(words.KIND_TITLES[kind], fontsize=9)
        ax.set_ylabel("accuracy (%)")
        span = (lv.max() - lv.min()) or 1.0
        for v, img in zip(lv, rob.examples[kind]):  # the example digit at each strength
            w = span / (len(lv) + 1) / 2
            ax.imshow(img, cmap="gray", extent=(v - w, v + w, 2, 22), aspect="auto", zorder=0)
        ax.set_xlim(lv.min() - span / len(lv), lv.max() + span / len(lv))
    axes[0].legend(fontsize=7)
    for ax in axes[len(kinds):]:
        ax.axis("off")
    return fig


def evaluation_figure(ev, dmap=None) -> Figure:
    """One model's studio: confusion matrix, precision and recall, reliability diagram, map."""
    n = 4 if dmap is not None else 3
    fig = Figure(figsize=(4.3 * n, 4.2), layout="constrained")
    axes = fig.subplots(1, n)
    draw_confusion(axes[0], ev)
    draw_precision_recall(axes[1], ev)
    draw_reliability(axes[2], ev.calibration)
    if dmap is not None:
        draw_map(axes[3], dmap)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF by suffix), atomically."""
    from ..._util.files import atomic_write

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"figure files must end in .png, .svg or .pdf, got {path.name!r}")
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))
    return path


__all__ = ["draw_confusion", "draw_map", "draw_precision_recall", "draw_reliability",
           "evaluation_figure", "robustness_figure", "save_figure"]
