"""Robustness transforms (identity at 0, monotone in strength), the map's PCA against NumPy's SVD,
the evaluation sets."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from digitlens.evaluation import build_map, hidden_features, load_eval_set, pca, robustness

R = importlib.import_module("digitlens.evaluation.robustness")


def _bar():
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 7:21, 12:16] = 1.0  # a vertical stroke, 14 tall and 4 wide
    return x


def _box(img, t=0.3):
    r, c = np.nonzero(img > t)
    return r.min(), r.max(), c.min(), c.max()


@pytest.mark.parametrize("kind", R.KINDS)
def test_strength_zero_is_the_identity(kind, digits):
    x = digits.x_test[:20]
    out = R.transform(x, kind, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    assert out is not x and out.dtype == x.dtype


def _measure(kind, img, x0):
    if kind in ("rotation", "scale", "shift"):
        r0, r1, c0, c1 = _box(img)
    if kind == "rotation":
        return c1 - c0  # the bar leans: its box widens
    if kind == "scale":
        return r1 - r0  # taller
    if kind == "shift":
        return r0 + c0  # moves down and right
    if kind == "thickness":
        return img.sum()  # ink mass
    if kind == "blur":
        return int(np.sum(img > 0.02))  # ink spreads over more pixels
    return float(np.abs(img - x0).sum())  # noise, elastic: further from the original


@pytest.mark.parametrize("kind", R.KINDS)
def test_each_transform_is_monotone_in_its_strength(kind):
    x = _bar()
    levels = [v for v in R.LEVELS[kind] if v >= 0] if kind != "thickness" else R.LEVELS[kind]
    if kind == "scale":
        levels = R.LEVELS[kind]
    vals = [_measure(kind, R.transform(x, kind, lv, np.random.default_rng(7))[0, 0], x[0, 0])
            for lv in levels]
    assert all(b > a for a, b in zip(vals, vals[1:])), (kind, levels, vals)


def test_rotation_is_symmetric_and_noise_uses_only_its_generator():
    x = _bar()
    left = R.transform(x, "rotation", -30, np.random.default_rng(0))
    right = R.transform(x, "rotation", 30, np.random.default_rng(0))
    np.testing.assert_allclose(left[0, 0], right[0, 0, :, ::-1], atol=1e-5)  # mirror images
    a = R.transform(x, "noise", 0.3, np.random.default_rng(5))
    b = R.transform(x, "noise", 0.3, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    with pytest.raises(ValueError, match="kind"):
        R.transform(x, "melt", 1, np.random.default_rng(0))


def test_robustness_curves(trained, digits):
    m = trained("logistic")
    x, y = digits.x_test[:200], digits.y_test[:200]
    r = robustness({"logistic": m}, x, y, kinds=("rotation", "noise"),
                   levels={"rotation": (0, 45), "noise": (0, 0.5)})
    acc0 = float(np.mean(m.predict(x) == y))
    assert r.accuracy["logistic"]["rotation"][0] == pytest.approx(acc0)
    assert r.accuracy["logistic"]["rotation"][1] < acc0 - 0.2  # 45° hurts a pixel template
    assert r.examples["rotation"].shape == (2, 28, 28)
    np.testing.assert_array_equal(r.examples["rotation"][0], x[0, 0])
    d = r.to_dict()
    assert d["accuracy"]["logistic"]["noise"][0] == pytest.approx(acc0)


@pytest.mark.parametrize("n", [300, 20])  # the scatter-matrix path (N > 2D) and the direct SVD
def test_pca_equals_numpys_svd_up_to_sign(n):
    rng = np.random.default_rng(0)
    h = rng.standard_normal((n, 12)) @ rng.standard_normal((12, 12)) + 3.0
    mean, comps, explained = pca(h, 3)
    c = h - h.mean(0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    for k in range(3):
        assert abs(abs(comps[k] @ vt[k]) - 1) < 1e-9  # same direction, either sign
    np.testing.assert_allclose(explained, s[:3] ** 2 / np.sum(s**2))
    # the projection's variance along each axis is its singular value squared / N
    np.testing.assert_allclose(((c @ comps.T) ** 2).sum(0), s[:3] ** 2)
    assert np.all(comps[np.arange(3), np.abs(comps).argmax(1)] > 0)  # fixed signs


def test_digit_map_places_a_digit_with_its_neighbours(digits):
    import digitlens as dl

    m = dl.build_model("mlp", np.random.default_rng(0))  # the geometry needs no training
    xtr, ytr = digits.x_train[:800], digits.y_train[:800]
    mp = build_map(m, xtr, ytr, digits.x_test[:300], digits.y_test[:300])
    h = hidden_features(m, digits.x_test[:300])
    np.testing.assert_allclose(mp.points, (h - mp.mean) @ mp.components.T, atol=1e-9)
    # a training digit lands on its own dot, and is its own nearest neighbour
    p = mp.place(m, xtr[5, 0], k=3)
    assert p.neighbours[0] == 5 and p.distances[0] == pytest.approx(0, abs=1e-3)
    np.testing.assert_allclose(p.xy, mp.train_points[5], atol=1e-4)
    share, n = mp.overlap(4, 9)
    assert n == int(np.sum(np.isin(digits.y_test[:300], (4, 9)))) and 0 <= share <= 1
    d = mp.to_dict()
    assert len(d["points"]) == 300 and "4s and 9s" in d["overlap_sentence"]


def test_optdigits_come_through_the_preprocessing():
    pytest.importorskip("sklearn")
    s = load_eval_set("optdigits", limit=30)
    assert s.x.shape == (30, 1, 28, 28) and s.x.dtype == np.float32
    assert 0 <= s.x.min() and s.x.max() <= 1 and s.y.dtype == np.int64
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(s.y, load_digits().target[:30])
    # centred like MNIST: the ink's centre of mass near the middle
    w = s.x[:, 0].sum((1, 2))
    rows = (s.x[:, 0].sum(2) * np.arange(28)).sum(1) / w
    assert np.all(np.abs(rows - 13.5) < 2.5)


def test_unknown_data_is_refused():
    with pytest.raises(ValueError, match="data must be one of"):
        load_eval_set("emnist")


def test_mine_reads_the_learners_own_digits(tmp_path, monkeypatch, digits):
    pytest.importorskip("digitlens.data.mine")
    from digitlens.data.mine import DigitStore

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="no digits of your own"):
        load_eval_set("mine")
    store = DigitStore()
    for i in range(3):
        store.add(digits.x_test[i, 0], int(digits.y_test[i]))
    s = load_eval_set("mine")
    assert s.x.shape == (3, 1, 28, 28)
    assert sorted(s.y.tolist()) == sorted(digits.y_test[:3].tolist())
