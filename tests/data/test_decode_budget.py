"""The decode budget: images are limited by the bytes their pixels decode to, and large ones are
reduced to the working size before any float conversion (issue 15)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlens.data import images as I
from digitlens.errors import ImageTooLargeError


def _png(im: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_decoded_bytes_counts_what_pillow_allocates():
    assert I.decoded_bytes("L", 100, 50) == 5000
    assert I.decoded_bytes("P", 100, 50) == 5000
    assert I.decoded_bytes("I;16", 100, 50) == 10000
    assert I.decoded_bytes("RGB", 100, 50) == 20000     # Pillow stores RGB in 4 bytes
    assert I.decoded_bytes("RGBA", 100, 50) == 20000
    assert I.decoded_bytes("F", 100, 50) == 20000


@pytest.mark.parametrize("mode,fmt", [("RGBA", "PNG"), ("L", "PNG"), ("RGB", "WEBP")])
def test_an_image_over_the_decoded_budget_is_refused_before_decoding(mode, fmt):
    data = _png(Image.new(mode, (600, 600)), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    need = I.decoded_bytes(mode if fmt != "WEBP" else "RGB", 600, 600)
    with pytest.raises(ImageTooLargeError, match="MiB"):
        I.load_gray(data, max_decoded=need - 1 if fmt != "WEBP" else need)  # webp counts x2
    gray, _ = I.load_gray(data, max_decoded=4 * need)
    assert gray.shape == (512, 512) or max(gray.shape) <= 600


def test_the_default_budget_refuses_the_reported_bombs_quickly():
    # 6300 x 6300 RGBA is 39.7 Mpx, within the pixel limit; it decodes to 151 MiB
    data = _png(Image.new("RGBA", (6300, 6300)), compress_level=1)
    with pytest.raises(ImageTooLargeError, match="151 MiB"):
        I.load_gray(data)


def test_transparent_images_are_reduced_before_flattening_with_the_same_result():
    """Reducing the RGBA image first (Pillow premultiplies alpha) gives what flattening at full
    size and then reducing gives, to within 8-bit rounding."""
    side = 1200
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(200, 200), (1000, 900)], fill=(20, 20, 20, 255), width=60)
    ImageDraw.Draw(im).ellipse([(300, 600), (700, 1000)], outline=(0, 0, 0, 128), width=40)
    gray, info = I.pil_to_gray(im)
    assert info["background"] == "white" and info["reduced_by"] == pytest.approx(side / 512)
    a = np.asarray(im, dtype=np.float32) / 255                          # (H, W, 4)
    luma = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    full, _ = I.flatten_alpha(luma, a[..., 3])
    ref, f = I.reduce_to_working_size(full)
    assert gray.shape == ref.shape == (512, 512) and f == pytest.approx(side / 512)
    assert np.abs(gray - ref).max() < 3 / 255


def test_16_bit_images_are_reduced_in_16_bits_and_scaled():
    a = np.zeros((1024, 1024), np.uint16)
    a[:, 512:] = 65535
    gray, info = I.load_gray(_png(Image.fromarray(a)))
    assert info["scaled_from_mode"].startswith("I") and gray.shape == (512, 512)
    assert gray[:, :255].max() == 0.0 and gray[:, 257:].min() == pytest.approx(1.0)


_PEAK = textwrap.dedent("""
    import resource, sys
    import digitlens.preprocessing as P
    data = open(sys.argv[1], "rb").read()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        P.preprocess(data)
        out = "ok"
    except Exception as e:
        out = type(e).__name__
    print(out, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
""")

#: the stated ceiling: pre-processing any accepted image grows the process by less than this
CEILING_MB = 150


def _largest_accepted(tmp_path):
    """The largest image of each kind the default budget accepts, with a digit-like stroke."""
    s40 = 6300                                     # 39.7 Mpx: the pixel limit
    side = int((I.MAX_DECODED_BYTES / 4) ** 0.5)   # RGBA at the decoded budget
    side16 = int((I.MAX_DECODED_BYTES / 2) ** 0.5)
    gray = Image.new("L", (s40, s40), 255)
    ImageDraw.Draw(gray).line([(1500, 1000), (4500, 5000)], fill=0, width=300)
    rgba = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(800, 600), (2600, 3000)], fill=(0, 0, 0, 255), width=150)
    a16 = np.full((side16, side16), 65535, np.uint16)
    a16[1500:3500, 2000:2400] = 0
    files = {"gray40.png": _png(gray, compress_level=1),
             "rgb40.jpg": _png(gray.convert("RGB"), "JPEG", quality=80),
             "rgba.png": _png(rgba, compress_level=1),
             "rgba.webp": _png(rgba.resize((side * 7 // 10, side * 7 // 10)), "WEBP",
                               lossless=True),
             "gray16.png": _png(Image.fromarray(a16), compress_level=1)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return list(files)


@pytest.mark.slow
def test_peak_memory_of_any_accepted_image_is_under_the_ceiling(tmp_path):
    for name in _largest_accepted(tmp_path):
        r = subprocess.run([sys.executable, "-c", _PEAK, str(tmp_path / name)],
                           capture_output=True, text=True, timeout=120)
        out, mb = r.stdout.split()
        assert out == "ok", (name, out, r.stderr[-500:])
        assert float(mb) < CEILING_MB, f"{name}: pre-processing grew the process by {mb} MB"
