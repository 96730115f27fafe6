"""The pipeline on realistic inputs: MNIST digits pass through unchanged, and synthetic phone
photos of test digits are read (almost) as well as the clean digits — unlike a plain resize."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.data.images import synthetic_photo
from digitlens.preprocessing import plain_resize, preprocess
from digitlens.preprocessing.steps import remove_lines

N_PHOTOS = 300


def test_bundled_digits_pass_through_nearly_unchanged(digits):
    # MNIST digits are already what the pipeline makes: 20-pixel box, centre of mass at (14, 14)
    x = digits.x_test[:, 0]                                       # (1000, 28, 28)
    out = np.stack([preprocess(a).image for a in x])
    diff = np.abs(out - x).reshape(len(x), -1)
    assert np.mean(diff.max(axis=1) < 1e-6) > 0.85                # most are identical
    assert diff.mean() < 0.002
    # the rest differ mostly because a stray mark not touching the digit was dropped
    assert np.mean(diff.mean(axis=1) > 0.02) < 0.02


@pytest.mark.slow
def test_photo_robustness(digits, trained, record_property):
    """Synthetic photos (random scale and place on a larger page, dark ink on light paper,
    lighting gradient, noise, blur, dust, JPEG): accuracy through the pipeline drops at most 3
    points against the clean digits; a plain resize loses far more."""
    model = trained("mlp")
    rng = np.random.default_rng(20241126)
    idx = rng.choice(len(digits.y_test), N_PHOTOS, replace=False)
    x, y = digits.x_test[idx], digits.y_test[idx]
    photos = [synthetic_photo(x[i, 0], rng) for i in range(N_PHOTOS)]

    clean = float(np.mean(model.predict(x) == y))
    through = np.stack([preprocess(p).image for p in photos])[:, None]    # (N, 1, 28, 28)
    pipeline = float(np.mean(model.predict(through) == y))
    naive = np.stack([plain_resize(p) for p in photos])[:, None]
    plain = float(np.mean(model.predict(naive) == y))
    for k, v in (("clean", clean), ("pipeline", pipeline), ("plain_resize", plain)):
        record_property(f"accuracy_{k}", v)
    print(f"\nphoto robustness on {N_PHOTOS} test digits: clean {clean:.1%}, "
          f"pipeline {pipeline:.1%}, plain resize {plain:.1%}")

    assert clean > 0.9                                            # a sane model
    assert clean - pipeline <= 0.03
    assert clean - plain > 0.3                                    # the drop the pipeline prevents
    assert pipeline - plain > 0.3


@pytest.mark.slow
def test_pipeline_does_not_change_what_the_model_reads_on_mnist(digits, trained):
    model = trained("mlp")
    x = digits.x_test
    through = np.stack([preprocess(a[0]).image for a in x])[:, None]
    agree = np.mean(model.predict(through) == model.predict(x))
    assert agree > 0.99


# ------------------------------------------------------------------ ruled and squared paper
N_RULED = 150


@pytest.mark.slow
@pytest.mark.parametrize("ruled", ["lines", "grid"])
def test_ruled_and_squared_paper(digits, trained, ruled, record_property):
    """Notebook paper: its printed lines (tilted up to 3 degrees, blurred, JPEG) run across the
    digit.  With the remove_lines step the model reads these photos nearly as well as photos on
    plain paper; without it, the lines are taken for ink."""
    model = trained("mlp")
    idx = np.random.default_rng(7).choice(len(digits.y_test), N_RULED, replace=False)
    x, y = digits.x_test[idx, 0], digits.y_test[idx]

    def accuracy(kind, **switches):
        rng = np.random.default_rng(11)             # the same pages, with and without lines
        imgs = np.stack([preprocess(synthetic_photo(d, rng, ruled=kind), **switches).image
                         for d in x])[:, None]
        return float(np.mean(model.predict(imgs) == y))

    plain, on, off = accuracy(None), accuracy(ruled), accuracy(ruled, remove_lines=False)
    for k, v in (("plain_paper", plain), ("lines_removed", on), ("lines_kept", off)):
        record_property(f"{ruled}_{k}", v)
    print(f"\n{ruled} paper, {N_RULED} digits: plain paper {plain:.1%}, lines removed {on:.1%}, "
          f"step off {off:.1%}")
    assert plain - on <= 0.08
    assert on - off >= 0.08


def _noisy_paper(shape, rng, level=0.05, noise=0.01):
    return (level + noise * rng.standard_normal(shape)).astype(np.float32)


def test_remove_lines_subtracts_tilted_lines_and_keeps_the_stroke():
    rng = np.random.default_rng(0)
    a = _noisy_paper((240, 300), rng)
    yy, xx = np.mgrid[:240, :300]
    on_line = np.zeros(a.shape, bool)
    for k in range(8):                                       # 8 lines, 28 px apart, tilted 2°
        on_line |= np.abs(yy - (14 + 28 * k) - np.tan(np.deg2rad(2)) * xx) < 0.75
    a[on_line] += 0.3
    bar = (xx >= 140) & (xx < 152) & (yy >= 40) & (yy < 200)   # a thick vertical stroke
    a[bar] = 0.9
    out, numbers, sentence = remove_lines(a, {})
    assert numbers["lines_across"] == 8 and numbers["lines_down"] == 0
    assert numbers["line_level"] == pytest.approx(0.3, abs=0.05)
    away = on_line & ~bar
    assert np.mean(out[away] < 0.05 + 5 * 0.01) > 0.97      # the lines are back to paper
    assert out[bar].min() >= 0.9 - 0.4                       # the stroke keeps its ink ...
    assert np.mean(out[bar & ~on_line] == a[bar & ~on_line]) == 1.0   # ... untouched off lines
    assert "8 running across" in sentence
    # squared paper: the same lines, and as many down the page
    g = a.copy()
    down = np.zeros(a.shape, bool)
    for k in range(10):
        down |= np.abs(xx - (10 + 30 * k)) < 0.75
    g[down & ~bar] = np.maximum(g[down & ~bar], 0.05 + 0.3)
    _, numbers, _ = remove_lines(g, {})
    assert numbers["lines_across"] == 8 and numbers["lines_down"] >= 9   # one may touch the bar


def test_remove_lines_leaves_drawings_digits_and_a_single_thin_bar_alone(digits):
    # every bundled digit: nothing removed, the very same array passed on
    for a in digits.x_test[:300, 0]:
        out, numbers, _ = remove_lines(a, {})
        assert out is a and numbers == {"lines_across": 0, "lines_down": 0}
    # a canvas 7 whose thick bar spans the whole width is a stroke, not a ruled line
    c = np.zeros((140, 140), np.float32)
    c[10:20, 2:138] = 1.0
    c[20:130, 100:110] = 1.0
    out, numbers, _ = remove_lines(c, {})
    assert out is c and numbers["lines_across"] == 0
    # a photo cropped tight around a thin-pen 7: one thin bar across is not ruled paper
    rng = np.random.default_rng(1)
    t = _noisy_paper((120, 100), rng)
    t[8:10, :] = 0.8
    t[10:115, 70:72] = 0.8
    out, numbers, _ = remove_lines(t, {})
    assert out is t and numbers["lines_across"] == 0
