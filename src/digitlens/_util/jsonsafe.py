"""JSON-safe numbers: rounded plain floats, and ``None`` for NaN and inf (JSON has no such numbers).

Every number digitlens serialises (explanations, the page's API, lab results, training history) goes
through these, so one rule holds everywhere: NaN and inf never reach a JSON document.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def sig(a: np.ndarray, digits: int = 4) -> np.ndarray:
    """Round every value to ``digits`` significant digits (idempotent; 0, inf and NaN untouched)."""
    a = np.asarray(a, dtype=np.float64)
    out = a.copy()
    nz = np.isfinite(a) & (a != 0)
    if nz.any():
        v = a[nz]
        e = np.floor(np.log10(np.abs(v)))  # decimal exponent of each value
        scale = 10.0 ** (digits - 1 - e)
        out[nz] = np.round(v * scale) / scale
    return out



def _finite_lists(a: np.ndarray):
    """``a.tolist()`` with NaN and inf as ``None`` (JSON has no such numbers), as :func:`num`."""
    if np.isfinite(a).all():
        return a.tolist()
    return np.where(np.isfinite(a), a, None).tolist()



def map_list(a: np.ndarray | None, digits: int = 4):
    """A 2-D (or any) array as nested lists of significant-digit-rounded floats (NaN and inf
    become ``None``)."""
    if a is None:
        return None
    return _finite_lists(sig(a, digits))



def image_list(a: np.ndarray | None):
    """An image in [0, 1] as nested lists with 3 decimals (NaN and inf become ``None``)."""
    if a is None:
        return None
    return _finite_lists(np.round(np.asarray(a, dtype=np.float64), 3))



def num(x: float | None, digits: int = 6) -> float | None:
    """A rounded plain float; ``None`` for ``None``, NaN and inf (JSON has no such numbers)."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    if x == 0.0:
        return 0.0
    # sig() for one number in plain Python (the JSON holds thousands of these; NumPy's per-call
    # overhead made them ~10x slower).  Same arithmetic: round-half-even of x * 10^(digits-1-e)
    # (equal to sig() but for the rare last-bit difference between NumPy's and C's pow).
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(abs(x))))
    return round(x * scale) / scale



def arr(x, dtype=np.float64) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=dtype)



def clean_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Meta dicts hold scalars, strings, small lists: make floats plain and rounded."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, np.integer)):
            out[k] = int(v)
        elif isinstance(v, (float, np.floating)):
            out[k] = num(float(v))
        elif isinstance(v, np.ndarray):
            out[k] = map_list(v)
        elif isinstance(v, (list, tuple)):
            out[k] = [num(float(x)) if isinstance(x, (float, np.floating)) else
                      (int(x) if isinstance(x, (int, np.integer)) else x) for x in v]
        else:
            out[k] = v
    return out


def plain(o: Any) -> Any:
    """Nested dicts, lists and tuples of NumPy or Python scalars as JSON data: keys become
    strings, numbers go through :func:`num` (NaN and inf become ``None``)."""
    if isinstance(o, dict):
        return {str(k): plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [plain(v) for v in o]
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return num(o)
    return o
