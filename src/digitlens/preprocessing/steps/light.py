"""Polarity and lighting: make the ink bright on dark, and take the paper's shadows away.

``polarity`` decides whether the ink is darker or lighter than the paper (MNIST's convention is
bright ink on black) and inverts if needed; ``flatten_lighting`` subtracts a smooth surface fitted
to the paper, so a shadow or a lamp's gradient is not taken for ink.

Each step is ``step(a, ctx) -> (image, numbers, sentence)`` on an (H, W) float32 image in [0, 1].
"""

from __future__ import annotations

import functools

import numpy as np

from ._common import border, box_filter, median_spread, resize, rnd, sample

LIGHTING_DEGREE = 2
"""Degree of the polynomial surface that models the paper's lighting (2: gradients, vignettes)."""


def polarity(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
    """Decide whether the ink is darker or lighter than the paper, and make it bright.

    The paper is judged from the image's border (a digit rarely touches all four edges).  Pixels
    further from the paper level than the border's own variation (``tolerance``, which absorbs
    a lighting gradient) vote, weighted by how far they are: darker pixels for dark ink, lighter
    for light ink."""
    edge = border(a)
    lo, paper, hi = (float(v) for v in np.percentile(edge, [5, 50, 95]))  # 50: the median
    tol = float(hi - lo) / 2 + 0.02
    s = sample(a)
    dark = float(np.clip(paper - tol - s, 0, None).sum())
    light = float(np.clip(s - paper - tol, 0, None).sum())
    invert = dark > light
    out = (1.0 - a) if invert else a
    numbers = {"paper_level": rnd(paper), "tolerance": rnd(tol), "dark_votes": rnd(dark, 2),
               "light_votes": rnd(light, 2), "inverted": bool(invert)}
    if invert:
        sentence = (f"The paper is light ({paper:.2f}) and the ink darker, so every pixel became "
                    f"1 - pixel: ink is now bright, as in MNIST.")
    else:
        sentence = (f"The background is dark ({paper:.2f}) and the ink lighter — already MNIST's "
                    f"convention, nothing to invert.")
    return out, numbers, sentence


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


def _fit_paper(small: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the lighting surface to the paper pixels of ``small`` (at most 64 pixels a side).

    Returns ``(coef, paper, fitted)``: the monomials' coefficients ``(k,)``, which pixels were
    taken for paper ``(sh*sw,)`` bool, and the surface on that grid ``(sh*sw,)``."""
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
        med, spread = median_spread(r[paper])
        new = r <= med + 2.5 * spread + 0.01
        if np.array_equal(new, paper):
            break
        paper = new
    return coef, paper, design @ coef                                 # fitted: (sh*sw,)


def _surface(coef: np.ndarray, h: int, w: int) -> np.ndarray:
    """The fitted surface evaluated on the full (h, w) grid, float32.

    The surface sum_{i+j<=D} c_ij u^i v^j is separable: U C V^T with U[:, i] = u^i and
    V[:, j] = v^j, one small matrix product instead of a full-size pass per monomial."""
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
    return ((U @ C) @ V.T).astype(np.float32)              # (h, D+1) @ (D+1, D+1) @ (D+1, w)


def flatten_lighting(a: np.ndarray, ctx: dict) -> tuple[np.ndarray, dict, str]:
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
    small = a if factor == 1.0 else resize(a, max(1, round(w / factor)),
                                           max(1, round(h / factor)), resample=box_filter())
    coef, paper, fitted = _fit_paper(small)
    # the surface's range, read on the grid it was fitted on (a smooth surface: the full-size
    # grid's range differs by a hair), decides whether there is anything to flatten
    bmin, bmax = float(fitted.min()), float(fitted.max())
    numbers = {"model": f"degree-{LIGHTING_DEGREE} polynomial", "background_min": rnd(bmin),
               "background_max": rnd(bmax), "paper_share": rnd(float(paper.mean()))}
    if bmax - bmin < 1 / 255:
        # Even lighting: nothing to flatten (the next step removes a constant paper level).
        numbers.update(noise=0.0, lift=0.0)
        return a, numbers, (f"The paper is evenly lit (level {(bmin + bmax) / 2:.2f}); "
                            f"nothing to flatten.")
    resid = a - _surface(coef, h, w)
    # Paper now sits around 0 with its noise on both sides.  Clipping at 0 would hide half of
    # that noise and make the next step underestimate it; lifting the paper to 3 x noise keeps
    # (almost) all of it visible.
    med, noise = median_spread(sample(resid))
    lift = 3 * noise - med
    out = np.clip(resid + lift, 0.0, 1.0)
    numbers.update(noise=rnd(noise), lift=rnd(lift))
    sentence = (f"Modelled the paper's brightness as a smooth surface (it ranges {bmin:.2f}–"
                f"{bmax:.2f}) fitted to the pixels around the ink, and subtracted it, so shadows "
                f"and gradients are not mistaken for ink.")
    return out, numbers, sentence
