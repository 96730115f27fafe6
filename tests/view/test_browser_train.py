"""The Train tab's own network and the page on a fresh install, in Chromium.

- Pick "your own network": sigmoid, width 32, depth 2; train it; the curves grow, the epoch
  table and the gap sentence are the server's, and the new model joins the switcher and reads
  a drawing.
- ``digitlens serve`` on an empty home (a real process, 1 epoch per model): the page answers
  before the cnn has finished training, shows the progress, uses logistic as soon as it is
  ready and moves up to the cnn when it is.

Screenshots: ``artifacts/browser/train_own_network.png``, ``first_start_training.png``,
``first_start_first_answer.png``, ``first_start_done.png``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _browser import assert_quiet, draw_and_wait, need_browser, open_page
from _server import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_train_your_own_network_and_see_the_gap_explained(page, server, artifacts):
    page.click("#tab-train")
    page.select_option("#train-model", "__custom")
    assert page.is_visible("#custom-fields")
    page.select_option("#custom-activation", "sigmoid")
    page.fill("#custom-width", "32")
    page.fill("#custom-depth", "2")
    page.fill("#custom-lr", "0.01")
    page.fill("#train-epochs", "12")  # enough for 32 sigmoid units to start memorising
    assert "784 pixels → 32 → 32 sigmoid units → 10 digits" in page.inner_text("#custom-shape")
    assert "sigmoid_2x32" in page.inner_text("#custom-shape")
    page.click("#btn-train")
    page.wait_for_selector("body[data-training='completed']", state="attached")
    # the page's numbers are the server's job's numbers
    jobs = server["app"].state.jobs
    job = next(j for j in jobs.list() if j.model == "sigmoid_2x32")
    assert job.kind == "custom" and job.config["custom"]["activation"] == "sigmoid"
    epochs = [e for e in job.events if e["type"] == "epoch"]
    rows = page.locator("#epoch-table tbody tr")
    assert rows.count() == 12
    for k, e in enumerate(epochs):
        cells = rows.nth(k).locator("td").all_inner_texts()
        for cell, value in ((cells[2], e["accuracy"]), (cells[3], e["test_accuracy"])):
            # the same number, shown to 0.1 (JavaScript rounds halves up, Python to even)
            assert abs(float(cell.rstrip("%")) - 100 * value) <= 0.05 + 1e-9, (cell, value)
    assert job.gap and "overfitting" in job.gap  # training accuracy well above test
    assert page.is_visible("#train-gap") and page.inner_text("#train-gap") == job.gap
    assert "Saved as “sigmoid_2x32”: on the Explore tab" in page.inner_text("#train-status")
    page.screenshot(path=str(artifacts / "train_own_network.png"), full_page=True)
    # it joins the switcher, with the engine's accuracy, and reads a drawing like the others
    label = page.locator("#model-options label:has(input[value='sigmoid_2x32'])")
    assert f"{100 * job.test_accuracy:.1f}%" in label.inner_text()
    page.click("#tab-explore")
    label.click()
    draw_and_wait(page, [[(140, 50), (140, 230)]])
    assert page.evaluate("document.body.dataset.model") == "sigmoid_2x32"
    assert page.locator("#probs .prob").count() == 10
    page.screenshot(path=str(artifacts / "train_own_network_explained.png"), full_page=True)


# ----------------------------------------------------------------------- the first start
@pytest.fixture
def fresh_serve(tmp_path):
    """``digitlens serve`` on an empty home, 1 epoch per missing model, as a real process."""
    need_browser()
    port = free_port()
    env = {**os.environ, "DIGITLENS_HOME": str(tmp_path)}
    exe = Path(sys.executable).with_name("digitlens")
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--train-epochs", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(url + "api/health", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, "serve did not start"
            time.sleep(0.05)
    yield {"url": url, "home": tmp_path}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_the_page_answers_before_the_cnn_has_trained(browser, fresh_serve, console_log,
                                                     artifacts):
    ctx, pg = open_page(browser, fresh_serve["url"], console_log,
                        viewport={"width": 1366, "height": 900})
    cnn_file = fresh_serve["home"] / "models" / "cnn.npz"
    assert not cnn_file.exists()  # the page is up while the cnn is not trained yet
    note = pg.locator("#model-progress")
    assert note.is_visible() and "cnn" in note.inner_text()
    pg.screenshot(path=str(artifacts / "first_start_training.png"))
    # logistic is ready first and the page uses it at once
    pg.wait_for_selector("#model-options input[value='logistic']:not([disabled])")
    draw_and_wait(pg, [[(140, 50), (140, 230)]])
    used = pg.evaluate("document.body.dataset.model")
    assert used in ("logistic", "lab", "mlp", "cnn_tiny")
    pg.screenshot(path=str(artifacts / "first_start_first_answer.png"))
    # when every model is ready the progress note goes and the page moves up to the cnn
    pg.wait_for_selector("body[data-pending='0']", state="attached", timeout=240_000)
    assert not note.is_visible()
    _wait_model(pg, "cnn")
    info = json.loads(urllib.request.urlopen(fresh_serve["url"] + "api/models").read())
    assert info["default"] == "cnn" and info["pending"] == []
    assert pg.is_checked("#model-options input[value='cnn']")
    pg.screenshot(path=str(artifacts / "first_start_done.png"), full_page=True)
    ctx.close()
    assert_quiet(console_log)


def _wait_model(pg, name: str, timeout: float = 60.0) -> None:
    """Wait until the page's last explanation came from model ``name`` (the page's CSP
    forbids wait_for_function's eval)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pg.evaluate("[document.body.dataset.model, document.body.dataset.busy]") == [name, "0"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"the page did not move to {name}: "
                         f"{pg.evaluate('document.body.dataset.model')}")
