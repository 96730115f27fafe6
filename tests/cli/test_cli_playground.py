"""``digitlens playground``: the issue's command line, its table and sentence, and its errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from digitlens.cli import app
from digitlens.lab.playground import Budget, PlayConfig, Playground, Session


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(*args):
    return CliRunner().invoke(app, list(map(str, args)), env={"COLUMNS": "200"})


def test_compare_relu_and_sigmoid_prints_the_sessions_sentence(tmp_path, home):
    out = tmp_path / "pg.json"
    r = run("playground", "--compare", "relu", "sigmoid", "--width", 16, "--depth", 3,
            "--epochs", 1, "--n-train", 300, "--json", out)
    assert r.exit_code == 0, r.output
    snap = json.loads(out.read_text())
    direct = Session(Playground((PlayConfig.make("relu", depth=3, width=16),
                                 PlayConfig.make("sigmoid", depth=3, width=16)),
                                Budget(epochs=1, n_train=300))).run().snapshot()
    assert [lane["rows"] for lane in snap["lanes"]] == [lane["rows"] for lane in direct["lanes"]]
    sentence = " ".join(r.stdout.split())
    assert direct["summary"]["sentence"] in sentence
    assert "ReLU" in r.stdout and "sigmoid" in r.stdout
    # cached in the lab's run cache: a second call replays
    assert len(list((home / "lab" / "runs").glob("play-*.json"))) == 2


def test_per_layer_activations_and_errors():
    r = run("playground", "--compare", "relu/tanh", "--epochs", 1, "--n-train", 100,
            "--width", 8)
    assert r.exit_code == 0, r.output
    r = run("playground")
    assert r.exit_code == 1 and "--compare" in r.stderr
    r = run("playground", "--compare", "softplus")
    assert r.exit_code == 1 and "activation" in r.stderr
    r = run("playground", "--preset", "nope")
    assert r.exit_code == 1 and "preset" in r.stderr
