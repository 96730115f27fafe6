"""The inspect API (layer names, worked sums, feature maps): every number it sends is the
library's, and the library's are the engine's (tests/explain/test_worked.py).  ``client``
(conftest.py) serves this module's ``rec``."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from _server import nine_png
from PIL import Image

from digitlens._util.jsonsafe import sig
from digitlens.explain.worked import worked_sum
from digitlens.nn import build_model
from digitlens.nn import topology as T
from digitlens.recognizer import Recognizer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore:Using `httpx`:Warning")


PNG = nine_png()  # a '9'-ish drawing: a loop on top of a stem
URL = "data:image/png;base64," + base64.b64encode(PNG).decode("ascii")


@pytest.fixture(scope="module")
def rec():
    rng = np.random.default_rng(0)
    return Recognizer({n: build_model(n, rng) for n in ("cnn", "mlp", "cnn_tiny")})


def test_a_worked_filter_in_json_is_the_librarys_and_the_engines(client, rec):
    r = client.post("/api/models/cnn/worked/3/7", json={"image": URL, "at": [6, 5]})
    assert r.status_code == 200, r.text
    got = r.json()
    image, _ = rec.prepare(PNG)
    lib = worked_sum(rec.exact_model("cnn"), image, 3, 7, at=(6, 5), name="cnn").to_dict()
    assert got == lib  # API number == library number, every one of them
    # and the library's z is the engine's: the forward pass of the explanation's model
    tr = rec.exact_model("cnn").forward(image.reshape(1, 1, 28, 28).astype(np.float64),
                                        trace=True)
    assert got["z"] == pytest.approx(float(tr.layers[3].output[0, 7, 6, 5]), rel=1e-9)
    assert got["total"] == pytest.approx(got["z"], abs=1e-9)
    assert got["unit_name"] == "filter 7 of convolution 2"
    assert len(got["conv"]["kernel"]) == 16 and len(got["conv"]["input_maps"]) == 16


def test_worked_sums_match_the_explanation_of_the_same_drawing(client):
    """The worked sum of an output unit and of a hidden unit equal the numbers /api/explain
    shows for the same drawing (same pre-processing path, same model copy)."""
    e = client.post("/api/explain", json={"image": URL, "model": "mlp",
                                          "options": {"detail": "live"}}).json()
    names = {n["key"]: n for n in e["layer_names"] if n["key"]}
    assert names["hidden1"]["name"] == "hidden layer 1 (256 units)"
    out = names["output"]["index"]
    step = next(L for L in e["trace"]["layers"] if L["index"] == out)
    for digit in (0, 9):
        w = client.post(f"/api/models/mlp/worked/{out}/{digit}", json={"image": URL}).json()
        # the trace sends 5 significant digits: the worked z rounds to exactly that number
        assert float(sig(w["z"], 5)) == step["values"][digit]
        assert w["output"]["probabilities"][digit] == pytest.approx(
            e["probabilities"][digit], abs=1e-6)
        assert w["output"]["engine_probabilities"] == pytest.approx(w["output"]["probabilities"],
                                                                    abs=1e-12)
    relu = next(L for L in e["trace"]["layers"] if L["index"] == names["hidden1"]["index"] + 1)
    w = client.post(f"/api/models/mlp/worked/{names['hidden1']['index']}/5",
                    json={"image": URL}).json()
    assert float(sig(w["a"], 5)) == relu["values"][5]
    assert w["reads"] == "the pixels of your digit" and w["conv"] is None


def test_feature_maps_and_layer_names(client, rec):
    r = client.post("/api/models/cnn/maps", json={"image": URL})
    assert r.status_code == 200, r.text
    layers = r.json()["layers"]
    assert [(L["key"], len(L["maps"]), len(L["maps"][0])) for L in layers] == \
        [("conv1", 16, 28), ("conv2", 32, 14), ("conv3", 64, 7)]
    image, _ = rec.prepare(PNG)
    m = rec.exact_model("cnn")
    tr = m.forward(image.reshape(1, 1, 28, 28).astype(np.float64), trace=True)
    np.testing.assert_allclose(layers[1]["maps"], tr.layers[T.unit_output(m, 3)].output[0],
                               rtol=1e-3, atol=1e-12)  # 4 significant digits
    assert client.post("/api/models/mlp/maps", json={"image": URL}).json()["layers"] == []
    names = client.get("/api/models/cnn_tiny/layers").json()["layers"]
    assert [n["name"] for n in names if n["key"]] == [
        "convolution 1 (6 filters)", "max-pooling after convolution 1 (6×14×14)",
        "output layer (10 digits)"]


@pytest.mark.parametrize("path, body, status, code", [
    ("/api/models/cnn/worked/3/32", {}, 404, "unknown_unit"),
    ("/api/models/cnn/worked/99/0", {}, 404, "unknown_layer"),
    ("/api/models/cnn/worked/4/0", {}, 422, "not_a_unit_layer"),
    ("/api/models/cnn/worked/3/0", {"at": [14, 0]}, 422, "invalid_request"),
    ("/api/models/cnn/worked/3/0", {"steps": {"nope": False}}, 422, "invalid_request"),
    ("/api/models/nope/worked/0/0", {}, 404, "unknown_model"),
    ("/api/models/lab/worked/1/0", {}, 409, "model_not_trained"),
])
def test_errors(client, path, body, status, code):
    r = client.post(path, json={"image": URL, **body})
    assert r.status_code == status, r.text
    assert r.json()["error"] == code


def test_a_blank_drawing_is_no_ink(client):
    buf = io.BytesIO()
    Image.new("L", (280, 280), 0).save(buf, format="PNG")
    blank = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    r = client.post("/api/models/cnn/worked/0/0", json={"image": blank})
    assert r.status_code == 422 and r.json()["error"] == "no_ink"
