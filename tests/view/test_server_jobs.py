"""Background training jobs (the page's training view) and the ``digitlens serve`` command."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import warnings

import numpy as np
import pytest
from _server import free_port
from typer.testing import CliRunner

import digitlens as dl
from digitlens.cli import app as cli_app
from digitlens.cli import serve as serve_mod
from digitlens.nn.checkpoint import save_model
from digitlens.view.server.training_jobs import JobConflict, TrainingJobs, UnknownJob

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


# ------------------------------------------------------------------------------ jobs
def test_a_job_trains_reports_every_batch_and_epoch_and_saves(home, digits):
    got = {}
    jobs = TrainingJobs(data=digits, on_trained=lambda n, m, meta: got.update(n=n, m=m, meta=meta))
    job = jobs.start("logistic", epochs=2, seed=3)
    assert jobs.wait(job.id, timeout=120).state == "completed"
    kinds = [e["type"] for e in job.events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    batches = [e for e in job.events if e["type"] == "batch"]
    assert [b["step"] for b in batches] == list(range(1, len(batches) + 1))
    assert len(batches) == 2 * job.events[0]["batches"]
    # the reported test accuracy is the saved model's accuracy on the held-out digits
    saved = dl.load_model(home / "models" / "logistic.npz")
    _, acc = dl.evaluate(saved, digits.x_test, digits.y_test)
    assert job.test_accuracy == pytest.approx(acc) == job.events[-1]["test_accuracy"]
    assert got["n"] == "logistic" and got["meta"]["test_accuracy"] == pytest.approx(acc)
    np.testing.assert_array_equal(got["m"].params()["1.W"], saved.params()["1.W"])
    # the same seed gives the same model (randomness only through the explicit Generator)
    again = {}
    jobs2 = TrainingJobs(data=digits, save=False, on_trained=lambda n, m, meta: again.update(m=m))
    jobs2.wait(jobs2.start("logistic", epochs=2, seed=3).id, timeout=120)
    np.testing.assert_array_equal(again["m"].params()["1.W"], saved.params()["1.W"])


def test_cancel_keeps_the_old_model_and_saves_nothing(home, digits):
    called = []
    jobs = TrainingJobs(data=digits, on_trained=lambda *a: called.append(a))
    job = jobs.start("mlp", epochs=40)
    first = job.events_since(0, timeout=60)  # wait until it is under way
    assert first[0]
    with pytest.raises(JobConflict, match="already running"):
        jobs.start("logistic", epochs=1)
    jobs.cancel(job.id)
    jobs.wait(job.id, timeout=120)
    assert job.state == "cancelled" and job.events[-1]["state"] == "cancelled"
    assert not (home / "models" / "mlp.npz").exists() and not called
    assert jobs.running() is None
    jobs.wait(jobs.start("logistic", epochs=1).id, timeout=120)  # free again


def test_a_failing_run_ends_with_a_message(home, digits):
    bad = dataclasses.replace(digits, x_train=np.full_like(digits.x_train, np.nan))
    jobs = TrainingJobs(data=bad)
    job = jobs.wait(jobs.start("logistic", epochs=1).id, timeout=60)
    assert job.state == "failed" and "NaN" in job.message
    assert job.events[-1] == {"type": "end", "state": "failed", "message": job.message}
    assert not (home / "models" / "logistic.npz").exists()


def test_progress_events_are_json_even_when_the_loss_is_not_a_number(home, digits):
    """Batch and epoch logs go through the one JSON sanitiser: counts stay whole numbers, floats
    are plain and rounded, and a NaN loss becomes null (the browser's JSON.parse refuses NaN)."""
    import json

    from digitlens.view.server.training_jobs import TrainingJob, _Reporter

    job = TrainingJob(id="0123456789ab", model="logistic", config={"epochs": 1}, seed=0)
    rep = _Reporter(job, digits.x_test[:10], digits.y_test[:10])
    rep.on_batch_end({"epoch": np.int64(1), "batch": 3, "batches": 32,
                      "loss": np.float32("nan"), "accuracy": np.float32(0.53125),
                      "lr": 0.1234567891})
    rep.on_epoch_end({"epoch": 1, "epochs": 1, "loss": float("inf"), "accuracy": 0.5,
                      "seconds": np.float64(1.25)})
    batch, epoch = job.events
    assert batch == {"type": "batch", "step": 1, "epoch": 1, "batch": 3, "batches": 32,
                     "loss": None, "accuracy": 0.53125, "lr": 0.123457}
    assert type(batch["epoch"]) is int and type(batch["accuracy"]) is float
    assert epoch["loss"] is None and epoch["seconds"] == 1.25
    for e in job.events:
        json.loads(json.dumps(e, allow_nan=False))  # strict JSON: no NaN or Infinity
    assert job.summary()["epochs_completed"] == 1


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="resnet"), "unknown model"),
    (dict(name="logistic", epochs=0), "epochs"),
    (dict(name="logistic", epochs=61), "epochs"),
    (dict(name="logistic", epochs=2.5), "epochs"),
    (dict(name="logistic", epochs=True), "epochs"),
    (dict(name="logistic", seed=-1), "seed"),
])
def test_bad_requests_are_refused(home, digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingJobs(data=digits, save=False).start(**kwargs)


def test_lookup_wait_for_events_and_forgetting(home, digits):
    jobs = TrainingJobs(data=digits, save=False, keep=2)
    with pytest.raises(UnknownJob, match="no training job"):
        jobs.get("0123456789ab")
    ids = []
    for _ in range(3):
        j = jobs.start("logistic", epochs=1)
        jobs.wait(j.id, timeout=60)
        ids.append(j.id)
        events, done = j.events_since(len(j.events), timeout=0.05)  # nothing new, returns
        assert events == [] and done
    assert [j.id for j in jobs.list()] == ids[:0:-1]  # the oldest was forgotten
    with pytest.raises(UnknownJob):
        jobs.get(ids[0])


# ------------------------------------------------------------------------------- serve
@pytest.mark.parametrize("host,expected", [("127.0.0.1", True), ("127.8.9.1", True),
                                           ("localhost", True), ("::1", True), ("[::1]", True),
                                           ("0.0.0.0", False), ("192.168.1.20", False),
                                           ("::", False), ("example.org", False)])
def test_is_loopback(host, expected):
    assert serve_mod.is_loopback(host) is expected


def test_serve_trains_the_ladders_models_named_once_in_the_ladder():
    from digitlens.training.ladder import RUNGS

    names = serve_mod.default_models()
    rungs = [r.name for r in RUNGS]
    assert len(names) == len(set(names))  # each model once
    assert [n for n in names if n in rungs] == rungs  # every rung, in ladder order
    assert names[0] == "logistic"  # the quickest first: the page has a model in about a second
    assert "cnn_tiny" in names  # the easiest convolution to read (issue 12)
    assert set(names) <= set(dl.model_names())


@pytest.fixture
def fake_uvicorn(monkeypatch):
    """Capture ``uvicorn.run`` instead of serving; skip the background warm-up."""
    calls = []
    import uvicorn

    import digitlens.view.server.app as server

    import threadpoolctl

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(server, "warm_up", lambda app, names: None)
    # serve limits BLAS threads for its whole process; keep this test process as it was
    def limits(**kw):
        calls.append(("blas", kw))
        return contextlib.nullcontext()  # fit() uses it as a context manager

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", limits)
    return calls


def test_serve_trains_what_is_missing_in_the_background_and_prints_the_url(home, fake_uvicorn):
    from digitlens._util import paths

    for name in ("lab", "mlp", "cnn_tiny", "cnn"):  # cached already (untrained weights do)
        save_model(dl.build_model(name, np.random.default_rng(0)), paths.model_path(name),
                   {"test_accuracy": 0.9})
    port = free_port()
    r = CliRunner().invoke(cli_app, ["serve", "--model", "lab", "--port", str(port),
                                     "--train-epochs", "1"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "training logistic on" in said and "in the background" in said
    assert f"http://127.0.0.1:{port}/" in r.output
    assert "warning" not in r.output
    served = [c for c in fake_uvicorn if c[0] != "blas"]
    assert len(served) == 1  # the server started without waiting for the training
    (app, kw) = served[0]
    assert ("blas", {"limits": 1, "user_api": "blas"}) == fake_uvicorn[0]
    assert kw["host"] == "127.0.0.1" and kw["port"] == port
    jobs = app.state.jobs
    assert [j.model for j in jobs.list()] in ([], ["logistic"])  # logistic first (or queued)
    jobs._queue_thread.join(300)
    assert paths.model_path("logistic").exists()
    assert [j.model for j in jobs.list()] == ["logistic"]  # only the missing one
    assert all(j.config["epochs"] == 1 and j.first_start for j in jobs.list())
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/models").json()["default"] == "lab"


def test_serve_warns_off_loopback_and_can_skip_training(home, fake_uvicorn):
    r = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", str(free_port()),
                                     "--no-train", "--no-allow-training", "--model", "mlp"])
    assert r.exit_code == 0, r.output
    assert "warning" in r.output and "anyone who can reach this computer" in r.output
    assert not (home / "models").exists()  # --no-train: nothing trained
    app = fake_uvicorn[-1][0]
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.post("/api/train", json={"model": "logistic"}).status_code == 403


def test_serve_errors_are_one_line(home, fake_uvicorn):
    r = CliRunner().invoke(cli_app, ["serve", "--model", "resnet", "--no-train"])
    assert r.exit_code == 1 and "unknown model 'resnet'" in r.output and "Traceback" not in r.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = CliRunner().invoke(cli_app, ["serve", "--port", str(busy), "--no-train"])
    assert r.exit_code == 1 and f"--port {busy + 1}" in r.output
    assert not [c for c in fake_uvicorn if c[0] != "blas"]


def test_serve_with_several_workers_hands_its_settings_to_the_processes(home, fake_uvicorn,
                                                                       monkeypatch):
    import json
    import os

    for var in ("DIGITLENS_SERVE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)  # serve sets them for its worker processes
    r = CliRunner().invoke(cli_app, ["serve", "--workers", "2", "--no-train", "--model", "lab",
                                     "--port", str(free_port())])
    assert r.exit_code == 0, r.output
    assert "training view is off" in r.output
    target, kw = fake_uvicorn[-1]
    assert target == "digitlens.view.server.app:app_from_env"
    assert kw["workers"] == 2 and kw["factory"] is True
    assert json.loads(os.environ["DIGITLENS_SERVE"])["default_model"] == "lab"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    # what each worker process builds from those settings
    from digitlens.view.server.app import app_from_env

    with TestClient(app_from_env(), base_url="http://127.0.0.1") as c:
        info = c.get("/api/models").json()
        assert info["training"] is False
        assert c.post("/api/train", json={"model": "lab"}).status_code == 403
