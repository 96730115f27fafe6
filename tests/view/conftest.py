"""Fixtures of the view tests: homes holding trained models, the live page server, Chromium and a
page on it, the screenshots' folder, and the API clients several modules share.

A module needing other models or another app defines its own module-scoped ``server`` (a dict
with at least ``"url"``): with ``serve_models``, or ``model_home`` and ``_server.live_server``;
``browser`` and ``page`` then use it.  Plain helpers (drawing, waiting, what the page said, the
live server) are in ``_browser.py`` and ``_server.py``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from _browser import ARGS, CHROMIUM, assert_quiet, need_browser, open_page
from _server import live_server

import digitlens as dl
from digitlens.nn.checkpoint import save_model


# ------------------------------------------------------------------- homes with trained models
@pytest.fixture(scope="session")
def save_trained(trained, digits):
    """``save_trained(name, epochs=None)`` -> the zoo model from ``trained``, saved in the current
    DIGITLENS_HOME with its accuracy on the bundled test digits (those of its classes)."""
    from digitlens._util import paths

    def save(name: str, epochs: int | None = None):
        m = trained(name, epochs)
        x, y = digits.x_test, digits.y_test
        if set(m.classes) != set(range(10)):  # e.g. binary: scored on the 0s and 1s
            keep = np.isin(y, m.classes)
            x, y = x[keep], y[keep]
        _, acc = dl.evaluate(m, x, y)
        save_model(m, paths.model_path(name), {"test_accuracy": acc})
        return m
    return save


@pytest.fixture(scope="session")
def model_home(tmp_path_factory, save_trained):
    """``with model_home(basename, {name: epochs}) as (home, models):`` a new temporary
    DIGITLENS_HOME (set in the environment until the block ends) holding those models, each
    trained with its default recipe (``epochs=None``) or for that many epochs, and saved with
    its test accuracy; ``models`` maps each name to its model."""
    @contextlib.contextmanager
    def make(basename: str, models: dict[str, int | None]):
        home = tmp_path_factory.mktemp(basename)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DIGITLENS_HOME", str(home))
            yield home, {name: save_trained(name, epochs) for name, epochs in models.items()}
    return make


@pytest.fixture(scope="session")
def serve_models(model_home):
    """``with serve_models(basename, {name: epochs}, **options) as server:`` the page's app
    (``create_app(**options)``) live on a free loopback port, over a ``model_home`` holding those
    models; ``server`` is ``{"url", "app", "home", "models"}``.  Skips without a browser."""
    @contextlib.contextmanager
    def make(basename: str, models: dict[str, int | None], **options):
        need_browser()
        from digitlens.view.server.app import create_app

        with model_home(basename, models) as (home, trained):
            app = create_app(**options)
            with live_server(app) as url:
                yield {"url": url, "app": app, "home": home, "models": trained}
    return make


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty DIGITLENS_HOME for one test."""
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    return tmp_path


# ----------------------------------------------------------------------------- API clients
@pytest.fixture(scope="module")
def client(rec):
    """A test client of the app over the module's own ``rec`` (a Recognizer), cnn first, no
    training; modules serving something else define their own ``client``."""
    with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from digitlens.view.server.app import create_app

    with TestClient(create_app(rec, default_model="cnn", training=False)) as c:
        yield c


# ------------------------------------------------------------------------ the browser tests
@pytest.fixture(scope="module")
def artifacts():
    """The screenshots' folder: ``artifacts/browser/`` (or ``$DIGITLENS_ARTIFACTS/browser``)."""
    d = Path(os.environ.get("DIGITLENS_ARTIFACTS") or
             Path(__file__).resolve().parents[2] / "artifacts") / "browser"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def server(model_home, tiny_lab_study):
    """The page's server, live on a free loopback port: logistic, lab, mlp and cnn_tiny (2
    epochs) saved in a temporary home, the mlp first, a tiny activation lab; ``"seen"`` counts
    the /api/explain requests in flight at once (the page must never overlap them)."""
    need_browser()
    from digitlens.view.server.app import create_app
    from digitlens.view.server.lab_jobs import LabRunner

    with model_home("browser_home", {"logistic": None, "lab": None, "mlp": None,
                                     "cnn_tiny": 2}) as (home, _):
        app = create_app(default_model="mlp", seed=0,
                         lab=LabRunner(home / "lab", study=tiny_lab_study, max_workers=1))
        seen = {"now": 0, "max": 0, "total": 0}
        lock = threading.Lock()

        @app.middleware("http")
        async def count(request, call_next):
            if request.url.path != "/api/explain":
                return await call_next(request)
            with lock:
                seen["now"] += 1
                seen["total"] += 1
                seen["max"] = max(seen["max"], seen["now"])
            try:
                return await call_next(request)
            finally:
                with lock:
                    seen["now"] -= 1

        with live_server(app) as url:
            yield {"url": url, "seen": seen, "app": app}


@pytest.fixture(scope="module")
def browser(server):
    """Headless Chromium (after the module's ``server`` is up)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def console_log():
    """What the page said: uncaught exceptions (``page``) and console errors (``console``)."""
    return {"page": [], "console": []}


@pytest.fixture
def page(browser, server, console_log):
    """The page of the module's ``server``, loaded and ready, 1366×900; on teardown it must have
    said nothing but the API's refusals."""
    ctx, pg = open_page(browser, server["url"], console_log,
                        viewport={"width": 1366, "height": 900})
    yield pg
    ctx.close()
    assert_quiet(console_log)
