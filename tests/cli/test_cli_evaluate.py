"""``digitlens evaluate``: the numbers it prints and writes are the library's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from digitlens.cli import app
from digitlens.evaluation import evaluate_model
from digitlens.nn.checkpoint import save_model


@pytest.fixture()
def home(tmp_path, monkeypatch, trained):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    from digitlens._util import paths

    save_model(trained("logistic"), paths.model_path("logistic"))
    return tmp_path


def test_evaluate_prints_and_writes_the_librarys_numbers(home, trained, digits):
    js = home / "ev.json"
    r = CliRunner().invoke(app, ["evaluate", "--model", "logistic", "--json", str(js)])
    assert r.exit_code == 0, r.output
    ev = evaluate_model(trained("logistic"), digits.x_test, digits.y_test, name="logistic")
    d = json.loads(js.read_text())["models"]["logistic"]
    assert d["confusion"]["matrix"] == ev.confusion.matrix.tolist()
    assert d["accuracy"] == pytest.approx(ev.accuracy)
    assert d["calibration"]["ece"] == pytest.approx(ev.calibration.ece, rel=1e-5)
    text = " ".join(r.output.split())
    assert f"{100 * ev.accuracy:.1f}% right" in text
    assert f"{len(ev.mistakes)} mistakes" in text
    t, p, n = ev.confusion.most_confused(1)[0]
    assert f"{t} read as {p} ({n}×)" in text


@pytest.mark.slow
def test_evaluate_writes_the_figure(home):
    out = home / "ev.png"
    r = CliRunner().invoke(app, ["evaluate", "--model", "logistic", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_robustness_on_a_few_digits(home):
    js = home / "rob.json"
    r = CliRunner().invoke(app, ["evaluate", "--limit", "40", "--robustness", "--json", str(js)])
    assert r.exit_code == 0, r.output
    rob = json.loads(js.read_text())["robustness"]
    assert set(rob["accuracy"]) == {"logistic"} and rob["n"] == 40
    assert "Rotation" in r.output and "Elastic distortion" in r.output
    assert "the first 40 of" in r.output
    acc = rob["accuracy"]["logistic"]["rotation"]
    assert acc[rob["levels"]["rotation"].index(0)] == max(acc)  # upright reads best


def test_evaluate_refuses_unknown_data_and_missing_sources(home, monkeypatch):
    r = CliRunner().invoke(app, ["evaluate", "--data", "emnist"])
    assert r.exit_code != 0 and "--data must be one of" in r.output
    import builtins

    real = builtins.__import__

    def no_sklearn(name, *a, **k):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    r = CliRunner().invoke(app, ["evaluate", "--data", "optdigits"])
    assert r.exit_code != 0 and "needs scikit-learn" in r.output
    assert np is not None
