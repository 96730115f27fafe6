"""Each pre-processing step on constructed images with known answers, the decoders' safety
checks, and the result objects (grid, text, JSON)."""

from __future__ import annotations

import base64
import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, features
from scipy import ndimage

from digitlens.data import load_raw
from digitlens.errors import (
    ImageTooLargeError,
    NoInkError,
    NotAnImageError,
    PreprocessError,
    TruncatedImageError,
)
from digitlens.preprocessing import SWITCHES, Preprocessed, otsu_threshold, plain_resize, preprocess


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def seven(size=280, mode="RGB", bg=(255, 255, 255), ink=(0, 0, 0), width=18):
    """A '7' drawn like on a canvas: thick strokes, anti-aliasing off (exactly two colours)."""
    im = Image.new(mode, (size, size), bg)
    d = ImageDraw.Draw(im)
    s = size / 280
    d.line([(90 * s, 60 * s), (190 * s, 60 * s), (120 * s, 225 * s)], fill=ink,
           width=int(width * s))
    return im


def com(a):
    return np.array(ndimage.center_of_mass(a))


# --------------------------------------------------------------------------- geometry

def test_centred_square_stays_centred():
    page = np.ones((100, 100), np.float32)
    page[30:70, 30:70] = 0.0                                      # 40x40 dark square, centred
    p = preprocess(page)
    expected = np.zeros((28, 28), np.float32)
    expected[4:24, 4:24] = 1.0                                    # 20x20, 4-pixel margin
    np.testing.assert_allclose(p.image, expected, atol=1e-6)
    assert np.all(np.abs(com(p.image) - 14) <= 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_shifted_blob_is_recentred_within_half_a_pixel(seed):
    rng = np.random.default_rng(seed)
    page = np.zeros((120, 160), np.float32)
    # an asymmetric blob (an "L") anywhere on the page: its bounding-box centre and its centre of
    # mass differ, and centring must use the mass
    y, x = int(rng.integers(5, 60)), int(rng.integers(5, 100))
    page[y:y + 50, x:x + 10] = 1.0
    page[y + 40:y + 50, x:x + 45] = 1.0
    p = preprocess(page)
    np.testing.assert_array_less(np.abs(com(p.image) - 14.0), 0.5 + 1e-9)
    # and not simply the box centred: the L's mass sits low-left of its box
    box = p.step("center").numbers["shift_from_box_centre"]
    assert box != [0, 0]


def test_aspect_ratio_is_kept_and_longer_side_is_20():
    page = np.zeros((200, 200), np.float32)
    page[20:180, 90:130] = 1.0                                    # 40 wide, 160 tall
    p = preprocess(page)
    rows = np.flatnonzero(p.image.any(axis=1))
    cols = np.flatnonzero(p.image.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20
    assert cols[-1] - cols[0] + 1 == 5                            # 40 * 20/160
    assert p.step("scale").numbers["to"] == [5, 20]


def test_scale_off_stretches_to_28():
    page = np.zeros((200, 200), np.float32)
    page[20:180, 90:130] = 1.0
    p = preprocess(page, scale=False)
    assert p.image.shape == (28, 28)
    assert p.image.any(axis=0).all() and p.image.any(axis=1).all()   # filled edge to edge
    assert not p.step("scale").enabled


def test_center_off_places_the_box_in_the_middle():
    page = np.zeros((100, 100), np.float32)
    page[10:90, 40:60] = 1.0
    page[10:30, 60:90] = 1.0                                      # heavy top-right: mass off-centre
    on, off = preprocess(page), preprocess(page, center=False)
    assert np.all(np.abs(com(on.image) - 14) <= 0.5)
    rows = np.flatnonzero(off.image.any(axis=1))
    cols = np.flatnonzero(off.image.any(axis=0))
    assert (rows[0], 27 - rows[-1]) == (4, 4) and abs(cols[0] - (27 - cols[-1])) <= 1
    assert np.abs(com(off.image) - 14).max() > 1.0


# --------------------------------------------------------------------------- polarity, alpha

def test_inverted_image_is_reinverted():
    images, _ = load_raw()
    d = images[7].astype(np.float32) / 255                        # MNIST: bright ink on black
    a, b = preprocess(d), preprocess(1.0 - d)                     # the same digit, dark on white
    assert not a.step("polarity").numbers["inverted"]
    assert b.step("polarity").numbers["inverted"]
    np.testing.assert_allclose(a.image, b.image, atol=1e-5)


def test_transparent_canvas_equals_opaque_drawing():
    # A browser canvas exports black strokes on transparent pixels that are (0, 0, 0, 0):
    # ignoring alpha would give an all-black picture.
    rgba = seven(mode="RGBA", bg=(0, 0, 0, 0), ink=(0, 0, 0, 255))
    opaque = seven(mode="RGB", bg=(255, 255, 255), ink=(0, 0, 0))
    p_rgba, p_rgb = preprocess(encode(rgba)), preprocess(encode(opaque))
    np.testing.assert_allclose(p_rgba.image, p_rgb.image, atol=1e-6)
    assert p_rgba.step("decode").numbers["background"] == "white"
    # light strokes on transparent go on black instead
    white_ink = seven(mode="RGBA", bg=(255, 255, 255, 0), ink=(255, 255, 255, 255))
    p_white = preprocess(encode(white_ink))
    assert p_white.step("decode").numbers["background"] == "black"
    np.testing.assert_allclose(p_white.image, p_rgb.image, atol=1e-6)


def test_opaque_rgba_canvas_reads_as_its_gray_levels():
    # what the page sends: Chromium exports an opaque canvas as RGBA, every alpha 255
    from digitlens.data.images import load_gray

    board = seven(mode="L", bg=0, ink=255)
    rgba = board.convert("RGBA")
    gray, info = load_gray(encode(rgba))
    np.testing.assert_array_equal(gray, np.asarray(board, dtype=np.float32) * np.float32(1 / 255))
    assert info["mode"] == "RGBA" and "background" not in info
    np.testing.assert_array_equal(preprocess(encode(rgba)).image, preprocess(encode(board)).image)
    # one pixel that is not quite opaque: the image is composited again
    rgba.putpixel((0, 0), (0, 0, 0, 254))
    assert "background" in load_gray(encode(rgba))[1]


def test_antialiased_transparent_strokes_composite_correctly():
    # semi-transparent stroke edges must blend with the chosen background, not with the hidden
    # colour of transparent pixels
    big = seven(size=560, mode="L", bg=0, ink=255, width=18)      # coverage mask, drawn 2x
    alpha = big.resize((280, 280), Image.BOX)                     # anti-aliased coverage
    rgba = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha])
    on_white = Image.composite(Image.new("L", alpha.size, 0), Image.new("L", alpha.size, 255),
                               alpha)
    np.testing.assert_allclose(preprocess(encode(rgba)).image, preprocess(encode(on_white)).image,
                               atol=2 / 255)


def test_all_transparent_canvas_has_no_ink():
    with pytest.raises(NoInkError, match="no ink found — draw or upload a digit"):
        preprocess(encode(Image.new("RGBA", (280, 280), (0, 0, 0, 0))))


@pytest.mark.parametrize("colour", [0, 255, 128])
def test_blank_image_has_no_ink(colour):
    with pytest.raises(NoInkError, match="no ink found"):
        preprocess(encode(Image.new("L", (200, 200), colour)))


def test_blank_noisy_photo_has_no_ink():
    rng = np.random.default_rng(0)
    page = np.clip(0.8 + rng.normal(0, 0.02, (300, 300)), 0, 1)
    page = ndimage.gaussian_filter(page, 0.8)
    with pytest.raises(NoInkError):
        preprocess(encode(Image.fromarray(np.uint8(page * 255)), "JPEG", quality=80))


# --------------------------------------------------------------------------- lighting, ink, blobs

def _page_with_digit(gradient: float, rng):
    images, _ = load_raw()
    big = np.asarray(Image.fromarray(images[3]).resize((84, 84), Image.BICUBIC),
                     np.float32) / 255
    page = np.zeros((240, 240), np.float32)
    page[80:164, 60:144] = big
    img = 0.9 - 0.75 * page                                       # dark ink on light paper
    ramp = np.linspace(0, 1, 240, dtype=np.float32)[None, :]
    img = img * (1 - gradient * ramp)                             # darker towards the right
    img = img + rng.normal(0, 0.01, img.shape)
    return np.clip(img, 0, 1).astype(np.float32), images[3].astype(np.float32) / 255


def test_flatten_lighting_keeps_a_shadow_from_becoming_ink():
    def corr(a, b):
        return np.corrcoef(a.ravel(), b.ravel())[0, 1]

    # a lamp on the left: the right edge of the page gets as dark as 15 % of the left's
    photo, digit = _page_with_digit(0.85, np.random.default_rng(1))
    clean = preprocess(digit).image
    p = preprocess(photo)
    n = p.step("flatten_lighting").numbers
    assert n["background_max"] - n["background_min"] > 0.5         # the step saw the shadow
    assert corr(p.image, clean) > 0.95                             # and the digit survived
    assert p.step("crop").numbers["width"] == 50                   # 84 px field, 60 px of ink
    # without it the shadow is as dark as the ink: no clean separation exists
    with pytest.raises(NoInkError):
        preprocess(photo, flatten_lighting=False)
    # with a milder gradient both work, but flattening is closer to the clean digit
    photo, _ = _page_with_digit(0.6, np.random.default_rng(1))
    assert corr(preprocess(photo).image, clean) > \
        corr(preprocess(photo, flatten_lighting=False).image, clean) + 0.02


def test_threshold_keeps_gray_levels_and_zeroes_paper():
    rng = np.random.default_rng(2)
    photo, _ = _page_with_digit(0.0, rng)
    p = preprocess(photo)
    t = p.step("threshold")
    out = t.image
    # paper is exactly 0; the ink keeps intermediate shades (not a binary mask)
    assert np.mean(out == 0) > 0.8
    ink = out[out > 0]
    assert len(np.unique(np.round(ink, 2))) > 20
    assert 0.05 < t.numbers["threshold"] < 0.9
    assert t.numbers["paper_noise"] == pytest.approx(0.01, abs=0.006)


def test_otsu_threshold_splits_two_levels():
    a = np.concatenate([np.full(700, 0.2), np.full(300, 0.7)]).astype(np.float32)
    t = otsu_threshold(a)
    assert 0.2 < t <= 0.7


def test_specks_are_dropped():
    page = np.zeros((200, 200), np.float32)
    page[50:150, 90:105] = 1.0                                   # the digit: a thick "1"
    for y, x in [(10, 10), (20, 180), (190, 30), (120, 170)]:
        page[y:y + 2, x:x + 2] = 1.0                             # dust
    p = preprocess(page)
    assert p.step("despeckle").numbers["removed"] == 4
    ref = preprocess(page * (np.arange(200)[None, :] > 80) * (np.arange(200)[None, :] < 110))
    np.testing.assert_allclose(p.image, ref.image, atol=1e-6)
    # without despeckle and blob selection the dust stretches the box to the page corners
    loose = preprocess(page, despeckle=False, largest_blob=False)
    assert loose.step("crop").numbers["width"] > 150


def test_largest_blob_drops_a_distant_blob_but_keeps_a_nearby_stroke():
    page = np.zeros((200, 300), np.float32)
    page[40:140, 60:75] = 1.0                                    # main stroke
    page[40:50, 80:120] = 1.0                                    # separate top bar nearby ("5")
    page[160:190, 260:290] = 1.0                                 # a smudge far away
    p = preprocess(page)
    n = p.step("largest_blob").numbers
    assert n["components"] == 3 and n["kept"] == 2 and n["dropped"] == 1
    assert "dropped 1 other blob" in p.step("largest_blob").sentence
    crop = p.step("crop").numbers["box"]
    assert crop == {"top": 40, "bottom": 140, "left": 60, "right": 120}


# --------------------------------------------------------------------------- decoding, formats

FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF"] + (["WEBP"] if features.check("webp") else [])


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_decode_to_the_same_digit(fmt):
    ref = preprocess(encode(seven(), "PNG")).image
    kw = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    p = preprocess(encode(seven(), fmt, **kw))
    assert p.step("decode").numbers["format"] == fmt
    assert np.abs(p.image - ref).mean() < 0.02


def test_exif_orientation_is_applied():
    upright = seven()
    stored = upright.transpose(Image.Transpose.ROTATE_90)        # as a sideways phone saves it
    exif = Image.Exif()
    exif[0x0112] = 6                                             # "rotate 90 CW to display"
    p = preprocess(encode(stored, "PNG", exif=exif.tobytes()))
    assert p.step("decode").numbers["exif_orientation"] == 6
    np.testing.assert_allclose(p.image, preprocess(encode(upright)).image, atol=1e-6)


def test_sixteen_bit_and_float_images():
    a = np.asarray(seven().convert("L"), np.float32) / 255
    ref = preprocess(a).image
    im16 = Image.fromarray((a * 65535).astype(np.uint16))
    np.testing.assert_allclose(preprocess(encode(im16, "PNG")).image, ref, atol=1e-3)
    imf = Image.fromarray(a, mode="F")
    np.testing.assert_allclose(preprocess(encode(imf, "TIFF")).image, ref, atol=1e-6)


def test_every_source_type_gives_the_same_result(tmp_path):
    im = seven()
    data = encode(im)
    path = tmp_path / "seven.png"
    path.write_bytes(data)
    ref = preprocess(data).image
    rgb = np.asarray(im)
    for src in (str(path), path, io.BytesIO(data), im, rgb, rgb.astype(np.float32) / 255,
                np.asarray(im.convert("L"))[None, None]):
        np.testing.assert_allclose(preprocess(src).image, ref, atol=1e-6)


def test_not_an_image():
    for junk in (b"hello, I am not a picture", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10):
        with pytest.raises(NotAnImageError):
            preprocess(junk)
    with pytest.raises(NotAnImageError, match="empty"):
        preprocess(b"")


def test_unsupported_format_is_refused():
    # ICO (and EPS, PDF, ...) are never handed to their decoders
    with pytest.raises(NotAnImageError, match="PNG, JPEG"):
        preprocess(encode(seven(64), "ICO"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(fmt):
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (200, 200), dtype=np.uint8))
    data = encode(noisy, fmt)
    with pytest.raises(TruncatedImageError, match="truncated or damaged"):
        preprocess(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind, body):
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + \
        chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    # a few hundred bytes declaring 60,000 x 60,000 pixels (3.6 gigapixels)
    bomb = _png_header_only(60_000, 60_000)
    assert len(bomb) < 200
    with pytest.raises(ImageTooLargeError, match="pixels"):
        preprocess(bomb)
    # our own limit applies, whatever Pillow's global setting is
    with pytest.raises(ImageTooLargeError, match="limit is 10,000 pixels"):
        preprocess(encode(seven(200)), max_pixels=10_000)
    with pytest.raises(ImageTooLargeError):
        preprocess(np.zeros((200, 200)), max_pixels=10_000)


def test_byte_limit(tmp_path):
    data = encode(seven())
    with pytest.raises(ImageTooLargeError, match="bytes"):
        preprocess(data, max_bytes=len(data) - 1)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLargeError, match="bytes"):
        preprocess(path, max_bytes=100)


def test_bad_arrays():
    with pytest.raises(NotAnImageError, match="shape"):
        preprocess(np.zeros((4, 28, 28)))
    with pytest.raises(NotAnImageError, match=r"\[0, 1\]"):
        preprocess(np.full((28, 28), 3.0))
    with pytest.raises(NotAnImageError, match="NaN"):
        preprocess(np.full((28, 28), np.nan))
    with pytest.raises(NotAnImageError, match="0..255"):
        preprocess(np.full((28, 28), 300, dtype=np.int32))
    with pytest.raises(TypeError, match="source must be"):
        preprocess(12345)


def test_errors_are_value_errors_with_their_own_types():
    for cls in (NotAnImageError, TruncatedImageError, ImageTooLargeError, NoInkError):
        assert issubclass(cls, PreprocessError) and issubclass(cls, ValueError)


# --------------------------------------------------------------------------- switches and objects

def test_switches_turn_steps_off_and_pass_the_image_through():
    page = np.ones((100, 100), np.float32)
    page[20:80, 45:55] = 0.0
    for name in ("polarity", "flatten_lighting", "threshold", "despeckle", "largest_blob",
                 "crop"):
        # (with polarity off the white paper is the bright majority: threshold would rightly
        # call nothing ink, so switch it off too)
        extra = {"threshold": False} if name == "polarity" else {}
        p = preprocess(page, **{name: False}, **extra)
        i = [s.name for s in p.steps].index(name)
        assert not p.steps[i].enabled
        assert p.steps[i].image is p.steps[i - 1].image or \
            np.array_equal(p.steps[i].image, p.steps[i - 1].image)
    # polarity off on dark-on-light: the paper becomes "ink" -> the whole page is the box
    assert preprocess(page, polarity=False, threshold=False).step("crop").numbers["width"] == 100


def test_steps_argument_and_bad_switches():
    page = np.zeros((50, 50), np.float32)
    page[10:40, 20:30] = 1.0
    p = preprocess(page, steps={"center": False})
    assert not p.step("center").enabled
    p = preprocess(page, steps=["crop", "scale", "center", "normalize"])
    assert [s.name for s in p.steps if s.enabled] == ["decode", "crop", "scale", "center",
                                                      "normalize"]
    with pytest.raises(TypeError, match="unknown switch 'sharpen'"):
        preprocess(page, sharpen=False)
    with pytest.raises(TypeError, match="True or False"):
        preprocess(page, center="no")
    assert SWITCHES[0] == "polarity" and SWITCHES[-1] == "normalize"


def test_result_image_contract_and_grids():
    p = preprocess(encode(seven()))
    assert isinstance(p, Preprocessed)
    assert p.image.shape == (28, 28) and p.image.dtype == np.float32
    assert p.image.min() >= 0 and p.image.max() == pytest.approx(1.0)
    assert p.x.shape == (1, 1, 28, 28)
    rows = p.grid(3).splitlines()
    assert len(rows) == 28
    back = np.array([[float(v) for v in r.split()] for r in rows])
    np.testing.assert_allclose(back, p.image, atol=5e-4)
    compact = p.compact_grid().splitlines()
    assert len(compact) == 28 and all(len(r) == 28 for r in compact)
    assert compact[14].count(".") == int(np.sum(p.image[14] == 0))
    text = p.text()
    assert all(f"{s.name}" in text for s in p.steps)
    for s in p.steps:
        assert s.image.ndim == 2 and s.image.min() >= 0 and s.image.max() <= 1
        assert s.sentence and s.title


def test_to_dict_is_json_for_the_web_page():
    photo = np.ones((1000, 800), np.float32)
    photo[300:700, 380:420] = 0.1
    p = preprocess(photo)
    d = json.loads(json.dumps(p.to_dict()))                      # strictly JSON
    assert np.array(d["image"]).shape == (28, 28)
    np.testing.assert_allclose(np.array(d["image"]), p.image, atol=1e-4)
    assert [s["name"] for s in d["steps"]] == [s.name for s in p.steps]
    first = d["steps"][0]
    assert first["image"].startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(first["image"].split(",", 1)[1])))
    assert max(png.size) <= 192                                   # downscaled for the page
    assert first["size"] == [800, 1000] or first["numbers"]["working_size"] == first["size"]
    assert "<img" in p._repr_html_()


def test_big_photo_is_reduced_to_the_working_size():
    photo = np.ones((1500, 2000), np.float32)
    photo[500:1000, 900:1000] = 0.0
    p = preprocess(photo)
    n = p.step("decode").numbers
    assert n["working_size"] == [512, 384]
    assert n["reduced_by"] == pytest.approx(2000 / 512, abs=1e-3)
    assert np.all(np.abs(com(p.image) - 14) <= 0.5)


def test_plain_resize_baseline():
    a = plain_resize(encode(seven()))
    assert a.shape == (28, 28) and a.dtype == np.float32 and 0 <= a.min() <= a.max() <= 1
