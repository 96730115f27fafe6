"""Shared fixtures: the bundled split and trained zoo models (trained once per test session)."""

from __future__ import annotations

import os

# The CLI's tables and sentences are checked as text: give them one terminal width everywhere
# (a terminal, CI, and pytest-xdist's workers, which have none, would otherwise wrap differently).
os.environ["COLUMNS"] = "200"

import pytest

import digitlens as dl
from digitlens.training.recipes import default_recipe

_TRAINED: dict = {}


@pytest.fixture(scope="session", autouse=True)
def _private_digitlens_home(tmp_path_factory):
    """No test reads or writes the user's real cache (trained models, downloads): every test runs
    with DIGITLENS_HOME in a temporary directory unless it sets its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITLENS_HOME", str(tmp_path_factory.mktemp("digitlens_home")))
        yield


@pytest.fixture(scope="session")
def digits():
    return dl.load_digits()


def train_zoo_model(name: str, epochs: int | None = None, seed: int = 0):
    """Train zoo model ``name`` with its default recipe (optionally fewer epochs) exactly as
    ``digitlens train`` does; cached per session by (name, epochs, seed).
    Returns ``(model, history)``."""
    import dataclasses

    from digitlens.training.recipes import train_rung

    key = (name, epochs, seed)
    if key not in _TRAINED:
        d = dl.load_digits()
        recipe = default_recipe(name)
        if epochs is not None:
            recipe = dataclasses.replace(recipe, epochs=epochs)
        row = train_rung(name, d.x_train, d.y_train, d.x_test, d.y_test, seed=seed, config=recipe)
        _TRAINED[key] = (row.model, row.history)
    return _TRAINED[key]


@pytest.fixture(scope="session")
def trained():
    """``trained(name, epochs=None)`` -> a model trained with its default recipe (cached)."""
    return lambda name, epochs=None: train_zoo_model(name, epochs)[0]


@pytest.fixture(scope="session")
def tiny_lab_study():
    """A callable making a tiny activation-lab study: every part and rule of the quick one, on
    200 digits for 1 epoch and 2 seeds (about a second, in process)."""
    from digitlens import lab as ex

    def make():
        p = ex.get_preset("quick", seeds=2, epochs=1, n_train=200, n_test=100, widths=(4, 16),
                          depths=(1, 2), bench_rounds=1)
        return ex.lab_study(p)
    return make
