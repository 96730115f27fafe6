"""The functions panel and the playground over HTTP: every number the API sends is the library's,
one heavy job at a time, and cancelling leaves the lab's cache usable."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from digitlens._util.jsonsafe import plain

from digitlens.lab import functions
from digitlens.lab.playground import Budget, PlayConfig, Playground, Session
from digitlens.recognizer import Recognizer
from digitlens.view.server.app import create_app
from digitlens.view.server.lab_jobs import LabRunner
from digitlens.view.server.training_jobs import TrainingJobs

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SMALL = {"configs": [{"activations": ["relu"], "width": 8},
                     {"activations": ["sigmoid"], "width": 8}],
         "budget": {"n_train": 200, "epochs": 1}}


@pytest.fixture
def client(tmp_path, digits, tiny_lab_study):
    runner = LabRunner(tmp_path / "lab", study=tiny_lab_study, max_workers=1)
    app = create_app(Recognizer(), default_model="mlp", lab=runner,
                     jobs=TrainingJobs(data=digits, save=False))
    with TestClient(app) as c:
        yield c, runner


def _wait(c, runner, timeout=60):
    runner.playground.wait(timeout)
    return c.get("/api/playground").json()


def test_functions_are_the_engines(client):
    c, _ = client
    api = c.get("/api/functions").json()
    engine = functions.curves()
    assert api == plain(engine)  # JSON-safe numbers: the engine's, to 6 significant digits
    for name, f in engine["functions"].items():
        np.testing.assert_allclose(api["functions"][name]["slope"], f["slope"], rtol=1e-5,
                                   atol=1e-12)
    rug = c.post("/api/functions/rug", json={"activation": "sigmoid", "z": [-8, 0, 3]}).json()
    assert rug == plain(functions.rug("sigmoid", [-8, 0, 3]))
    bad = c.post("/api/functions/rug", json={"activation": "softplus", "z": [1]})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"


def test_playground_numbers_are_the_sessions(client):
    c, runner = client
    first = c.get("/api/playground").json()
    assert first["session"] is None and len(first["presets"]) == 5
    assert {p["rule"] for p in first["presets"]} == {"speed", "width", "range", "output", "depth"}
    r = c.post("/api/playground/run", json={**SMALL, "speed": "full"})
    assert r.status_code == 202
    st = _wait(c, runner)
    s = st["session"]
    assert s["state"] == "completed" and not s["running"]
    pg = Playground((PlayConfig.make("relu", width=8), PlayConfig.make("sigmoid", width=8)),
                    Budget(n_train=200, epochs=1))
    direct = Session(pg).run().snapshot()
    assert [lane["rows"] for lane in s["lanes"]] == [lane["rows"] for lane in direct["lanes"]]
    assert s["summary"] == direct["summary"] and s["summary"]["sentence"]
    assert len(list(runner.cache_dir.glob("play-*.json"))) == 2   # the lab's run cache
    again = c.post("/api/playground/run", json={**SMALL, "speed": "full"})
    assert again.status_code == 202
    assert all(lane["cached"] for lane in _wait(c, runner)["session"]["lanes"])


def test_one_heavy_job_at_a_time_and_cancel_keeps_the_cache(client):
    c, runner = client
    assert c.post("/api/playground/run", json={**SMALL, "pace": 2.0}).status_code == 202
    for _ in range(100):
        if runner.playground.running:
            break
        time.sleep(0.02)
    busy = c.post("/api/playground/run", json=SMALL)
    assert busy.status_code == 409 and busy.json()["error"] == "playground_busy"
    assert c.post("/api/lab/run").status_code == 409
    t = c.post("/api/train", json={"model": "logistic", "epochs": 1})
    assert t.status_code == 409 and t.json()["error"] == "lab_busy"
    c.post("/api/playground/cancel")
    st = _wait(c, runner)
    assert st["session"]["state"] == "cancelled" and st["session"]["summary"] is None
    assert list(runner.cache_dir.glob("play-*.json")) == []
    done = c.post("/api/playground/run", json={**SMALL, "speed": "full"})
    assert done.status_code == 202
    assert _wait(c, runner)["session"]["state"] == "completed"
    assert len(list(runner.cache_dir.glob("play-*.json"))) == 2


def test_bad_requests_and_a_server_without_training(client, tmp_path, digits):
    c, _ = client
    r = c.post("/api/playground/run", json={"configs": [{"activations": ["nope"]}]})
    assert r.status_code == 422
    assert c.post("/api/playground/run", json={"preset": "nope"}).status_code == 422
    assert c.post("/api/playground/run", json={}).status_code == 422
    app = create_app(Recognizer(), default_model="mlp", training=False,
                     lab=LabRunner(tmp_path / "off"), jobs=TrainingJobs(data=digits, save=False))
    with TestClient(app) as off:
        assert off.post("/api/playground/run", json=SMALL).status_code == 403
        assert off.get("/api/playground").json()["enabled"] is False
