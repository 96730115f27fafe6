"""How the lab writes numbers in tables and sentences: one place, so every verdict, table and
report reads the same way (percentages, accuracy gaps in points, durations, lists of widths)."""

from __future__ import annotations

from typing import Any

import numpy as np


def fmt(v: Any) -> str:
    """Numbers for tables: fractions and accuracies to 3 decimals, None as a dash."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0:
            return "0"
        if abs(v) >= 100 or abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.3f}"
    return str(v)


def pct(v: float | None, digits: int = 1) -> str:
    """A fraction as a percentage (``0.123`` -> ``"12.3%"``), None as a dash."""
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def pts(v: float) -> str:
    """An accuracy difference in percentage points."""
    return f"{100 * v:.1f} points"


def secs(v: float) -> str:
    """A duration: milliseconds under a second, else seconds."""
    return f"{1000 * v:.0f} ms" if v < 1 else f"{v:.1f} s"


def widths_phrase(ws: list[int], all_ws: list[int]) -> str:
    """Some of a study's widths in words: "every width", "16 units or fewer", "4 and 8 units"."""
    ws = sorted(ws)
    if not ws:
        return "no width"
    if ws == sorted(all_ws):
        return "every width"
    if ws == sorted(all_ws)[:len(ws)]:
        return f"{ws[-1]} units or fewer" if len(ws) > 1 else f"{ws[0]} units"
    if ws == sorted(all_ws)[-len(ws):]:
        return f"{ws[0]} units or more"
    return ", ".join(map(str, ws[:-1])) + f" and {ws[-1]} units" if len(ws) > 1 \
        else f"{ws[0]} units"


def join(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]



# ------------------------------------------------------------- the functions panel and playground

#: how an activation is named in a sentence
NAMES = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "sigmoid": "sigmoid", "tanh": "tanh",
         "gelu": "GELU", "elu": "ELU", "identity": "identity"}


def name(fn: str) -> str:
    """An activation's name in a sentence (``"relu"`` -> ``"ReLU"``)."""
    return NAMES.get(fn, fn)


def rug_sentence(fn: str, units: int, saturated: int, flat: int, peak: float) -> str:
    """What the rug under a curve shows: how many of a layer's units sit on the flat parts."""
    s = (f"Under {name(fn)}, {saturated} of your digit's {units} sums sit where the slope is "
         f"below 1% of its steepest ({peak:.2g})")
    if flat:
        s += f"; {flat} of them where it is exactly 0 (no gradient at all)"
    if not saturated:
        return s + ": every unit would pass the error back and learn from this digit."
    return s + ". Those units barely learn from this digit."


def runs_phrase(n_train_runs: int, benchmark: bool) -> str:
    """A study's size, the same on the page and in the report: "220 training runs and a
    micro-benchmark"."""
    s = f"{n_train_runs:,} training run{'s' if n_train_runs != 1 else ''}"
    return s + " and a micro-benchmark" if benchmark else s
