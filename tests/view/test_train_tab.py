"""The Train tab's own network (POST /api/train/custom) and serve's background first start as the
API shows it (GET /api/models ``status``/``pending``): API numbers == library numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import digitlens as dl
from digitlens._util.png import gray_png
from digitlens.nn.checkpoint import save_model
from digitlens.training import custom as C
from digitlens.training.words import gap_sentence
from digitlens.view.server.app import create_app
from digitlens.view.server.training_jobs import TrainingJobs

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def app(home, digits):
    return create_app(default_model="logistic", seed=0, jobs=TrainingJobs(data=digits))


def _train(client, app, body):
    r = client.post("/api/train/custom", json=body)
    assert r.status_code == 202, r.text
    job = app.state.jobs.wait(r.json()["id"], timeout=120)
    assert job.state == "completed", job.message
    return client.get(f"/api/train/{job.id}").json()


def test_a_custom_network_trains_saves_apart_and_its_numbers_are_the_engines(home, app, digits):
    zoo_file = home / "models" / "mlp.npz"
    with TestClient(app) as c:
        got = _train(c, app, {"activation": "sigmoid", "width": 32, "depth": 2, "lr": 0.003,
                              "epochs": 2, "seed": 1})
        assert got["model"] == "sigmoid_2x32" and got["kind"] == "custom"
        assert got["config"]["custom"] == {"activation": "sigmoid", "width": 32, "depth": 2,
                                           "lr": 0.003, "epochs": 2}
        path = home / "models" / "custom" / "sigmoid_2x32.npz"
        assert path.is_file() and not zoo_file.exists()
        saved = dl.load_model(path)
        # the job's test accuracy is the saved model's, measured by the engine
        _, acc = dl.evaluate(saved, digits.x_test, digits.y_test)
        assert got["test_accuracy"] == pytest.approx(acc)
        # the same spec and seed in the library give the same weights
        row = C.train_custom(C.CustomSpec("sigmoid", 32, 2, 0.003, 2), digits.x_train,
                             digits.y_train, digits.x_test, digits.y_test, seed=1)
        np.testing.assert_allclose(saved.params()["1.W"], row.model.params()["1.W"], rtol=1e-6)
        # each epoch's gap sentence is the library's on the epochs so far
        epochs = [e for e in got["events"] if e["type"] == "epoch"]
        assert len(epochs) == 2
        for k, e in enumerate(epochs):
            assert e["gap"] == gap_sentence(epochs[:k + 1])
        assert got["gap"] == epochs[-1]["gap"] == got["events"][-1]["gap"]
        assert epochs[-1]["accuracy"] == pytest.approx(row.history.epochs[-1]["accuracy"],
                                                       rel=1e-4)
        # the switcher lists it, with the engine's accuracy, and explains it like the others
        info = {m["name"]: m for m in c.get("/api/models").json()["models"]}
        mine = info["sigmoid_2x32"]
        assert mine["trained"] and mine["custom"] and mine["on_page"] and not mine["in_ladder"]
        assert mine["test_accuracy"] == pytest.approx(acc) and mine["n_params"] == saved.n_params
        assert mine["spec"]["activation"] == "sigmoid" and "784 → 32 → 32 → 10" in mine["sentence"]
        img = (digits.x_test[3, 0] * 255).round().astype(np.uint8)
        r = c.post("/api/explain?model=sigmoid_2x32&detail=live", content=gray_png(img),
                   headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        want = dl.Recognizer({"sigmoid_2x32": saved}).predict(img, model="sigmoid_2x32")
        np.testing.assert_allclose(r.json()["probabilities"], want.probabilities, atol=1e-6)


def test_a_custom_model_is_found_again_after_a_restart(home, app, digits):
    with TestClient(app) as c:
        _train(c, app, {"activation": "relu", "width": 8, "depth": 1, "epochs": 1,
                        "name": "my_first"})
    again = create_app(default_model="logistic", seed=0)  # a new server, same home
    with TestClient(again) as c:
        mine = {m["name"]: m for m in c.get("/api/models").json()["models"]}["my_first"]
        assert mine["trained"] and mine["custom"] and mine["test_accuracy"] > 0.5
        layers = c.get("/api/models/my_first/layers")
        assert layers.status_code == 200


@pytest.mark.parametrize("body,status,words", [
    ({"activation": "swish"}, 422, "activation must be one of"),
    ({"width": 0}, 422, "width must be a whole number in [1, 512], got 0"),
    ({"width": 100000}, 422, "width"),
    ({"depth": 5}, 422, "depth must be a whole number in [1, 4], got 5"),
    ({"lr": 0}, 422, "lr must be in (0, 1]"),
    ({"lr": 5}, 422, "lr must be in (0, 1]"),
    ({"epochs": 61}, 422, "epochs"),
    ({"name": "cnn"}, 422, "belongs to a zoo model"),
    ({"name": "../../etc/x"}, 422, "lower-case letters"),
    ({"width": "wide"}, 422, "width"),
    ({"colour": "red"}, 422, "colour"),
])
def test_bad_values_are_refused_with_a_clear_422(app, home, body, status, words):
    with TestClient(app) as c:
        r = c.post("/api/train/custom", json=body)
    assert r.status_code == status and words in r.json()["message"], r.text
    assert not (home / "models").exists()  # nothing written


def test_the_choices_are_the_librarys_and_heavy_jobs_conflict(app, home, digits):
    with TestClient(app) as c:
        ch = c.get("/api/train").json()["custom"]
        assert ch["activations"] == list(C.CUSTOM_ACTIVATIONS)
        assert (ch["max_width"], ch["max_depth"], ch["max_lr"], ch["max_epochs"]) == \
            (C.MAX_WIDTH, C.MAX_DEPTH, C.MAX_LR, C.MAX_EPOCHS)
        assert ch["default"] == C.CustomSpec().to_dict()
        busy = c.post("/api/train/custom", json={"width": 256, "depth": 4, "epochs": 60})
        assert busy.status_code == 202
        r = c.post("/api/train/custom", json={"width": 8, "depth": 1, "epochs": 1})
        assert r.status_code == 409 and r.json()["error"] == "training_busy"
        assert c.post("/api/playground/run", json={}).status_code == 409
        c.post(f"/api/train/{busy.json()['id']}/cancel")
        app.state.jobs.wait(busy.json()["id"], timeout=60)
        assert not (home / "models" / "custom" / "relu_4x256.npz").exists()


def test_the_first_start_queue_trains_in_order_and_models_report_their_status(home, digits):
    jobs = TrainingJobs(data=digits)
    app = create_app(default_model="mlp", seed=0, jobs=jobs)
    with TestClient(app) as c:
        before = c.get("/api/models").json()
        assert before["pending"] == [] and all(m["status"] is None for m in before["models"])
        # the lab holds the queue back (one heavy job at a time)
        hold = {"on": True}
        jobs.wait_while = lambda: hold["on"]
        assert jobs.enqueue(["logistic", "lab", "logistic"], epochs=1) == ["logistic", "lab"]
        info = c.get("/api/models").json()
        st = {m["name"]: m["status"] for m in info["models"]}
        assert st["logistic"]["state"] == st["lab"]["state"] == "queued"
        assert info["pending"] == ["logistic", "lab"] and st["mlp"] is None
        assert jobs.running() is None
        hold["on"] = False
        jobs._queue_thread.join(120)
        info = c.get("/api/models").json()
        st = {m["name"]: m for m in info["models"]}
        assert info["pending"] == []
        assert st["logistic"]["trained"] and st["lab"]["trained"] and not st["mlp"]["trained"]
        assert st["lab"]["status"]["state"] == "trained"
        assert st["lab"]["status"]["epochs_completed"] == 1
        # mlp (asked for) is not trained: the page opens with the best trained ladder model
        assert info["default"] == "lab"
        # logistic trained first, lab after it (ladder order), as ordinary jobs
        order = [j.model for j in sorted(jobs.list(), key=lambda j: j.created)]
        assert order == ["logistic", "lab"] and all(j.first_start for j in jobs.list())
        saved = dl.load_model(home / "models" / "lab.npz")
        _, acc = dl.evaluate(saved, digits.x_test, digits.y_test)
        assert st["lab"]["test_accuracy"] == pytest.approx(acc)


def test_the_queue_skips_a_model_trained_meanwhile(home, digits, trained):
    save_model(trained("logistic", 1), home / "models" / "logistic.npz", {"test_accuracy": 0.8})
    jobs = TrainingJobs(data=digits)
    jobs.enqueue(["logistic"], epochs=1)
    jobs._queue_thread.join(60)
    assert jobs.list() == [] and jobs.status("logistic")["state"] == "trained"


def test_a_zoo_models_epoch_tells_dropout_and_augmentation_apart(digits):
    """The job's reporter hands the library whether the model has dropout and whether the
    recipe augments: the cnn's "test above training" is explained by both."""
    from digitlens.view.server.training_jobs import TrainingJob, _Reporter

    for name, augment, words in (("mlp", False, ["dropout"]), ("cnn_tiny", True, ["augmentation"]),
                                 ("cnn", True, ["dropout", "augmentation"])):
        job = TrainingJob(id="0123456789ab", model=name, config={"epochs": 1}, seed=0)
        rep = _Reporter(job, digits.x_test[:200], digits.y_test[:200], augment=augment)
        model = dl.build_model(name, np.random.default_rng(0))
        rep.set_model(model)
        _, test_acc = dl.evaluate(model, digits.x_test[:200], digits.y_test[:200])
        low = max(test_acc - 0.05, 0.0)  # training accuracy 5 points below test
        rep.on_epoch_end({"epoch": 1, "epochs": 1, "loss": 2.3, "accuracy": low, "seconds": 1.0})
        event = job.events[-1]
        assert event["gap"] == gap_sentence([event], dropout=name != "cnn_tiny", augment=augment)
        assert "not a mistake" in event["gap"] and job.gap == event["gap"]
        for w in words:
            assert w in event["gap"]
