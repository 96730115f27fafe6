"""The web page's JSON API, in process (FastAPI TestClient): every endpoint, every documented error.

Models come from the session's ``trained`` fixture and are saved into a temporary DIGITLENS_HOME,
so the server loads them the way ``digitlens serve`` does.  ``mlp`` and ``cnn`` are left
untrained there on purpose (the 409 answers); ``mlp`` is served through a Recognizer instead.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

import digitlens as dl
import digitlens.view
from digitlens.explain.result import Example
from digitlens.nn.checkpoint import save_model
from digitlens.preprocessing import SWITCHES
from digitlens.recognizer import Recognizer
from digitlens.view.server.training_jobs import TrainingJobs
from digitlens.view.server.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore:Using `httpx`:Warning")


# ---------------------------------------------------------------------------------- helpers
def png_bytes(img: np.ndarray | Image.Image, size: int = 280) -> bytes:
    """A 28×28 [0, 1] array (ink bright) scaled up like a canvas drawing, or a PIL image."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)).resize(
            (size, size), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def data_url(b: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(b).decode("ascii")


def blank_png() -> bytes:
    return png_bytes(Image.new("L", (280, 280), 0))


def confident_test_digit(model, digits, label: int) -> int:
    """Index of the test digit of ``label`` the model is surest about."""
    idx = np.flatnonzero(digits.y_test == label)
    p = model.predict_proba(digits.x_test[idx])[:, label]
    return int(idx[int(np.argmax(p))])


def error_of(r, status: int, code: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) >= {"error", "message"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def home(model_home):
    """A DIGITLENS_HOME holding trained logistic, lab and cnn_tiny (not mlp, not cnn)."""
    with model_home("digitlens_home", {"logistic": None, "lab": None, "cnn_tiny": 2}) as (root, _):
        yield root


@pytest.fixture(scope="module")
def app(home):
    return create_app(default_model="cnn", seed=0)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def mlp_client(home, trained):
    """A server whose recognizer holds an in-memory mlp (not in the cache)."""
    app = create_app(Recognizer({"mlp": trained("mlp")}), default_model="mlp", training=False)
    with TestClient(app) as c:
        yield c


# ------------------------------------------------------------------------------- the page
def test_page_and_static_files_are_served_with_a_strict_policy(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<canvas id=\"board\"" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    # every script and stylesheet the page names is served, with the type a browser requires
    scripts = re.findall(r"<script[^>]*\bsrc=\"(/static/[^\"]+)\"", r.text)
    sheets = re.findall(r"<link[^>]*\bhref=\"(/static/[^\"]+\.css)\"", r.text)
    assert scripts and sheets
    for url, kind in [(u, "text/javascript") for u in scripts] + [(u, "text/css") for u in sheets]:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), url
        assert r.headers["content-security-policy"] == csp
        assert len(r.content) > 500


def test_every_file_under_static_is_served_from_the_allow_list_with_its_type(app, client):
    root = Path(digitlens.view.__file__).parent / "static"
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
               and p.suffix in (".js", ".css", ".html", ".png", ".svg")}
    assert set(app.state.ctx.static_files) == on_disk  # read once, at start-up
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
             ".svg": "image/svg+xml", ".html": "text/html"}
    for rel in sorted(on_disk - {"index.html"}):
        r = client.get(f"/static/{rel}")
        assert r.status_code == 200, rel
        assert r.headers["content-type"].startswith(kinds[Path(rel).suffix]), rel
        assert r.content == (root / rel).read_bytes()


def test_nested_static_files_are_served_as_javascript_modules(tmp_path, home):
    """A folder under static/ (the page's ES modules in js/) is served recursively."""
    from digitlens.view.server.page import static_files

    (tmp_path / "js" / "panels").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<!doctype html><script type=module src="
                                         "'/static/js/main.js'></script>")
    (tmp_path / "js" / "main.js").write_text("import { draw } from './panels/draw.js';\n")
    (tmp_path / "js" / "panels" / "draw.js").write_text("export function draw() {}\n")
    (tmp_path / "js" / "notes.txt").write_text("not part of the page")
    (tmp_path / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    app = create_app(default_model="cnn", training=False)
    app.state.ctx.static_files = static_files(tmp_path)
    with TestClient(app) as c:
        for url, kind in (("/static/js/main.js", "text/javascript"),
                          ("/static/js/panels/draw.js", "text/javascript"),
                          ("/static/icon.svg", "image/svg+xml")):
            r = c.get(url)
            assert r.status_code == 200 and r.headers["content-type"].startswith(kind), url
        assert c.get("/static/js/panels/draw.js").text == "export function draw() {}\n"
        assert c.get("/").text.startswith("<!doctype html>")
        (tmp_path / "js" / "late.js").write_text("export {}")  # added after start-up: not served
        for url in ("/static/js/notes.txt", "/static/js/late.js", "/static/index.html",
                    "/static/../x", "/static/js/../../app.py", "/static/js/..%2F..%2Fapp.py",
                    "/static/js/", "/static/js", "/static//etc/passwd", "/static/%2Fetc/passwd"):
            r = c.get(url)
            assert r.status_code == 404, (url, r.status_code)
            assert r.json()["error"] == "not_found"


@pytest.mark.parametrize("path", ["/static/server.py", "/static/..%2Fserver.py",
                                  "/static/%2e%2e/%2e%2e/paths.py", "/static/index.html",
                                  "/static/../x", "/static/js/../../app.py",
                                  "/static/js/../../server/app.py", "/static/nothing.js",
                                  "/static/js/nothing.js", "/etc/passwd", "/api/nothing"])
def test_nothing_outside_the_allow_list_is_served(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


def test_health(client):
    assert client.get("/api/health").json() == {"ok": True, "version": dl.__version__}


def test_openapi_documents_every_endpoint_and_the_explain_body(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/health", "/api/models", "/api/explain", "/api/digits/random", "/api/train",
              "/api/train/{job_id}", "/api/train/{job_id}/events", "/api/train/{job_id}/cancel",
              "/api/models/{name}/units/{layer}/{unit}", "/api/lab", "/api/lab/run",
              "/api/lab/cancel", "/api/lab/figures/{name}"):
        assert p in paths, p
    ref = client.get("/api")  # the same, readable offline
    assert ref.status_code == 200 and ref.headers["content-type"].startswith("text/html")
    for p in paths:
        assert p in ref.text, p
    body = paths["/api/explain"]["post"]["requestBody"]["content"]
    assert {"application/json", "image/png", "application/octet-stream"} <= set(body)
    assert "422" in paths["/api/explain"]["post"]["responses"]


# ------------------------------------------------------------------------------- models
def test_models_lists_the_zoo_with_what_is_trained(client, digits, trained):
    info = client.get("/api/models").json()
    by = {m["name"]: m for m in info["models"]}
    assert set(by) == set(dl.model_names())
    assert by["logistic"]["trained"] and by["lab"]["trained"] and by["cnn_tiny"]["trained"]
    assert not by["cnn"]["trained"] and not by["mlp"]["trained"]
    _, acc = dl.evaluate(trained("lab"), digits.x_test, digits.y_test)
    assert by["lab"]["test_accuracy"] == pytest.approx(acc)
    assert by["lab"]["n_params"] == trained("lab").n_params
    assert [row["type"] for row in by["lab"]["layers"]] == \
        [layer.type for layer in trained("lab").layers]
    assert by["cnn_tiny"]["kind"] == "cnn" and by["lab"]["kind"] == "dense"
    # cnn was asked for but is not trained: the page opens with the best trained ladder model
    assert info["default"] == "cnn_tiny"
    assert [m["name"] for m in info["models"] if m["in_ladder"]][:3] == ["logistic", "lab", "mlp"]


def test_the_page_ladder_comes_from_the_zoo(client):
    """The switcher's models are named once, in the zoo: every model that reads all ten digits,
    in the zoo's order, the training ladder's rungs among them; the 0-or-1 model is listed but
    not offered."""
    from digitlens.nn.zoo import MODELS
    from digitlens.training.ladder import RUNGS

    models = client.get("/api/models").json()["models"]
    ladder = [m["name"] for m in models if m["in_ladder"]]
    assert ladder == [n for n, e in MODELS.items() if tuple(e.classes) == tuple(range(10))]
    assert {r.name for r in RUNGS} <= set(ladder) and "binary" not in ladder
    assert [m["name"] for m in models] == ladder + [n for n in MODELS if n not in ladder]


def test_the_server_holds_no_numerics():
    """Route modules parse, call the library and serialise: none imports the explainers or the
    engine's layers (which layer reads pixels, attributions, ... belong to the recognizer)."""
    import ast

    root = Path(digitlens.view.__file__).parent / "server"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = "." * node.level + (node.module or "")
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("...explain", "digitlens.explain")), (path, name)
                assert not name.startswith(("...nn.layers", "...nn.functional", "...nn.conv",
                                            "digitlens.nn.layers", "digitlens.nn.functional")), \
                    (path, name)


# ------------------------------------------------------------------------------ explain
def test_explain_raw_png_matches_the_library(client, trained, digits):
    model = trained("lab")
    i = confident_test_digit(model, digits, 3)
    png = png_bytes(digits.x_test[i, 0])
    r = client.post("/api/explain?model=lab", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    e = r.json()
    ref = Recognizer({"lab": model}).explain(png, model="lab").to_dict()
    assert e["prediction"] == ref["prediction"] == 3
    np.testing.assert_allclose(e["probabilities"], ref["probabilities"], rtol=1e-5, atol=1e-7)
    assert e["image"] == ref["image"]
    assert e["detail"] == "full" and e["notes"] == []
    assert [s["name"] for s in e["preprocessing"]["steps"]] == ["decode", *SWITCHES]
    assert [L["type"] for L in e["trace"]["layers"]] == [L.type for L in model.layers]
    assert set(e["attributions"]) == {"saliency", "gradient_x_input", "integrated_gradients",
                                      "occlusion"}
    assert all(str(e["prediction"]) in per for per in e["attributions"].values())
    # the contrast digit: the runner-up, or below 5% the usual confusion (issue 13)
    c = e["contrast"]
    assert c["a"] == 3 and c["b"] == (e["runner_up"] if c["reason"] == "runner-up"
                                      else c["suggestions"][0]["digit"])
    assert e["counterfactual"]["b"] == c["b"]
    assert e["units"]["kind"] == "dense" and e["nearest"]["examples"]
    assert json.loads(json.dumps(e)) == e


def test_explain_json_data_url_equals_raw_bytes(client, trained, digits):
    i = confident_test_digit(trained("lab"), digits, 7)
    png = png_bytes(digits.x_test[i, 0])
    raw = client.post("/api/explain?model=lab&detail=live", content=png,
                      headers={"content-type": "image/png"}).json()
    js = client.post("/api/explain", json={"image": data_url(png), "model": "lab",
                                           "options": {"detail": "live"}}).json()
    assert raw["prediction"] == js["prediction"] == 7
    assert raw["probabilities"] == js["probabilities"]
    plain = client.post("/api/explain", json={"image": base64.b64encode(png).decode(),
                                              "model": "lab", "options": {"detail": "live"}})
    assert plain.json()["probabilities"] == js["probabilities"]


def test_live_detail_is_the_fast_subset(client, trained, digits):
    png = png_bytes(digits.x_test[0, 0])
    e = client.post("/api/explain", json={"image": data_url(png), "model": "lab",
                                          "options": {"detail": "live"}}).json()
    assert e["detail"] == "live"
    assert e["trace"]["layers"] and e["preprocessing"]["steps"]
    assert e["attributions"] == {} and e["contrast"] is None and e["counterfactual"] is None
    assert e["units"] is None and e["nearest"] is None


def test_default_model_is_used_when_none_is_named(client, digits):
    # the app was created with default "cnn", which is not trained: a clear 409, not a 500
    msg = error_of(client.post("/api/explain", content=png_bytes(digits.x_test[0, 0]),
                               headers={"content-type": "image/png"}), 409, "model_not_trained")
    assert "cnn" in msg and "digitlens train --model cnn" in msg


def test_vs_target_and_method_options(client, trained, digits):
    i = confident_test_digit(trained("lab"), digits, 9)
    url = data_url(png_bytes(digits.x_test[i, 0]))
    e = client.post("/api/explain", json={"image": url, "model": "lab", "options": {
        "vs": 4, "target": 1, "method": "saliency", "counterfactual": False}}).json()
    assert e["prediction"] == 9
    assert e["contrast"]["b"] == 4 and e["contrast"]["a"] == 9
    assert e["counterfactual"] is None
    assert set(e["attributions"]) == {"saliency"}
    assert set(e["attributions"]["saliency"]) == {"9", "1"}
    # the extra target's map is the library's saliency for that digit
    from digitlens.explain.attribution import attribute

    rec = Recognizer({"lab": trained("lab")})
    ref = attribute(rec.exact_model("lab"), np.array(e["image"]), 1, "saliency").to_dict()
    np.testing.assert_allclose(e["attributions"]["saliency"]["1"]["map"], ref["map"], atol=1e-6)
    # asking "why not 9" when it is a 9 falls back to the default contrast, and says which
    e2 = client.post("/api/explain", json={"image": url, "model": "lab",
                                           "options": {"vs": 9, "method": "saliency"}}).json()
    b = e2["contrast"]["b"]
    assert b != 9
    if e2["contrast"]["reason"] == "runner-up":
        assert b == e2["runner_up"] and "the runner-up" in e2["notes"][0]
    else:
        assert e2["contrast"]["reason"] == "usual confusion" and "most often confused" in \
            e2["notes"][0]
    assert e2["notes"][0].startswith("You asked why not 9") and f"compares it with {b}," in \
        e2["notes"][0]


def test_preprocessing_switches(client, digits):
    url = data_url(png_bytes(digits.x_test[5, 0]))
    e = client.post("/api/explain", json={"image": url, "model": "lab", "options": {
        "detail": "live", "steps": {"center": False, "threshold": False}}}).json()
    on = {s["name"]: s["enabled"] for s in e["preprocessing"]["steps"]}
    assert on["center"] is False and on["threshold"] is False and on["crop"] is True
    msg = error_of(client.post("/api/explain", json={"image": url, "model": "lab", "options": {
        "steps": {"../../etc": False}}}), 422, "invalid_request")
    assert "switchable steps" in msg


def test_a_blank_canvas_gets_the_friendly_no_ink_message(client):
    for body in (client.post("/api/explain?model=lab", content=blank_png(),
                             headers={"content-type": "image/png"}),
                 client.post("/api/explain", json={"image": data_url(blank_png()),
                                                   "model": "lab"})):
        msg = error_of(body, 422, "no_ink")
        assert msg.startswith("no ink found — draw or upload a digit")


def test_transparent_canvas_with_white_ink_is_read(client, trained, digits):
    # what a browser canvas exports if nothing fills its background
    i = confident_test_digit(trained("lab"), digits, 1)
    a = np.rint(digits.x_test[i, 0] * 255).astype(np.uint8)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = a
    im = Image.fromarray(rgba, "RGBA").resize((280, 280), Image.BILINEAR)
    e = client.post("/api/explain?model=lab&detail=live", content=png_bytes(im),
                    headers={"content-type": "image/png"}).json()
    assert e["prediction"] == 1


@pytest.mark.parametrize("body,ctype,status,code", [
    (b"hello, this is not an image", "image/png", 422, "not_an_image"),
    (b"", "image/png", 422, "empty_body"),
    (b"%PDF-1.4 nothing", "application/octet-stream", 422, "not_an_image"),
    (b"some text", "text/plain", 415, "unsupported_media_type"),
    (b"a=1&b=2", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
])
def test_bad_bodies(client, body, ctype, status, code):
    error_of(client.post("/api/explain?model=lab", content=body, headers={"content-type": ctype}),
             status, code)


def test_truncated_png(client, digits):
    png = png_bytes(digits.x_test[0, 0])
    error_of(client.post("/api/explain?model=lab", content=png[: len(png) // 2],
                         headers={"content-type": "image/png"}), 422, "truncated_image")


@pytest.mark.parametrize("payload,code", [
    ({"image": "data:text/html;base64,PGh0bWw+", "model": "lab"}, "bad_data_url"),
    ({"image": "data:image/png,not-base64", "model": "lab"}, "bad_data_url"),
    ({"image": "data:image/png;base64,@@@@", "model": "lab"}, "bad_base64"),
    ({"image": "/etc/passwd", "model": "lab"}, "bad_base64"),
    ({"model": "lab"}, "invalid_request"),
    ({"image": "AAAA", "model": "lab", "colour": "red"}, "invalid_request"),
    ({"image": "AAAA", "model": "lab", "options": {"vs": 12}}, "invalid_request"),
    ({"image": "AAAA", "model": "lab", "options": {"method": "magic"}}, "invalid_request"),
    ({"image": "AAAA", "model": "lab", "options": {"detail": "everything"}}, "invalid_request"),
    ({"image": "AAAA", "model": "lab", "options": {"verbose": True}}, "invalid_request"),
    ({"image": ["not", "a", "string"], "model": "lab"}, "invalid_request"),
])
def test_bad_json_payloads(client, payload, code):
    error_of(client.post("/api/explain", json=payload), 422, code)


def test_malformed_json_and_bad_query_options(client, digits):
    error_of(client.post("/api/explain", content=b"{not json",
                         headers={"content-type": "application/json"}), 422, "invalid_request")
    png = png_bytes(digits.x_test[0, 0])
    for q in ("vs=11", "target=-1", "method=magic", "detail=all", "vs=seven"):
        error_of(client.post(f"/api/explain?model=lab&{q}", content=png,
                             headers={"content-type": "image/png"}), 422, "invalid_request")


def test_unknown_and_untrained_models(client, digits):
    png = png_bytes(digits.x_test[0, 0])
    for name in ("resnet", "../../etc/passwd", "logistic.npz", ""):
        r = client.post("/api/explain", json={"image": data_url(png), "model": name or "x y"})
        assert "logistic" in error_of(r, 404, "unknown_model")
    error_of(client.post("/api/explain", json={"image": data_url(png), "model": "mlp"}),
             409, "model_not_trained")


def test_binary_model_rejects_digits_it_does_not_know(home, trained, digits):
    # a model that only knows 0 and 1 cannot be asked "why not 7"
    idx = np.isin(digits.y_train, (0, 1))
    m = dl.build_model("binary", np.random.default_rng(0))
    dl.fit(m, digits.x_train[idx], digits.y_train[idx], dl.TrainConfig(epochs=1),
           rng=np.random.default_rng(0))
    with TestClient(create_app(Recognizer({"binary": m}), default_model="binary")) as c:
        png = png_bytes(digits.x_test[np.flatnonzero(digits.y_test == 1)[0], 0])
        ok = c.post("/api/explain", json={"image": data_url(png), "model": "binary",
                                          "options": {"method": "saliency"}})
        assert ok.status_code == 200 and ok.json()["classes"] == [0, 1]
        msg = error_of(c.post("/api/explain", json={"image": data_url(png), "model": "binary",
                                                    "options": {"vs": 7}}), 422,
                       "invalid_request")
        assert "[0, 1]" in msg


def test_the_server_never_opens_a_path_the_client_sends(client, tmp_path, digits):
    # a real image on disk: if the server treated the body as a path, this would succeed
    p = tmp_path / "digit.png"
    p.write_bytes(png_bytes(digits.x_test[0, 0]))
    for body in (str(p).encode(), f"file://{p}".encode()):
        error_of(client.post("/api/explain?model=lab", content=body,
                             headers={"content-type": "application/octet-stream"}),
                 422, "not_an_image")
    error_of(client.post("/api/explain", json={"image": str(p), "model": "lab"}), 422,
             "bad_base64")


def test_request_body_limit(home, digits):
    png = png_bytes(digits.x_test[0, 0])
    app = create_app(default_model="lab", max_body_bytes=len(png), training=False)
    over = png + b"\0" * 64
    with TestClient(app) as c:
        msg = error_of(c.post("/api/explain?model=lab", content=over,
                              headers={"content-type": "image/png"}), 413, "too_large")
        assert "MiB" in msg

        def chunks():  # no Content-Length: the limit is enforced while the body streams in
            for k in range(0, len(over), 1000):
                yield over[k:k + 1000]

        error_of(c.post("/api/explain?model=lab", content=chunks(),
                        headers={"content-type": "image/png"}), 413, "too_large")
        ok = c.post("/api/explain?model=lab&detail=live", content=png,
                    headers={"content-type": "image/png"})
        assert ok.status_code == 200  # exactly at the limit is fine


def test_image_pixel_limit(home, digits):
    app = create_app(default_model="lab", max_pixels=100 * 100, training=False)
    with TestClient(app) as c:
        big = png_bytes(digits.x_test[0, 0], size=101)
        msg = error_of(c.post("/api/explain?model=lab", content=big,
                              headers={"content-type": "image/png"}), 413, "image_too_large")
        assert "pixel" in msg
        small = png_bytes(digits.x_test[0, 0], size=100)
        assert c.post("/api/explain?model=lab&detail=live", content=small,
                      headers={"content-type": "image/png"}).status_code == 200


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=600), ctype=st.sampled_from(["image/png", "image/jpeg",
                                                              "application/octet-stream", ""]))
def test_random_bytes_never_cause_a_server_error(client, body, ctype):
    r = client.post("/api/explain?model=lab&detail=live", content=body,
                    headers={"content-type": ctype} if ctype else {})
    assert r.status_code in (200, 413, 415, 422), r.text
    if r.status_code != 200:
        assert {"error", "message"} <= set(r.json())


def test_in_memory_models_are_served(mlp_client, trained, digits):
    i = confident_test_digit(trained("mlp"), digits, 5)
    e = mlp_client.post("/api/explain", json={"image": data_url(png_bytes(digits.x_test[i, 0])),
                                              "options": {"detail": "live"}}).json()
    assert e["model"] == "mlp" and e["prediction"] == 5
    assert mlp_client.get("/api/models").json()["default"] == "mlp"


def test_a_model_file_replaced_on_disk_is_reloaded(home, trained, digits):
    from digitlens._util import paths

    path = paths.model_path("logistic")
    original = path.read_bytes()
    with TestClient(create_app(default_model="logistic", training=False)) as c:
        png = png_bytes(digits.x_test[0, 0])
        first = c.post("/api/explain?model=logistic&detail=live", content=png,
                       headers={"content-type": "image/png"}).json()
        other = dl.build_model("logistic", np.random.default_rng(1))  # untrained weights
        try:
            save_model(other, path, {"test_accuracy": 0.1})
            import os

            st_ = path.stat()
            os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
            second = c.post("/api/explain?model=logistic&detail=live", content=png,
                            headers={"content-type": "image/png"}).json()
        finally:
            path.write_bytes(original)
        assert first["probabilities"] != second["probabilities"]
        ref = other.predict_proba(np.array(second["image"], np.float32)[None, None])[0]
        np.testing.assert_allclose(second["probabilities"], ref, atol=1e-3)  # image rounded to 3 dp


# -------------------------------------------------------------------------------- units
def test_first_layer_unit_shows_its_weights_bias_and_top_digits(client, trained, digits):
    model = trained("lab")
    j = 3
    u = client.get(f"/api/models/lab/units/1/{j}").json()
    W, b = model.layers[1].params["W"], model.layers[1].params["b"]
    assert u["type"] == "dense" and u["n_units"] == 25 and u["template_kind"] == "weights"
    assert u["bias"] == pytest.approx(float(b[j]), rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(u["template"], W[:, j].reshape(28, 28), rtol=1e-3, atol=1e-6)
    tops = u["top_examples"]
    assert len(tops) == 8
    acts = [t["activation"] for t in tops]
    assert acts == sorted(acts, reverse=True)
    # each listed digit really is the training digit with that index, and excites the unit that much
    for t in tops[:3]:
        x = digits.x_train[t["index"]]
        assert t["label"] == int(digits.y_train[t["index"]])
        assert t["image"].startswith("data:image/png;base64,")       # exact 8-bit pixels
        np.testing.assert_allclose(Example.from_dict(t).image, x[0], atol=1e-7)
        tr = model.forward(x[None], trace=True)
        assert t["activation"] == pytest.approx(float(tr.layers[2].output[0, j]), rel=1e-4)


def test_deeper_unit_gets_a_pixel_template_only_with_an_image(client, digits):
    u = client.get("/api/models/lab/units/3/2").json()
    assert u["template"] is None and u["top_examples"]  # last hidden layer: atlas examples
    img = np.round(digits.x_test[0, 0].astype(np.float64), 3).tolist()
    v = client.post("/api/models/lab/units/3/2", json={"image": img}).json()
    assert v["template_kind"] == "input_gradient"
    assert np.array(v["template"]).shape == (28, 28)
    out = client.get("/api/models/lab/units/5/4").json()  # the output unit for digit 4
    assert out["n_units"] == 10 and out["top_examples"] == []


def test_conv_filter_unit(client, trained):
    model = trained("cnn_tiny", 2)
    u = client.get("/api/models/cnn_tiny/units/0/2").json()
    assert u["type"] == "conv2d" and u["template_kind"] == "filter"
    np.testing.assert_allclose(u["template"], model.layers[0].params["W"][2, 0], rtol=1e-3,
                               atol=1e-6)
    assert len(u["top_examples"]) == 8


@pytest.mark.parametrize("url,method,status,code", [
    ("/api/models/lab/units/9/0", "get", 404, "unknown_layer"),
    ("/api/models/lab/units/2/0", "get", 422, "not_a_unit_layer"),
    ("/api/models/lab/units/1/25", "get", 404, "unknown_unit"),
    ("/api/models/lab/units/1/-1", "get", 404, "unknown_unit"),
    ("/api/models/lab/units/one/2", "get", 422, "invalid_request"),
    ("/api/models/vgg/units/1/0", "get", 404, "unknown_model"),
    ("/api/models/cnn/units/0/0", "get", 409, "model_not_trained"),
])
def test_unit_errors(client, url, method, status, code):
    error_of(getattr(client, method)(url), status, code)


def test_unit_image_must_be_28_by_28_in_range(client):
    error_of(client.post("/api/models/lab/units/3/0", json={"image": [[0.5] * 27] * 28}), 422,
             "invalid_request")
    error_of(client.post("/api/models/lab/units/3/0", json={"image": [[2.0] * 28] * 28}), 422,
             "invalid_request")


# -------------------------------------------------------------------------------- digits
def test_random_test_digit(client, digits):
    d = client.get("/api/digits/random?label=6&seed=3").json()
    assert d["label"] == 6 and d["split"] == "test"
    assert d == client.get("/api/digits/random?label=6&seed=3").json()  # repeatable
    px = np.array(d["pixels"])
    assert px.shape == (28, 28) and px.dtype.kind == "i" and 0 <= px.min() and px.max() <= 255
    np.testing.assert_array_equal(px, np.rint(digits.x_test[d["index"], 0] * 255))
    labels = {client.get("/api/digits/random").json()["label"] for _ in range(30)}
    assert len(labels) > 3
    for q in ("label=10", "label=x", "seed=-1"):
        error_of(client.get(f"/api/digits/random?{q}"), 422, "invalid_request")


# ------------------------------------------------------------------------------ training
def read_events(client, job_id, headers=None):
    events = []
    with client.stream("GET", f"/api/train/{job_id}/events", headers=headers or {}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        ev = {}
        for line in r.iter_lines():
            if not line:
                if "data" in ev:
                    events.append(ev)
                ev = {}
                continue
            key, _, value = line.partition(": ")
            if key in ("id", "event", "data"):
                ev[key] = value
    return [{"id": int(e["id"]), "event": e["event"], **json.loads(e["data"])} for e in events]


def test_training_runs_in_the_background_streams_progress_and_is_used(home, digits):
    from digitlens._util import paths

    jobs = TrainingJobs(data=digits)
    app = create_app(default_model="logistic", jobs=jobs)
    path = paths.model_path("logistic")
    original = path.read_bytes()
    try:
        with TestClient(app) as c:
            r = c.post("/api/train", json={"model": "logistic", "epochs": 2, "seed": 1})
            assert r.status_code == 202, r.text
            job = r.json()
            assert job["model"] == "logistic" and job["epochs"] == 2
            events = read_events(c, job["id"])
            kinds = [e["event"] for e in events]
            assert kinds[0] == "start" and kinds[-1] == "end"
            assert kinds.count("epoch") == 2
            n_batches = events[0]["batches"]
            assert kinds.count("batch") == 2 * n_batches == 2 * -(-4000 // 64)
            assert [e["id"] for e in events] == list(range(len(events)))
            end = events[-1]
            assert end["state"] == "completed" and end["saved"] is True
            epochs = [e for e in events if e["event"] == "epoch"]
            assert epochs[-1]["test_accuracy"] == pytest.approx(end["test_accuracy"])
            assert 0.5 < end["test_accuracy"] <= 1
            status = c.get(f"/api/train/{job['id']}").json()
            assert status["state"] == "completed" and status["epochs_completed"] == 2
            assert len(status["events"]) == len(events)
            # the page now uses the new model, and the cache holds it
            model = dl.load_model(path)
            info = {m["name"]: m for m in c.get("/api/models").json()["models"]}
            assert info["logistic"]["test_accuracy"] == pytest.approx(end["test_accuracy"])
            png = png_bytes(digits.x_test[0, 0])
            e = c.post("/api/explain?model=logistic&detail=live", content=png,
                       headers={"content-type": "image/png"}).json()
            ref = model.predict_proba(np.array(e["image"], np.float32)[None, None])[0]
            np.testing.assert_allclose(e["probabilities"], ref, atol=1e-3)  # image rounded to 3 dp
            # resuming with Last-Event-ID sends only the events after it
            rest = read_events(c, job["id"], headers={"Last-Event-ID": str(len(events) - 3)})
            assert [e["id"] for e in rest] == [len(events) - 2, len(events) - 1]
            listing = c.get("/api/train").json()
            assert listing["running"] is None and listing["jobs"][0]["id"] == job["id"]
    finally:
        path.write_bytes(original)


def test_training_one_at_a_time_and_cancel(home, digits):
    from digitlens._util import paths

    jobs = TrainingJobs(data=digits)
    with TestClient(create_app(default_model="lab", jobs=jobs)) as c:
        job = c.post("/api/train", json={"model": "mlp", "epochs": 40}).json()
        busy = c.post("/api/train", json={"model": "logistic", "epochs": 1})
        assert "already running" in error_of(busy, 409, "training_busy")
        assert c.get("/api/train").json()["running"] == job["id"]
        r = c.post(f"/api/train/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["cancel_requested"] is True
        events = read_events(c, job["id"])
        assert events[-1]["state"] == "cancelled"
        assert "nothing was saved" in events[-1]["message"]
        assert not paths.model_path("mlp").exists()
        assert c.get(f"/api/train/{job['id']}").json()["state"] == "cancelled"
        # cancelling a finished job changes nothing
        assert c.post(f"/api/train/{job['id']}/cancel").json()["state"] == "cancelled"


@pytest.mark.parametrize("payload,status,code", [
    ({"model": "resnet"}, 404, "unknown_model"),
    ({"model": "logistic", "epochs": 0}, 422, "invalid_request"),
    ({"model": "logistic", "epochs": 10_000}, 422, "invalid_request"),
    ({"model": "logistic", "epochs": "many"}, 422, "invalid_request"),
    ({"model": "logistic", "seed": -3}, 422, "invalid_request"),
    ({"model": "logistic", "lr": 10}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
])
def test_training_request_errors(client, payload, status, code):
    error_of(client.post("/api/train", json=payload), status, code)


@pytest.mark.parametrize("suffix", ["", "/events", "/cancel"])
def test_unknown_and_malformed_job_ids(client, suffix):
    method = client.post if suffix == "/cancel" else client.get
    error_of(method(f"/api/train/0123456789ab{suffix}"), 404, "unknown_job")
    error_of(method(f"/api/train/not-a-job{suffix}"), 422, "bad_job_id")
    error_of(method(f"/api/train/..%2F..%2Fetc{suffix}"), 404, "not_found")


def test_training_can_be_switched_off(mlp_client):
    assert "switched off" in error_of(mlp_client.post("/api/train", json={"model": "logistic"}),
                                      403, "training_disabled")
    error_of(mlp_client.get("/api/train/0123456789ab/events"), 403, "training_disabled")
    assert mlp_client.get("/api/train").json()["enabled"] is False
    assert mlp_client.get("/api/models").json()["training"] is False


def test_method_not_allowed_is_json(client):
    error_of(client.get("/api/explain"), 405, "method_not_allowed")
    error_of(client.delete("/api/models"), 405, "method_not_allowed")


def test_drawn_strokes_are_read(client, trained):
    """A '1' drawn as one thick vertical stroke on a dark canvas, as the page sends it."""
    im = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(im).line([(140, 50), (140, 230)], fill=255, width=20)
    e = client.post("/api/explain?model=lab&detail=live", content=png_bytes(im),
                    headers={"content-type": "image/png"}).json()
    assert e["prediction"] == 1


# ---------------------------------------------- 500s a client could trigger (issue 15)
def test_a_ragged_image_for_a_unit_is_422_not_500(client):
    r = client.post("/api/models/lab/units/1/0", json={"image": [[0.0] * 28] * 27 + [[0.0] * 3]})
    msg = error_of(r, 422, "invalid_request")
    assert "28 rows of 28 numbers" in msg


def test_vs_true_is_not_the_digit_1_and_an_empty_model_is_not_the_default(client):
    img = data_url(png_bytes(np.eye(28)))
    r = client.post("/api/explain", json={"image": img, "options": {"vs": True}})
    assert "options.vs" in error_of(r, 422, "invalid_request")
    r = client.post("/api/explain", json={"image": img, "options": {"target": False}})
    error_of(r, 422, "invalid_request")
    r = client.post("/api/explain", json={"image": img, "model": ""})
    assert "model" in error_of(r, 422, "invalid_request")


def test_a_damaged_lab_result_is_a_clear_error_not_500(tmp_path, home):
    from digitlens.view.server.lab_jobs import LabRunner

    (tmp_path / "result.json").write_text('{"study": "quick", "runs": [')
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    app = create_app(default_model="lab", lab=LabRunner(tmp_path))
    with TestClient(app) as c:
        msg = error_of(c.get("/api/lab/figures/x"), 422, "lab_error")
        assert "run the lab again" in msg
        assert c.get("/api/lab").status_code == 200


def test_a_bad_model_file_in_the_cache_is_listed_as_unavailable(tmp_path, monkeypatch):
    import zipfile

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    from digitlens._util import paths

    paths.models_dir().mkdir(parents=True)
    cfg = {"layers": [{"type": "flatten"}, {"type": "dense", "units": 2_000_000}],
           "input_shape": [1, 28, 28], "classes": list(range(10))}
    with zipfile.ZipFile(paths.model_path("mlp"), "w") as z:
        buf = io.BytesIO()
        np.save(buf, np.array([1], np.int64))
        z.writestr("__format__.npy", buf.getvalue())
        buf = io.BytesIO()
        np.save(buf, np.frombuffer(json.dumps(cfg).encode(), np.uint8))
        z.writestr("__config__.npy", buf.getvalue())
    with TestClient(create_app(default_model="mlp")) as c:
        r = c.get("/api/models")
        assert r.status_code == 200, r.text
        mlp = next(m for m in r.json()["models"] if m["name"] == "mlp")
        assert mlp["trained"] is False and "cannot be read" in mlp["problem"]
        assert "2,000,000" in mlp["problem"] or "1,000,000" in mlp["problem"]
        error_of(c.post("/api/explain?model=mlp", content=png_bytes(np.eye(28)),
                        headers={"Content-Type": "image/png"}), 503, "model_unreadable")
