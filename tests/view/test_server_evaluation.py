"""The Evaluation tab's API: every number it sends equals the library's own."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import digitlens as dl  # noqa: E402
from digitlens.evaluation import build_map, evaluate_model, robustness  # noqa: E402
from digitlens.recognizer import Recognizer  # noqa: E402
from digitlens.view.server.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def models(trained):
    return {"logistic": trained("logistic"),
            "lab": dl.build_model("lab", np.random.default_rng(1))}  # untrained: the math holds


@pytest.fixture(scope="module")
def client(models):
    app = create_app(Recognizer(dict(models)), default_model="logistic", training=False)
    with TestClient(app) as c:
        yield c


def test_evaluation_numbers_equal_the_librarys(client, models, digits):
    r = client.get("/api/evaluation/logistic")
    assert r.status_code == 200, r.text
    got = r.json()
    ev = evaluate_model(models["logistic"], digits.x_test, digits.y_test, name="logistic")
    want = ev.to_dict()
    assert got.pop("seconds") >= 0 and want.pop("seconds") >= 0  # timing differs run to run
    assert got.pop("description") == "the 1,000 bundled test digits (MNIST)"
    assert got == want  # the same JSON, number for number
    assert got["confusion"]["matrix"] == ev.confusion.matrix.tolist()
    assert got["calibration"]["ece"] == pytest.approx(ev.calibration.ece, rel=1e-5)
    assert "sure" in got["calibration"]["sentence"]
    # cached: the second answer is the same object's
    store = client.app.state.evaluations
    assert store.model_evaluation("logistic", models["logistic"]) is \
        store.model_evaluation("logistic", models["logistic"])


def test_a_cell_holds_its_digits(client, models, digits):
    ev = evaluate_model(models["logistic"], digits.x_test, digits.y_test)
    t, p, n = ev.confusion.most_confused(1)[0]
    r = client.get(f"/api/evaluation/logistic/cell?true={t}&predicted={p}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == n == len(body["digits"])
    for dgt in body["digits"]:
        i = dgt["index"]
        assert digits.y_test[i] == t and ev.predicted[i] == p
        assert dgt["pixels"] == np.rint(digits.x_test[i, 0] * 255).astype(int).tolist()
        assert dgt["confidence"] == pytest.approx(ev.confidence[i], abs=1e-6)
    assert client.get("/api/evaluation/logistic/cell?true=3&predicted=10").status_code == 422


def test_mistakes_are_the_librarys_in_order(client, models, digits):
    ev = evaluate_model(models["logistic"], digits.x_test, digits.y_test)
    body = client.get("/api/evaluation/logistic/mistakes?limit=10").json()
    assert body["count"] == len(ev.mistakes)
    assert [m["index"] for m in body["mistakes"]] == [m.index for m in ev.mistakes[:10]]


def test_map_and_placement_equal_the_librarys(client, models, digits):
    m = models["lab"]
    mp = build_map(m, digits.x_train, digits.y_train, digits.x_test, digits.y_test)
    got = client.get("/api/evaluation/lab/map").json()
    assert got == mp.to_dict()
    img = digits.x_test[7, 0]
    r = client.post("/api/evaluation/lab/map/place", json={"image": img.tolist(), "k": 4})
    assert r.status_code == 200, r.text
    p = mp.place(m, img, k=4)
    body = r.json()
    assert body["xy"] == pytest.approx(p.xy.tolist(), rel=1e-5)
    assert [n["index"] for n in body["neighbours"]] == p.neighbours.tolist()
    assert [n["label"] for n in body["neighbours"]] == p.labels.tolist()
    bad = client.post("/api/evaluation/lab/map/place", json={"image": [[0.0] * 5] * 5})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"


def test_unknown_and_untrained_models(client):
    assert client.get("/api/evaluation/nosuch").status_code == 404
    r = client.get("/api/evaluation/cnn")
    assert r.status_code == 409 and r.json()["error"] == "model_not_trained"


@pytest.mark.slow
def test_robustness_runs_in_the_background_and_equals_the_librarys(client, models, digits):
    from digitlens.view.server.evaluation import ROBUSTNESS_DIGITS

    deadline = time.time() + 300
    body = client.get("/api/evaluation/robustness").json()
    while body["status"] == "running" and time.time() < deadline:
        time.sleep(0.5)
        body = client.get("/api/evaluation/robustness").json()
    assert body["status"] == "ready", body
    x, y = digits.x_test[:ROBUSTNESS_DIGITS], digits.y_test[:ROBUSTNESS_DIGITS]
    assert body["result"] == robustness(models, x, y).to_dict()


@pytest.mark.slow
def test_other_writers_digits_equal_the_librarys(client, models):
    pytest.importorskip("sklearn")
    from digitlens.evaluation import load_eval_set

    r = client.get("/api/evaluation/logistic?data=optdigits")
    assert r.status_code == 200, r.text
    got = r.json()
    s = client.app.state.evaluations.eval_set("optdigits")  # loaded once (~5 s): reuse it
    np.testing.assert_array_equal(s.x[:20], load_eval_set("optdigits", limit=20).x)
    want = evaluate_model(models["logistic"], s.x, s.y, name="logistic", data="optdigits")
    assert got["confusion"] == want.to_dict()["confusion"] and got["n"] == 1797
    assert "other writers" in got["description"]
    m = client.get("/api/evaluation/logistic/mistakes?data=optdigits&limit=3").json()
    assert [d["index"] for d in m["mistakes"]] == [x.index for x in want.mistakes[:3]]
    assert client.get("/api/evaluation/logistic?data=emnist").status_code == 422
