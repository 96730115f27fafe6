"""The worked sum on the page, in Chromium: a second-layer filter's kernel stack, a window stepped
across the image with its shown products adding up to the shown z, connections followed back,
layer names for people, and the mlp's 256-unit grid inside its column.

The browser, page and artifacts fixtures come from conftest.py, the drawing helpers from
_browser.py; the server here serves a cnn trained for one epoch (its numbers are what matter, not
its accuracy) and the mlp.
"""

from __future__ import annotations

import re

import pytest
from _browser import circle, draw_and_wait, updates, wait_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(serve_models):
    with serve_models("worked_home", {"mlp": None, "cnn": 1},
                      default_model="cnn", seed=0, training=False) as s:
        yield s


NINE = [circle(cx=140, cy=95, rx=50, ry=50), [(188, 95), (180, 250)]]


def _num(text: str) -> float:
    return float(text.replace("−", "-").strip())


def _wait_worked(pg, layer, unit, at=None):
    sel = f"#worked[data-layer='{layer}'][data-unit='{unit}']"
    if at is not None:
        sel += f"[data-at='{at[0]},{at[1]}']"
    pg.wait_for_selector(sel)


def _shown_sum_matches(pg):
    """The products in the table, plus the rest, plus the bias, add up to the shown z."""
    rows = pg.locator("#worked-terms tbody tr")
    products = [_num(rows.nth(i).locator("td").nth(4).inner_text()) for i in range(rows.count())]
    total = _num(pg.inner_text("#worked-total"))
    z = _num(re.search(r"z = (\S+)", pg.inner_text("#worked-z")).group(1))
    assert abs(sum(products) - z) <= 5e-4 * len(products), (products, z)
    assert abs(total - z) <= 1e-4
    return z


def test_a_second_layer_filter_opens_with_its_kernel_stack_and_its_window_steps(
        page, artifacts):
    draw_and_wait(page, NINE)
    assert page.get_attribute("body", "data-model") == "cnn"
    names = page.locator("#network .lname").all_inner_texts()
    assert "convolution 2 (32 filters)" in names and "output layer (10 digits)" in names
    assert not any(re.search(r"(?<!hidden )\blayer \d", n) for n in names), names
    # every filter of convolution 2 is a button, its map painted from /api/models/cnn/maps
    conv2 = page.locator("#network .layer[data-layer='3'] .mapbtn")
    assert conv2.count() == 32
    page.wait_for_selector("#network .layer[data-layer='3'] canvas:not(.pending)")
    page.click("#unit-3-7")
    _wait_worked(page, 3, 7)
    assert "filter 7 of convolution 2" in page.inner_text("#worked h3")
    assert page.locator("#worked .wpair[data-map] canvas.kern").count() == 16  # one kernel per map
    assert page.locator("#worked .wbox").count() == 16  # the window on each of the 16 maps
    zs = [_shown_sum_matches(page)]
    at = [int(v) for v in page.get_attribute("#worked", "data-at").split(",")]
    seen = {tuple(at)}
    page.screenshot(path=str(artifacts / "worked_conv2_filter.png"), full_page=True)
    # step the window three positions with the keyboard: each time the sum matches the z shown
    page.focus("#worked .worked-step")
    for key, d in (("ArrowLeft", (0, -1)), ("ArrowUp", (-1, 0)), ("ArrowLeft", (0, -1))):
        at = [max(0, at[0] + d[0]), max(0, at[1] + d[1])]
        page.keyboard.press(key)
        _wait_worked(page, 3, 7, at)
        page.focus("#worked .worked-step")
        zs.append(_shown_sum_matches(page))
        seen.add(tuple(at))
    # the feature map fills in: one value per position visited (an edge clips a step)
    assert f"{len(seen)} of 196 values worked out" in page.inner_text("#worked .worked-conv")
    page.locator("#worked").screenshot(path=str(artifacts / "worked_conv2_stepped.png"))
    # the lines: the unit's connections drawn on the network
    assert page.locator("#network-lines line").count() >= 2
    # follow a connection back: a filter of convolution 1
    page.locator("#worked .worked-conns .up button").first.click()
    page.wait_for_selector("#worked[data-layer='0']")
    assert "of convolution 1" in page.inner_text("#worked h3")
    _shown_sum_matches(page)


def test_an_output_unit_shows_softmax_and_the_mlp_grid_fits(page, artifacts):
    before = updates(page)
    page.click("#model-options label:has(input[value='mlp'])")
    wait_settled(page, before)
    draw_and_wait(page, NINE)
    assert page.get_attribute("body", "data-model") == "mlp"
    # the 256-unit grid stays inside its column and above its caption (issue 13's bug)
    layer = page.locator("#network .layer[data-layer='1']")
    grid, cap = layer.locator(".units").bounding_box(), layer.locator(".ldesc").bounding_box()
    box = layer.bounding_box()
    assert grid["x"] + grid["width"] <= box["x"] + box["width"] + 0.5
    assert grid["y"] + grid["height"] <= cap["y"] + 0.5
    assert layer.locator(".lname").inner_text() == "hidden layer 1 (256 units)"
    page.click("#unit-6-9")  # the output unit for the digit 9
    _wait_worked(page, 6, 9)
    assert page.inner_text("#unit-detail h3") == "The output unit for the digit 9"
    _shown_sum_matches(page)
    soft = page.inner_text("#worked-softmax")
    p_shown = float(re.search(r"P\(9\) = ([\d.]+)%", soft).group(1))
    bar = page.evaluate("window.digitlens.expl.probabilities[9]")
    assert abs(p_shown - 100 * bar) < 0.051
    page.screenshot(path=str(artifacts / "worked_mlp_output.png"), full_page=True)
    # a hidden unit of layer 2 follows back to a unit of hidden layer 1
    page.locator("#worked .worked-conns button").first.click()
    page.wait_for_selector("#worked[data-layer='4']")
    assert "of hidden layer 2" in page.inner_text("#worked h3")
    _shown_sum_matches(page)
