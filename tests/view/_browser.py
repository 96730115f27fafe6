"""Helpers for the browser tests (plain functions; the fixtures are in ``conftest.py``).

Headless Debian Chromium driven by Playwright: where Chromium is and how it is launched, what the
page said (``listen``, ``assert_quiet``), and drawing on the page's 280×280 board with mouse
strokes — a "1" as a vertical stroke, a "0" as a circle, a bundled test digit traced row by row
from its pixels.

Chromium comes from the system (``/usr/bin/chromium``, or ``$CHROMIUM``); Playwright cannot
download browsers here.  Without it the browser tests are skipped — except on CI (``CI=true``),
where they fail (``need_browser``).
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlens.preprocessing import SWITCHES

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
BRUSH = 20   # the page's stroke width on its 280×280 board (static/js/draw.js STROKE_WIDTH)
SEND = 0.5   # the page sends the board at this scale, 140×140 (static/js/draw.js SEND_SCALE)
TIMEOUT = 60_000  # ms: the machine may be busy


def need_browser():
    """Skip the calling test (fail it on CI) when Playwright or Chromium is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        reason = f"playwright is not installed ({e})"
    else:
        if os.path.exists(CHROMIUM):
            return
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run on CI: {reason}")
    pytest.skip(reason)


# ------------------------------------------------------------------------ what the page said
#: console errors that are the API's answers, shown on the page as messages (e.g. 422 "no ink
#: found" for a blank board); Chromium logs every 4xx response as a failed resource
_API_REFUSAL = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


def listen(pg, log):
    """Record ``pg``'s uncaught exceptions in ``log["page"]``, its console errors in
    ``log["console"]``."""
    pg.on("pageerror", lambda e: log["page"].append(str(e)))
    pg.on("console", lambda m: log["console"].append(m.text) if m.type == "error" else None)


def assert_quiet(log, *, refusals_allowed=True):
    """No uncaught exception, no console error (but, if allowed, the API's 4xx answers)."""
    assert not log["page"], log["page"]
    noise = [m for m in log["console"] if not (refusals_allowed and _API_REFUSAL.match(m))]
    assert not noise, noise


def open_page(browser, url, log, **context):
    """Open ``url`` in a new browser context (``context``: its options, e.g. ``viewport``) and
    wait until the page is ready; what it says goes to ``log`` (``listen``).
    Returns ``(context, page)``; close the context when done."""
    ctx = browser.new_context(**context)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT)
    listen(pg, log)
    pg.goto(url)
    pg.wait_for_selector("body[data-ready='1']", state="attached")
    return ctx, pg


# ------------------------------------------------------------------------------- drawing
def board_box(pg):
    b = pg.locator("#board").bounding_box()
    return b["x"], b["y"], b["width"] / 280  # CSS pixels per board pixel


def stroke(pg, points):
    """One mouse stroke through board coordinates (0..280)."""
    x0, y0, s = board_box(pg)
    pg.mouse.move(x0 + points[0][0] * s, y0 + points[0][1] * s)
    pg.mouse.down()
    for x, y in points[1:]:
        pg.mouse.move(x0 + x * s, y0 + y * s, steps=2)
    pg.mouse.up()


def updates(pg) -> int:
    return int(pg.evaluate("document.body.dataset.updates || '0'"))


def wait_settled(pg, after: int):
    """Wait until a response newer than ``after`` has been drawn and nothing is pending."""
    pg.wait_for_function  # noqa: B018  (not used: the page's CSP forbids eval)
    deadline = time.time() + TIMEOUT / 1000
    while time.time() < deadline:
        state = pg.evaluate("[document.body.dataset.busy, +(document.body.dataset.updates||0),"
                            " document.body.dataset.detail]")
        if state[0] == "0" and state[1] > after:
            return
        time.sleep(0.05)
    raise AssertionError(f"the page did not settle: {state}")


def draw_and_wait(pg, strokes):
    before = updates(pg)
    for s in strokes:
        stroke(pg, s)
    wait_settled(pg, before)


def circle(cx=140, cy=140, rx=60, ry=85, n=48):
    return [(cx + rx * math.sin(2 * math.pi * k / n), cy - ry * math.cos(2 * math.pi * k / n))
            for k in range(n + 1)]


#: an ambiguous 4/9 on the 280×280 board: a 4 whose top is almost closed
FOUR_NINE = [[(95, 60), (90, 150), (185, 150)],   # left stroke and the bar
             [(95, 60), (175, 48)],                # the top, nearly closing the loop
             [(180, 45), (178, 250)]]              # the right stroke, down to the bottom


def row_strokes(img: np.ndarray, threshold: float = 0.5, scale: float = 10.0):
    """A 28×28 digit as horizontal strokes, one per run of inked pixels in each row."""
    out = []
    for y, row in enumerate(img):
        on = np.flatnonzero(row > threshold)
        if not on.size:
            continue
        runs = np.split(on, np.flatnonzero(np.diff(on) > 1) + 1)
        for r in runs:
            cy = (y + 0.5) * scale
            out.append([((r[0] + 0.5) * scale, cy), ((r[-1] + 0.5) * scale, cy)])
    return out


def render_strokes(strokes) -> bytes:
    """What the page would send for these strokes (white round-capped lines on black)."""
    side, brush = round(280 * SEND), BRUSH * SEND
    im = Image.new("L", (side, side), 0)
    d = ImageDraw.Draw(im)
    for s in strokes:
        s = [(x * SEND, y * SEND) for x, y in s]
        d.line(s, fill=255, width=round(brush))
        for x, y in (s[0], s[-1]):
            d.ellipse([x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2], fill=255)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------ what the page shows
def shown_prediction(pg) -> str:
    return pg.inner_text("#pred-digit").strip()


def panels_rendered(pg, *, conv: bool = False):
    assert pg.locator("#steps .step").count() == 1 + len(SWITCHES)
    assert pg.locator("#step-detail").inner_text().strip()
    assert pg.locator("#probs .prob").count() == 10
    assert pg.locator("#network .layer").count() >= 3
    assert pg.locator("#network .unit").count() >= 10
    for c in ("#attr-map", "#gap-map", "#cf-before", "#cf-delta", "#cf-after"):
        assert pg.eval_on_selector(c, "c => c.width") == 28, c
    assert pg.locator("#attr-methods input").count() == 4
    assert pg.locator("#attr-target input").count() == 10
    assert pg.locator("#vs-digits input").count() == 9
    assert pg.locator("#unit-terms .term").count() >= 2
    assert pg.is_visible("#counterfactual")
    assert pg.locator("#filters .filter").count() >= 6
    assert pg.locator("#nearest figure").count() >= 3
    for card in ("#panel-attr", "#panel-contrast", "#panel-filters", "#panel-nearest"):
        assert "stale" not in (pg.get_attribute(card, "class") or ""), card
    if conv:
        assert pg.locator("#hand-kernels .filter").count() >= 4
        assert "Filters" in pg.inner_text("#filters-title")
