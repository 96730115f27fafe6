"""The ladder: rows describing what was trained, the same models as `digitlens train`, the CLI."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import digitlens as dl
from digitlens.data import Digits
from digitlens.training.ladder import RUNGS, Rung, run_ladder, train_rung
from digitlens.nn.checkpoint import load_model
from digitlens.nn.zoo import build_model
from digitlens.training.recipes import default_recipe


@pytest.fixture(scope="module")
def small():
    """A quick split: 600 training digits, the 1,000 test digits."""
    d = dl.load_digits()
    return Digits(d.x_train[:600], d.y_train[:600], d.x_test, d.y_test)


def test_default_ladder_climbs_from_logistic_to_cnn():
    assert [r.name for r in RUNGS] == ["logistic", "lab", "mlp", "cnn"]
    assert all(r.adds for r in RUNGS)
    assert "same detector everywhere" in RUNGS[-1].adds


def test_rows_describe_what_was_trained(small):
    seen, ended = [], []

    class Count:
        def __init__(self):
            self.batches = 0

        def on_batch_end(self, log):
            self.batches += 1

    counters = {}

    def callbacks_for(rung, config):
        seen.append((rung.name, config))
        counters[rung.name] = Count()
        return [counters[rung.name]]

    rows = run_ladder(small, rungs=["logistic", "cnn"], epochs=1, callbacks_for=callbacks_for,
                      on_rung_end=ended.append)
    assert [r.name for r in rows] == ["logistic", "cnn"] == [r.name for r in ended]
    assert [name for name, _ in seen] == ["logistic", "cnn"]
    for row, (name, config) in zip(rows, seen):
        recipe = default_recipe(name)
        assert config == dataclasses.replace(recipe, epochs=1) == row.config
        assert counters[name].batches == -(-600 // recipe.batch_size)
        assert row.epochs == 1 and row.history.stop_reason == "completed"
        assert row.n_params == build_model(name, np.random.default_rng(0)).n_params
        assert row.n_params == row.model.n_params
        loss, acc = dl.evaluate(row.model, small.x_test, small.y_test)
        assert row.test_accuracy == acc and row.test_loss == loss
        assert row.seconds > 0
        assert row.adds == next(r.adds for r in RUNGS if r.name == name)
        d = row.to_dict()
        assert d["name"] == name and d["test_accuracy"] == acc and "model" not in d
    assert rows[0].augment is None
    assert rows[1].augment["rotation"] > 0  # the cnn recipe augments
    assert run_ladder(small, rungs=[Rung("cnn", "x")], epochs=1,
                      augment=False)[0].augment is None


def test_a_rung_is_the_model_digitlens_train_makes(small, tmp_path):
    from digitlens.cli.train import train_and_save

    row = train_rung("cnn", small.x_train, small.y_train, small.x_test, small.y_test, seed=3,
                     config=dataclasses.replace(default_recipe("cnn"), epochs=1))
    model, history, acc = train_and_save("cnn", tmp_path / "cnn.npz", epochs=1, seed=3,
                                         data=small)
    for k, v in model.params().items():
        np.testing.assert_array_equal(row.model.params()[k], v)
    assert row.test_accuracy == acc


def test_ctrl_c_ends_the_ladder_after_reporting_the_rung(small):
    class Interrupt:
        def on_batch_end(self, log):
            if log["batch"] == 2:
                raise KeyboardInterrupt

    rows = run_ladder(small, rungs=["logistic", "lab", "mlp"], epochs=2,
                      callbacks_for=lambda rung, cfg: [Interrupt()] if rung.name == "lab" else [])
    assert [r.name for r in rows] == ["logistic", "lab"]
    assert rows[0].history.stop_reason == "completed"
    assert rows[1].history.stop_reason == "interrupted"


def test_bad_rungs_are_refused(small):
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        run_ladder(small, rungs=["logistic", "resnet"])
    with pytest.raises(ValueError, match="10-digit"):
        run_ladder(small, rungs=["binary"], epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        run_ladder(small, rungs=["logistic"], epochs=0)


def test_cli_ladder_prints_the_table_and_saves_the_models(tmp_path, monkeypatch):
    from digitlens.cli import app

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["ladder", "--epochs", "1", "--only", "logistic,lab",
                                        "--no-other-writers"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "what each step up buys" in out and "total" in out
    for name in ("logistic", "lab"):
        model, meta = load_model(tmp_path / "models" / f"{name}.npz", with_meta=True)
        assert model.name == name and meta["trained_by"] == "ladder"
        assert meta["epochs_completed"] == 1 and meta["train_config"]["epochs"] == 1
        acc = dl.evaluate(model, *(lambda d: (d.x_test, d.y_test))(dl.load_digits()))[1]
        assert meta["test_accuracy"] == pytest.approx(acc)
        assert f"{acc:.2%}" in out
        n = f"{model.n_params:,}"
        assert re.search(rf"{name}\s.*{n}", out)
    assert not (tmp_path / "models" / "cnn.npz").exists()


def test_cli_ladder_no_save_and_bad_options(tmp_path, monkeypatch):
    from digitlens.cli import app

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["ladder", "--epochs", "1", "--only", "logistic", "--no-save",
                                   "--no-other-writers"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "models").exists()
    result = runner.invoke(app, ["ladder", "--only", "logistic,resnet"])
    assert result.exit_code == 1
    assert "resnet" in result.output and "Traceback" not in result.output


def test_rows_report_other_writers_accuracy(small):
    """``other_writers``: each row's accuracy on them is the engine's own evaluate()."""
    rng = np.random.default_rng(0)
    x_other = rng.random((40, 1, 28, 28)).astype(np.float32)
    y_other = np.arange(40) % 10
    x_other[:10] = small.x_test[:10]  # some real digits, so the accuracy is not 0
    y_other[:10] = small.y_test[:10]
    rows = run_ladder(small, rungs=["logistic", "lab"], epochs=1,
                      other_writers=(x_other, y_other))
    for row in rows:
        _, acc = dl.evaluate(row.model, x_other, y_other)
        assert row.other_writers_accuracy == acc
        assert float(np.mean(row.model.predict(x_other) == y_other)) == pytest.approx(acc)
        assert row.to_dict()["other_writers_accuracy"] == acc
        assert row.checkpoint_meta()["other_writers_accuracy"] == acc
    assert rows[0].other_writers_accuracy != rows[1].other_writers_accuracy or \
        rows[0].test_accuracy != rows[1].test_accuracy  # two different models were scored
    plain = run_ladder(small, rungs=["logistic"], epochs=1)[0]
    assert plain.other_writers_accuracy is None
    assert plain.to_dict()["other_writers_accuracy"] is None
    assert "other_writers_accuracy" not in plain.checkpoint_meta()


def test_bad_other_writers_are_refused(small):
    x = np.zeros((3, 1, 28, 28), np.float32)
    with pytest.raises(ValueError, match="pair"):
        run_ladder(small, rungs=["logistic"], epochs=1, other_writers=x)
    with pytest.raises(ValueError, match=r"\(M, 1, 28, 28\)"):
        run_ladder(small, rungs=["logistic"], epochs=1, other_writers=(x[:, 0], [1, 2, 3]))
    with pytest.raises(ValueError, match="labels 0-9"):
        run_ladder(small, rungs=["logistic"], epochs=1, other_writers=(x, [1, 2, 12]))
    with pytest.raises(ValueError, match="M >= 1"):
        run_ladder(small, rungs=["logistic"], epochs=1, other_writers=(x[:0], []))
