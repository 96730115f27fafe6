"""A fine-tuned model on the page: the switcher offers ``logistic_mine`` and, picked, the sentence
under the switcher is its checkpoint's own description ("the logistic model fine-tuned on your
digits"), with its accuracy from the checkpoint.  Screenshot: artifacts/browser/saved-name.png."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import digitlens as dl
from digitlens.nn.checkpoint import save_model

import test_browser as tb
artifacts = tb.artifacts  # the screenshots' folder (a fixture, shared by assignment)

pytestmark = pytest.mark.browser
TUNED = "the logistic model fine-tuned on your digits"
SHOWN = "The logistic model fine-tuned on your digits."  # as a sentence on the page


@pytest.fixture(scope="module")
def tuned_server(tmp_path_factory, trained, digits):
    tb._need_browser()
    import uvicorn

    from digitlens._util import paths
    from digitlens.training.finetune import default_path
    from digitlens.view.server.app import create_app

    home = tmp_path_factory.mktemp("tuned_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("DIGITLENS_HOME", str(home))
    m = trained("logistic", 2)
    _, acc = dl.evaluate(m, digits.x_test, digits.y_test)
    save_model(m, paths.model_path("logistic"), {"test_accuracy": acc})
    save_model(m, default_path("logistic"), {"finetuned_from": "logistic", "test_accuracy": acc,
                                             "description": TUNED})
    app = create_app(default_model="logistic", seed=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and t.is_alive(), "the test server did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}/", "acc": acc}
    srv.should_exit = True
    t.join(10)
    mp.undo()


def test_the_switcher_describes_a_fine_tuned_model_by_its_checkpoint(tuned_server, artifacts):
    from playwright.sync_api import sync_playwright

    log = {"page": [], "console": []}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=tb.CHROMIUM, args=tb.ARGS)
        pg = b.new_context(viewport={"width": 1366, "height": 900}).new_page()
        pg.set_default_timeout(tb.TIMEOUT)
        tb.listen(pg, log)
        pg.goto(tuned_server["url"])
        pg.wait_for_selector("body[data-ready='1']", state="attached")
        pg.locator("#model-options input[value='logistic_mine']").check()
        pg.wait_for_function("document.getElementById('model-sentence').textContent.length > 0")
        assert pg.locator("#model-sentence").inner_text().strip() == SHOWN
        label = pg.locator("#model-options label", has=pg.locator("input[value='logistic_mine']"))
        assert f"{100 * tuned_server['acc']:.1f}%" in label.inner_text()
        assert label.get_attribute("title") == SHOWN
        pg.locator("#model-switcher").screenshot(path=str(artifacts / "saved-name.png"))
        pg.screenshot(path=str(artifacts / "saved-name-page.png"))
        b.close()
    tb.assert_quiet(log)
