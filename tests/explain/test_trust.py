""""Can I trust this map?" (digitlens.explain.trust): the three checks and POST /api/trust.

Fast: Spearman's correlation on constructed maps, the randomised copies, the deletion curve of a
linear model (whose gradient × input map is each pixel's exact term, so removing its top pixels
first must lower the score fastest), and the API's numbers against the engine's.  Slow, on the
trained mlp: randomising the last layer leaves a map whose rank correlation with the original is
below 0.3 on average over 10 test digits (a bound the report states as 0.5 for one digit), and
the map's deletion curve falls faster than random for every one of them.
"""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.explain import attribution as A
from digitlens.explain import trust as TR
from digitlens.nn import topology as T
from digitlens.recognizer import Recognizer


def test_spearman_on_constructed_maps():
    a = np.zeros((28, 28))
    a[10, 3:13] = np.arange(1.0, 11.0)
    assert TR.spearman(a, a) == pytest.approx(1.0)
    assert TR.spearman(a, -a) == pytest.approx(-1.0)
    assert TR.spearman(a, 2 * a + 5 * (a != 0)) == pytest.approx(1.0)  # ranks, not values
    # hundreds of blank pixels where both maps are 0 do not count
    b = a.copy()
    b[10, 3:13] = b[10, 3:13][::-1]
    assert TR.spearman(a, b) == pytest.approx(-1.0)
    assert TR.spearman(np.zeros((28, 28)), np.zeros((28, 28))) is None


def test_randomised_copies_change_only_what_they_say():
    m = dl.build_model("lab", np.random.default_rng(0))
    last = T.final_dense(m)
    r = TR.randomised(m, "last layer", np.random.default_rng(1))
    for k, p in m.params().items():
        same = np.array_equal(p, r.params()[k])
        # a bias of zeros (untrained) stays zero: its spread is 0
        assert same == (not k.startswith(f"{last}.") or np.std(p) == 0), k
    w = r.params()[f"{last}.W"]
    assert np.std(w) == pytest.approx(np.std(m.params()[f"{last}.W"]), rel=0.2)
    everything = TR.randomised(m, "all layers", np.random.default_rng(1))
    assert all(not np.array_equal(p, everything.params()[k]) for k, p in m.params().items()
               if np.std(p) > 0)
    again = TR.randomised(m, "last layer", np.random.default_rng(1))
    assert all(np.array_equal(p, again.params()[k]) for k, p in r.params().items())
    with pytest.raises(ValueError, match="which"):
        TR.randomised(m, "first layer", np.random.default_rng(0))


@pytest.fixture(scope="module")
def linear():
    """A logistic model whose class-3 weights are +1 on the left half, -1 on the right."""
    m = dl.build_model("logistic", np.random.default_rng(0)).astype(np.float64)
    W = np.zeros((784, 10))
    W[:, 3] = np.where(np.arange(784) % 28 < 14, 1.0, -1.0) * 0.05
    m.set_params({"1.W": W, "1.b": np.zeros(10)})
    x = np.zeros((28, 28))
    x[6:22, 4:24] = np.linspace(0.2, 1.0, 20)[None]  # ink on both halves
    return m, x


def test_deletion_curve_of_a_linear_model(linear):
    m, x = linear
    gxi = A.attribute(m, x, 3, "gradient_x_input").map  # each pixel's exact term w x
    d = TR.deletion_curve(m, x, 3, gxi, np.random.default_rng(0), steps=10, n_random=5)
    assert d["n_ink"] == int((x > 0).sum())
    p = d["map_order"]
    assert len(p) == 11 and p[0] == pytest.approx(
        A.class_probabilities(m, m.forward(x.reshape(1, 1, 28, 28)))[0, 3])
    # removing the pixels that push for 3 first: the probability falls, then (removing the
    # pixels that push against it) rises back to the blank board's 10%
    assert p[5] < p[0] and p[-1] == pytest.approx(0.1)
    assert np.all(d["random_low"] <= d["random_order"] + 1e-12)
    gap = d["random_order"] - p
    assert d["area_between"] == pytest.approx(np.sum((gap[1:] + gap[:-1]) / 2) / 10)
    assert d["area_between"] > 0
    # ranking by the opposite map removes the helpful ink last: no better than random
    worse = TR.deletion_curve(m, x, 3, -gxi, np.random.default_rng(0), steps=10, n_random=5)
    assert worse["area_between"] < 0


def test_report_checks_and_json(linear):
    m, x = linear
    r = TR.trust_report(m, x, 3, "integrated_gradients", rng=np.random.default_rng(0),
                        options={"n_steps": 16})
    ig = A.attribute(m, x, 3, "integrated_gradients", n_steps=16)
    assert r.completeness["sum"] == pytest.approx(ig.total)
    assert r.completeness["delta"] == pytest.approx(ig.meta["delta"])
    assert r.completeness["passes"]  # a linear model: integrated gradients are exact
    assert [x["what"] for x in r.randomisation] == list(TR.RANDOMISATIONS)
    d = r.to_dict()
    assert len(d["map"]) == 28 and len(d["randomisation"][0]["map"]) == 28
    assert len(d["sentences"]) == 3 and "Completeness passes" in d["sentences"][0]
    sal = TR.trust_report(m, x, 3, "saliency", rng=np.random.default_rng(0))
    assert sal.completeness is None and "no promise" in sal.sentences[0]
    with pytest.raises(ValueError, match="method"):
        TR.trust_report(m, x, 3, "lime", rng=np.random.default_rng(0))


def test_the_api_number_is_the_engines(digits):
    from fastapi.testclient import TestClient

    from digitlens.view.server.app import create_app

    rec = Recognizer({"lab": dl.build_model("lab", np.random.default_rng(2))})
    client = TestClient(create_app(rec, default_model="lab", training=False))
    img = np.round(digits.x_test[5, 0].astype(np.float64), 3)
    r = client.post("/api/trust", json={"model": "lab", "image": img.tolist(),
                                        "method": "gradient_x_input", "seed": 4})
    assert r.status_code == 200, r.text
    got = r.json()
    want = TR.trust_report(rec.attribution_model("lab"), img.astype(np.float32),
                           got["target"], "gradient_x_input", rng=np.random.default_rng(4),
                           name="lab", seed=4).to_dict()
    assert got["target"] == rec.predict(img, "lab", skip_preprocess=True).label
    for k in ("area_between", "n_ink"):
        assert got["deletion"][k] == pytest.approx(want["deletion"][k])
    assert got["deletion"]["map_order"] == pytest.approx(want["deletion"]["map_order"])
    assert [x["spearman"] for x in got["randomisation"]] == \
        pytest.approx([x["spearman"] for x in want["randomisation"]])
    assert got["sentences"] == want["sentences"]
    bad = client.post("/api/trust", json={"model": "lab", "image": [[2.0] * 28] * 28})
    assert bad.status_code == 422
    assert client.post("/api/trust", json={"model": "lab", "image": img.tolist(),
                                           "target": 11}).status_code == 422
    assert client.post("/api/trust", json={"model": "nope", "image": img.tolist()}
                       ).status_code == 404


@pytest.mark.slow
def test_on_the_trained_mlp_randomising_changes_the_map_and_deletion_beats_random(trained,
                                                                                  digits):
    m = trained("mlp")
    rho_last, rho_all, areas = [], [], []
    for i in range(10):
        r = TR.trust_report(m, digits.x_test[i, 0], int(digits.y_test[i]),
                            "integrated_gradients", rng=np.random.default_rng(i))
        rho_last.append(r.randomisation[0]["spearman"])
        rho_all.append(r.randomisation[1]["spearman"])
        areas.append(r.deletion["area_between"])
        assert r.completeness["passes"], r.completeness
    print(f"\nmlp: Spearman after randomising the last layer: mean {np.mean(rho_last):.2f}, "
          f"max {np.max(rho_last):.2f}; all layers: mean {np.mean(rho_all):.2f}; deletion "
          f"area between curves: min {np.min(areas):.3f}, mean {np.mean(areas):.3f}")
    assert np.mean(rho_last) < 0.3 and np.mean(np.abs(rho_all)) < 0.3
    assert min(areas) > 0.05
