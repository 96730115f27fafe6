"""A learner's review in Chromium: an ambiguous 4/9 drawn on the mlp and on the cnn, every panel
photographed (``artifacts/browser/review_*.png``), and what a learner stumbled on checked:

- the contrast units each say something of their own (no repeated boilerplate), with the two
  windows their sentence names outlined on their picture;
- "Can I trust this map?" checks the map on show (the digit picked under "For the digit");
- switching model closes the old model's unit and worked sum;
- the cnn's pooled maps are drawn like feature maps, with the engine's numbers;
- a filter is "like" a hand-made kernel only at the stated cosine, else "closest: …, below";
- the adversarial note is a page the server serves, and the warning links to it;
- the binary model's output column is one sigmoid unit, not "10 sums".

The browser, page and artifacts fixtures come from conftest.py, the drawing helpers from
_browser.py; the server here serves the mlp, a cnn trained for one epoch and the binary model.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from _browser import FOUR_NINE, draw_and_wait, updates, wait_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PANELS = ("card-answer", "panel-steps", "panel-network", "panel-attr", "panel-contrast",
          "panel-filters", "panel-nearest", "panel-looks", "panel-learn")


@pytest.fixture(scope="module")
def server(serve_models):
    with serve_models("review_home", {"mlp": None, "cnn": 1, "binary": None},
                      default_model="mlp", seed=0, training=False) as s:
        yield s


def _switch(pg, name):
    before = updates(pg)
    pg.click(f"#model-options label:has(input[value='{name}'])")
    wait_settled(pg, before)
    assert pg.get_attribute("body", "data-model") == name


def _trust_done(pg, target):
    pg.wait_for_selector(f"#trust[data-state='done'] .trust-what:has-text('for the digit "
                         f"{target}.')", timeout=120_000)


def _photograph(pg, folder, model):
    for pid in PANELS:
        pg.locator(f"#{pid}").screenshot(path=str(folder / f"review_{model}_{pid}.png"))


def test_review_mlp_four_nine(page, artifacts):
    trust_asked = []
    page.on("request", lambda r: trust_asked.append(json.loads(r.post_data))
            if r.url.endswith("/api/trust") else None)
    draw_and_wait(page, FOUR_NINE)
    expl = page.evaluate("window.digitlens.expl")
    assert expl["prediction"] in (4, 9)
    _trust_done(page, expl["prediction"])
    _photograph(page, artifacts, "mlp")
    # the contrast units: each with its own measured sentence, and its windows outlined
    says = page.locator("#unit-terms .term-says").all_inner_texts()
    assert len(says) >= 6 and len(set(says)) == len(says), says
    assert "Around your digit" not in page.inner_text("#panel-contrast")
    assert page.locator("#unit-terms .blob.up").count() >= 6
    t = expl["contrast"]["units"]["for_a"][0]
    assert t["name"].endswith("of hidden layer 2") and t["raises"] is not None
    r0, c0, r1, c1 = t["raises"]
    assert f"rows {r0}–{r1}, columns {c0}–{c1}" in t["sentence"]
    # the trust panel checks the map on show: pick another digit under "For the digit"
    other = 4 if expl["prediction"] == 9 else 9
    page.click(f"#attr-target label:has(input[value='{other}'])")
    _trust_done(page, other)
    assert trust_asked and trust_asked[-1]["target"] == other
    page.locator("#panel-attr").screenshot(path=str(artifacts / "review_mlp_trust_other.png"))
    # a contrast unit opens; switching model closes it and its worked sum
    page.locator("#unit-terms .term.openable").first.click()
    page.wait_for_selector("#unit-detail dl")
    page.wait_for_selector("#worked:not([hidden])")
    page.locator("#panel-network").screenshot(path=str(artifacts / "review_mlp_unit.png"))
    _switch(page, "cnn")
    assert page.is_hidden("#unit-detail") and page.is_hidden("#worked")


def _pool_maps(model, image):
    tr = model.forward(np.asarray(image, dtype=model.dtype)[None, None], trace=True)
    return {i: tr.layers[i].output[0] for i, L in enumerate(model.layers)
            if L.type == "maxpool2d"}


def test_review_cnn_four_nine(page, server, artifacts):
    draw_and_wait(page, FOUR_NINE)
    _switch(page, "cnn")
    expl = page.evaluate("window.digitlens.expl")
    # the learner has the other of 4 and 9 in mind: compare with it
    other = 9 if expl["prediction"] == 4 else 4
    if expl["contrast"]["b"] != other:
        before = updates(page)
        page.click(f"#vs-digits label:has(input[value='{other}'])")
        wait_settled(page, before)
        expl = page.evaluate("window.digitlens.expl")
    assert expl["contrast"]["b"] == other
    _trust_done(page, expl["prediction"])
    # pooled maps: one button per filter, painted, numbers from the engine
    pools = _pool_maps(server["models"]["cnn"], np.array(expl["image"]))
    deadline = time.time() + 60
    while page.locator("#network .mapbtn.pooled canvas.pending").count() and time.time() < deadline:
        time.sleep(0.1)
    for i, maps in pools.items():
        assert page.locator(f"#layer-{i} .mapbtn.pooled").count() == maps.shape[0]
    assert page.locator("#network .mapbtn.pooled canvas.pending").count() == 0
    fetched = page.evaluate("window.digitlens.expl._maps")
    got = {L["pool_layer"]: np.array(L["pooled"]) for L in fetched if "pooled" in L}
    assert set(got) == set(pools)
    for L in fetched:  # exactly the 2×2 maxima of the convolution's maps the server sent
        if "pooled" not in L:  # the third convolution: no pooling after it
            continue
        m = np.array(L["maps"])
        c, h, w = m.shape
        np.testing.assert_array_equal(
            got[L["pool_layer"]], m.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4)))
    for i in pools:  # and the engine's, on the image the page shows (JSON keeps 4 digits)
        np.testing.assert_allclose(got[i], pools[i], rtol=0, atol=5e-3)
    _photograph(page, artifacts, "cnn")
    # "like" only at the threshold
    units = expl["units"]["units"]
    subs = page.locator("#filters .filter .cap.sub").all_inner_texts()
    assert len(subs) == len(units)
    for u, text in zip(units, subs):
        if u["similarity"] is None:
            continue
        if abs(u["similarity"]) >= u["like_threshold"]:
            assert text.startswith("like ") and u["similar_kernel"] in text
        else:
            assert text.startswith("closest: ") and text.endswith("below 0.6"), text
    # the adversarial note: served, and linked from the warning when the page shows one
    r = page.request.get(server["url"] + "static/adversarial.html")
    assert r.ok and r.headers["content-type"].startswith("text/html")
    note = r.text()
    md = (Path(__file__).resolve().parents[2] / "docs" / "adversarial.md").read_text()
    for heading in re.findall(r"^#+ (.+)$", md, flags=re.M):
        assert heading in note, heading  # the page and docs/adversarial.md say the same
    if expl["counterfactual"] and expl["counterfactual"].get("looks_unchanged"):
        link = page.locator("#cf-plausible .cf-warning a.adv-link")
        assert link.get_attribute("href") == "/static/adversarial.html"


def test_review_binary_output_is_one_sigmoid_unit(page, artifacts):
    draw_and_wait(page, [[(140, 40 + 6 * k) for k in range(34)]])  # a 1
    _switch(page, "binary")
    desc = page.locator("#network .layer").last.locator(".ldesc").inner_text()
    assert "10 sums" not in desc and desc.startswith("1 sum") and "sigmoid" in desc, desc
    # the one unit is the chance of a 1: labelled 1, with the engine's P(1)
    expl = page.evaluate("window.digitlens.expl")
    out = page.locator("#network .layer").last
    assert out.locator(".unit").inner_text().strip() == str(expl["classes"][1])
    p1 = f"{100 * expl['probabilities'][1]:.1f}%"
    assert f"P({expl['classes'][1]}) = {p1}" in out.locator(".val").inner_text()
    assert "sigmoid" in page.inner_text("#softmax-detail summary")
    page.click("#softmax-detail summary")
    assert p1 in page.inner_text("#softmax-table")
    page.locator("#panel-network").screenshot(path=str(artifacts / "review_binary_network.png"))
