"""The save policy of a training run (training.recipes.save_plan): a good model is never lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitlens.training.fit import History, TrainConfig
from digitlens.training.recipes import (LadderRow, diverged_reason, keep_previous,
                                        restore_previous, save_plan)


def row(acc, first_loss=2.3, last_loss=0.3, stop="completed", name="mlp", epochs=2):
    h = History(epochs=[{"loss": last_loss}] * epochs, batches=[{"loss": first_loss}],
                stop_reason=stop)
    return LadderRow(name=name, adds="", description="", n_params=1, seconds=1.0,
                     test_accuracy=acc, test_loss=0.1, epochs=epochs, config=TrainConfig(),
                     augment=None, seed=0, model=None, history=h)


@pytest.mark.parametrize("acc, expect", [(0.10, True), (0.15, True), (0.16, False),
                                         (0.948, False), (float("nan"), True)])
def test_near_chance_is_diverged(acc, expect):
    assert (diverged_reason(row(acc)) is not None) is expect


def test_chance_depends_on_the_number_of_classes():
    assert diverged_reason(row(0.70, name="binary")) is not None   # 2 classes: chance is 50 %
    assert diverged_reason(row(0.80, name="binary")) is None


def test_a_loss_that_rose_far_above_its_start_is_diverged():
    assert "rose" in diverged_reason(row(0.8, first_loss=2.3, last_loss=5.0))
    assert diverged_reason(row(0.8, first_loss=2.3, last_loss=4.0)) is None


def test_save_plan(tmp_path):
    target = tmp_path / "mlp.npz"
    assert save_plan(row(0.9), target, cache=True).path == target
    p = save_plan(row(0.9, stop="interrupted"), target, cache=True)
    assert p.kind == "partial" and p.path == tmp_path / "mlp.partial.npz"
    assert save_plan(row(0.9, stop="interrupted"), target, cache=False).path == target
    assert save_plan(row(0.1), target, cache=False).kind == "diverged"
    assert save_plan(row(0.9, epochs=0), target, cache=True).path is None


def test_keep_previous_and_restore(tmp_path):
    path = tmp_path / "mlp.npz"
    assert keep_previous(path) is False
    path.write_text("old")
    assert keep_previous(path) is True and not path.exists()
    path.write_text("new")
    restore_previous(path)
    assert path.read_text() == "old" and (tmp_path / "mlp.previous.npz").read_text() == "new"
    (tmp_path / "mlp.previous.npz").unlink()
    with pytest.raises(FileNotFoundError):
        restore_previous(Path(path))
