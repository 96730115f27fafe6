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


# ------------------------------------------------------------------------- --unit: the worked sum
@pytest.fixture()
def cnn_home(tmp_path, monkeypatch):
    """A (randomly initialised) cnn and mlp in the cache: the worked sum needs no training."""
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    from digitlens._util import paths
    from digitlens.nn import build_model

    from digitlens.cli import _common

    monkeypatch.setattr(_common.console, "_width", 200)  # one table row per line
    rng = np.random.default_rng(0)
    for name in ("cnn", "mlp"):
        save_model(build_model(name, rng), paths.model_path(name))
    return tmp_path


def _numbers(line: str) -> list[float]:
    import re

    return [float(v) for v in re.findall(r"[+-]?\d+\.\d+", line)]


def test_explain_unit_prints_the_worked_sum_of_a_filter(cnn_home, digits):
    """`--unit conv2:7 --at 12,9` prints the table whose total is the engine's z (the library's
    worked_sum on the same digit); a position off its 14×14 map is refused."""
    from digitlens.explain.worked import worked_sum
    from digitlens.nn.checkpoint import load_model
    from digitlens._util import paths

    runner = CliRunner()
    r = runner.invoke(app, ["explain", "--sample", "3", "--model", "cnn", "--unit", "conv2:7",
                            "--at", "14,0"])
    assert r.exit_code == 1 and "rows 0 to 13" in r.output
    r = runner.invoke(app, ["explain", "--sample", "3", "--model", "cnn", "--unit", "conv2:7",
                            "--at", "12,9", "--rows", "5"])
    assert r.exit_code == 0, r.output
    text = r.output
    assert "filter 7 of convolution 2" in text and "row 12, column 9" in text
    m = load_model(paths.model_path("cnn")).astype(np.float64)
    w = worked_sum(m, digits.x_test[3, 0], 3, 7, at=(12, 9))
    z_line = next(ln for ln in text.splitlines() if ln.startswith("z = ") and "own" in ln)
    assert _numbers(z_line)[0] == pytest.approx(w.z, abs=5e-5)
    bias_line = next(ln for ln in text.splitlines() if "+ bias b" in ln)
    assert _numbers(bias_line) == pytest.approx([w.bias, w.total], abs=5e-5)
    first = next(ln for ln in text.splitlines() if ln.strip().startswith("1 "))
    assert w.labels[0] in first
    assert _numbers(first)[-2:] == pytest.approx([w.products[0], w.running[0]], abs=5e-5)
    assert "smaller products" in text  # only 5 rows listed
    assert "pushes it up most" in text


def test_explain_unit_output_shows_softmax_and_errors(cnn_home):
    runner = CliRunner()
    r = runner.invoke(app, ["explain", "--sample", "0", "--model", "mlp", "--unit", "output:7"])
    assert r.exit_code == 0, r.output
    assert "the output unit for the digit 7" in r.output and "softmax: e^(z − max z)" in r.output
    r = runner.invoke(app, ["explain", "--sample", "0", "--model", "mlp", "--unit", "conv1:0"])
    assert r.exit_code == 1 and "no layer 'conv1'" in r.output
    r = runner.invoke(app, ["explain", "--sample", "0", "--model", "mlp", "--unit",
                            "hidden1:3", "--at", "1,1"])
    assert r.exit_code == 1 and "--at is for filters" in r.output
    r = runner.invoke(app, ["explain", "--sample", "0", "--model", "mlp", "--at", "1,1"])
    assert r.exit_code == 1 and "--at needs --unit" in r.output


def test_info_names_layers_as_the_page_does(cnn_home):
    r = CliRunner().invoke(app, ["info", "cnn"])
    assert r.exit_code == 0, r.output
    for name in ("convolution 2 (32 filters)", "hidden layer 1 (128 units)",
                 "output layer (10 digits)", "conv2:N"):
        assert name in r.output


def test_explain_refuses_a_huge_file_before_reading_it(home, tmp_path, monkeypatch):
    """A file over the size limit is refused from its size alone (a sparse file of the limit
    plus one byte), never read whole."""
    import pathlib

    from digitlens.data.images import MAX_BYTES

    def no_whole_reads(self):
        raise AssertionError(f"{self} was read whole")

    monkeypatch.setattr(pathlib.Path, "read_bytes", no_whole_reads)

    big = tmp_path / "huge.png"
    with open(big, "wb") as f:
        f.truncate(MAX_BYTES + 1)
    r = CliRunner().invoke(app, ["explain", str(big), "--model", "logistic"])
    assert r.exit_code == 1
    assert "the limit is" in r.output and f"{MAX_BYTES:,}" in r.output
