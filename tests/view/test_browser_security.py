"""A real cross-origin page in Chromium against a real server (issue 15): a page on another site
tries to start the lab and cancel a job on the learner's server, and a DNS-rebinding name
tries to read its API.  Everything must be refused, and the page itself must keep working.

Chromium resolves ``evil.example`` to 127.0.0.1 (``--host-resolver-rules``), so the attacker's
page is served by a small HTTP server on loopback but has its own origin, as a real site would.
"""

from __future__ import annotations

import http.server
import threading
import time
from urllib.parse import urlsplit

import pytest
from _browser import ARGS, CHROMIUM, TIMEOUT, need_browser
from _server import StubLab, live_server

pytestmark = pytest.mark.browser


ATTACK = """<!doctype html><html><head><meta charset="utf-8"><title>a page on another site</title>
<style>body{font:16px sans-serif;margin:2em} li{margin:.4em 0}</style></head><body>
<h1>A web page on another site</h1>
<p>It tries to make your browser use your digitlens server at <code>TARGET</code>.</p>
<ol id="log"></ol>
<iframe name="sink" style="width:600px;height:120px"></iframe>
<form id="f" method="POST" action="TARGETapi/lab/run" target="sink">
  <input type="hidden" name="a" value="1"></form>
<script>
const log = (t) => { const li = document.createElement("li"); li.textContent = t;
                     document.getElementById("log").append(li); };
async function attack() {
  const tries = [
    ["fetch, text/plain, no-cors: start the lab", () => fetch("TARGETapi/lab/run",
      {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: "{}"})],
    ["fetch, no body, no-cors: cancel a training job", () => fetch(
      "TARGETapi/train/abcdef123456/cancel", {method: "POST", mode: "no-cors"})],
    ["fetch, JSON (needs the server's permission): start training", () => fetch(
      "TARGETapi/train", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({model: "mlp"})})],
    ["fetch: read the list of models", () => fetch("TARGETapi/models")],
  ];
  for (const [what, go] of tries) {
    try { const r = await go(); log(`${what}: the browser says ${r.type} ${r.status}`); }
    catch (e) { log(`${what}: blocked by the browser (${e.message})`); }
  }
  document.getElementById("f").submit();
  log("form POST: start the lab (answer in the frame below)");
  document.body.dataset.done = "1";
}
attack();
</script></body></html>"""


@pytest.fixture(scope="module")
def target(model_home):
    """The learner's server (a stub lab, no models) on a free loopback port, recording every
    request's method, path and status as the server answered it."""
    need_browser()
    from digitlens.view.server.app import create_app

    with model_home("xsite_home", {}):
        lab = StubLab()
        app = create_app(default_model="mlp", lab=lab, training=True)
        seen: list[tuple[str, str, int]] = []

        async def recorder(scope, receive, send):
            async def rec_send(msg):
                if msg["type"] == "http.response.start":
                    seen.append((scope["method"], scope["path"], msg["status"]))
                await send(msg)
            await app(scope, receive, rec_send)

        recorder.state = app.state
        with live_server(recorder, lifespan="off") as url:
            yield {"url": url, "port": urlsplit(url).port, "lab": lab, "seen": seen}


@pytest.fixture(scope="module")
def evil(target):
    """The attacker's site: serves ATTACK at http://evil.example:<port>/."""
    html = ATTACK.replace("TARGET", target["url"]).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://evil.example:{srv.server_port}/"
    srv.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + [
            "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        yield b
        b.close()


def test_a_page_on_another_site_cannot_start_or_cancel_anything(browser, target, evil,
                                                                 artifacts):
    pg = browser.new_page()
    pg.set_default_timeout(TIMEOUT)
    before = len(target["seen"])
    pg.goto(evil)
    pg.wait_for_selector("body[data-done='1']", state="attached")
    deadline = time.time() + 10  # the fetch and the form both reach /api/lab/run
    while time.time() < deadline and sum(p == "/api/lab/run" for _, p, _ in
                                         target["seen"][before:]) < 2:
        time.sleep(0.1)
    time.sleep(0.5)  # the frame draws the form's answer
    pg.screenshot(path=str(artifacts / "xsite_attack_page.png"), full_page=True)
    text = pg.inner_text("#log")
    pg.close()
    reached = target["seen"][before:]
    assert target["lab"].started == 0, reached
    posts = [(p, s) for m, p, s in reached if m == "POST"]
    assert ("/api/lab/run", 403) in posts and ("/api/train/abcdef123456/cancel", 403) in posts
    assert all(s in (403, 415) for _, s in posts), posts
    # the JSON request needs a CORS preflight the server never grants: it never arrives
    assert "/api/train" not in [p for p, _ in posts]
    assert "blocked by the browser" in text  # reading the API from another site fails too


def test_a_dns_rebinding_name_gets_nothing_but_a_refusal(browser, target, artifacts):
    pg = browser.new_page()
    r = pg.goto(f"http://evil.example:{target['port']}/api/models")
    assert r.status == 403
    body = r.json()
    assert body["error"] == "host_not_allowed" and "127.0.0.1" in body["message"]
    pg.goto(f"http://evil.example:{target['port']}/")
    pg.screenshot(path=str(artifacts / "xsite_rebinding_refused.png"))
    assert "does not answer to the name" in pg.inner_text("body")
    pg.close()


def test_the_servers_own_page_still_starts_the_lab(browser, target):
    pg = browser.new_page()
    pg.set_default_timeout(TIMEOUT)
    pg.goto(target["url"])
    started = target["lab"].started
    status = pg.evaluate("fetch('/api/lab/run', {method: 'POST'}).then(r => r.status)")
    assert status == 202 and target["lab"].started == started + 1
    status = pg.evaluate("fetch('/api/lab/cancel', {method: 'POST', headers: {'Content-Type': "
                         "'application/json'}, body: '{}'}).then(r => r.status)")
    assert status == 200
    pg.close()
