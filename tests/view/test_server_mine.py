"""The My digits API: add a drawing (the one pre-processing path), list, relabel, delete, the
evaluation (API number == engine number) and fine-tuning in the background."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest
from PIL import Image

from digitlens.data.mine import DigitStore
from digitlens.nn.checkpoint import load_model, save_model
from digitlens.preprocessing import preprocess
from digitlens.view.server.app import create_app

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def data_url(digits, i: int) -> str:
    """Bundled test digit ``i`` as the page would send a drawing: dark ink on white, 280 px."""
    u8 = 255 - np.round(digits.x_test[i, 0] * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).resize((280, 280)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def client(home, trained):
    from digitlens._util import paths

    save_model(trained("logistic", epochs=1), paths.model_path("logistic"))
    with TestClient(create_app(default_model="logistic", seed=0)) as c:
        yield c


def test_add_list_relabel_delete(client, digits, home):
    assert client.get("/api/mine").json() == {"digits": [], "per_label": [0] * 10, "total": 0,
                                              "prompt": 0}
    url = data_url(digits, 0)
    r = client.post("/api/mine", json={"image": url, "label": 0})
    assert r.status_code == 200, r.text
    d = r.json()["digit"]
    assert d["label"] == 0 and d["grid"].startswith("data:image/png") and r.json()["prompt"] == 1
    # stored: the original bytes and the one pre-processing path's grid
    stored = DigitStore(home / "mine.sqlite").get(d["id"])
    raw = base64.b64decode(url.split(",", 1)[1])
    assert stored.original == raw and np.array_equal(stored.grid, preprocess(raw).image)
    one = client.get(f"/api/mine/{d['id']}").json()
    assert base64.b64decode(one["original"].split(",", 1)[1]) == raw
    assert client.post(f"/api/mine/{d['id']}/label", json={"label": 6}).json()["label"] == 6
    listing = client.get("/api/mine").json()
    assert listing["per_label"][6] == 1 and listing["total"] == 1
    assert client.delete(f"/api/mine/{d['id']}").status_code == 200
    assert client.delete(f"/api/mine/{d['id']}").status_code == 404
    assert client.get("/api/mine").json()["total"] == 0


def test_bad_requests_are_4xx(client):
    blank = io.BytesIO()
    Image.new("L", (50, 50), 255).save(blank, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(blank.getvalue()).decode()
    r = client.post("/api/mine", json={"image": url, "label": 3})
    assert r.status_code == 422 and r.json()["error"] == "no_ink"
    assert client.post("/api/mine", json={"image": url, "label": 10}).status_code == 422
    assert client.post("/api/mine", json={"image": "nope", "label": 1}).status_code == 422
    assert client.get("/api/mine/999").status_code == 404


def test_evaluate_numbers_are_the_engines(client, digits, home):
    from digitlens._util import paths

    for i in range(12):
        client.post("/api/mine", json={"image": data_url(digits, i),
                                       "label": int(digits.y_test[i])})
    got = client.get("/api/mine/evaluate").json()
    assert got["n"] == 12
    row = next(m for m in got["models"] if m["model"] == "logistic")
    model = load_model(paths.model_path("logistic"))
    x, y, ids = DigitStore(home / "mine.sqlite").arrays()
    answer = model.predict(x)
    assert row["accuracy"] == float(np.mean(answer == y))
    assert row["bundled_accuracy"] == float(np.mean(model.predict(digits.x_test)
                                                    == digits.y_test))
    assert sorted(m["id"] for m in row["misread"]) == sorted(ids[answer != y].tolist())


def test_finetune_in_the_background_saves_a_new_model(client, digits, home):
    from digitlens._util import paths

    zoo = paths.model_path("logistic").read_bytes()
    assert client.post("/api/mine/finetune", json={"model": "logistic"}).status_code == 409
    for i in range(6):
        client.post("/api/mine", json={"image": data_url(digits, i),
                                       "label": int(digits.y_test[i])})
    r = client.post("/api/mine/finetune", json={"model": "logistic"})
    assert r.status_code == 200 and r.json()["state"] == "running"
    done = client.app.state.mine_jobs.wait(60)
    assert done["state"] == "completed", done
    assert done["name"] == "logistic_mine" and done["n_held"] >= 1
    assert set(done["before"]) == {"mine_held", "bundled_test"}
    assert paths.model_path("logistic").read_bytes() == zoo  # the original is kept
    tuned = load_model(home / "models" / "custom" / "logistic_mine.npz")
    assert done["after"]["bundled_test"] == float(np.mean(tuned.predict(digits.x_test)
                                                         == digits.y_test))
    # it can be chosen everywhere on the page
    names = [m["name"] for m in client.get("/api/models").json()["models"]]
    assert "logistic_mine" in names


# ----------------------------------------------------------------------------- class mode
@pytest.fixture
def classroom(home, trained):
    from digitlens._util import paths
    from digitlens.view.server.classroom import Limits, enable_class

    save_model(trained("logistic", epochs=1), paths.model_path("logistic"))
    app = create_app(default_model="logistic", seed=0, token="teach")
    enable_class(app, "teach", Limits(digits_per_minute=6, joins_per_minute=4,
                                      max_image_chars=60_000, max_digits_per_learner=5))
    with TestClient(app) as c:
        yield c


TEACHER = {"Authorization": "Bearer teach"}


def join(c, nick):
    r = c.post("/api/class/join", json={"nickname": nick})
    assert r.status_code == 200, r.text
    return {"X-Learner-Key": r.json()["key"]}


def test_class_mode_is_off_unless_enabled(client):
    assert client.get("/api/class/me").status_code == 404


def test_the_dashboard_refuses_requests_without_the_token(classroom):
    for path in ("/api/class/dashboard", "/api/class/finetune", "/api/class/export"):
        assert classroom.get(path).status_code == 401
        assert classroom.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert classroom.delete("/api/class/learners/ada").status_code == 401
    assert classroom.post("/api/class/finetune", json={"model": "logistic"}).status_code == 401
    assert classroom.get("/api/class/dashboard", headers=TEACHER).status_code == 200
    # the teacher's own collection (/api/mine) is not open to the class either
    assert classroom.get("/api/mine").status_code == 401
    assert classroom.post("/api/mine/finetune", json={"model": "logistic"}).status_code == 401
    assert classroom.get("/api/mine", headers=TEACHER).status_code == 200
    # the token also guards the server's training endpoints (security.py)
    assert classroom.post("/api/train", json={"model": "logistic"}).status_code == 401


def test_a_learner_cannot_read_or_delete_anothers_digits(classroom, digits, home):
    ada, bo = join(classroom, "ada"), join(classroom, "bo")
    assert classroom.post("/api/class/join", json={"nickname": "ada"}).status_code == 409
    assert classroom.get("/api/class/me").status_code == 401          # no key
    r = classroom.post("/api/class/digits", headers=ada,
                       json={"image": data_url(digits, 0), "label": int(digits.y_test[0])})
    assert r.status_code == 200, r.text
    i = r.json()["digit"]["id"]
    assert classroom.get(f"/api/class/digits/{i}", headers=bo).status_code == 404
    assert classroom.delete(f"/api/class/digits/{i}", headers=bo).status_code == 404
    assert classroom.get("/api/class/me", headers=bo).json()["total"] == 0
    assert classroom.get("/api/class/me", headers=ada).json()["total"] == 1
    assert DigitStore(home / "mine.sqlite").get(i).learner == "ada"
    assert classroom.delete(f"/api/class/digits/{i}", headers=ada).status_code == 200


def test_limits_hold(classroom, digits):
    ada = join(classroom, "ada")
    big = "data:image/png;base64," + "A" * 70_000
    assert classroom.post("/api/class/digits", headers=ada,
                          json={"image": big, "label": 1}).status_code == 413
    codes = [classroom.post("/api/class/digits", headers=ada,
                            json={"image": data_url(digits, i),
                                  "label": int(digits.y_test[i])}).status_code
             for i in range(7)]
    assert codes == [200] * 5 + [429, 429]   # 5 digits per learner, then refused
    for k in range(3):                       # 4 joins per minute from one client
        join(classroom, f"x{k}")
    assert classroom.post("/api/class/join", json={"nickname": "late"}).status_code == 429


def test_dashboard_numbers_export_and_deleting_a_learner(classroom, digits, home):
    import zipfile

    from digitlens._util import paths

    ada, bo = join(classroom, "ada"), join(classroom, "bo")
    for who, rng in ((ada, range(0, 3)), (bo, range(3, 6))):  # 6: the per-minute limit
        for i in rng:
            classroom.post("/api/class/digits", headers=who,
                           json={"image": data_url(digits, i), "label": int(digits.y_test[i])})
    DigitStore(home / "mine.sqlite").add(digits.x_test[9, 0], 3)  # the teacher's own
    d = classroom.get("/api/class/dashboard", headers=TEACHER).json()
    assert d["n"] == 6 and d["per_learner"] == {"ada": 3, "bo": 3}
    store = DigitStore(home / "mine.sqlite")
    x, y, ids = store.arrays(class_only=True)
    assert d["per_label"] == np.bincount(y, minlength=10).tolist()
    row = next(m for m in d["models"] if m["model"] == "logistic")
    model = load_model(paths.model_path("logistic"))
    assert row["accuracy"] == float(np.mean(model.predict(x) == y))
    from digitlens.training.mine_eval import confusion_matrix

    assert row["confusion"] == confusion_matrix(y, model.predict(x)).tolist()
    r = classroom.get("/api/class/export", headers=TEACHER)
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert len([n for n in names if n.endswith(".png")]) == 6
    assert "class-digits/mine-labels-idx1-ubyte" in names
    r = classroom.delete("/api/class/learners/ada", headers=TEACHER)
    assert r.json()["deleted"] == 3
    assert store.counts()["per_learner"] == {"": 1, "bo": 3}
    assert classroom.get("/api/class/me", headers=ada).status_code == 401  # key forgotten
    assert classroom.delete("/api/class/learners/%20", headers=TEACHER).status_code == 422
