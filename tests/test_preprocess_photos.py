"""The pipeline on realistic inputs: MNIST digits pass through unchanged, and synthetic phone
photos of test digits are read (almost) as well as the clean digits — unlike a plain resize."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.data.images import synthetic_photo
from digitlens.preprocess import plain_resize, preprocess

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
