"""Cross-site requests, DNS rebinding, content types, the teacher's token and work in flight,
at the HTTP level (issue 15).  The browser version is tests/view/test_browser_security.py."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from _server import StubLab, live_server
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from digitlens.view.server.app import create_app
from digitlens.view.server.errors import install_handlers
from digitlens.view.server.security import HostPolicy, SecurityMiddleware


@pytest.fixture
def lab():
    return StubLab()


@pytest.fixture
def client(lab):
    with TestClient(create_app(lab=lab, default_model="mlp")) as c:
        yield c


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_cross_site_form_cannot_start_the_lab(client, lab):
    r = client.post("/api/lab/run", content=b"a=1",
                    headers={**FORM, "Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "cross_origin"
    assert lab.started == 0


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain",
                                   "multipart/form-data; boundary=x"])
def test_state_changing_requests_need_json_even_without_an_origin(client, lab, ctype):
    r = client.post("/api/lab/run", content=b"a=1", headers={"Content-Type": ctype})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    r = client.post("/api/explain", content=b"{}", headers={"Content-Type": ctype})
    assert r.status_code == 415
    assert lab.started == 0


def test_same_origin_json_and_bodyless_posts_pass(client, lab):
    r = client.post("/api/lab/run", headers={"Origin": "http://testserver"})
    assert r.status_code == 202 and lab.started == 1
    r = client.post("/api/lab/cancel", json={}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200


def test_image_bytes_are_accepted_only_on_the_explain_endpoints(client):
    r = client.post("/api/explain?model=nope", content=b"\x89PNG",
                    headers={"Content-Type": "image/png"})
    assert r.status_code == 404  # past the middleware: the model name is checked
    r = client.post("/api/lab/run", content=b"\x89PNG", headers={"Content-Type": "image/png"})
    assert r.status_code == 415


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://testserver:9999",
                                    "https://testserver", "http://127.0.0.1.evil.example"])
def test_foreign_origins_are_refused(client, origin):
    r = client.get("/api/models", headers={"Origin": origin})
    assert r.status_code == 403, origin


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io",
                                  "localhost.evil.example", "10.0.0.5:8000"])
def test_foreign_host_names_are_refused(client, host):
    r = client.get("/api/models", headers={"Host": host})
    assert r.status_code == 403 and r.json()["error"] == "host_not_allowed"
    assert "--allowed-host" in r.json()["message"]


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "127.0.0.2",
                                  "[::1]:8000", "LOCALHOST.", "app.localhost"])
def test_loopback_hosts_pass(client, host):
    assert client.get("/api/health", headers={"Host": host}).status_code == 200


def test_host_policy_adds_listen_address_and_allowed_names():
    p = HostPolicy("192.168.1.5", ["teacher.local"])
    assert p.allows("192.168.1.5:8000") and p.allows("teacher.local:8000")
    assert not p.allows("192.168.1.6") and not p.allows("evil.example")
    assert not p.allows("testserver")
    every = HostPolicy("0.0.0.0")
    assert every.allows("10.1.2.3:8000") and every.allows("[fe80::1]:80")
    assert not every.allows("evil.example")  # rebinding needs a name


def test_the_teacher_token_guards_training_lab_and_cancel(lab):
    app = create_app(lab=lab, default_model="mlp", token="s3cret")
    with TestClient(app) as c:
        for path in ("/api/lab/run", "/api/lab/cancel", "/api/train/abcdef123456/cancel"):
            r = c.post(path, json={})
            assert r.status_code == 401 and r.json()["error"] == "teacher_only", path
            assert r.headers["WWW-Authenticate"] == "Bearer"
        r = c.post("/api/train", json={"model": "mlp"}, headers={"Authorization": "Bearer no"})
        assert r.status_code == 401
        assert c.post("/api/lab/run", headers={"Authorization": "Bearer s3cret"}).status_code \
            == 202
        assert lab.started == 1
        assert c.get("/api/models").status_code == 200  # learners' endpoints stay open


def test_a_full_queue_answers_503_with_retry_after():
    async def slow_app(scope, receive, send):
        await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    mw = SecurityMiddleware(slow_app, HostPolicy(test_client=True), max_in_flight=2)
    statuses, headers = [], []

    async def call():
        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(msg):
            if msg["type"] == "http.response.start":
                statuses.append(msg["status"])
                headers.append(dict(msg["headers"]))
        scope = {"type": "http", "method": "POST", "path": "/api/explain", "headers": [
            (b"host", b"127.0.0.1"), (b"content-type", b"application/json")]}
        await mw(scope, receive, send)

    async def main():
        await asyncio.gather(*(call() for _ in range(5)))
    asyncio.run(main())
    assert sorted(statuses) == [200, 200, 503, 503, 503]
    assert all(h.get(b"retry-after") == b"1" for s, h in zip(statuses, headers) if s == 503)
    assert mw.in_flight == 0


def test_a_body_that_stops_arriving_gets_408():
    inner = FastAPI()
    install_handlers(inner)

    @inner.post("/api/explain")
    async def read(request: Request):
        return {"n": len(await request.body())}

    mw = SecurityMiddleware(inner, HostPolicy(test_client=True), body_timeout=0.2)
    sent = []

    async def main():
        calls = 0

        async def receive():
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": b"{", "more_body": True}
            await asyncio.sleep(5)  # a client dripping its body
            return {"type": "http.request", "body": b"}", "more_body": False}

        async def send(msg):
            sent.append(msg)
        scope = {"type": "http", "method": "POST", "path": "/api/explain", "headers": [
            (b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
            "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 80)}
        await asyncio.wait_for(mw(scope, receive, send), 3)
    asyncio.run(main())
    assert sent[0]["status"] == 408, sent


# ------------------------------------------------------------ the live server's own limits
def test_serve_passes_its_names_token_and_limits_to_the_server(tmp_path, monkeypatch):
    import contextlib

    import threadpoolctl
    import uvicorn
    from typer.testing import CliRunner

    import digitlens.view.server.app as server
    from digitlens.cli import app as cli_app
    from digitlens.view.server.protocol import DeadlineH11Protocol

    calls = []
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(server, "warm_up", lambda app, names: None)
    monkeypatch.setattr(threadpoolctl, "threadpool_limits",
                        lambda **kw: contextlib.nullcontext())
    r = CliRunner().invoke(cli_app, ["serve", "--no-train", "--port", "8765", "--model", "mlp",
                                     "--allowed-host", "class.local", "--token", "s3cret"])
    assert r.exit_code == 0, r.output
    web, kw = calls[-1]
    assert kw["http"] is DeadlineH11Protocol and kw["limit_concurrency"] >= 32
    with TestClient(web, base_url="http://127.0.0.1:8765") as c:
        assert c.get("/api/health", headers={"Host": "class.local:8765"}).status_code == 200
        assert c.get("/api/health", headers={"Host": "testserver"}).status_code == 403
        assert c.post("/api/lab/run").status_code == 401
        assert c.post("/api/lab/cancel", headers={"Authorization": "Bearer s3cret"}) \
            .status_code == 200


def test_a_client_dripping_its_headers_is_cut_off_and_others_are_served(monkeypatch):
    import socket
    import time

    import httpx

    from digitlens.view.server.protocol import DeadlineH11Protocol

    monkeypatch.setattr(DeadlineH11Protocol, "header_timeout", 0.5)

    async def hello(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with live_server(hello, log_level="error", http=DeadlineH11Protocol, lifespan="off") as url:
        drip = socket.create_connection(("127.0.0.1", urlsplit(url).port))
        drip.sendall(b"GET / HT")                    # ... and then nothing more
        t0 = time.perf_counter()
        drip.settimeout(5)
        assert drip.recv(100) == b""                 # closed by the server
        assert 0.4 < time.perf_counter() - t0 < 4.5  # the deadline, not the 5 s recv timeout
        with httpx.Client() as c:                    # a normal client is served, also after
            assert c.get(url).text == "ok"           # its idle connection
            time.sleep(0.6)                          # was closed
            assert c.get(url).text == "ok"


def test_a_client_hanging_up_mid_body_raises_nothing_out_of_the_app(client):
    """uvicorn logs a traceback for any exception leaving the app; a hang-up is not a bug."""
    app = client.app

    async def main():
        sent = []
        calls = 0

        async def receive():
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": b"\x89PNG", "more_body": True}
            return {"type": "http.disconnect"}

        async def send(msg):
            sent.append(msg)
        scope = {"type": "http", "method": "POST", "path": "/api/explain", "headers": [
            (b"host", b"127.0.0.1"), (b"content-type", b"image/png")], "query_string":
            b"model=logistic", "scheme": "http", "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 5), "root_path": "", "http_version": "1.1", "app": app}
        await app(scope, receive, send)   # must not raise ClientDisconnect
        return sent
    sent = asyncio.run(main())
    assert sent and sent[0]["status"] == 400


def test_every_endpoint_that_reads_an_image_takes_a_place_before_its_body(lab):
    """Any POST whose body carries an image (a field named "image" or raw image bytes) must be a
    heavy path, so 40 clients cannot make the server hold 40 bodies at once."""
    import re as _re

    from digitlens.view.server.app import create_app
    from digitlens.view.server.security import HEAVY_PATHS

    spec = create_app(lab=lab, default_model="mlp").openapi()
    schemas = spec["components"]["schemas"]

    def fields(ref_or_schema):
        s = ref_or_schema
        if "$ref" in s:
            s = schemas[s["$ref"].rsplit("/", 1)[1]]
        return set(s.get("properties", {}))

    image_posts = []
    for path, ops in spec["paths"].items():
        body = ops.get("post", {}).get("requestBody", {}).get("content", {})
        takes_image = any(k.startswith("image/") or k == "application/octet-stream"
                          for k in body) or any("image" in fields(c.get("schema", {}))
                                                for c in body.values())
        if takes_image:
            image_posts.append(_re.sub(r"\{[^}]+\}", "x", path))
    assert "/api/explain" in image_posts and len(image_posts) >= 8, image_posts
    assert [p for p in image_posts if not HEAVY_PATHS.match(p)] == []
