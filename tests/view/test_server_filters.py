"""The filter and training-step API: every number it sends is the library's (and the library's
the engine's: tests/explain/test_filters.py, tests/training/test_step.py); the probabilities
before the step are the explanation's.  ``client`` (conftest.py) serves this module's ``rec``."""

from __future__ import annotations

import base64
import types

import numpy as np
import pytest
from _server import nine_png

import digitlens as dl
from digitlens.explain import filters as F
from digitlens.nn import build_model
from digitlens.recognizer import Recognizer
from digitlens.training.step import training_step

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore:Using `httpx`:Warning")


PNG = nine_png()
URL = "data:image/png;base64," + base64.b64encode(PNG).decode("ascii")


@pytest.fixture(scope="module")
def rec():
    rng = np.random.default_rng(0)
    d = dl.load_digits()
    few = types.SimpleNamespace(x_train=d.x_train[:300], y_train=d.y_train[:300])
    return Recognizer({n: build_model(n, rng) for n in ("cnn", "mlp")}, digits=few)


@pytest.mark.slow  # builds the atlas and two sets of curves: ~3 s on a busy machine
def test_a_layer_2_filter_in_json_is_the_librarys(client, rec):
    r = client.get("/api/models/cnn/filters/3/7")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["layer_name"] == "convolution 2 (32 filters)"
    assert got["unit_name"] == "filter 7 of convolution 2"
    assert got["receptive_field"]["size"] == [8, 8]
    assert got == rec.filter_detail("cnn", 3, 7)
    m = rec.model("cnn")
    atlas = F.build_filter_atlas(m, rec.digits().x_train, rec.digits().y_train)
    want = F.top_patches(m, atlas, 3, 7)
    assert [p["index"] for p in got["patches"]] == [p.index for p in want]
    for p, w in zip(got["patches"], want):
        assert p["window"] == list(w.window) and np.shape(p["pixels"]) == (8, 8)
        np.testing.assert_allclose(p["pixels"], w.pixels, atol=5e-4)
        assert p["activation"] == pytest.approx(w.activation, rel=1e-5)
    curves = F.response_curves(m, 3)
    np.testing.assert_allclose(got["curves"]["line"]["z"], curves.line[7], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(got["curves"]["arc"]["z"], curves.arc[7], rtol=1e-5, atol=1e-9)
    assert got["likeness"] is None and got["like_threshold"] == F.LIKE_THRESHOLD
    assert {h["name"] for h in got["hand"]} >= {"horizontal edge", "arc (top of a loop)"}
    assert any("window of the digit" in s for s in got["sentences"])


def test_first_layer_filters_state_their_likeness_and_the_threshold(client):
    got = client.get("/api/models/cnn/filters/0/2").json()
    like = got["likeness"]
    assert like["threshold"] == 0.6 and like["best"] in like["cosines"]
    assert (like["like"] is not None) == (abs(like["cosine"]) >= 0.6)
    text = " ".join(got["sentences"])
    assert ("like" in text) and ("0.6" in text)
    dense = client.get("/api/models/mlp/filters/1/5").json()  # a hidden unit: whole digits
    assert dense["kind"] == "dense" and np.shape(dense["patches"][0]["pixels"]) == (28, 28)


def test_filter_errors(client):
    assert client.get("/api/models/cnn/filters/3/99").status_code == 404
    assert client.get("/api/models/cnn/filters/1/0").status_code == 422  # an activation
    assert client.get("/api/models/nope/filters/0/0").status_code == 404


def test_a_training_step_in_json_is_the_librarys_and_starts_from_the_explanation(client, rec):
    r = client.post("/api/models/cnn/step", json={"image": URL, "label": 9, "layer": 0,
                                                  "unit": 3, "lr": 0.05})
    assert r.status_code == 200, r.text
    got = r.json()
    image, _ = rec.prepare(PNG)
    want = training_step(rec.model("cnn"), image, 9, layer=0, unit=3, lr=0.05, name="cnn")
    assert got == want.to_dict()
    np.testing.assert_allclose(got["update"], -0.05 * np.asarray(got["grad"]), rtol=1e-5,
                               atol=1e-12)
    assert np.shape(got["grad"]) == (3, 3)
    expl = client.post("/api/explain", json={"image": URL, "model": "cnn",
                                             "options": {"detail": "live"}}).json()
    np.testing.assert_allclose(got["p_before"], expl["probabilities"], rtol=1e-5, atol=1e-7)
    # default label: the answer; default layer: the one reading the pixels
    d = client.post("/api/models/mlp/step", json={"image": URL, "optimizer": "adam"}).json()
    mlp_expl = client.post("/api/explain", json={"image": URL, "model": "mlp",
                                                 "options": {"detail": "live"}}).json()
    assert d["label"] == mlp_expl["prediction"] and d["layer"] == 1
    assert np.shape(d["grad"]) == (28, 28) and d["optimizer"] == "adam"


def test_step_errors(client):
    assert client.post("/api/models/cnn/step", json={"image": URL, "label": 12}).status_code == 422
    assert client.post("/api/models/cnn/step", json={"image": URL, "layer": 1}).status_code == 422
    assert client.post("/api/models/cnn/step", json={"image": URL, "optimizer": "x"}
                       ).status_code == 422


def test_a_filter_on_the_drawing_is_the_engines(client, rec):
    r = client.post("/api/models/cnn/filters/3/7", json={"image": URL})
    assert r.status_code == 200, r.text
    d = r.json()["digit"]
    image, _ = rec.prepare(PNG)
    m = rec.exact_model("cnn")
    a = m.forward_range(image.reshape(1, 1, 28, 28), 0, 5)[0]  # after conv 2's ReLU
    assert d["activation"] == pytest.approx(a[7].max(), rel=1e-6)
    assert a[7][tuple(d["position"])] == a[7].max()
    np.testing.assert_allclose(d["pixels"], F.crop(image.astype(float), d["window"]), atol=5e-4)
    strengths = a.reshape(32, -1).max(axis=1)
    assert [s["unit"] for s in d["strongest"]] == list(np.argsort(-strengths, kind="stable")[:6])
