"""The activation lab on the web page: ``/api/lab`` runs a study in the background and serves its
verdicts and figures (a tiny study here: the same code path as the quick one, in a second)."""

from __future__ import annotations

import threading
import warnings

import pytest

from digitlens.view.server.lab_jobs import LabRunner
from digitlens.view.server.training_jobs import TrainingJobs
from digitlens.recognizer import Recognizer
from digitlens.view.server.app import create_app

#: each test runs an activation-lab study in the background (seconds each)
pytestmark = pytest.mark.slow

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def tiny_study(tiny_lab_study):
    return tiny_lab_study


@pytest.fixture
def gated(tiny_study):
    def make_gated(gate: threading.Event):
        """A study that waits for ``gate`` before it starts: the test decides when it runs."""
        def make():
            assert gate.wait(60), "the test never opened the gate"
            return tiny_study()
        return make
    return make_gated


@pytest.fixture
def client_for(tmp_path, trained, tiny_study, digits):
    clients = []

    def make(study=tiny_study, training=True):
        runner = LabRunner(tmp_path / "lab", study=study, max_workers=1)
        app = create_app(Recognizer({"mlp": trained("mlp")}), default_model="mlp",
                         training=training, lab=runner,
                         jobs=TrainingJobs(data=digits, save=False))   # nothing written
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        return c, runner

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_lab_runs_in_the_background_then_serves_verdicts_and_figures(client_for, gated,
                                                                       tiny_study, tmp_path):
    gate = threading.Event()
    c, runner = client_for(gated(gate))
    first = c.get("/api/lab").json()
    assert first["enabled"] and first["report"] is None and first["run"] is None
    assert first["command"] == "digitlens lab all --quick"

    r = c.post("/api/lab/run")
    assert r.status_code == 202 and r.json()["run"]["state"] == "running"
    busy = c.post("/api/lab/run")                       # one study at a time
    assert busy.status_code == 409 and busy.json()["error"] == "lab_busy"
    gate.set()
    run = runner.wait(120)
    assert run.state == "completed", run.message
    assert run.done == run.total == len(tiny_study())

    state = c.get("/api/lab").json()
    assert state["run"]["state"] == "completed" and state["error"] is None
    rep = state["report"]
    assert rep["study"] == "all" and rep["seeds"] == 2
    ids = {v["id"] for v in rep["verdicts"]}
    assert {"speed", "width", "range", "output", "depth"} <= ids
    for v in rep["verdicts"]:
        assert v["status"] in ("supported", "supported only when", "not supported here",
                               "inconclusive")
        assert v["rule"] and v["headline"]
        assert set(v["figures"]) <= set(rep["figures"])   # every figure a verdict names exists
    png = c.get(f"/api/lab/figures/{rep['figures'][0]}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    # the report is the one `digitlens lab` writes, in the runner's folder
    assert (tmp_path / "lab" / "report.md").is_file()
    # a second run takes every run from the cache
    c.post("/api/lab/run")
    again = runner.wait(120)
    assert again.state == "completed" and again.cached == again.total


def test_lab_figures_are_served_by_name_only(client_for, tmp_path):
    c, runner = client_for()
    assert c.get("/api/lab/figures/speed").status_code == 404          # no report yet
    c.post("/api/lab/run")
    assert runner.wait(120).state == "completed"
    (tmp_path / "secret.png").write_bytes(b"\x89PNG not for clients")
    for bad in ("secret", "..%2Fsecret", "%2E%2E", "SPEED", "speed.png", "a" * 65):
        r = c.get(f"/api/lab/figures/{bad}")
        assert r.status_code == 404, bad
        if r.headers["content-type"].startswith("application/json"):
            assert r.json()["error"] in ("unknown_figure", "not_found"), bad


def test_cancel_stops_the_study_and_keeps_finished_runs(client_for, gated):
    gate = threading.Event()
    c, runner = client_for(gated(gate))
    c.post("/api/lab/run")
    r = c.post("/api/lab/cancel")
    assert r.status_code == 200
    gate.set()
    run = runner.wait(120)
    assert run.state == "cancelled" and 1 <= run.done < run.total
    assert "kept" in run.message
    assert c.get("/api/lab").json()["report"] is None               # nothing half-reported
    c.post("/api/lab/run")                                          # resumes from the cache
    again = runner.wait(120)
    assert again.state == "completed" and again.cached >= run.done


def test_lab_is_off_with_training_and_a_damaged_result_is_reported(client_for, tmp_path):
    c, runner = client_for(training=False)
    assert c.get("/api/lab").json()["enabled"] is False
    for path in ("/api/lab/run", "/api/lab/cancel"):
        r = c.post(path)
        assert r.status_code == 403 and r.json()["error"] == "training_disabled"
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "result.json").write_text("{not json")
    state = c.get("/api/lab").json()
    assert state["report"] is None and "could not be read" in state["error"]


def test_the_page_reuses_the_runs_digitlens_lab_computed(tmp_path, monkeypatch, trained):
    # the command line and the page share <DIGITLENS_HOME>/lab/runs: what one ran, the other
    # takes from the cache
    import dataclasses

    from typer.testing import CliRunner

    from digitlens import lab as ex
    from digitlens.cli import app as cli_app

    tiny = ex.get_preset("quick", seeds=2, epochs=1, n_train=200, n_test=100, widths=(4, 16),
                         depths=(1, 2), bench_rounds=1)
    monkeypatch.setitem(ex.PRESETS, "quick", dataclasses.replace(tiny, name="quick"))
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(cli_app, ["lab", "output", "--quick", "--out", str(tmp_path / "cli"),
                                     "--workers", "1"])
    assert r.exit_code == 0, r.output
    app = create_app(Recognizer({"mlp": trained("mlp")}), default_model="mlp")
    app.state.lab.max_workers = 1
    with TestClient(app) as c:
        assert c.post("/api/lab/run").status_code == 202
        run = app.state.lab.wait(120)
        assert run.state == "completed", run.message
        assert run.cached == len(ex.output_study("quick")) and run.total == len(ex.lab_study())
        report = c.get("/api/lab").json()["report"]
        assert report["study"] == "all" and report["n_train"] == 200
    assert (tmp_path / "home" / "lab" / "all-quick" / "report.md").is_file()


def test_one_heavy_job_at_a_time_training_or_the_lab(client_for, gated, digits):
    gate = threading.Event()
    c, runner = client_for(gated(gate))
    assert c.post("/api/lab/run").status_code == 202
    r = c.post("/api/train", json={"model": "logistic", "epochs": 1})
    assert r.status_code == 409 and r.json()["error"] == "lab_busy"
    gate.set()
    assert runner.wait(120).state == "completed"
    job = c.post("/api/train", json={"model": "logistic", "epochs": 30})
    assert job.status_code == 202
    r = c.post("/api/lab/run")
    assert r.status_code == 409 and r.json()["error"] == "training_busy"
    c.post(f"/api/train/{job.json()['id']}/cancel")
