"""The Evaluation tab in Chromium: the confusion matrix renders, a cell opens its digits and a digit
opens its explanation, the map places a drawn digit, the robustness curves arrive; every number the
page shows is the API's.  Screenshots: artifacts/browser/evaluation-*.png."""

from __future__ import annotations

import time

import numpy as np
import pytest

from _browser import TIMEOUT, draw_and_wait

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _api(page, path):
    return page.request.get(page.url.rstrip("/") + path).json()


def _wait(page, selector_js, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if page.evaluate(selector_js):
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {selector_js}")


def test_evaluation_tab_cells_digits_map_and_curves(page, artifacts):
    # draw a 1 first, so the map has a drawing to place
    draw_and_wait(page, [[(140, 50), (140, 230)]])
    page.click("#tab-eval")
    page.select_option("#ev-model", "mlp")
    _wait(page, "document.body.dataset.evReady === 'mlp:bundled'"
                " && !!document.body.dataset.evPlaced")
    api = _api(page, "/api/evaluation/mlp")
    # the matrix on the page is the API's, cell for cell
    cells = page.eval_on_selector_all(
        ".ev-matrix button.ev-cell",
        "bs => bs.map(b => [+b.dataset.true, +b.dataset.pred, +b.textContent])")
    m = np.array(api["confusion"]["matrix"])
    assert len(cells) == int(np.count_nonzero(m))
    assert all(m[t, p] == n for t, p, n in cells)
    status = page.inner_text("#ev-status")
    assert f"{100 * api['accuracy']:.1f}%" in status and f"{api['n_mistakes']} mistakes" in status
    assert page.inner_text("#ev-sure") == api["calibration"]["sentence"]
    assert page.inner_text("#ev-ece") == api["ece_sentence"]
    page.screenshot(path=str(artifacts / "evaluation-top.png"), full_page=False)

    # the map: the drawn 1 placed, its neighbours shown
    place = page.inner_text("#ev-place")
    assert "Your digit" in place
    assert page.locator("#ev-place .ev-thumb").count() == 5
    page.locator("#ev-map").scroll_into_view_if_needed()
    page.check("#ev-only49")
    page.screenshot(path=str(artifacts / "evaluation-map.png"), full_page=False)

    # a confusion cell opens its digits, largest mistake first
    t, p, n = api["confusion"]["most_confused"][0]
    page.locator(f".ev-matrix button[data-true='{t}'][data-pred='{p}']").click()
    _wait(page, "document.querySelectorAll('#ev-cell .ev-thumb').length > 0", 60)
    assert page.locator("#ev-cell .ev-thumb").count() == min(n, 60)
    page.locator("#ev-cell").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "evaluation-cell.png"), full_page=False)

    # ... and a digit opens on the Explore tab with its explanation
    first = page.locator("#ev-cell .ev-thumb").first
    index = int(first.get_attribute("data-index"))
    before = int(page.evaluate("document.body.dataset.updates || '0'"))
    first.click()
    deadline = time.time() + TIMEOUT / 1000
    while time.time() < deadline and int(page.evaluate(
            "document.body.dataset.updates || '0'")) <= before:
        time.sleep(0.1)
    assert page.is_visible("#view-explore")
    assert f"#{index}" in page.inner_text("#source-note")
    cell = _api(page, f"/api/evaluation/mlp/cell?true={t}&predicted={p}")
    assert cell["digits"][0]["index"] == index
    _wait(page, f"window.digitlens.expl && window.digitlens.expl.prediction === {p}", 60)
    assert page.evaluate("window.digitlens.model") == "mlp"
    page.screenshot(path=str(artifacts / "evaluation-opened.png"), full_page=False)

    # the robustness curves of every model, one plot per change
    page.click("#tab-eval")
    _wait(page, "document.querySelectorAll('.ev-robust-one').length === 7", 240)
    rob = _api(page, "/api/evaluation/robustness")
    assert rob["status"] == "ready" and set(rob["result"]["accuracy"]) == set(rob["models"])
    page.locator("#ev-robust").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "evaluation-robustness.png"), full_page=False)
    page.screenshot(path=str(artifacts / "evaluation-full.png"), full_page=True)

    # other writers' digits: the same views, the API's numbers
    page.locator("#ev-data").scroll_into_view_if_needed()
    page.select_option("#ev-data", "optdigits")
    _wait(page, "document.body.dataset.evReady === 'mlp:optdigits'", 120)
    opt = _api(page, "/api/evaluation/mlp?data=optdigits")
    assert f"{100 * opt['accuracy']:.1f}%" in page.inner_text("#ev-status")
    assert "other writers" in page.inner_text("#ev-status")
    assert page.inner_text("#ev-sure") == opt["calibration"]["sentence"]
    page.screenshot(path=str(artifacts / "evaluation-optdigits.png"), full_page=False)
