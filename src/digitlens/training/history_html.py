"""How a :class:`~digitlens.training.fit.History` shows itself in a notebook: the loss and accuracy
per epoch as two small inline SVG charts and a table.  Plain strings; nothing above the training
layer is imported (no matplotlib, no view)."""

from __future__ import annotations

import html
from typing import Any

_W, _H, _PAD = 260, 120, 28


def _polyline(values: list[float], lo: float, hi: float, colour: str) -> str:
    n = len(values)
    span = (hi - lo) or 1.0
    pts = " ".join(f"{_PAD + (i / max(n - 1, 1)) * (_W - _PAD - 6):.1f},"
                   f"{_H - 18 - (v - lo) / span * (_H - 30):.1f}" for i, v in enumerate(values))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>'


def _chart(title: str, series: list[tuple[str, list[float], str]], lo: float, hi: float) -> str:
    """An SVG chart of ``series`` (label, values per epoch, colour) on a y axis from lo to hi."""
    lines = "".join(_polyline(v, lo, hi, c) for _, v, c in series if v)
    legend = " ".join(f'<tspan fill="{c}">■ {html.escape(name)}</tspan>' for name, v, c in series
                      if v)
    n = max((len(v) for _, v, _ in series), default=0)
    return (f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
            f'aria-label="{html.escape(title)}" style="font:10px sans-serif;margin-right:12px">'
            f'<text x="{_PAD}" y="10">{html.escape(title)}</text>'
            f'<text x="2" y="{_H - 18}">{lo:.3g}</text><text x="2" y="24">{hi:.3g}</text>'
            f'<line x1="{_PAD}" y1="{_H - 18}" x2="{_W - 6}" y2="{_H - 18}" stroke="#999"/>'
            f'<line x1="{_PAD}" y1="14" x2="{_PAD}" y2="{_H - 18}" stroke="#999"/>'
            f'{lines}<text x="{_PAD}" y="{_H - 4}">epoch 1 … {n}   {legend}</text></svg>')


def history_html(h: Any) -> str:
    """HTML for a History: two charts (loss; accuracy) and the table of the epochs."""
    ep = h.epochs
    if not ep:
        return "<p>History: no epoch finished yet.</p>"
    def get(k):
        return [float(e[k]) for e in ep if e.get(k) is not None]

    loss, val_loss = get("loss"), get("val_loss")
    acc, val_acc = get("accuracy"), get("val_accuracy")
    losses = loss + val_loss
    charts = (_chart("loss (lower is better)", [("training", loss, "#c0392b"),
                                                ("held-out", val_loss, "#2c7fb8")],
                     min(losses), max(losses))
              + _chart("accuracy", [("training", acc, "#c0392b"),
                                    ("held-out", val_acc, "#2c7fb8")], 0.0, 1.0))
    cols = [k for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
            if any(k in e for e in ep)]
    shown = ep if len(ep) <= 12 else ep[:3] + [None] + ep[-8:]
    rows = "".join(
        "<tr><td colspan='99'>…</td></tr>" if e is None else
        "<tr>" + "".join(f"<td>{e[k]:.4g}</td>" if isinstance(e.get(k), float) else
                         f"<td>{html.escape(str(e.get(k, '')))}</td>" for k in cols) + "</tr>"
        for e in shown)
    head = "".join(f"<th>{k}</th>" for k in cols)
    best = f", best epoch {h.best_epoch}" if h.best_epoch else ""
    return (f"<div><p><b>History</b>: {len(ep)} epochs in {h.seconds:.1f} s, "
            f"{html.escape(h.stop_reason)}{best}.</p><div>{charts}</div>"
            f"<table style='font-size:11px'><tr>{head}</tr>{rows}</table></div>")
