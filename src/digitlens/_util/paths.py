"""Where digitlens keeps files it makes for the user (trained models, downloaded MNIST).

Nothing is computed at import time: call :func:`home`.  ``DIGITLENS_HOME`` overrides the
default, the per-user cache directory (e.g. ``~/.cache/digitlens`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("DIGITLENS_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("digitlens", appauthor=False))


def models_dir() -> Path:
    """Directory of the trained zoo models (``<home>/models/<name>.npz``)."""
    return home() / "models"


def model_path(name: str) -> Path:
    return models_dir() / f"{name}.npz"


def lab_runs_dir() -> Path:
    """The activation lab's finished runs (``<home>/lab/runs``), shared by ``digitlens lab`` and
    the web page: a run is keyed by its spec and the engine's code, so any study reuses it."""
    return home() / "lab" / "runs"
