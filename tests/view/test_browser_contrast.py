"""Issue 13A in Chromium: on the cnn, a drawn ambiguous 4/9 gets a gap map whose 95th-percentile
pixel is visibly coloured (the scale is clipped at the 99th percentile and says so), contrast
units that open the unit view when clicked, a plausible edit next to the smallest one, and the
logistic model's panel is not called a hidden layer.

The browser, page and artifacts fixtures come from conftest.py, the drawing helpers from
_browser.py; the server here serves a cnn trained for one epoch and the logistic model.
"""

from __future__ import annotations

import numpy as np
import pytest
from _browser import FOUR_NINE, draw_and_wait, updates, wait_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(serve_models):
    with serve_models("contrast_home", {"logistic": None, "cnn": 1},
                      default_model="cnn", seed=0, training=False) as s:
        yield s


#: the colour of the gap map's canvas at the pixel whose |value| is the map's 95th percentile
P95_PIXEL = """() => {
  const c = window.digitlens.expl.contrast.pixels, m = c.map.flat().map(Math.abs);
  const sorted = [...m].sort((a, b) => a - b), v = sorted[Math.floor(0.95 * (m.length - 1))];
  const i = m.findIndex((a) => a === v), x = i % 28, y = Math.floor(i / 28);
  const px = document.getElementById('gap-map').getContext('2d').getImageData(x, y, 1, 1).data;
  return {value: v, limit: c.scale.limit, rgb: [px[0], px[1], px[2]]};
}"""


def test_cnn_ambiguous_four_nine_map_units_and_edits(page, artifacts):
    draw_and_wait(page, FOUR_NINE)
    assert page.get_attribute("body", "data-model") == "cnn"
    expl = page.evaluate("window.digitlens.expl")
    assert expl["prediction"] in (4, 9)
    c = expl["contrast"]
    # 1. the map: its scale is the engine's 99th percentile, and the 95th-percentile pixel shows
    m = np.abs(np.array(c["pixels"]["map"]))
    assert c["pixels"]["scale"]["limit"] == pytest.approx(np.percentile(m, 99), rel=1e-5)
    p95 = page.evaluate(P95_PIXEL)
    assert p95["value"] > 0
    # white is (255, 255, 255); the digit's faint gray at most 70 below; colour pulls a channel
    # far from the others
    r, g, b = p95["rgb"]
    assert max(r, g, b) - min(r, g, b) >= 40, p95
    legend = page.inner_text("#gap-legend")
    assert "99th percentile" in legend and "adds up to" in legend
    # the attribution panel: occlusion has no total
    page.click("#attr-methods label:has(input[value='occlusion'])")
    page.wait_for_selector("#attr-text:has-text('occlusion for')")
    assert page.inner_text("#attr-text .sum-note").startswith("No total")
    # 2. the units: numbers, top digits and a sentence; a click opens the unit view
    term = page.locator("#unit-terms .term.openable").first
    text = term.inner_text()
    assert "your digit gives it" in text and "weight difference" in text
    assert term.locator("canvas").count() >= 3  # what it responds to + its top training digits
    t = (c["units"]["for_a"] + c["units"]["for_b"])[0]
    term.click()
    page.wait_for_selector("#unit-detail dl")
    sel = page.evaluate("window.digitlens.selected")
    assert (sel["layer"], sel["unit"]) == (t["open_layer"], t["open_unit"])
    assert f"Unit {t['open_unit']} of" in page.inner_text("#unit-detail h3")
    # 4. the plausible edit, with its cost, next to the smallest one
    cf = expl["counterfactual"]
    assert cf["plausible"] is not None
    assert page.inner_text("#cf-plausible .pl-sentence") == cf["plausible"]["sentence"]
    assert page.inner_text("#cf-plausible .pl-ink") == f"{cf['plausible']['ink']:.1f}"
    if cf["looks_unchanged"]:
        assert "A few pixels can flip a network" in page.inner_text("#cf-plausible .cf-warning")
    page.locator("#panel-contrast").screenshot(path=str(artifacts / "contrast_cnn_4_9.png"))
    page.locator("#panel-attr").screenshot(path=str(artifacts / "attribution_cnn_4_9.png"))


def test_logistic_panel_title_and_coefficient_table(page, artifacts):
    before = updates(page)
    page.click("#model-options label:has(input[value='logistic'])")
    wait_settled(page, before)
    draw_and_wait(page, FOUR_NINE)
    assert page.get_attribute("body", "data-model") == "logistic"
    title = page.inner_text("#filters-title")
    assert "hidden layer looks for" not in title and "no hidden layer" in title
    # the last layer as a logistic regression: a coefficient table of weight difference × pixel
    rows = page.locator("#unit-terms details.coef tbody tr")
    assert rows.count() >= 12
    c = page.evaluate("window.digitlens.expl.contrast")
    first = rows.first.inner_text()
    assert c["units"]["table"][0]["name"] in first
    assert f"{c['units']['table'][0]['product']:.3f}".lstrip("-") in first
    page.locator("#panel-contrast").screenshot(path=str(artifacts / "contrast_logistic_4_9.png"))
