"""Shared by the lab's tests: a tiny preset (seconds, in process), its study's result, and a
private DIGITLENS_HOME per test."""

from __future__ import annotations

import pytest

from digitlens import lab

TINY = lab.Preset(name="tiny", n_train=200, n_test=100, epochs=2, seeds=1, widths=(4, 16),
                  depths=(1, 2), depth_width=16, main_width=16, main_depth=1,
                  target_accuracy=0.5, extra_activations=("elu",), compare_activations=("sigmoid",),
                  evals_per_epoch=2, n_examples=20, bench_rounds=1, bench_seconds=0.0005)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def tiny():
    """The tiny preset: every part of a study, on 200 digits for 2 epochs and 1 seed."""
    return TINY


@pytest.fixture(scope="session")
def tiny_result():
    """Every part of the lab study on the tiny preset, run in process (no cache)."""
    return lab.run_study(lab.lab_study(TINY), max_workers=1)
