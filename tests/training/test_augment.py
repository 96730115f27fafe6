"""Data augmentation: exact identity at zero strength, known geometry, seeding, labels kept."""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.training.augment import AugmentConfig, augment, transform

EVERYTHING = AugmentConfig(rotation=15, scale=0.15, shift=3, elastic=1.5, elastic_sigma=4,
                           thickness=0.8)


@pytest.fixture(scope="module")
def batch():
    return dl.load_digits().x_train[:32].copy()


def centre_of_mass(img):
    r, c = np.indices(img.shape)
    return np.array([(img * r).sum(), (img * c).sum()]) / img.sum()


def test_zero_strength_is_exactly_the_identity(batch):
    for cfg in (EVERYTHING.scaled(0), AugmentConfig(rotation=0, scale=0, shift=0)):
        assert cfg.is_identity
        out = augment(batch, np.random.default_rng(0), cfg)
        np.testing.assert_array_equal(out, batch)
        assert out is not batch and out.dtype == batch.dtype
    np.testing.assert_array_equal(transform(batch), batch)


def test_input_is_not_modified_and_output_is_valid(batch):
    before = batch.copy()
    out = augment(batch, np.random.default_rng(1), EVERYTHING)
    np.testing.assert_array_equal(batch, before)
    assert out.shape == batch.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, batch)


def test_same_seed_same_batch_different_seed_different_batch(batch):
    a = augment(batch, np.random.default_rng(42), EVERYTHING)
    b = augment(batch, np.random.default_rng(42), EVERYTHING)
    c = augment(batch, np.random.default_rng(43), EVERYTHING)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the generator advances: two calls in a row differ
    rng = np.random.default_rng(42)
    assert not np.array_equal(augment(batch, rng, EVERYTHING), augment(batch, rng, EVERYTHING))


def test_quarter_turn_is_numpy_rot90(batch):
    # the centre sits between pixels 13 and 14, so a 90° turn maps the pixel grid onto itself;
    # a positive angle turns counter-clockwise on screen, like np.rot90
    out = transform(batch[:4], angle=90)
    np.testing.assert_allclose(out, np.rot90(batch[:4], k=1, axes=(2, 3)), atol=1e-5)
    out = transform(batch[:4], angle=-90)
    np.testing.assert_allclose(out, np.rot90(batch[:4], k=-1, axes=(2, 3)), atol=1e-5)


def test_a_dot_rotates_where_geometry_says():
    img = np.zeros((1, 1, 28, 28), np.float32)
    img[0, 0, 6:9, 17:20] = 1.0  # a blob up and to the right of the centre (13.5, 13.5)
    for angle in (30.0, -45.0, 150.0):
        out = transform(img, angle=angle)
        r, c = centre_of_mass(img[0, 0]) - 13.5
        t = np.deg2rad(angle)
        # counter-clockwise on screen with rows pointing down
        expected = np.array([r * np.cos(t) - c * np.sin(t), c * np.cos(t) + r * np.sin(t)]) + 13.5
        np.testing.assert_allclose(centre_of_mass(out[0, 0]), expected, atol=0.05)
        assert abs(out.sum() - img.sum()) < 0.05 * img.sum()  # a rotation keeps the ink


def test_drawn_angles_are_the_ones_applied():
    img = np.zeros((6, 1, 28, 28), np.float32)
    img[:, 0, 4:7, 12:16] = 1.0  # above the centre
    out, params = augment(img, np.random.default_rng(5), AugmentConfig(rotation=40, scale=0,
                                                                       shift=0),
                          return_params=True)
    assert np.all(np.abs(params["angle"]) <= 40) and np.ptp(params["angle"]) > 5
    for k in range(6):
        np.testing.assert_allclose(out[k], transform(img[k:k + 1], angle=params["angle"][k])[0],
                                   atol=1e-6)


def test_shift_moves_whole_pixels_exactly(batch):
    out = transform(batch[:3], shift_row=2, shift_col=-3)
    expected = np.zeros_like(batch[:3])
    expected[:, :, 2:, :-3] = batch[:3, :, :-2, 3:]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_scale_moves_points_away_from_the_centre():
    img = np.zeros((1, 1, 28, 28), np.float32)
    img[0, 0, 17:19, 13:15] = 1.0  # 4 rows below the centre
    out = transform(img, scale=1.5)
    np.testing.assert_allclose(centre_of_mass(out[0, 0]), [13.5 + 4 * 1.5, 13.5], atol=0.05)
    assert out.sum() > img.sum() * 1.5  # a bigger blob


def test_thickness_adds_or_removes_ink(batch):
    ink = batch.sum(axis=(1, 2, 3))
    thick = transform(batch, thickness=1.0).sum(axis=(1, 2, 3))
    thin = transform(batch, thickness=-1.0).sum(axis=(1, 2, 3))
    half = transform(batch, thickness=0.5).sum(axis=(1, 2, 3))
    assert np.all(thick > ink * 1.2) and np.all(thin < ink * 0.8)
    assert np.all((half > ink) & (half < thick))


def test_elastic_warps_but_keeps_the_digit_in_place(batch):
    # the displacement is about `elastic` pixels: the digit's centre moves by about that much,
    # its ink amount barely changes, and the change grows with the strength
    weak = AugmentConfig(rotation=0, scale=0, shift=0, elastic=0.5)
    strong = AugmentConfig(rotation=0, scale=0, shift=0, elastic=2.0)
    out_weak = augment(batch, np.random.default_rng(0), weak)
    out_strong = augment(batch, np.random.default_rng(0), strong)
    moved = [np.linalg.norm(centre_of_mass(o[0]) - centre_of_mass(b[0]))
             for o, b in zip(out_weak, batch)]
    assert 0 < np.mean(moved) < 1.0 and max(moved) < 1.5
    assert np.all(np.abs(out_weak.sum(axis=(1, 2, 3)) / batch.sum(axis=(1, 2, 3)) - 1) < 0.15)
    assert np.abs(out_strong - batch).sum() > 2 * np.abs(out_weak - batch).sum()


def test_multi_channel_images_get_the_same_transform_per_channel(batch):
    two = np.concatenate([batch[:4], batch[:4]], axis=1)  # (4, 2, 28, 28), identical channels
    out = augment(two, np.random.default_rng(3), EVERYTHING)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_labels_are_untouched_by_training_with_augmentation():
    d = dl.load_digits()
    x, y = d.x_train[:256].copy(), d.y_train[:256].copy()
    x0, y0 = x.copy(), y.copy()
    seen = []

    def spy(xb, rng):
        seen.append(xb.copy())
        return augment(xb, rng, AugmentConfig())

    model = dl.build_model("logistic", np.random.default_rng(0))
    dl.fit(model, x, y, dl.TrainConfig(epochs=1, batch_size=64), rng=np.random.default_rng(0),
           augment=spy)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(x, x0)
    assert len(seen) == 4 and all(s.shape == (64, 1, 28, 28) for s in seen)


@pytest.mark.slow
def test_augmented_digits_keep_their_label(trained, digits):
    # the changes are small enough not to turn a 6 into a 9 or a 1 into a 7: a network trained on
    # such variants reads augmented *test* digits (never seen in any form) almost as well as the
    # originals.  A plain MLP trained on the originals does not — that is why we augment.  (The
    # zoo's mlp trains on augmented digits too, since issue 16: the plain one is trained here.)
    from digitlens.training.recipes import train_rung

    x, y = digits.x_test, digits.y_test
    x_aug = augment(x, np.random.default_rng(0), AugmentConfig())
    cnn = trained("cnn")
    mlp = train_rung("mlp", digits.x_train, digits.y_train, x, y, seed=0, augment=False).model
    cnn_clean, cnn_aug = (cnn.predict(x) == y).mean(), (cnn.predict(x_aug) == y).mean()
    mlp_clean, mlp_aug = (mlp.predict(x) == y).mean(), (mlp.predict(x_aug) == y).mean()
    assert cnn_aug > cnn_clean - 0.02
    assert mlp_clean - mlp_aug > 3 * (cnn_clean - cnn_aug)


@pytest.mark.parametrize("kwargs,message", [
    (dict(rotation=-1), "rotation"), (dict(rotation=200), "rotation"), (dict(scale=1.0), "scale"),
    (dict(shift=float("nan")), "shift"), (dict(thickness=1.5), "thickness"),
    (dict(elastic=1.0, elastic_sigma=0.0), "elastic_sigma"),
])
def test_bad_config_is_refused_with_its_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**kwargs)


def test_bad_inputs_are_refused(batch):
    with pytest.raises(TypeError, match="Generator"):
        augment(batch, 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        augment(batch[0], np.random.default_rng(0))
    bad = batch.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        augment(bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match="float"):
        augment((batch * 255).astype(np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="scale"):
        transform(batch, scale=0)


FULL = AugmentConfig(rotation=15, scale=0.15, shift=2, elastic=1.5, elastic_sigma=3.0,
                     thickness=0.5)


@pytest.mark.parametrize("config", [AugmentConfig(), FULL], ids=["default", "every-change"])
def test_draw_then_apply_is_the_augmentation_and_works_slice_by_slice(batch, config):
    """fit draws a batch's numbers in one thread and transforms slices of it in others: the
    same draws from the same generator state, and every slice's images are exactly the whole
    batch's rows (bit for bit), so threads cannot change what the network is trained on."""
    x = batch[:10]
    rng_whole = np.random.default_rng(4)
    whole = config(x, rng_whole)
    rng = np.random.default_rng(4)
    draws = config.draw(x, rng)
    assert rng.random() == rng_whole.random()  # the same numbers drawn, no more, no fewer
    assert len(draws) == 10 and (draws.noise is None) == (config.elastic == 0)
    np.testing.assert_array_equal(config.apply_drawn(x, draws), whole)
    parts = [config.apply_drawn(x[r], draws[r]) for r in (slice(0, 3), slice(3, 7), slice(7, 10))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(whole, x)  # it did change the digits


def test_apply_drawn_refuses_draws_for_another_batch(batch):
    draws = FULL.draw(batch[:4], np.random.default_rng(0))
    with pytest.raises(ValueError, match="4 sets of draws for 5 images"):
        FULL.apply_drawn(batch[:5], draws)
