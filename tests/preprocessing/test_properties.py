"""Property tests: whatever arrives — random arrays, random bytes, damaged real files, any mix of
switches — the pipeline returns a valid 28x28 image or raises one of its documented errors."""

from __future__ import annotations

import io
import os

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from digitlens.errors import PreprocessError
from digitlens.preprocessing import SWITCHES, Preprocessed, preprocess

# 60 examples per property keeps the suite fast; HYP_N=2000 runs a deeper search by hand.
SETTINGS = settings(max_examples=int(os.environ.get("HYP_N", 60)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(source, **switches):
    """Run the pipeline; the only acceptable outcomes are a valid result or a PreprocessError."""
    try:
        p = preprocess(source, **switches)
    except PreprocessError as e:
        assert str(e)                                            # always a message
        return None
    assert isinstance(p, Preprocessed)
    assert p.image.shape == (28, 28) and p.image.dtype == np.float32
    assert np.all(np.isfinite(p.image))
    assert p.image.min() >= 0.0 and p.image.max() <= 1.0
    assert p.image.max() > 0                                     # never a silent blank
    for s in p.steps:
        assert s.image.ndim == 2 and np.all(np.isfinite(s.image))
        assert s.image.min() >= 0.0 and s.image.max() <= 1.0
    return p


shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64),
    st.tuples(st.integers(1, 48), st.integers(1, 48), st.sampled_from([3, 4])),
)


@SETTINGS
@given(hnp.arrays(np.uint8, shapes))
def test_random_uint8_arrays(a):
    check(a)


@SETTINGS
@given(hnp.arrays(np.float32, shapes, elements=st.floats(0, 1, width=32)))
def test_random_float_arrays(a):
    check(a)


@SETTINGS
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=8),
                  elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_arbitrary_float_arrays_are_valid_or_refused(a):
    check(a)


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    check(data)


def _drawing(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    im = Image.new("RGBA" if fmt == "PNG" else "RGB", (64, 64), (255, 255, 255))
    d = ImageDraw.Draw(im)
    pts = [tuple(map(int, rng.integers(8, 56, 2))) for _ in range(4)]
    d.line(pts, fill=(0, 0, 0), width=5)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@SETTINGS
@given(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]), st.integers(0, 5),
       st.data())
def test_damaged_real_files(fmt, seed, data):
    try:
        raw = bytearray(_drawing(fmt, seed))
    except (OSError, KeyError):                                   # e.g. no WebP encoder here
        assume(False)
    # flip some bytes and/or cut the file short
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    check(bytes(raw[:cut]))


@SETTINGS
@given(st.fixed_dictionaries({}, optional={k: st.booleans() for k in SWITCHES}),
       st.integers(0, 3))
def test_any_combination_of_switches(switches, seed):
    p = check(_drawing("PNG", seed), **switches)
    if p is not None:
        assert [s.name for s in p.steps] == ["decode", *SWITCHES]
        assert all(s.enabled == switches.get(s.name, True) for s in p.steps[1:])
