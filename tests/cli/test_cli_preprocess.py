"""``digitlens preprocess`` and ``digitlens predict`` going through the pipeline."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from digitlens.cli import app
from digitlens.data.images import synthetic_photo
from digitlens.preprocessing import SWITCHES


@pytest.fixture
def photo(tmp_path, digits):
    path = tmp_path / "photo.jpg"
    path.write_bytes(synthetic_photo(digits.x_test[0, 0], np.random.default_rng(3)))
    return path


def test_preprocess_prints_grid_and_steps_and_writes_strip(photo, tmp_path):
    out = tmp_path / "steps.png"
    r = CliRunner().invoke(app, ["preprocess", str(photo), "--out", str(out)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    grid = [ln for ln in lines if len(ln) == 28 and set(ln) <= set(".0123456789")]
    assert len(grid) == 28
    assert any("9" in ln for ln in grid)                         # the brightest ink
    for i in range(1, len(SWITCHES) + 2):
        assert any(ln.lstrip().startswith(f"{i}. ") for ln in lines)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 1000


def test_preprocess_switches_and_decimals(photo):
    r = CliRunner().invoke(app, ["preprocess", str(photo), "--no-center", "--decimals", "2"])
    assert r.exit_code == 0, r.output
    assert "Centre in 28x28 (off)" in " ".join(r.output.split())
    rows = [ln.split() for ln in r.output.splitlines() if ln.startswith(("0.", "1."))]
    assert len(rows) >= 28 and all(len(row) == 28 for row in rows[:28])
    assert all(len(v) == 4 for v in rows[0])                      # "0.00"


@pytest.mark.parametrize("content, message", [(b"not an image", "not an image"),
                                              (None, "no ink found")])
def test_preprocess_errors_are_one_line(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content is None:
        Image.new("L", (100, 100), 255).save(path)
    else:
        path.write_bytes(content)
    r = CliRunner().invoke(app, ["preprocess", str(path)])
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_predict_reads_a_photo_through_the_pipeline(tmp_path, digits, trained):
    from digitlens.nn.checkpoint import save_model

    model = trained("mlp")
    path = save_model(model, tmp_path / "mlp.npz")
    # a digit the model gets right when clean, photographed small and off-centre
    x, y = digits.x_test, digits.y_test
    i = next(k for k in range(50) if model.predict(x[k:k + 1])[0] == y[k])
    img = tmp_path / "digit.jpg"
    img.write_bytes(synthetic_photo(x[i, 0], np.random.default_rng(0), page=(300, 400)))
    r = CliRunner().invoke(app, ["predict", str(img), "--model", str(path)])
    assert r.exit_code == 0, r.output
    said = re.search(r"^(\d)\s+\(", r.output, flags=re.M)
    assert said and said.group(1) == str(y[i]), r.output


def test_steps_figure_has_a_panel_per_step(photo):
    from digitlens.preprocessing import preprocess
    from digitlens.view.figures.preprocessing import steps_figure

    pre = preprocess(photo, center=False)
    fig = steps_figure(pre, sentences=True)
    assert len(fig.axes) == len(pre.steps)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "1. Decode to grayscale" and titles[-1].startswith(f"{len(pre.steps)}. ")
    captions = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "switched off" in captions                            # the centre step
