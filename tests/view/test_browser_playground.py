"""The Playground tab in headless Chromium: the activation curves with their read-outs and the
learner's own sums, then ReLU against sigmoid at depth 3, both curves growing live, and the
closing sentence. Screenshots go to ``artifacts/browser/``.

The live server, browser and page fixtures are the ones of ``conftest.py``."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from _browser import circle, draw_and_wait

pytestmark = pytest.mark.browser


def _get(srv, path):
    with urllib.request.urlopen(srv["url"].rstrip("/") + path, timeout=30) as r:
        return json.loads(r.read())


def _text(pg, sel):
    return pg.locator(sel).inner_text()


def _wait(pg, what, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = what()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_functions_panel_reads_the_engines_numbers(page, server, artifacts):
    draw_and_wait(page, [circle()])                      # a digit: its sums make the rug
    page.click("#tab-play")
    page.wait_for_selector("#fn-pick input")
    canvas = page.locator("#fn-canvas")
    box = canvas.bounding_box()
    # hover at z ≈ 2 (the canvas spans z = -6..6 between its margins)
    page.mouse.move(box["x"] + box["width"] * (44 + (760 - 58) * 8 / 12) / 760,
                    box["y"] + box["height"] / 2)
    read = _wait(page, lambda: "slope" in _text(page, "#fn-readout") and _text(page, "#fn-readout"))
    api = _get(server, "/api/functions")
    z = float(read.split("z = ")[1].split()[0])
    i = min(range(len(api["z"])), key=lambda k: abs(api["z"][k] - z))
    s = api["functions"]["sigmoid"]
    assert f"sigmoid: a = {s['a'][i]:.4f}, slope = {s['slope'][i]:.4f}" in read
    assert "0.25" in _text(page, "#fn-note")            # sigmoid's slope is at most 0.25
    rug = _wait(page, lambda: _text(page, "#fn-rug-text"))
    assert "of your digit's" in rug and "sums" in rug
    page.locator("#fn-canvas").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "playground_functions.png"), full_page=False)


def test_relu_against_sigmoid_at_depth_3_grows_live_and_ends_with_the_sentence(page, server,
                                                                               artifacts):
    page.click("#tab-play")
    page.wait_for_selector(".pg-config")
    rows = page.locator(".pg-config")
    assert rows.count() == 2
    for k, act in enumerate(("relu", "sigmoid")):
        row = rows.nth(k)
        row.locator(".pg-acts select").first.select_option(act)
        depth = page.locator(".pg-config").nth(k).locator("input[type=number]").first
        depth.fill("3")
        depth.dispatch_event("change")
    acts = [[s.input_value() for s in page.locator(".pg-config").nth(k)
             .locator(".pg-acts select").all()] for k in range(2)]
    assert acts == [["relu"] * 3, ["sigmoid"] * 3]
    page.click("#pg-start")                              # slow motion: the default
    _wait(page, lambda: page.evaluate("document.body.dataset.playground") == "running")
    first = _wait(page, lambda: (lambda s: s if s["session"]["lanes"][1]["rows"] else None)(
        _get(server, "/api/playground")))
    time.sleep(2.5)
    page.locator("#pg-acc").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "playground_live.png"), full_page=False)
    later = _get(server, "/api/playground")["session"]
    assert later["running"], "slow motion should still be running"
    for k in range(2):                                   # both curves grew while we watched
        assert len(later["lanes"][k]["rows"]) > len(first["session"]["lanes"][k]["rows"])
    assert "slow motion" in _text(page, "#pg-status")
    _wait(page, lambda: page.evaluate("document.body.dataset.playground") == "completed", 120)
    done = _get(server, "/api/playground")["session"]
    assert done["labels"] == ["ReLU", "sigmoid"]
    summary = _wait(page, lambda: page.locator("#pg-summary").is_visible()
                    and _text(page, "#pg-summary"))
    for fact in done["summary"]["facts"]:
        assert fact in summary                           # the page shows the server's sentence
    assert "ReLU" in summary and "sigmoid" in summary
    last = done["lanes"][0]["rows"][-1]
    card = _text(page, ".pg-lane[data-lane='0']")
    assert f"{100 * last['test_accuracy']:.1f}%" in card  # page number == API number
    page.locator("#pg-summary").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "playground_done.png"), full_page=True)


def test_a_lab_verdict_link_opens_its_playground_preset(page, server):
    page.goto(server["url"] + "#playground=range")
    _wait(page, lambda: page.evaluate("document.body.dataset.playground") in ("running",
                                                                              "completed"))
    assert page.locator("#view-play").is_visible()
    # the preset's "what to look for" is written once the session's first answer is drawn: wait
    # for it rather than read it at the instant the state flips (it lost that race under load)
    assert "flat tails" in _wait(page, lambda: _text(page, "#pg-look"))
    page.click("#pg-cancel")
    _wait(page, lambda: page.evaluate("document.body.dataset.playground") in ("cancelled",
                                                                              "completed"))
