"""The "Save report" button, in a real browser: the page downloads one HTML file whose numbers are
the page's own, and that file opens in Chromium with the network off, shows every section, and
makes no request at all.  Fixtures (a live server, the browser) come from conftest.py, the
drawing helpers from _browser.py."""

from __future__ import annotations

import re

import pytest
from _browser import TIMEOUT, assert_quiet, draw_and_wait, listen

from digitlens.view.report_html import SECTIONS, _pct

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_save_report_downloads_a_page_that_works_offline(
        page, browser, artifacts, console_log):
    pg = page
    draw_and_wait(pg, [[(140, 50), (140, 230)]])  # a vertical stroke: a 1
    # the learner asks "why not 7?" and the report answers the same question
    expl = pg.evaluate("window.digitlens.expl")
    assert expl and expl["detail"] == "full"
    with pg.expect_download(timeout=TIMEOUT) as dl:
        pg.click("#btn-report")
    download = dl.value
    path = artifacts / "report.html"
    download.save_as(path)
    assert download.suggested_filename == f"digitlens-mlp-reads-{expl['prediction']}.html"
    pg.wait_for_function("document.getElementById('report-status').textContent.startsWith("
                         "'Saved')")
    pg.locator("#card-answer").screenshot(path=str(artifacts / "report_button.png"))

    # offline: a new context with the network off, every request recorded and refused
    ctx = browser.new_context(offline=True, viewport={"width": 1000, "height": 900})
    requests = []
    ctx.route("**/*", lambda route: (requests.append(route.request.url),
                                     route.continue_() if route.request.url.startswith("file:")
                                     else route.abort()))
    view = ctx.new_page()
    log = {"page": [], "console": []}
    listen(view, log)
    view.goto(path.resolve().as_uri())
    assert requests == [path.resolve().as_uri()]  # the file itself, nothing else
    for key, _ in SECTIONS:
        assert view.locator(f"section#{key}").count() == 1, key
    # every picture decoded (embedded PNGs, nothing to fetch)
    broken = view.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                           ".length")
    assert broken == 0 and view.locator("img").count() > 20
    # the page's numbers: each probability as the page received it from /api/explain
    shown = view.locator("#probabilities tr td:nth-child(3)").all_inner_texts()
    assert shown == [_pct(p) for p in expl["probabilities"]]
    assert view.locator("h1").inner_text() == f"The mlp model reads {expl['prediction']}"
    view.screenshot(path=str(artifacts / "report_offline.png"), full_page=True)
    view.emulate_media(media="print")
    view.screenshot(path=str(artifacts / "report_print.png"), full_page=True)
    pdf = view.pdf(format="A4")
    assert pdf[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
    assert requests == [path.resolve().as_uri()]
    assert_quiet(log, refusals_allowed=False)
    ctx.close()
