"""The My digits tab in Chromium: draw digits on the prompt's pad, relabel and delete, check
every model (the page's numbers == the engine's on the stored digits), open a misread digit's
explanation, and fine-tune in the background (before/after == the job's numbers).
Class mode on two pages: a learner draws, the teacher's dashboard updates.
Screenshots: artifacts/browser/mine-*.png, class-*.png."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _browser import TIMEOUT, assert_quiet, circle, listen, need_browser, open_page
from _server import live_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(model_home):
    """The page's server with logistic (2 epochs) and mlp (3 epochs), a teacher's token and class
    mode (the ``browser`` fixture of conftest.py starts after it)."""
    need_browser()
    from digitlens.view.server.app import create_app
    from digitlens.view.server.classroom import enable_class

    with model_home("mine_home", {"logistic": 2, "mlp": 3}) as (home, _):
        app = create_app(default_model="mlp", seed=0, token="teach")
        enable_class(app, "teach")  # class mode too: test_class_two_pages
        with live_server(app) as url:
            yield {"url": url, "app": app, "home": home}


def until(pg, js: str, timeout: float = 60.0):
    """Poll ``js`` until it is truthy (the page's CSP forbids eval, so no wait_for_function)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pg.evaluate(js):
            return
        time.sleep(0.05)
    status = pg.evaluate("(document.getElementById('mine-ft-status') || {}).textContent")
    raise AssertionError(f"still false after {timeout}s: {js} (fine-tune status: {status!r})")


def pad_stroke(pg, points, pad="#mine-pad"):
    """One mouse stroke through ``pad``'s coordinates (0..280)."""
    box = pg.locator(pad).bounding_box()
    k = box["width"] / 280
    pg.mouse.move(box["x"] + points[0][0] * k, box["y"] + points[0][1] * k)
    pg.mouse.down()
    for x, y in points[1:]:
        pg.mouse.move(box["x"] + x * k, box["y"] + y * k, steps=2)
    pg.mouse.up()


SHAPES = {
    0: [circle()],
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


def test_collect_check_explain_and_finetune(browser, server, artifacts, digits):
    from digitlens._util import paths
    from digitlens.data.mine import DigitStore
    from digitlens.nn.checkpoint import load_model

    log = {"page": [], "console": []}
    ctx, pg = open_page(browser, server["url"], log, viewport={"width": 1366, "height": 900})
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
    store = DigitStore(server["home"] / "mine.sqlite")
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
    status = server["app"].state.mine_jobs.status()
    cells = pg.locator("#mine-ft-result tbody td").all_inner_texts()
    assert cells == [f"{100 * status[w][k]:.1f}%" for k in ("mine_held", "bundled_test")
                     for w in ("before", "after")]
    assert (server["home"] / "models" / "custom" / "logistic_mine.npz").is_file()
    pg.screenshot(path=str(artifacts / "mine-finetune.png"), full_page=True)
    ctx.close()
    assert_quiet(log)


def test_class_two_pages_learner_draws_and_the_dashboard_updates(browser, server, artifacts):
    from digitlens.data.mine import DigitStore

    log = {"page": [], "console": []}
    url = server["url"]
    tctx = browser.new_context(viewport={"width": 1280, "height": 900})
    lctx = browser.new_context(viewport={"width": 420, "height": 860})  # a phone
    teacher, learner = tctx.new_page(), lctx.new_page()
    for pg in (teacher, learner):
        pg.set_default_timeout(TIMEOUT)
        listen(pg, log)
    store = DigitStore(server["home"] / "mine.sqlite")
    before = len(store.list(class_only=True))
    teacher.goto(url + "static/teacher.html#token=teach")
    until(teacher, f"document.body.dataset.total === '{before}'")
    learner.goto(url + "static/class.html")
    learner.fill("#join-nick", "ada")
    learner.click("#join-form button")
    until(learner, "!document.getElementById('class-draw').hidden")
    for s in SHAPES[7]:
        pad_stroke(learner, s, "#c-pad")
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
    listen(other, log)
    other.goto(url + "static/teacher.html#token=wrong")
    until(other, "document.getElementById('t-status').textContent.includes('token')")
    tctx.close()
    lctx.close()
    assert_quiet(log)
