"""A fine-tuned model on the page: the switcher offers ``logistic_mine`` and, picked, the sentence
under the switcher is its checkpoint's own description ("the logistic model fine-tuned on your
digits"), with its accuracy from the checkpoint.  Screenshot: artifacts/browser/saved-name.png."""

from __future__ import annotations

import pytest
from _browser import ARGS, CHROMIUM, assert_quiet, need_browser, open_page
from _server import live_server

import digitlens as dl
from digitlens.nn.checkpoint import save_model

pytestmark = pytest.mark.browser
TUNED = "the logistic model fine-tuned on your digits"
SHOWN = "The logistic model fine-tuned on your digits."  # as a sentence on the page


@pytest.fixture(scope="module")
def tuned_server(model_home, digits):
    need_browser()
    from digitlens.training.finetune import default_path
    from digitlens.view.server.app import create_app

    with model_home("tuned_home", {"logistic": 2}) as (_, models):
        m = models["logistic"]
        _, acc = dl.evaluate(m, digits.x_test, digits.y_test)  # as saved with it
        save_model(m, default_path("logistic"), {"finetuned_from": "logistic",
                                                 "test_accuracy": acc, "description": TUNED})
        app = create_app(default_model="logistic", seed=0)
        with live_server(app) as url:
            yield {"url": url, "acc": acc}


def test_the_switcher_describes_a_fine_tuned_model_by_its_checkpoint(tuned_server, artifacts):
    from playwright.sync_api import sync_playwright

    log = {"page": [], "console": []}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        _, pg = open_page(b, tuned_server["url"], log, viewport={"width": 1366, "height": 900})
        pg.locator("#model-options input[value='logistic_mine']").check()
        pg.wait_for_function("document.getElementById('model-sentence').textContent.length > 0")
        assert pg.locator("#model-sentence").inner_text().strip() == SHOWN
        label = pg.locator("#model-options label", has=pg.locator("input[value='logistic_mine']"))
        assert f"{100 * tuned_server['acc']:.1f}%" in label.inner_text()
        assert label.get_attribute("title") == SHOWN
        pg.locator("#model-switcher").screenshot(path=str(artifacts / "saved-name.png"))
        pg.screenshot(path=str(artifacts / "saved-name-page.png"))
        b.close()
    assert_quiet(log)
