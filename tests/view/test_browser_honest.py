"""Issue 13B in Chromium: "I don't know", "can I trust this map?" and the bug list.

- a dot gets the "does not look like any digit I was trained on" note; a drawn 1 does not;
- the trust panel fills in with its three checks, and its numbers are the API's;
- a switched-off pre-processing step shows no literal ``null``;
- drawing over a test digit replaces its "never trained on it" note;
- at 390 px wide the tabs stay on the screen;
- the 0-or-1 ``binary`` model is offered and explains a digit with its two classes.

Uses the live server of ``conftest.py`` (with the ``binary`` model saved too) and the helpers of
``_browser.py``.
Screenshots go to ``artifacts/browser/honest_*.png``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _browser import (TIMEOUT, assert_quiet, draw_and_wait, open_page, render_strokes,
                      row_strokes, shown_prediction, updates, wait_settled)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def binary_saved(server, save_trained):
    """Save the binary model in the server's home (the server reads it on first use); its test
    accuracy is on the 0s and 1s."""
    save_trained("binary")


def wait_trust(pg):
    pg.wait_for_selector("#trust[data-state='done']", state="attached", timeout=TIMEOUT)


def test_a_dot_is_flagged_and_a_traced_digit_is_not(page, server, artifacts, digits):
    draw_and_wait(page, [[(140, 140), (141, 141)]])
    note = page.locator("#ood-note")
    assert note.is_visible() and note.get_attribute("data-flagged") == "true"
    text = note.inner_text()
    assert "does not look like any digit I was trained on" in text
    assert "always add up to 1" in text
    # softmax's pick is still shown
    assert shown_prediction(page).isdigit()
    ood = page.evaluate("window.digitlens.expl.ood")
    assert ood["flagged"] and ood["score"] > ood["threshold"]
    wait_trust(page)
    page.locator("#card-answer").screenshot(path=str(artifacts / "honest_dot_answer.png"))
    page.screenshot(path=str(artifacts / "honest_dot_mlp.png"))
    # a real handwritten digit, traced: one the score calls ordinary (picked before drawing)
    rec = server["app"].state.registry.rec
    for i in range(40):
        strokes = row_strokes(digits.x_test[i, 0])
        e = rec.explain(render_strokes(strokes), "mlp", units=False, nearest=False,
                        counterfactual=False, contrast=False, methods=())
        if not e.ood.flagged and e.prediction == digits.y_test[i]:
            break
    page.locator("#btn-clear").click()
    draw_and_wait(page, strokes)
    assert page.get_attribute("#ood-note", "data-flagged") == "false"
    assert "looks like the digits" in page.inner_text("#ood-note")


def test_the_trust_panel_fills_in_with_the_apis_numbers(page, server, artifacts):
    draw_and_wait(page, [[(140, 40 + 6 * k) for k in range(34)]])
    wait_trust(page)
    rows = page.locator("#trust .trust-row")
    assert rows.count() == 3
    text = page.inner_text("#trust")
    assert "Completeness" in text and "rank correlation" in text.lower()
    assert "Area between the curves" in text
    assert page.locator("#trust .trust-maps canvas").count() == 3
    expl = page.evaluate("window.digitlens.expl")
    rec = server["app"].state.registry.rec
    want = rec.trust(np.asarray(expl["image"]), expl["model"], target=expl["prediction"],
                     method=page.evaluate("window.digitlens.method") or "integrated_gradients")
    shown = page.locator("#trust [data-check='deletion'] figcaption").inner_text()
    assert f"{want['deletion']['area_between']:.3f}" in shown
    rho = want["randomisation"][0]["spearman"]
    assert f"ρ = {rho:.2f}" in page.inner_text("#trust [data-check='randomisation']")
    page.locator("#trust-panel").screenshot(path=str(artifacts / "honest_trust_panel.png"))
    page.locator("#card-answer").screenshot(path=str(artifacts / "honest_one_answer.png"))


def test_a_switched_off_step_shows_no_null(page, artifacts):
    draw_and_wait(page, [[(140, 40 + 6 * k) for k in range(34)]])
    before = updates(page)
    page.locator("#steps .step[data-step='crop'] input[type=checkbox]").uncheck()
    wait_settled(page, before)
    page.locator("#steps .step[data-step='crop'] .step-pick").click()
    detail = page.inner_text("#step-detail")
    assert "Switched off" in detail and "null" not in detail
    page.locator("#panel-steps").screenshot(path=str(artifacts / "honest_step_off.png"))


def test_drawing_over_a_test_digit_changes_its_note(page):
    before = updates(page)
    page.locator("#btn-random").click()
    wait_settled(page, before)
    assert "never trained on it" in page.inner_text("#source-note")
    draw_and_wait(page, [[(60, 60), (220, 220)]])
    note = page.inner_text("#source-note")
    assert "never trained on it" not in note and "no longer that test digit" in note
    page.keyboard.press("Control+z")
    page.wait_for_function("!document.getElementById('source-note').textContent"
                           ".includes('no longer')")


def test_the_tabs_fit_a_390px_phone(browser, server, console_log, artifacts):
    ctx, pg = open_page(browser, server["url"], console_log,
                        viewport={"width": 390, "height": 844})
    for tab in pg.locator("[role=tab]").all():
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, tab.inner_text()
    pg.screenshot(path=str(artifacts / "honest_phone_390.png"))
    assert pg.evaluate("document.querySelector('.topbar').scrollWidth") <= 390
    ctx.close()
    assert_quiet(console_log)


def test_the_binary_model_is_offered_and_explains_two_classes(page, artifacts):
    opt = page.locator("#model-options input[value='binary']")
    assert opt.count() == 1 and opt.is_enabled()
    before = updates(page)
    opt.check(force=True)
    wait_settled(page, before)
    draw_and_wait(page, [[(140, 40 + 6 * k) for k in range(34)]])
    assert shown_prediction(page) == "1"
    assert page.locator("#probs .prob").count() == 2
    assert page.evaluate("window.digitlens.expl.classes") == [0, 1]
    assert page.locator("#attr-target input").count() == 2
    wait_trust(page)
    page.screenshot(path=str(artifacts / "honest_binary.png"), full_page=True)
