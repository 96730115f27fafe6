"""The one colour-scale setting for signed maps (attributions, the contrast's gap map), shared by
the page and the figures.

A map's colours saturate at a stated percentile of ``|value|`` over all its pixels, not at its
largest value: attribution maps often have one or two pixels far stronger than the rest (a CNN's
gap map had a largest value of 2.51 and a 20th largest of 0.38), and scaling by the largest value
leaves every other pixel nearly white.  Clipping at the 99th percentile means the strongest 1%
of pixels (8 of 784) are drawn at full colour and everything else keeps a readable shade.  The
values themselves are never changed: only where the colour stops getting darker.
"""

from __future__ import annotations

import numpy as np

#: colour scales saturate at this percentile of |value| over all pixels of a map
COLOUR_PERCENTILE = 99.0


def colour_limit(m: np.ndarray, percentile: float = COLOUR_PERCENTILE) -> float:
    """The ``|value|`` at which a signed map's colour saturates.

    Parameters
    ----------
    m : array of any shape (a (28, 28) map).
    percentile : in (0, 100]; 100 gives the largest ``|value|``.

    Returns
    -------
    float
        The ``percentile``-th percentile of ``|m|`` (linear interpolation, NumPy's default); if
        that is 0 (a map that is zero almost everywhere) the largest ``|value|`` instead, so a
        map with a few non-zero pixels still shows them; 0.0 only for an all-zero map.

    Examples
    --------
    >>> m = np.zeros((10, 10)); m[0, 0] = 100.0; m[1:, :] = 1.0
    >>> colour_limit(m)
    1.0
    """
    p = float(percentile)
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    a = np.abs(np.asarray(m, dtype=np.float64)).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("a colour scale needs a non-empty map of finite numbers")
    lim = float(np.percentile(a, p))
    return lim if lim > 0 else float(a.max())


def n_saturated(m: np.ndarray, limit: float) -> int:
    """How many pixels of ``m`` lie beyond ``limit`` (drawn at full colour)."""
    return int(np.count_nonzero(np.abs(np.asarray(m, dtype=np.float64)) > limit))


def scale_dict(m: np.ndarray, percentile: float = COLOUR_PERCENTILE) -> dict:
    """``{"limit", "percentile", "saturated"}`` for a map: what the page's legend states."""
    lim = colour_limit(m, percentile)
    return {"limit": lim, "percentile": float(percentile), "saturated": n_saturated(m, lim)}
