"""The web page's server: a JSON API and one static page (FastAPI on uvicorn).

A thin shell.  Every number it sends comes from a library object — the pre-processing pipeline,
the model, :class:`digitlens.recognizer.Recognizer` and :mod:`digitlens.explain` — and the page
only draws what it receives (no machine learning in JavaScript).  This module assembles the app;
the routes live in one router module per area, the shared state in one
:class:`~digitlens.view.server.state.ServerContext`:

    page.py       GET  /                         the page (index.html)
                  GET  /static/{path}            every file under view/static/ (js/*.js, css, ...)
                  GET  /api                      the API in plain HTML (offline)
    models.py     GET  /api/health               {"ok": true, "version": ...}
                  GET  /api/models               the zoo: which models are trained, their accuracy
    explain.py    POST /api/explain              an image (raw bytes, or JSON with a PNG data URL)
                                                 -> Explanation
                  GET  /api/models/{name}/units/{layer}/{unit}
                                                 what one hidden unit / filter looks for
                  POST (same path)               ... and its pixel template at an image
    inspect.py    GET  /api/models/{name}/layers     every layer's name for people
                  POST /api/models/{name}/worked/{layer}/{unit}
                                                 one unit's sum worked out on an image
                  POST /api/models/{name}/maps   every convolution's feature maps
    filters.py    GET  /api/models/{name}/filters/{layer}/{unit}
                                                 what a filter or unit looks for: top patches,
                                                 response curves, the hand-made kernels
    learn.py      POST /api/models/{name}/step   one training step on a drawing
    report.py     POST /api/report               the same request -> the explanation as one
                                                 self-contained HTML report
    trust.py      POST /api/trust                the 28×28 image -> three checks of its map
    evaluation.py GET  /api/evaluation/{name}     confusion, precision/recall, calibration,
                                                 mistakes;
                                                 /cell, /mistakes, /map (+ POST /map/place),
                                                 GET /api/evaluation/robustness
    digits.py     GET  /api/digits/random        a bundled test digit (28×28 pixels 0..255, label)
    training.py   POST /api/train                start training a zoo model in the background
                  GET  /api/train                the training jobs
                  GET  /api/train/{id}           one job's state
                  GET  /api/train/{id}/events    its progress as server-sent events
                  POST /api/train/{id}/cancel    stop it at the next mini-batch
    lab.py        GET  /api/lab                  the activation lab: last verdicts, a running study
                  POST /api/lab/run              run the quick lab study in the background
                  POST /api/lab/cancel           stop it (finished runs are kept)
                  GET  /api/lab/figures/{name}   one of the report's figures (PNG)
    playground.py GET  /api/functions            every activation's curve and slope
                  POST /api/functions/rug        a digit's sums placed on one activation
                  GET  /api/playground           presets, choices, the latest session
                  POST /api/playground/run       up to four networks side by side (background)
                  POST /api/playground/cancel    stop them (finished networks stay cached)

Beside them: ``errors.py`` (ApiError and the JSON error handlers), ``api.py`` (request bodies,
the body-size limit), ``registry.py`` (one loaded model per name), ``state.py`` (the shared
context), ``training_jobs.py`` and ``lab_jobs.py`` (the background jobs).  The OpenAPI schema is
at ``/openapi.json``.

Safety: request bodies over ``max_body_bytes`` get 413; images over the pipeline's pixel limit get
413; every bad request gets a 4xx with ``{"error": code, "message": sentence}`` — never a 500.
Model names are checked against the zoo before any file is touched, and static files are served
from a fixed allow-list loaded at start-up: the server never opens a path a client sends.
One model object is loaded per name and shared by all requests (layers keep no per-request
state, see :mod:`digitlens.nn.layers`).  ``digitlens serve`` binds 127.0.0.1 by default.
"""

from __future__ import annotations

import contextlib
import json
import threading

import numpy as np
from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from ... import __version__
from . import digits, explain, inspect, models, page
from . import filters as filter_routes
from . import learn as learn_routes
from . import lab as lab_routes
from . import playground as playground_routes
from . import report as report_routes
from . import training as training_routes
from . import trust as trust_routes
from . import evaluation as evaluation_routes
from . import mine as mine_routes
from .api import MAX_BODY_BYTES, BodyLimitMiddleware
from .errors import ApiError, install_handlers
from .security import HostPolicy, SecurityMiddleware
from .explain import Explainer
from .registry import ModelRegistry
from .state import ServerContext

#: environment variable carrying ``digitlens serve`` settings to its worker processes
SERVE_ENV = "DIGITLENS_SERVE"

__all__ = ["MAX_BODY_BYTES", "SERVE_ENV", "ApiError", "ModelRegistry", "app_from_env",
           "create_app", "warm_up"]


def create_app(recognizer=None, *, default_model: str = "cnn", training: bool = True,
               jobs=None, max_body_bytes: int = MAX_BODY_BYTES, max_pixels: int | None = None,
               seed: int | None = None, compute_threads: int = 2, lab=None, hosts=None,
               token: str | None = None) -> FastAPI:
    """Build the FastAPI app.

    Parameters
    ----------
    recognizer : the :class:`digitlens.recognizer.Recognizer` that explains images.  Zoo models
        it does not hold are loaded into it from the cache on first use (None: an empty one).
    default_model : the model the page opens with (falls back to the best trained one).
    training : offer the training endpoints (a teacher may switch them off for a class).
    jobs : a :class:`digitlens.view.server.training_jobs.TrainingJobs` (None: one that saves to
        the cache).
    max_body_bytes : the request body limit (413 above it).
    max_pixels : the image pixel limit passed to the pre-processing (None: its default).
    seed : seeds the Generator that picks random test digits (None: fresh entropy).
    lab : a :class:`digitlens.view.server.lab_jobs.LabRunner` (None: the quick study, reported into
        ``<DIGITLENS_HOME>/lab/all-quick``).  It runs only when ``training`` is on.
    compute_threads : explanations computed at once; more requests wait their turn in order.
        An explanation is mostly Python holding the GIL, so extra threads only add switching:
        measured with benchmarks/load_test.py (8 clients, cnn, 2 cores), 2 threads answer
        live requests faster than 40 (AnyIO's default); 2, not 1, so a live request is not
        queued behind a slow full explanation alone.
    hosts : the :class:`~digitlens.view.server.security.HostPolicy` (None: loopback names and
        Starlette's TestClient); ``digitlens serve`` passes its ``--host``/``--allowed-host``.
    token : the teacher's token: training, the lab and cancelling need ``Authorization: Bearer
        <token>`` (None: open).  See :mod:`digitlens.view.server.security`.

    Examples
    --------
    >>> from digitlens.recognizer import Recognizer
    >>> app = create_app(Recognizer(), default_model="mlp")   # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1")      # doctest: +SKIP
    """
    if isinstance(compute_threads, bool) or not isinstance(compute_threads, int) \
            or compute_threads < 1:
        raise ValueError(f"compute_threads must be an integer >= 1, got {compute_threads!r}")
    ctx = _context(recognizer, default_model, training, jobs, lab, max_pixels, seed,
                   compute_threads)
    jobs, lab = ctx.jobs, ctx.lab

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.shutdown(timeout=5)  # a running training thread stops at its next mini-batch
        lab.shutdown(timeout=5)

    app = FastAPI(
        lifespan=lifespan,
        title="digitlens",
        version=__version__,
        description="Draw a digit and look inside the network as it decides. Every number on the "
                    "page comes from this API; errors are JSON `{\"error\", \"message\"}`.",
        docs_url="/docs", redoc_url=None,
    )
    app.state.ctx = ctx
    # the parts by name too (tests and notebooks reach in): the same objects as in ctx
    app.state.registry, app.state.jobs, app.state.explainer = ctx.registry, jobs, ctx.explainer
    app.state.lab = lab
    _install(app, max_body_bytes, hosts, token)
    return app


def _context(recognizer, default_model, training, jobs, lab, max_pixels, seed,
             compute_threads) -> ServerContext:
    """What every route reads (see :func:`create_app` for the parameters)."""
    from ...recognizer import Recognizer
    from .training_jobs import TrainingJobs

    registry = ModelRegistry(recognizer if recognizer is not None else Recognizer())
    if default_model not in registry.names():
        raise ValueError(f"default_model must be one of {registry.names()}, got "
                         f"{default_model!r}")
    if lab is None:
        from ..._util import paths
        from .lab_jobs import LabRunner

        lab = LabRunner(paths.home() / "lab" / "all-quick", cache_dir=paths.lab_runs_dir())
    if jobs is None:
        jobs = TrainingJobs(on_trained=registry.put)
    elif jobs.on_trained is None:
        jobs.on_trained = registry.put
    return ServerContext(registry=registry, explainer=Explainer(registry, max_pixels=max_pixels),
                         jobs=jobs, lab=lab, static_files=page.static_files(),
                         default_model=default_model, training=training,
                         rng=np.random.default_rng(seed), compute_threads=compute_threads)


def _install(app: FastAPI, max_body_bytes: int, hosts, token) -> None:
    """The middleware (outermost last) and every router."""
    # explanations are mostly numbers: gzip level 1 shrinks them ~5x for a classroom network in
    # ~3 ms (server-sent events are never compressed, so they stay live)
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=1)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    # outermost: Host, Origin, content type, the teacher's token, work in flight (security.py)
    app.add_middleware(SecurityMiddleware, hosts=hosts or HostPolicy(test_client=True),
                       token=token)
    install_handlers(app)
    for module in (page, models, explain, inspect, digits, training_routes, lab_routes,
                   playground_routes, filter_routes, learn_routes, report_routes):
        app.include_router(module.router)
    app.include_router(trust_routes.router)  # POST /api/trust: can I trust this map?
    app.include_router(evaluation_routes.router)  # /api/evaluation/...: the Evaluation tab
    app.include_router(mine_routes.router)  # /api/mine...: my digits (issue 17)


def app_from_env() -> FastAPI:
    """The app of one worker process of ``digitlens serve --workers N`` (uvicorn factory).

    Settings come from the JSON in ``$DIGITLENS_SERVE`` (``default_model``, ``warm``,
    ``compute_threads``).  Each
    process loads its own models; training is off, since a job would live in one process only.
    """
    import os

    from ...recognizer import Recognizer

    cfg = json.loads(os.environ.get(SERVE_ENV, "{}"))
    app = create_app(Recognizer(), default_model=cfg.get("default_model", "cnn"), training=False,
                     compute_threads=int(cfg.get("compute_threads", 2)),
                     hosts=HostPolicy(cfg["host"], cfg.get("allowed_hosts", ()))
                     if "host" in cfg else None, token=cfg.get("token"))
    threading.Thread(target=warm_up, args=(app, cfg.get("warm", [])), daemon=True).start()
    return app


def warm_up(app: FastAPI, names) -> None:
    """Load models ``names`` and build their unit atlases now rather than on the first request
    (``digitlens serve`` runs this in a background thread).  Untrained names are skipped."""
    registry: ModelRegistry = app.state.ctx.registry
    for name in names:
        try:
            registry.get(name)
            registry.rec.atlas(name)
        except ApiError:
            continue
