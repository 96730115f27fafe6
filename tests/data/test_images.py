"""The one guarded data-URL decoder (``decode_data_url``, ``gray_from_data_url``): malformed,
oversized and damaged input gives a clean ``ValueError`` naming the problem, and a gray PNG made by
``digitlens._util.png`` comes back pixel for pixel."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from digitlens._util.png import gray_png, gray_png_url, png_data_url
from digitlens.data.images import decode_data_url, gray_from_data_url
from digitlens.errors import ImageTooLargeError, NotAnImageError, TruncatedImageError


def _u8(shape=(37, 53), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_round_trip_through_gray_png_url_is_exact():
    u8 = _u8()
    url = gray_png_url(u8)
    assert decode_data_url(url) == gray_png(u8)                      # the very bytes written
    gray = gray_from_data_url(url)
    assert gray.shape == u8.shape and gray.dtype == np.float32
    assert gray.min() >= 0.0 and gray.max() <= 1.0
    np.testing.assert_array_equal(np.rint(gray * 255).astype(np.uint8), u8)
    # a float image in [0, 1] too, through png_data_url (small: not reduced)
    a = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    back = gray_from_data_url(png_data_url(a))
    np.testing.assert_array_equal(np.rint(back * 255), np.rint(a * 255))


def test_plain_base64_and_surrounding_whitespace_are_accepted():
    u8 = _u8((5, 7), seed=1)
    png = gray_png(u8)
    plain = base64.b64encode(png).decode("ascii")
    assert decode_data_url(plain) == png
    assert decode_data_url(f"  \n{gray_png_url(u8)}\n ") == png
    for prefix in ("data:image/png;base64,", "data:IMAGE/PNG;base64,",
                   "data:application/octet-stream;base64,", "data:;base64,"):
        assert decode_data_url(prefix + plain) == png


@pytest.mark.parametrize("text", [
    "data:text/html;base64,PGgxPmhpPC9oMT4=",       # not an image type
    "data:image/png,iVBORw0KGgo=",                   # not base64-encoded
    "data:image/png;base64",                         # no comma, no payload
    "data:image/svg+xml;utf8,<svg/>",
])
def test_a_bad_prefix_is_refused_with_a_clean_error(text):
    with pytest.raises(NotAnImageError, match="base64 data URL"):
        decode_data_url(text)


@pytest.mark.parametrize("payload", ["@@@@", "iVBORw0KGgo", "iVBO Rw0K", "ab=c"])
def test_bad_base64_is_refused_with_a_clean_error(payload):
    with pytest.raises(NotAnImageError, match="not valid base64"):
        decode_data_url("data:image/png;base64," + payload)


def test_text_that_is_not_a_string_is_refused():
    for bad in (b"data:image/png;base64,AAAA", None, 42):
        with pytest.raises(NotAnImageError, match="must be text"):
            decode_data_url(bad)


def test_a_url_too_long_is_refused_before_decoding():
    url = gray_png_url(_u8((64, 64), seed=2))
    n = len(base64.b64decode(url.split(",", 1)[1]))
    assert decode_data_url(url, max_bytes=n) == base64.b64decode(url.split(",", 1)[1])
    with pytest.raises(ImageTooLargeError, match=f"over {n // 2:,} bytes"):
        decode_data_url(url, max_bytes=n // 2)
    # exactly at the limit is allowed, one byte over is not, whatever the padding ("", "=", "==")
    for k in (30, 31, 32):
        text = "data:image/png;base64," + base64.b64encode(bytes(range(k))).decode()
        assert decode_data_url(text, max_bytes=k) == bytes(range(k))
        with pytest.raises(ImageTooLargeError):
            decode_data_url(text, max_bytes=k - 1)
    # the length decides before any decoding: invalid base64 that is too long is "too large"
    with pytest.raises(ImageTooLargeError):
        decode_data_url("data:image/png;base64," + "@" * 400, max_bytes=100)
    with pytest.raises(ImageTooLargeError):
        gray_from_data_url(url, max_bytes=n // 2)


def test_gray_from_data_url_refuses_what_is_not_a_readable_image():
    not_image = "data:image/png;base64," + base64.b64encode(b"hello, not a picture").decode()
    with pytest.raises(NotAnImageError, match="not an image"):
        gray_from_data_url(not_image)
    png = gray_png(_u8((40, 40), seed=3))
    cut = "data:image/png;base64," + base64.b64encode(png[: len(png) // 2]).decode()
    with pytest.raises(TruncatedImageError):
        gray_from_data_url(cut)
    with pytest.raises(ImageTooLargeError, match="pixels"):
        gray_from_data_url(gray_png_url(_u8((40, 40))), max_pixels=1000)
    # every one of them is a ValueError, which callers (the server) turn into a 4xx answer
    assert issubclass(NotAnImageError, ValueError) and issubclass(ImageTooLargeError, ValueError)
    assert issubclass(TruncatedImageError, ValueError)
