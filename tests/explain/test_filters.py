"""What each filter looks for: receptive fields from the topology, top patches that are the image
crops at the argmax positions, response curves of hand-made kernels with their known maxima, and
the "like a hand-made kernel" label only above the stated threshold."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.explain import filters as F
from digitlens.explain.units import hand_kernels
from digitlens.nn import build_model
from digitlens.nn.layers import Activation, Conv2D, MaxPool2D
from digitlens.nn.model import Sequential


@pytest.fixture(scope="module")
def cnn():
    return build_model("cnn", np.random.default_rng(0), dtype=np.float64)


def _brute_rf(model, layer, pos):
    """Which input pixels change output ``pos`` of layer ``layer``: perturb each pixel of a random
    image and watch (float64, a positive random model so no ReLU hides a pixel)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 1.0, (1,) + model.input_shape)
    base = model.forward_range(x, 0, layer + 1)[0, 0][pos]
    seen = np.zeros(model.input_shape[-2:], bool)
    for r in range(28):
        for c in range(28):
            y = x.copy()
            y[0, 0, r, c] += 1.0
            seen[r, c] = model.forward_range(y, 0, layer + 1)[0, 0][pos] != base
    return seen


def test_receptive_fields_of_the_zoo_cnns(cnn):
    tiny = build_model("cnn_tiny", np.random.default_rng(0))
    assert F.receptive_field(tiny, 0) == F.ReceptiveField((5, 5), (1, 1), (-2, -2))
    assert F.receptive_field(cnn, 0).size == (3, 3)
    assert F.receptive_field(cnn, 2) == F.ReceptiveField((4, 4), (2, 2), (-1, -1))  # pool 1
    assert F.receptive_field(cnn, 3) == F.ReceptiveField((8, 8), (2, 2), (-3, -3))  # conv 2
    assert F.receptive_field(cnn, 5).size == (10, 10)  # pool 2
    assert F.receptive_field(cnn, 6) == F.ReceptiveField((18, 18), (4, 4), (-7, -7))  # conv 3
    assert F.receptive_field(cnn, 10).size == (28, 28)  # the hidden Dense layer reads everything
    with pytest.raises(ValueError):
        F.receptive_field(cnn, 99)


def test_receptive_field_equals_the_pixels_that_move_the_output():
    """Positive weights and inputs: every pixel in the window changes the output, none outside."""
    m = Sequential([Conv2D(1, 3, padding=1), Activation("relu"), MaxPool2D(2),
                    Conv2D(1, 3, padding=1)], rng=np.random.default_rng(0), dtype=np.float64)
    for k, v in m.params().items():
        v[...] = np.abs(v) + 0.1
    rf = F.receptive_field(m, 3)
    for pos in ((5, 6), (0, 0), (13, 2)):
        top, left, bottom, right = rf.window(*pos)
        want = np.zeros((28, 28), bool)
        want[max(top, 0):bottom, max(left, 0):right] = True
        # no pixel outside the window moves the output; inside, the max-pool may ignore a few
        # (a raised pixel that does not win its 2x2 block), but the window's edges are reached
        seen = _brute_rf(m, 3, pos)
        assert not (seen & ~want).any() and seen.sum() > 0.9 * want.sum()
        rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
        assert (rows.min(), rows.max() + 1) == (max(top, 0), min(bottom, 28))
        assert (cols.min(), cols.max() + 1) == (max(left, 0), min(right, 28))


def test_crop_pads_with_paper():
    img = np.arange(784, dtype=float).reshape(28, 28)
    c = F.crop(img, (-2, 25, 6, 33))
    assert c.shape == (8, 8)
    assert (c[:2] == 0).all() and (c[:, 3:] == 0).all()
    np.testing.assert_array_equal(c[2:, :3], img[0:6, 25:28])


def test_top_patches_are_the_image_crops_at_the_argmax_positions(cnn):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (40, 1, 28, 28)) * (rng.uniform(size=(40, 1, 1, 1)) > 0.3)
    y = rng.integers(0, 10, 40)
    atlas = F.build_filter_atlas(cnn, x, y, batch_size=16)
    for layer in (0, 3):
        act = np.asarray(cnn.forward_range(x, 0, layer + 2))  # after the ReLU: (40, C, H, W)
        for unit in (0, 7):
            patches = F.top_patches(cnn, atlas, layer, unit, k=5)
            maxes = act[:, unit].reshape(40, -1).max(axis=1)
            assert [p.index for p in patches] == list(np.argsort(-maxes, kind="stable")[:5])
            rf = F.receptive_field(cnn, layer)
            for p in patches:
                amap = act[p.index, unit]
                assert p.activation == pytest.approx(amap.max(), rel=1e-6)
                assert amap[p.position] == amap.max()
                assert p.window == rf.window(*p.position)
                assert p.pixels.shape == rf.size
                np.testing.assert_array_equal(p.pixels, F.crop(x[p.index, 0], p.window))
                assert p.label == y[p.index]
    # a Dense unit reads the whole digit
    dense = F.top_patches(cnn, atlas, 10, 3, k=2)
    assert dense[0].position is None and dense[0].pixels.shape == (28, 28)


def test_strokes_are_where_they_are_said_to_be():
    h = F.stroke_image("line", 0, centre=(10.0, 14.0))
    assert h[9:11].mean() > 0.9 and h[:7].max() == 0 and h[13:].max() == 0  # a row at y = 10
    np.testing.assert_allclose(F.stroke_image("line", 90), F.stroke_image("line", 0).T, atol=1e-12)
    up = F.stroke_image("arc", 270, radius=5)  # ∩: opens downwards, ink on top, none below
    assert up[:14].sum() > 3 * up[16:].sum()
    assert np.flatnonzero(up.max(axis=1) > 0.5).min() >= 8
    # a shift moves a line along its normal: at 0°, 3 pixels down
    rows = lambda im: np.flatnonzero(im.max(axis=1) > 0.9).mean()  # noqa: E731
    assert rows(F.stroke_image("line", 0, shift=3.0)) == rows(F.stroke_image("line", 0)) + 3
    with pytest.raises(ValueError):
        F.stroke_image("spiral", 0)


def test_hand_kernels_peak_where_they_should():
    """Response curves run by the engine: a horizontal-edge kernel peaks for a horizontal line
    (0°), a vertical one at 90°, the diagonals at 45° and 135°, and the arc kernel (the top of a
    loop, ∩) for an arc that opens downwards (270°)."""
    m, names = F.hand_kernel_model()
    curves = F.response_curves(m, 0)
    best = {n: (int(curves.line_angles[curves.line[u].argmax()]),
                int(curves.arc_openings[curves.arc[u].argmax()])) for u, n in enumerate(names)}
    assert best["horizontal edge"][0] == 0
    assert best["vertical edge"][0] == 90
    assert best["diagonal edge /"][0] == 45
    assert best["diagonal edge \\"][0] == 135
    assert best["arc (top of a loop)"][1] == 270
    u = names.index("horizontal edge")
    assert curves.line[u][list(curves.line_angles).index(90)] == pytest.approx(0, abs=1e-9)


def test_response_curves_equal_the_engine_on_the_stroke_images(cnn):
    """The curve's number for one angle is the conv layer's z at the probe position for the
    best-shifted stroke image, computed independently here."""
    curves = F.response_curves(cnn, 3)
    assert curves.position == (6, 6) and curves.radius == 3.0
    a = list(curves.line_angles).index(30)
    imgs = np.stack([F.stroke_image("line", 30, centre=curves.centre, shift=s)
                     for s in curves.shifts])[:, None]
    z = cnn.forward_range(imgs, 0, 4)[:, :, 6, 6]  # (shifts, 32): conv 2's z at the probe
    for unit in (0, 11):
        k = list(curves.shifts).index(curves.line_shift[unit, a])
        assert curves.line[unit, a] == pytest.approx(z[k, unit], rel=1e-12)
        assert z[k, unit] == z[:, unit].max()  # and it is the best shift
    d = curves.unit_dict(0)
    assert len(d["line"]["z"]) == len(F.LINE_ANGLES) and len(d["arc"]["z"]) == len(F.ARC_OPENINGS)
    dense = F.response_curves(cnn, 10)  # a hidden Dense unit: read at the image centre
    assert dense.position is None and dense.line.shape == (128, len(F.LINE_ANGLES))


def test_like_only_above_the_threshold():
    ks = hand_kernels(5)
    exact = F.likeness(ks["vertical edge"])
    assert exact["like"] == "vertical edge" and exact["cosine"] == pytest.approx(1.0)
    assert F.likeness(-ks["vertical edge"])["like"] == "vertical edge"  # an inverted one
    rng = np.random.default_rng(0)
    # a filter made mostly of noise: the closest kernel is named, but it is not called "like"
    weak = ks["horizontal edge"] * 0.3 + rng.normal(0, 0.2, (5, 5))
    w = F.likeness(weak)
    assert abs(w["cosine"]) < F.LIKE_THRESHOLD and w["like"] is None and w["best"]
    assert w["threshold"] == F.LIKE_THRESHOLD == 0.6
    assert F.likeness(np.zeros((2, 2)))["like"] is None


def test_windows_agree_with_the_contrast_panels_receptive_field(cnn):
    """explain.units.receptive_field (the contrast panel's box, inclusive and clipped) names the
    same pixels for every position of both convolutions."""
    from digitlens.explain.units import receptive_field as box

    for layer in (0, 3):
        rf = F.receptive_field(cnn, layer)
        h, w = cnn.shapes[layer][1:]
        for i in range(h):
            for j in range(w):
                top, left, bottom, right = rf.window(i, j)
                assert box(cnn, layer + 1, i, j) == (max(top, 0), max(left, 0),
                                                     min(bottom, 28) - 1, min(right, 28) - 1)
