"""``digitlens explain``: figure, JSON and a plain-words summary with the real numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from digitlens.cli import app
from digitlens.nn.checkpoint import save_model


@pytest.fixture()
def home(tmp_path, monkeypatch, trained):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    from digitlens._util import paths

    save_model(trained("logistic"), paths.model_path("logistic"))
    return tmp_path


def test_explain_writes_a_figure_and_json_and_says_why(home, digits):
    from PIL import Image

    from digitlens.explain.result import Explanation

    img = home / "digit.png"
    Image.fromarray((255 - digits.x_test[2, 0] * 255).astype(np.uint8)).resize(
        (280, 280)).save(img)
    out, js = home / "explain.png", home / "explain.json"
    r = CliRunner().invoke(app, ["explain", str(img), "--model", "logistic", "--out", str(out),
                                 "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    e = Explanation.from_dict(json.loads(js.read_text()))
    first = r.output.splitlines()[0]
    assert first.startswith(str(e.prediction))
    text = " ".join(r.output.split())
    assert "gradient × input is exactly each pixel's term" in text
    assert f"Why {e.prediction} and not {e.contrast.b}" in text
    assert f"{e.contrast.gap:+.3g}" in text  # the real numbers


def test_explain_sample_vs_and_errors(home):
    runner = CliRunner()
    r = runner.invoke(app, ["explain", "--sample", "0", "--model", "logistic", "--vs", "4",
                            "--no-counterfactual"])
    assert r.exit_code == 0, r.output
    assert "and not 4" in " ".join(r.output.split())
    r = runner.invoke(app, ["explain", "--model", "logistic"])
    assert r.exit_code == 1 and "give an IMAGE" in r.output
    r = runner.invoke(app, ["explain", "--sample", "0", "--model", "mlp"])
    assert r.exit_code == 1 and "digitlens train --model mlp" in " ".join(r.output.split())
    r = runner.invoke(app, ["explain", str(home / "missing.png"), "--model", "logistic"])
    assert r.exit_code == 1 and "file not found" in r.output
    r = runner.invoke(app, ["explain", "--sample", "0", "--model", "logistic", "--out",
                            str(home / "x.gif")])
    assert r.exit_code == 1 and ".png, .svg or .pdf" in r.output
    assert "Traceback" not in r.output
