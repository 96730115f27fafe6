"""``digitlens ladder``: the other writers' (optdigits) column shows the engine's own numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import digitlens as dl
from digitlens.nn.checkpoint import load_model

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def other():
    """The first 60 optdigits digits through the one optdigits path (quick to prepare)."""
    from digitlens.evaluation.datasets import load_eval_set

    return load_eval_set("optdigits", limit=60)


@pytest.fixture
def home(tmp_path, monkeypatch, other):
    import digitlens.cli.ladder as cli_ladder

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    monkeypatch.setattr(cli_ladder, "load_other_writers", lambda: (other, ""))
    return tmp_path


def test_json_rows_carry_other_writers_accuracy_equal_to_the_engines(home, other):
    from digitlens.cli import app

    result = CliRunner().invoke(
        app, ["ladder", "--epochs", "1", "--only", "logistic,lab", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # stdout holds the JSON only; progress went to stderr
    assert [r["name"] for r in out["rows"]] == ["logistic", "lab"]
    assert out["other_writers"] == other.description
    bundled = dl.load_digits()
    for row in out["rows"]:
        model, meta = load_model(home / "models" / f"{row['name']}.npz", with_meta=True)
        _, acc = dl.evaluate(model, other.x, other.y)
        assert row["other_writers_accuracy"] == pytest.approx(acc, abs=1e-12)
        assert meta["other_writers_accuracy"] == pytest.approx(acc, abs=1e-12)
        assert row["test_accuracy"] == pytest.approx(
            dl.evaluate(model, bundled.x_test, bundled.y_test)[1], abs=1e-12)
        assert 0.0 <= acc <= 1.0
    assert set(out["saved"]) == {"logistic", "lab"}


def test_table_has_the_other_writers_column(home, other):
    from digitlens.cli import app

    result = CliRunner().invoke(app, ["ladder", "--epochs", "1", "--only", "logistic",
                                      "--no-save"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "other writers" in out and "optdigits" in out
    assert f"and on {len(other.y)} by other writers" in " ".join(out.split())
    # the number in the table: retrain the same rung (same seed: the same model) and score it
    from digitlens.training.ladder import run_ladder

    row = run_ladder(rungs=["logistic"], epochs=1, other_writers=(other.x, other.y))[0]
    assert f"{row.other_writers_accuracy:.2%}" in out
    assert f"{row.test_accuracy:.2%}" in out


def test_without_scikit_learn_the_column_says_not_measured(tmp_path, monkeypatch):
    import digitlens.cli.ladder as cli_ladder
    from digitlens.cli import app
    from digitlens.evaluation import datasets

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))

    def no_sklearn(name, **kw):
        raise ImportError("--data optdigits needs scikit-learn")

    monkeypatch.setattr(datasets, "load_eval_set", no_sklearn)
    assert cli_ladder.load_other_writers()[0] is None
    result = CliRunner().invoke(app, ["ladder", "--epochs", "1", "--only", "logistic",
                                      "--no-save"])
    assert result.exit_code == 0, result.output
    assert "other writers not measured" in result.output and "scikit-learn" in result.output
    assert "—" in result.output


def test_no_other_writers_skips_the_set(tmp_path, monkeypatch):
    import digitlens.cli.ladder as cli_ladder
    from digitlens.cli import app

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    monkeypatch.setattr(cli_ladder, "load_other_writers",
                        lambda: pytest.fail("--no-other-writers must not load optdigits"))
    result = CliRunner().invoke(
        app, ["ladder", "--epochs", "1", "--only", "logistic", "--no-save",
              "--no-other-writers", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert rows[0]["other_writers_accuracy"] is None
    assert np.isfinite(rows[0]["test_accuracy"])
