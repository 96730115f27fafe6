"""The "I don't know" score (digitlens.explain.ood) and the non-digit generator.

Fast tests check the arithmetic on constructed inputs (shape statistics of a ring and a bar, the
tail p-value, the kNN distance against brute force, the threshold's definition) and that the
Explanation, the JSON API and the engine carry the same numbers.  The slow test measures the
score where it matters: trained mlp and cnn, bundled test digits against 1,200 generated
non-digits (AUROC >= 0.95; the TPR and FPR are printed with ``-s``).
"""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.explain import nondigits as nd
from digitlens.explain import ood
from digitlens.explain.result import Explanation
from digitlens.recognizer import Recognizer


def _ring(r_out=8, r_in=4):
    yy, xx = np.mgrid[0:28, 0:28] - 13.5
    d = np.hypot(yy, xx)
    return ((d <= r_out) & (d >= r_in)).astype(np.float32)


# ------------------------------------------------------------------------------ features
def test_shape_stats_of_constructed_images():
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 12:16] = 1.0  # a 20 x 4 bar: one piece, no hole
    two = bar.copy()
    two[4:24, 20:22] = 1.0  # and a second bar
    f = ood.shape_stats(np.stack([bar, _ring(), two])[:, None])
    assert f.shape == (3, 7)
    names = dict(zip(ood.SHAPE_NAMES, f.T))
    np.testing.assert_allclose(names["log area"][0], np.log(80 + 1))
    assert names["box height"][0] == 20 and names["box width"][0] == 4
    np.testing.assert_allclose(names["log(1 + pieces)"], np.log1p([1, 1, 2]))
    np.testing.assert_array_equal(names["holes"], [0, 1, 0])
    # perimeter: 2 * (20 + 4) edges between ink and paper
    np.testing.assert_allclose(names["log perimeter per area"][0], np.log((48 + 1) / 81))


def test_shape_stats_of_a_blank_image_do_not_fail():
    f = ood.shape_stats(np.zeros((1, 1, 28, 28)))
    assert np.all(np.isfinite(f))


def test_knn_distance_matches_brute_force_and_leaves_itself_out():
    rng = np.random.default_rng(0)
    bank = ood._unit(rng.normal(size=(60, 5)))
    u = ood._unit(rng.normal(size=(7, 5)))
    d = ood.knn_distance(u, bank, 3)
    brute = np.sort(np.linalg.norm(u[:, None] - bank[None], axis=2), axis=1)[:, 2]
    np.testing.assert_allclose(d, brute, atol=1e-5)
    self_d = ood.knn_distance(bank, bank, 1, exclude_self=True)
    full = np.linalg.norm(bank[:, None] - bank[None], axis=2)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(self_d, full.min(axis=1), atol=1e-5)
    # every ReLU off: as far as a right angle from everything
    assert ood.knn_distance(np.zeros((1, 5)), bank, 3)[0] == pytest.approx(np.sqrt(2))


def test_tail_p_value_and_its_extrapolation():
    ref = ood.TailReference.of(np.arange(1.0, 100.0))  # 1..99
    np.testing.assert_allclose(ref.p_value([0.5, 50.0, 99.0, 1000.0]),
                               [100 / 100, 51 / 100, 2 / 100, 1 / 100])
    far, farther = ref.neg_log_p([200.0, 300.0])
    assert farther > far > -np.log(1 / 100)  # beyond the largest value, still ordered


# --------------------------------------------------------------------------- calibration
@pytest.fixture(scope="module")
def small():
    """An untrained lab model calibrated on 400 training and 200 test digits (fast)."""
    d = dl.load_digits()
    m = dl.build_model("lab", np.random.default_rng(0))
    cal = ood.calibrate(m, d.x_train[:400], d.x_test[:200])
    return m, cal, d


def test_threshold_is_the_percentile_of_the_test_scores(small):
    m, cal, d = small
    s = ood.scores(m, cal, d.x_test[:200])["score"]
    assert cal.threshold == pytest.approx(np.percentile(s, 95))
    assert cal.test_flagged == pytest.approx(np.mean(s > cal.threshold))
    assert 0.03 <= cal.test_flagged <= 0.05
    one = ood.score(m, cal, d.x_test[3, 0])
    assert one.score == pytest.approx(s[3]) and one.flagged == (s[3] > cal.threshold)
    assert cal.to_dict()["n_test"] == 200


def test_calibrate_checks_its_arguments(small):
    m, _, d = small
    with pytest.raises(ValueError, match="percentile"):
        ood.calibrate(m, d.x_train[:50], d.x_test[:20], percentile=100)
    with pytest.raises(ValueError, match="k must"):
        ood.calibrate(m, d.x_train[:50], d.x_test[:20], k=0)
    with pytest.raises(ValueError, match="h_train"):
        ood.calibrate(m, d.x_train[:50], d.x_test[:20], h_train=np.zeros((3, 25)))


def test_auroc_from_ranks():
    assert ood.auroc([0, 1, 2], [3, 4]) == 1.0
    assert ood.auroc([3, 4], [0, 1, 2]) == 0.0
    assert ood.auroc([1, 1], [1, 1]) == 0.5


# ---------------------------------------------------------------------------- non-digits
def test_nondigits_are_framed_like_digits_and_reproducible():
    x, fam = nd.make_nondigits(np.random.default_rng(3), per_family=2)
    x2, _ = nd.make_nondigits(np.random.default_rng(3), per_family=2)
    np.testing.assert_array_equal(x, x2)
    assert x.shape == (2 * len(nd.FAMILIES), 1, 28, 28) and x.dtype == np.float32
    assert list(fam) == [f for f in nd.FAMILIES for _ in range(2)]
    assert np.all(x.max(axis=(1, 2, 3)) == 1.0) and x.min() >= 0
    dot = nd.dot()
    assert dot.max() == 1.0 and (dot > 0.5).sum() > 100  # blown up to a 20-pixel disc
    with pytest.raises(TypeError):
        nd.make_nondigits(0)
    with pytest.raises(ValueError, match="families"):
        nd.make_nondigits(np.random.default_rng(0), families=("spiral",))


# ------------------------------------------------------------- explanation, API, engine
@pytest.fixture(scope="module")
def rec():
    return Recognizer({"lab": dl.build_model("lab", np.random.default_rng(1))})


def test_explanation_carries_the_engines_score_and_sentence(rec):
    x = nd.dot()
    e = rec.explain(x, "lab", skip_preprocess=True, units=False, nearest=False,
                    counterfactual=False, contrast=False, methods=())
    want = ood.score(rec.model("lab"), rec.ood_calibration("lab"), x)
    assert e.ood.score == pytest.approx(want.score, rel=1e-12)
    assert e.ood.flagged == want.flagged
    assert e.ood.sentence in e.sentences
    d = e.to_dict()
    assert d["ood"]["score"] == pytest.approx(want.score, rel=1e-5)
    assert Explanation.from_dict(d).to_dict()["ood"] == d["ood"]
    off = rec.explain(x, "lab", skip_preprocess=True, units=False, nearest=False,
                      counterfactual=False, contrast=False, methods=(), ood=False)
    assert off.ood is None and off.to_dict()["ood"] is None


def test_the_api_number_is_the_engines(rec):
    from fastapi.testclient import TestClient

    from digitlens._util.png import png_data_url
    from digitlens.view.server.app import create_app

    client = TestClient(create_app(rec, default_model="lab", training=False))
    ring = np.zeros((140, 140), np.float32)
    ring[20:120, 20:120] = np.kron(_ring(), np.ones((5, 5)))[20:120, 20:120]
    r = client.post("/api/explain", json={"image": png_data_url(ring), "model": "lab"})
    assert r.status_code == 200, r.text
    got = r.json()["ood"]
    image = np.asarray(r.json()["image"], dtype=np.float32)
    pre = rec.prepare(png_bytes(ring))[0]
    np.testing.assert_allclose(image, pre, atol=6e-4)
    want = ood.score(rec.model("lab"), rec.ood_calibration("lab"), pre)
    assert got["score"] == pytest.approx(want.score, rel=1e-5)
    assert got["threshold"] == pytest.approx(rec.ood_calibration("lab").threshold, rel=1e-5)
    assert got["flagged"] == want.flagged
    live = client.post("/api/explain", json={"image": png_data_url(ring), "model": "lab",
                                             "options": {"detail": "live"}})
    assert live.json()["ood"] is None  # only the full answer carries it


def png_bytes(a: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------- trained networks
@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_score_separates_nondigits_from_test_digits(name, trained, digits):
    """AUROC >= 0.95 against 1,200 generated non-digits (150 per family); a dot is flagged;
    the bundled test digits mostly are not (5% by the threshold's definition)."""
    m = trained(name)
    cal = ood.calibrate(m, digits.x_train, digits.x_test)
    x_out, fam = nd.make_nondigits(np.random.default_rng(0), per_family=150)
    s_in = ood.scores(m, cal, digits.x_test)["score"]
    s_out = ood.scores(m, cal, x_out)["score"]
    a = ood.auroc(s_in, s_out)
    tpr = float(np.mean(s_out > cal.threshold))
    fpr = float(np.mean(s_in > cal.threshold))
    per = {f: round(float(np.mean(s_out[fam == f] > cal.threshold)), 2) for f in nd.FAMILIES}
    print(f"\n{name}: AUROC {a:.3f}, TPR {tpr:.3f}, FPR on the test digits {fpr:.3f}; {per}")
    assert a >= 0.95
    assert fpr <= 0.05 and tpr >= 0.75
    assert ood.score(m, cal, nd.dot()).flagged
    assert per["blob"] >= 0.95 and per["uniform_noise"] >= 0.95
