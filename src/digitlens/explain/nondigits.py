"""Things that are not digits, in MNIST's format: what the "I don't know" score is tested on.

Each image is drawn on a larger canvas (ink bright on dark) and framed as the pre-processing
frames every digit (:mod:`digitlens.preprocessing.steps.frame`: crop to the ink, longer side to
20 pixels, centre of mass at (14, 14), brightest pixel 1.0).  All randomness comes from the
explicit ``numpy.random.Generator`` passed in.

Families (:data:`FAMILIES`): a dot or blob, a scribble, a straight line, a capital letter,
uniform noise, Gaussian noise, a filled square, a "+", "x" or "#" mark.  A straight line within
:data:`VERTICAL_TOL` degrees of vertical is a plausible "1", so :func:`make_nondigits` never
returns one; letters that look like digits (O, I, l, S, Z, ...) are not drawn.
"""

from __future__ import annotations

import numpy as np

from ..preprocessing.steps import frame

VERTICAL_TOL = 30.0  # degrees: MNIST's 1s slant up to about 30 degrees
LETTERS = "ABCEFHKMNPRUVWXY"
FAMILIES = ("blob", "scribble", "line", "letter", "uniform_noise", "gaussian_noise", "square",
            "cross_hash")


def mnist_frame(canvas: np.ndarray) -> np.ndarray:
    """(H, W) image in [0, 1], ink bright -> (28, 28) float32 framed as the pre-processing's
    last four steps frame a digit (crop, scale, centre, normalise)."""
    a = np.clip(np.asarray(canvas, dtype=np.float32), 0.0, 1.0)
    a, _, _ = frame.crop(a, {})
    a, _, _ = frame.scale(a, {})
    a, _, _ = frame.place(a, center=True)
    a, _, _ = frame.normalize(a, {})
    return a


def _canvas(n: int):
    from PIL import Image, ImageDraw

    img = Image.new("L", (n, n), 0)
    return img, ImageDraw.Draw(img)


def _arr(img) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def _rotate(img, deg: float):
    from PIL import Image

    return img.rotate(deg, resample=Image.BILINEAR, expand=True, fillcolor=0)


def dot(radius: float = 3.0, n: int = 112) -> np.ndarray:
    """A single round dot (a filled circle of ``radius`` canvas pixels), framed: the pre-processing
    blows it up to a 20-pixel disc."""
    img, dr = _canvas(n)
    c = n / 2
    dr.ellipse([c - radius, c - radius, c + radius, c + radius], fill=255)
    return mnist_frame(_arr(img))


def blob(rng: np.random.Generator) -> np.ndarray:
    """A dot or blob: a filled ellipse, or a soft Gaussian blob."""
    n = 112
    if rng.random() < 0.3:
        s, ar, th = rng.uniform(1.0, 12.0), rng.uniform(1.0, 1.8), rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:n, 0:n] - n / 2
        u = xx * np.cos(th) + yy * np.sin(th)
        v = -xx * np.sin(th) + yy * np.cos(th)
        g = np.exp(-0.5 * ((u / (s * ar)) ** 2 + (v / s) ** 2))
        return mnist_frame(np.where(g > 0.05, g, 0.0))
    img, dr = _canvas(n)
    r, ar, c = rng.uniform(0.5, 20.0), rng.uniform(1.0, 1.6), n / 2
    dr.ellipse([c - r * ar, c - r, c + r * ar, c + r], fill=255)
    return mnist_frame(_arr(_rotate(img, rng.uniform(0, 180))))


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A random-walk stroke whose heading drifts, drawn with a round pen."""
    n = 160
    img, dr = _canvas(n)
    p = np.array([n / 2, n / 2])
    heading, omega = rng.uniform(0, 2 * np.pi), 0.0
    pts = [tuple(p)]
    for _ in range(int(rng.integers(8, 40))):
        omega = 0.7 * omega + rng.normal(0, 0.6)
        heading += omega
        p = np.clip(p + rng.uniform(4, 12) * np.array([np.cos(heading), np.sin(heading)]),
                    5, n - 5)
        pts.append(tuple(p))
    dr.line(pts, fill=255, width=int(rng.integers(3, 9)), joint="curve")
    return mnist_frame(_arr(img))


def line(rng: np.random.Generator) -> np.ndarray:
    """A straight stroke at least :data:`VERTICAL_TOL` degrees away from vertical."""
    n = 112
    img, dr = _canvas(n)
    off = rng.uniform(VERTICAL_TOL, 90.0) * rng.choice([-1.0, 1.0])
    ang = np.radians(90.0 + off)  # from horizontal
    half = rng.uniform(40, 90) / 2
    c, d = n / 2, np.array([np.cos(ang), np.sin(ang)]) * half
    dr.line([tuple(c - d), tuple(c + d)], fill=255, width=int(rng.integers(3, 10)))
    return mnist_frame(_arr(img))


def letter(rng: np.random.Generator) -> np.ndarray:
    """A capital letter in Pillow's default font: random letter, size, weight and tilt."""
    from PIL import ImageFont

    ch = LETTERS[int(rng.integers(len(LETTERS)))]
    font = ImageFont.load_default(size=int(rng.integers(40, 90)))
    img, dr = _canvas(160)
    sw = int(rng.integers(0, 5))
    dr.text((80, 80), ch, fill=255, font=font, anchor="mm", stroke_width=sw, stroke_fill=255)
    return mnist_frame(_arr(_rotate(img, rng.uniform(-12, 12))))


def uniform_noise(rng: np.random.Generator) -> np.ndarray:
    """Uniform noise over a random rectangle, sometimes sparse (salt)."""
    h, w = int(rng.integers(12, 29)), int(rng.integers(12, 29))
    a = rng.uniform(0, 1, (h, w)) * (rng.random((h, w)) < rng.choice([1.0, 0.5, 0.2]))
    a[0, 0] = a[-1, -1] = max(a[0, 0], 1e-3)  # keep the whole rectangle (its corners) as the box
    return mnist_frame(a)


def gaussian_noise(rng: np.random.Generator) -> np.ndarray:
    """Clipped Gaussian noise over a rectangle, half the time smoothed into blotches."""
    from scipy.ndimage import gaussian_filter

    h, w = int(rng.integers(12, 29)), int(rng.integers(12, 29))
    a = rng.normal(rng.uniform(0.0, 0.5), rng.uniform(0.15, 0.5), (h, w))
    if rng.random() < 0.5:
        a = gaussian_filter(a, rng.uniform(0.7, 2.0))
        a = (a - a.min()) / (np.ptp(a) + 1e-9) * rng.uniform(0.6, 1.0) - rng.uniform(0.0, 0.3)
    a = np.clip(a, 0, 1)
    a[0, 0] = a[-1, -1] = max(a[0, 0], 1e-3)
    return mnist_frame(a)


def square(rng: np.random.Generator) -> np.ndarray:
    """A filled rectangle (sides 1:1 to 2:1), rotated."""
    img, dr = _canvas(112)
    s, ar = rng.uniform(10, 40), rng.uniform(0.5, 1.0)
    dr.rectangle([56 - s, 56 - s * ar, 56 + s, 56 + s * ar], fill=255)
    return mnist_frame(_arr(_rotate(img, rng.uniform(0, 90))))


def cross_hash(rng: np.random.Generator) -> np.ndarray:
    """A "+", "x" or "#" mark, tilted."""
    img, dr = _canvas(112)
    kind = ("plus", "x", "hash")[int(rng.integers(3))]
    w, L = int(rng.integers(3, 9)), rng.uniform(25, 45)
    if kind == "hash":
        o = L * rng.uniform(0.25, 0.45)
        for k in (-o, o):
            dr.line([(56 - L, 56 + k), (56 + L, 56 + k)], fill=255, width=w)
            dr.line([(56 + k, 56 - L), (56 + k, 56 + L)], fill=255, width=w)
    else:
        dr.line([(56 - L, 56), (56 + L, 56)], fill=255, width=w)
        dr.line([(56, 56 - L), (56, 56 + L)], fill=255, width=w)
    tilt = rng.uniform(-20, 20) + (45 if kind == "x" else 0)
    return mnist_frame(_arr(_rotate(img, tilt)))


_MAKERS = {"blob": blob, "scribble": scribble, "line": line, "letter": letter,
           "uniform_noise": uniform_noise, "gaussian_noise": gaussian_noise, "square": square,
           "cross_hash": cross_hash}


def make_nondigits(rng: np.random.Generator, per_family: int = 150,
                   families=FAMILIES) -> tuple[np.ndarray, np.ndarray]:
    """``per_family`` non-digits of each family.

    Returns
    -------
    x : (N, 1, 28, 28) float32 in [0, 1]; family : (N,) the family of each image.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    bad = [f for f in families if f not in _MAKERS]
    if bad:
        raise ValueError(f"families must be among {list(FAMILIES)}, got {bad}")
    xs, fam = [], []
    for name in families:
        for _ in range(per_family):
            xs.append(_MAKERS[name](rng))
            fam.append(name)
    return np.stack(xs)[:, None].astype(np.float32), np.array(fam)
