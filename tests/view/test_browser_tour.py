"""The filter panel, the training step and the guided tour in a real browser (headless Chromium).

A drawn 9 (a loop and a stem) is read by ``cnn`` (3 epochs of its recipe, to stay quick) and
``cnn_tiny``.  The tests click a second-layer filter and check its patches (8×8 windows) and
curves against the library's own numbers, take one training step, and walk the seven steps of
the tour, saving each step's text (``tour_nine.txt``) and screenshots in ``artifacts/browser/``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from _browser import TIMEOUT, circle, draw_and_wait

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(serve_models):
    """A uvicorn server on a free loopback port with cnn (3 epochs) and cnn_tiny (2 epochs)."""
    with serve_models("tour_home", {"cnn": 3, "cnn_tiny": 2},
                      default_model="cnn", seed=0, training=False) as s:
        yield s


NINE = [circle(cx=135, cy=95, rx=50, ry=50), [(184, 100 + 6 * k) for k in range(26)]]


def wait_for(pg, js: str, timeout: float = TIMEOUT / 1000):
    """Poll a JavaScript expression until it is truthy (the page's CSP forbids eval-based waits)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pg.evaluate(js)
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {js}")


def test_a_layer_2_filter_shows_its_patches_and_curves(page, server, artifacts):
    draw_and_wait(page, NINE)
    conv2 = page.evaluate("window.digitlens.expl.layer_names.filter(n => n.type === 'conv2d')[1]")
    assert conv2["name"] == "convolution 2 (32 filters)"
    # the panel opens on the second convolution's filter that fires most on the drawing
    wait_for(page, "window.digitlens.looks && window.digitlens.looks.layer === 3")
    # pick filter 5 of convolution 2 (by its map in the network if shown, else the picker)
    btn = page.locator("#unit-3-5")
    if btn.count():
        btn.first.click()
    else:
        page.fill("#looks-unit", "5")
        page.dispatch_event("#looks-unit", "change")
    wait_for(page, "document.body.dataset.looks === '3:5'")
    info = page.evaluate("window.digitlens.looks")
    rec = server["app"].state.ctx.registry.rec
    want = rec.filter_detail("cnn", 3, 5)
    assert {k: v for k, v in info.items() if k != "digit"} == want  # page == API == library
    assert info["receptive_field"]["size"] == [8, 8]
    patches = page.locator("#looks canvas.patch")
    assert patches.count() == len(want["patches"]) + 1  # + the window of the drawing
    assert page.eval_on_selector("#looks canvas.patch", "c => [c.width, c.height]") == [8, 8]
    caps = page.locator("#looks figcaption").all_inner_texts()
    for p in want["patches"]:
        assert f"a {p['label']} · {p['activation']:.2f}" in caps
    assert page.locator("#looks canvas.curve").count() == 2
    assert "0.6" in page.inner_text("#looks-like-rule")
    assert page.locator(".hand-looks .filter").count() == 5
    page.locator("#panel-looks").screenshot(path=str(artifacts / "looks_conv2_filter5.png"))


def test_the_tour_runs_to_the_end(page, server, artifacts):
    draw_and_wait(page, NINE)
    expl = page.evaluate("window.digitlens.expl")
    page.click("#btn-tour")
    texts = []
    for i in range(1, 8):
        wait_for(page, f"document.getElementById('tour').dataset.step === '{i}' && "
                       "document.getElementById('tour').dataset.busy === '0'")
        text = page.inner_text("#tour-text")
        assert text.strip() and "failed" not in text and "could not" not in text, text
        texts.append(f"{i}. {page.inner_text('.tour-head strong')}\n{text}\n")
        if i in (2, 4, 5, 7):
            page.wait_for_timeout(900)  # the view scrolls smoothly into place
            assert page.is_visible("#tour")
            page.screenshot(path=str(artifacts / f"tour_step{i}.png"))
        page.click("#tour-next")
    assert page.is_hidden("#tour")
    (artifacts / "tour_nine.txt").write_text(
        f"model cnn, prediction {expl['prediction']}, probabilities "
        f"{[round(p, 4) for p in expl['probabilities']]}\n\n" + "\n".join(texts))
    # the numbers quoted are the engine's: the logit of step 2, the step of step 7
    i = expl["classes"].index(expl["prediction"])
    assert f"{expl['logits'][i]:.3f}".replace("-", "−") in texts[1]
    step = page.evaluate("window.digitlens.step")
    assert step["label"] == expl["prediction"]
    np.testing.assert_allclose(step["p_before"], expl["probabilities"], rtol=1e-5, atol=1e-7)
    assert f"{step['loss_before']:.4f}" in texts[6]
    # a step on a digit the network is sure of moves p by hundredths of a point: the page shows
    # enough decimals for the change to be seen (two significant digits of the largest change)
    before, after = np.array(step["p_before"]), np.array(step["p_after"])
    change = 100 * np.abs(after - before).max()
    digits = min(4, max(1, math.ceil(-math.log10(change / 10))))
    i_label = step["classes"].index(step["label"])
    shown = f"{100 * before[i_label]:.{digits}f}% to {100 * after[i_label]:.{digits}f}%"
    assert shown in texts[6]
    assert shown in page.inner_text("#learn")
    cell = page.inner_text("#learn .learn-probs tr.target td:last-child")
    want = 100 * (after[i_label] - before[i_label])
    assert cell == f"{'+' if want > 0 else '−'}{abs(want):.{digits}f}" and float(cell[1:]) > 0
    if before[i_label] >= 0.95:  # why the step is small
        assert "already sure" in page.inner_text("#learn-why")
    rec = server["app"].state.ctx.registry.rec
    assert step["loss_after"] < step["loss_before"]
    assert rec.model("cnn") is not None  # the served model was not changed by the step
    page.locator("#panel-learn").screenshot(path=str(artifacts / "learn_step_nine.png"))


def test_a_step_towards_a_digit_the_network_does_not_believe_is_large(page, server, artifacts):
    """"It should be a 4" on the drawn 9: p(4) was small, so the loss and the step are large, and
    the page says so; the numbers are the engine's."""
    draw_and_wait(page, NINE)
    page.click("#panel-learn")  # scroll the panel into view
    page.locator("#learn-label input[value='4']").check(force=True)
    before = int(page.evaluate("document.body.dataset.learned || '0'"))
    page.click("#btn-step")
    wait_for(page, f"+(document.body.dataset.learned || 0) > {before}")
    step = page.evaluate("window.digitlens.step")
    i = step["classes"].index(4)
    assert step["label"] == 4 and step["p_before"][i] < 0.5
    assert step["p_after"][i] > step["p_before"][i]  # the step pulls towards "4"
    why = page.inner_text("#learn-why")
    assert "did not think it is a 4" in why
    assert ("one step was enough to turn the answer into a 4" in why) == (step["p_after"][i] >= 0.5)
    assert f"{step['loss_before']:.4f}" in page.inner_text("#learn")
    page.locator("#panel-learn").screenshot(path=str(artifacts / "learn_step_towards_4.png"))
