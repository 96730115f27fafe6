"""The My digits tab in Chromium: draw digits on the prompt's pad, relabel and delete, check
every model (the page's numbers == the engine's on the stored digits), open a misread digit's
explanation, and fine-tune in the background (before/after == the job's numbers).
Class mode on two pages: a learner draws, the teacher's dashboard updates.
Screenshots: artifacts/browser/mine-*.png, class-*.png."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn.checkpoint import save_model

import test_browser as tb
artifacts = tb.artifacts  # the screenshots' folder (a fixture, shared by assignment)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mine_server(tmp_path_factory, trained, digits):
    tb._need_browser()
    import uvicorn

    from digitlens._util import paths
    from digitlens.view.server.app import create_app

    home = tmp_path_factory.mktemp("mine_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("DIGITLENS_HOME", str(home))
    for name, epochs in (("logistic", 2), ("mlp", 3)):
        m = trained(name, epochs)
        _, acc = dl.evaluate(m, digits.x_test, digits.y_test)
        save_model(m, paths.model_path(name), {"test_accuracy": acc})
    from digitlens.view.server.classroom import enable_class

    app = create_app(default_model="mlp", seed=0, token="teach")
    enable_class(app, "teach")  # class mode too: test_class_two_pages
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and t.is_alive(), "the test server did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}/", "app": app, "home": home}
    srv.should_exit = True
    t.join(10)
    mp.undo()


@pytest.fixture(scope="module")
def chromium(mine_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=tb.CHROMIUM, args=tb.ARGS)
        yield b
        b.close()


def until(pg, js: str, timeout: float = 60.0):
    """Poll ``js`` until it is truthy (the page's CSP forbids eval, so no wait_for_function)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pg.evaluate(js):
            return
        time.sleep(0.05)
    status = pg.evaluate("(document.getElementById('mine-ft-status') || {}).textContent")
    raise AssertionError(f"still false after {timeout}s: {js} (fine-tune status: {status!r})")


def pad_stroke(pg, points):
    box = pg.locator("#mine-pad").bounding_box()
    k = box["width"] / 280
    pg.mouse.move(box["x"] + points[0][0] * k, box["y"] + points[0][1] * k)
    pg.mouse.down()
    for x, y in points[1:]:
        pg.mouse.move(box["x"] + x * k, box["y"] + y * k, steps=2)
    pg.mouse.up()


SHAPES = {
    0: [tb.circle()],
    1: [[(150, 40), (140, 240)]],
    7: [[(70, 50), (210, 50), (120, 240)]],
    4: [[(170, 40), (80, 170), (210, 170)], [(170, 60), (170, 250)]],
}


def save_digit(pg, shape: int, label: int | None = None):
    n = pg.locator(".mine-tile").count()
    for s in SHAPES[shape]:
        pad_stroke(pg, s)
    if label is not None:
        pg.select_option("#mine-label", str(label))
    pg.click("#mine-save")
    until(pg, f"document.querySelectorAll('.mine-tile').length === {n + 1}")


def test_collect_check_explain_and_finetune(chromium, mine_server, artifacts, digits):
    from digitlens._util import paths
    from digitlens.data.mine import DigitStore
    from digitlens.nn.checkpoint import load_model

    log = {"page": [], "console": []}
    ctx = chromium.new_context(viewport={"width": 1366, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(tb.TIMEOUT)
    tb.listen(pg, log)
    pg.goto(mine_server["url"])
    pg.wait_for_selector("body[data-ready='1']", state="attached")
    pg.click("#tab-mine")
    assert pg.locator("#mine-prompt").inner_text() == "Draw a 0"
    save_digit(pg, 0)
    assert pg.locator("#mine-prompt").inner_text() == "Draw a 1"  # the prompt cycles
    save_digit(pg, 1)
    save_digit(pg, 7, label=7)
    save_digit(pg, 4, label=4)
    save_digit(pg, 1, label=1)
    save_digit(pg, 0, label=0)
    save_digit(pg, 7, label=7)
    save_digit(pg, 0, label=3)   # a 0 saved as a 3 by mistake, deleted below
    store = DigitStore(mine_server["home"] / "mine.sqlite")
    assert store.count() == 8
    # delete the mistake; relabel the first 0 as a 9, which every model will then misread
    last = store.list()[-1].id
    pg.click(f".mine-tile[data-id='{last}'] .mine-del")
    until(pg, "document.querySelectorAll('.mine-tile').length === 7")
    first = store.list()[0].id
    pg.select_option(f".mine-tile[data-id='{first}'] select", "9")
    until(pg, f"document.querySelector(\".mine-tile[data-id='{first}'] select\")"
                         ".value === '9'")
    deadline = time.time() + 10
    while store.get(first).label != 9 and time.time() < deadline:
        time.sleep(0.05)
    assert store.get(first).label == 9 and store.count() == 7
    pg.screenshot(path=str(artifacts / "mine-collect.png"), full_page=True)

    # how well does it read me: the page's numbers are the engine's on the stored digits
    pg.click("#mine-eval-btn")
    pg.wait_for_selector("#mine-eval tbody tr")
    x, y, ids = store.arrays()
    for row in pg.locator("#mine-eval tbody tr").all():
        cells = row.locator("th, td").all_inner_texts()
        model = load_model(paths.model_path(cells[0]))
        assert cells[1] == f"{100 * np.mean(model.predict(digits.x_test) == digits.y_test):.1f}%"
        assert cells[2] == f"{100 * np.mean(model.predict(x) == y):.1f}%"
    pg.locator("#mine-eval tbody tr", has_text="mlp").click()
    mlp = load_model(paths.model_path("mlp"))
    wrong = ids[mlp.predict(x) != y]
    assert first in wrong
    assert pg.locator(".mine-miss").count() == len(wrong)
    conf = pg.locator("#mine-confusion tbody tr").nth(9).locator("td").all_inner_texts()
    answer = int(mlp.predict(x[ids == first])[0])
    assert conf[answer] == "1"
    pg.screenshot(path=str(artifacts / "mine-evaluate.png"), full_page=True)

    # a misread digit opens in the Explore tab, explained like any drawing
    pg.locator(".mine-miss", has_text="your 9").first.click()
    pg.wait_for_selector("#view-explore:not([hidden])")
    until(pg, "document.getElementById('source-note').textContent.includes('#"
                         f"{first}')")
    until(pg, "window.digitlens.expl && window.digitlens.expl.prediction !== undefined")
    assert pg.evaluate("window.digitlens.expl.prediction") == answer
    pg.evaluate("window.scrollTo(0, 0)")
    pg.screenshot(path=str(artifacts / "mine-explain.png"))

    # teach it: fine-tune the logistic model in the background
    pg.click("#tab-mine")
    pg.select_option("#mine-ft-model", "logistic")
    pg.click("#mine-ft-btn")
    until(pg, "document.getElementById('mine-ft-status').textContent"
                         ".startsWith('Done')", timeout=120)
    status = mine_server["app"].state.mine_jobs.status()
    cells = pg.locator("#mine-ft-result tbody td").all_inner_texts()
    assert cells == [f"{100 * status[w][k]:.1f}%" for k in ("mine_held", "bundled_test")
                     for w in ("before", "after")]
    assert (mine_server["home"] / "models" / "custom" / "logistic_mine.npz").is_file()
    pg.screenshot(path=str(artifacts / "mine-finetune.png"), full_page=True)
    ctx.close()
    tb.assert_quiet(log)


def test_class_two_pages_learner_draws_and_the_dashboard_updates(chromium, mine_server,
                                                                  artifacts):
    from digitlens.data.mine import DigitStore

    log = {"page": [], "console": []}
    url = mine_server["url"]
    tctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    lctx = chromium.new_context(viewport={"width": 420, "height": 860})  # a phone
    teacher, learner = tctx.new_page(), lctx.new_page()
    for pg in (teacher, learner):
        pg.set_default_timeout(tb.TIMEOUT)
        tb.listen(pg, log)
    store = DigitStore(mine_server["home"] / "mine.sqlite")
    before = len(store.list(class_only=True))
    teacher.goto(url + "static/teacher.html#token=teach")
    until(teacher, f"document.body.dataset.total === '{before}'")
    learner.goto(url + "static/class.html")
    learner.fill("#join-nick", "ada")
    learner.click("#join-form button")
    until(learner, "!document.getElementById('class-draw').hidden")
    for s in SHAPES[7]:
        box = learner.locator("#c-pad").bounding_box()
        k = box["width"] / 280
        learner.mouse.move(box["x"] + s[0][0] * k, box["y"] + s[0][1] * k)
        learner.mouse.down()
        for x, y in s[1:]:
            learner.mouse.move(box["x"] + x * k, box["y"] + y * k, steps=2)
        learner.mouse.up()
    learner.select_option("#c-label", "7")
    learner.click("#c-save")
    until(learner, "document.querySelectorAll('#c-grid .mine-tile').length === 1")
    learner.screenshot(path=str(artifacts / "class-learner.png"), full_page=True)
    # the dashboard updates by itself (it polls every 3 s)
    until(teacher, f"document.body.dataset.total === '{before + 1}'", timeout=20)
    rows = teacher.locator("#t-per-learner tbody tr").all_inner_texts()
    assert any(r.startswith("ada\t1") for r in rows), rows
    assert store.list(class_only=True)[-1].learner == "ada"
    assert teacher.locator("#t-models tbody tr").count() >= 1
    teacher.screenshot(path=str(artifacts / "class-teacher.png"), full_page=True)
    # without the token the dashboard is refused
    other = tctx.new_page()
    tb.listen(other, log)
    other.goto(url + "static/teacher.html#token=wrong")
    until(other, "document.getElementById('t-status').textContent.includes('token')")
    tctx.close()
    lctx.close()
    tb.assert_quiet(log)
