"""The Explore page on a 390-px phone: after drawing, nothing is wider than the screen (no
horizontal scroll), on a dense model and on a convolutional one; the model switcher wraps.

Fixtures (the live server with logistic, lab, mlp and cnn_tiny; browser) come from conftest.py,
the drawing helpers from _browser.py.
"""

from __future__ import annotations

import pytest

from _browser import assert_quiet, circle, draw_and_wait, open_page, updates, wait_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}

#: the elements wider than the screen whose parent is not (the culprits, for the message)
WIDE = """() => { const W = document.documentElement.clientWidth, out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect(), p = e.parentElement.getBoundingClientRect();
    if (r.width > 0 && r.right > W + 0.5 && !(p.right > W + 0.5))
      out.push(`${e.tagName}#${e.id}.${e.className}`);
  }
  return out.slice(0, 10); }"""


def test_the_explore_page_fits_a_390_px_phone(browser, server, console_log, artifacts):
    ctx, pg = open_page(browser, server["url"], console_log, viewport=PHONE,
                        device_scale_factor=1, is_mobile=True, has_touch=True)
    width = "document.documentElement.scrollWidth"
    assert pg.evaluate(width) <= 390, pg.evaluate(WIDE)
    draw_and_wait(pg, [circle()])
    assert pg.evaluate(width) <= 390, pg.evaluate(WIDE)
    # a digit never mixed up with this 0 is offered without a "0×" count
    chips = pg.locator("#vs-suggest .suggest").all_inner_texts()
    assert not any(t.endswith("(0×)") for t in chips), chips
    # every model of the switcher is on screen (the bar wraps instead of running off)
    for box in pg.locator("#model-options label").all():
        b = box.bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= 390, b
    pg.screenshot(path=str(artifacts / "phone_390_mlp.png"), full_page=True)
    # a convolutional model: feature maps, pooled maps, filters
    before = updates(pg)
    pg.click("#model-options label:has(input[value='cnn_tiny'])")
    wait_settled(pg, before)
    assert pg.get_attribute("body", "data-model") == "cnn_tiny"
    assert pg.evaluate(width) <= 390, pg.evaluate(WIDE)
    pg.screenshot(path=str(artifacts / "phone_390_cnn_tiny.png"), full_page=True)
    ctx.close()
    assert_quiet(console_log)
