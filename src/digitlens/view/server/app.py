"""The web page's server: a JSON API and one static page (FastAPI on uvicorn).

A thin shell.  Every number it sends comes from a library object — the pre-processing pipeline,
the model, :class:`digitlens.recognizer.Recognizer` and :mod:`digitlens.explain` — and the page
only draws what it receives (no machine learning in JavaScript).

Endpoints (all JSON unless said otherwise; the OpenAPI schema is at ``/openapi.json``)::

    GET  /                         the page (index.html); /static/app.js, /static/style.css
    GET  /api/health               {"ok": true, "version": ...}
    GET  /api/models               the zoo: which models are trained, their accuracy and layers
    POST /api/explain              an image (raw bytes, or JSON with a PNG data URL) -> Explanation
    GET  /api/models/{name}/units/{layer}/{unit}
                                   what one hidden unit / filter looks for (template, top digits)
    GET  /api/digits/random        a bundled test digit (28×28 pixels 0..255 and its label)
    POST /api/train                start training a zoo model in the background
    GET  /api/train                the training jobs
    GET  /api/train/{id}           one job's state
    GET  /api/train/{id}/events    its progress as server-sent events (text/event-stream)
    POST /api/train/{id}/cancel    stop it at the next mini-batch
    GET  /api/lab                  the activation lab: the last study's verdicts, a running one
    POST /api/lab/run              run the quick lab study in the background
    POST /api/lab/cancel           stop it (finished runs are kept)
    GET  /api/lab/figures/{name}   one of the report's figures (PNG)

Safety: request bodies over ``max_body_bytes`` get 413; images over the pipeline's pixel limit get
413; every bad request gets a 4xx with ``{"error": code, "message": sentence}`` — never a 500.
Model names are checked against the zoo before any file is touched, and static files are served
from a fixed allow-list loaded at start-up: the server never opens a path a client sends.
One model object is loaded per name and shared by all requests (layers keep no per-request
state, see :mod:`digitlens.nn.layers`).  ``digitlens serve`` binds 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import threading
import weakref
from typing import Any, Literal

import anyio
import anyio.to_thread
import orjson
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.gzip import GZipMiddleware

from ... import __version__

#: largest request body accepted (bytes): a phone photo fits, even as a base64 data URL (+33 %)
MAX_BODY_BYTES = 12 * 1024 * 1024
#: the models the page offers, simplest first (only those in the zoo are shown)
LADDER = ("logistic", "lab", "mlp", "cnn_tiny", "cnn")
_JOB_ID = re.compile(r"^[0-9a-f]{12}$")
_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+|application/octet-stream)?(;[a-z0-9=.+-]+)*"
                       r";base64,", re.IGNORECASE)


from .errors import ApiError, ErrorBody  # noqa: F401  (re-exported)
from .errors import HTTP_CODES as _HTTP_CODES  # noqa: F401
from .errors import error_response as _error_response
from .errors import errors_doc as _errors_doc
from .errors import install_handlers
from .errors import preprocess_error as _preprocess_error
from .page import PAGE_CSP, api_reference_html, static_files  # noqa: F401
from .page import router as page_router



# --------------------------------------------------------------------------- request limits
class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, whether the client announces the size
    (Content-Length) or streams it in chunks (the running count is checked as it arrives)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._refuse(scope, receive, send)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        mib = self.max_bytes / 2**20
        response = _error_response(413, "too_large", f"the request body is over the "
                                   f"{mib:.0f} MiB limit; send a smaller image")
        await response(scope, receive, send)


# ---------------------------------------------------------------------------------- models
class ModelRegistry:
    """One loaded model per name, shared by every request, kept in one
    :class:`~digitlens.recognizer.Recognizer`.

    A zoo model is read from :func:`digitlens._util.paths.model_path` the first time it is asked for
    (and read again if that file changes, e.g. after ``digitlens train`` in another terminal);
    :meth:`put` replaces it when the training view finishes a run.  Names are checked against
    the zoo (or the recognizer's own models) before any path is built.
    """

    def __init__(self, recognizer) -> None:
        self.rec = recognizer
        self._meta: dict[str, dict] = {}
        self._mtime: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def zoo() -> dict[str, Any]:
        from ...nn.zoo import MODELS

        return MODELS

    def names(self) -> list[str]:
        zoo = list(self.zoo())
        return zoo + [n for n in self.rec.names if n not in zoo]

    def check_name(self, name: str) -> str:
        if name not in self.names():
            raise ApiError(404, "unknown_model", f"there is no model called {name!r}; choose one "
                           f"of {', '.join(self.names())}")
        return name

    def _path(self, name: str):
        from ..._util import paths

        return paths.model_path(name) if name in self.zoo() else None

    def is_trained(self, name: str) -> bool:
        path = self._path(name)
        return name in self.rec.names or (path is not None and path.is_file())

    def get(self, name: str) -> tuple[Any, dict]:
        """``(model, meta)``; raises :class:`ApiError` for unknown or untrained names."""
        from ...nn.checkpoint import CheckpointError, load_model

        self.check_name(name)
        path = self._path(name)
        with self._lock:
            try:
                mtime = path.stat().st_mtime if path is not None else None
            except OSError:
                mtime = None
            loaded = name in self.rec.names
            if loaded and (mtime is None or self._mtime.get(name) in (None, mtime)):
                return self.rec.model(name), self._meta.get(name, {})
            if mtime is None:
                raise ApiError(409, "model_not_trained",
                               f"the {name!r} model has not been trained yet: train it in the "
                               f"training view, or run `digitlens train --model {name}`")
            try:
                model, meta = load_model(path, with_meta=True)
            except CheckpointError as e:
                if loaded:  # keep serving the model we have
                    return self.rec.model(name), self._meta.get(name, {})
                raise ApiError(503, "model_unreadable", f"the saved {name!r} model cannot be "
                               f"read ({e}); train it again") from None
            self.rec.add(name, model)
            self._meta[name], self._mtime[name] = meta, mtime
            return model, meta

    def put(self, name: str, model, meta: dict) -> None:
        """Serve ``model`` under ``name`` from now on (called when training completes)."""
        self.check_name(name)
        path = self._path(name)
        with self._lock:
            self.rec.add(name, model)
            self._meta[name] = dict(meta)
            try:
                self._mtime[name] = path.stat().st_mtime if path is not None else None
            except OSError:
                self._mtime[name] = None

    def describe(self, name: str) -> dict[str, Any]:
        """What the page's model switcher shows about ``name``."""
        from ...training.recipes import default_recipe

        e = self.zoo().get(name)
        info: dict[str, Any] = {"name": name, "sentence": e.sentence if e else "",
                                "classes": list(e.classes) if e else None,
                                "trained": self.is_trained(name),
                                "in_ladder": name in LADDER or e is None,
                                "recipe": default_recipe(name).to_dict() if e else None}
        if info["trained"]:
            try:
                model, meta = self.get(name)
            except ApiError as err:
                info.update(trained=False, problem=err.message)
                return info
            info.update(n_params=model.n_params, test_accuracy=meta.get("test_accuracy"),
                        layers=model.summary(), kind=_kind(model), classes=list(model.classes),
                        sentence=info["sentence"] or model.description)
        return info


def _kind(model) -> str:
    return "cnn" if any(layer.type.startswith("conv") for layer in model.layers) else "dense"


# ----------------------------------------------------------------------------- request bodies
class ExplainOptions(BaseModel):
    """What to compute.  ``detail="live"`` is what the page asks for while a stroke is being
    drawn (answer, pre-processing and every layer's numbers: fast); ``"full"`` adds attributions,
    the contrast, the counterfactual, the units and the nearest training digits."""

    model_config = ConfigDict(extra="forbid")

    detail: Literal["full", "live"] = Field("full", description="'live': prediction, "
                                            "pre-processing and trace only")
    vs: int | None = Field(None, ge=0, le=9, description="the digit to contrast with ('why X and "
                           "not Y'); default: the runner-up.  If the network now reads this very "
                           "digit, the runner-up is used and `notes` says so")
    target: int | None = Field(None, ge=0, le=9, description="also compute attribution maps for "
                               "this digit (the predicted digit always has them)")
    method: Literal["saliency", "gradient_x_input", "integrated_gradients", "occlusion"] | None = \
        Field(None, description="compute only this attribution method (default: all four)")
    counterfactual: bool = Field(True, description="search for the smallest ink edit that "
                                 "changes the answer to `vs`")
    steps: dict[str, bool] = Field(default_factory=dict, description="pre-processing switches, "
                                   "e.g. {\"center\": false}; names as in "
                                   "digitlens.preprocessing.SWITCHES")


class UnitRequest(BaseModel):
    """Optional body of ``POST /api/models/{name}/units/{layer}/{unit}``."""

    model_config = ConfigDict(extra="forbid")

    image: list[list[float]] | None = Field(None, description="the 28×28 image the network read "
                                            "(the explanation's `image`), for the pixel template "
                                            "of units that do not read pixels directly")


class ExplainJSON(BaseModel):
    """``POST /api/explain`` with ``Content-Type: application/json``."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="the image as a data URL (data:image/png;base64,...) or "
                       "plain base64", max_length=MAX_BODY_BYTES)
    model: str | None = Field(None, description="a zoo model name; default: the server's")
    options: ExplainOptions = Field(default_factory=ExplainOptions)


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the zoo model to train")
    epochs: int | None = Field(None, ge=1, description="default: the model's recipe")
    seed: int = Field(0, ge=0, le=2**31 - 1)


def decode_data_url(text: str) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URL (or of plain base64)."""
    text = text.strip()
    if text.startswith("data:"):
        m = _DATA_URL.match(text)
        if m is None:
            raise ApiError(422, "bad_data_url", "image must be a base64 data URL such as "
                           "'data:image/png;base64,iVBOR...'")
        text = text[m.end():]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "bad_base64", "image is not valid base64") from None


# ------------------------------------------------------------------------------- the app
def create_app(recognizer=None, *, default_model: str = "cnn", training: bool = True,
               jobs=None, max_body_bytes: int = MAX_BODY_BYTES, max_pixels: int | None = None,
               seed: int | None = None, compute_threads: int = 2, lab=None) -> FastAPI:
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

    Examples
    --------
    >>> from digitlens.recognizer import Recognizer
    >>> app = create_app(Recognizer(), default_model="mlp")   # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1")      # doctest: +SKIP
    """
    from ...recognizer import Recognizer
    from .training_jobs import JobConflict, TrainingJobs, UnknownJob

    if isinstance(compute_threads, bool) or not isinstance(compute_threads, int) \
            or compute_threads < 1:
        raise ValueError(f"compute_threads must be an integer >= 1, got {compute_threads!r}")
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
    rng = np.random.default_rng(seed)
    rng_lock = threading.Lock()
    app_static = static_files()
    explainer = _Explainer(registry, max_pixels=max_pixels)

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
    app.state.registry, app.state.jobs, app.state.explainer = registry, jobs, explainer
    app.state.lab = lab
    app.state.static_files = app_static
    limiters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def compute_limiter() -> anyio.CapacityLimiter:
        """This event loop's limiter on concurrent explanations (a limiter belongs to one loop;
        tests start a loop per TestClient)."""
        loop = asyncio.get_running_loop()
        if loop not in limiters:
            limiters[loop] = anyio.CapacityLimiter(compute_threads)
        return limiters[loop]
    # explanations are mostly numbers: gzip level 1 shrinks them ~5x for a classroom network in
    # ~3 ms (server-sent events are never compressed, so they stay live)
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=1)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)

    install_handlers(app)
    app.include_router(page_router)

    # -- the API -----------------------------------------------------------------------------
    @app.get("/api/health", tags=["server"])
    def health() -> dict:
        """Liveness check."""
        return {"ok": True, "version": __version__}

    @app.get("/api/models", tags=["models"])
    def list_models() -> dict:
        """The model zoo: each model's sentence, whether it is trained, its test accuracy and its
        layers; ``default`` is the model the page opens with."""
        names = [n for n in LADDER if n in registry.zoo()]
        names += [n for n in registry.zoo() if n not in names]
        infos = [registry.describe(n) for n in names]
        default = default_model
        if not any(i["name"] == default and i["trained"] for i in infos):
            trained = [i["name"] for i in infos if i["trained"] and i["in_ladder"]]
            default = trained[-1] if trained else default_model
        return {"models": infos, "default": default, "training": training}

    @app.post("/api/explain", tags=["explain"], response_class=Response,
              responses={200: {"description": "the Explanation JSON (Explanation.to_dict() plus "
                                              "`detail` and `notes`)",
                               "content": {"application/json": {}}},
                         **_errors_doc(404, 409, 413, 415, 422)},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": ExplainJSON.model_json_schema(
                      ref_template="#/components/schemas/{model}")},
                  "image/png": {"schema": {"type": "string", "format": "binary"}},
                  "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
              }}})
    async def explain(request: Request,
                      model: str | None = Query(None, description="zoo model (raw-bytes "
                                                "bodies; JSON bodies say it in the body)"),
                      detail: str = Query("full", description="'full' or 'live'"),
                      vs: int | None = Query(None, description="contrast digit"),
                      target: int | None = Query(None, description="attribution digit"),
                      method: str | None = Query(None, description="attribution method"),
                      counterfactual: bool = Query(True)) -> Response:
        """Explain one image: the pre-processing steps, the probabilities, every layer's numbers,
        attribution maps, "why X and not Y" and the counterfactual ink edit.

        Send either the image's bytes (PNG, JPEG, ... with any image content type, options in the
        query string) or JSON ``{"image": "data:image/png;base64,...", "model": "cnn",
        "options": {...}}``.  The answer is ``Explanation.to_dict()`` (see
        ``digitlens/explain/explanation.py``) plus ``detail`` and ``notes``.

        Errors: 404 ``unknown_model``; 409 ``model_not_trained``; 413 ``too_large`` (body) or
        ``image_too_large`` (pixels); 415 ``unsupported_media_type``; 422 ``no_ink`` (a blank
        canvas: "no ink found — draw or upload a digit"), ``not_an_image``,
        ``truncated_image``, ``bad_data_url``, ``bad_base64``, ``empty_body``,
        ``invalid_request``.
        """
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if not body:
            raise ApiError(422, "empty_body", "send an image: its bytes, or JSON with a PNG "
                           "data URL in \"image\"")
        if ctype == "application/json":
            try:
                payload = ExplainJSON.model_validate_json(body)
            except ValueError as e:
                raise RequestValidationError(getattr(e, "errors", lambda: [])()) from None
            image = decode_data_url(payload.image)
            name = payload.model or model or default_model
            options = payload.options
        elif ctype.startswith("image/") or ctype in ("application/octet-stream", ""):
            image = body
            name = model or default_model
            try:
                options = ExplainOptions(detail=detail, vs=vs, target=target, method=method,
                                         counterfactual=counterfactual)
            except ValueError as e:
                raise RequestValidationError(getattr(e, "errors", lambda: [])()) from None
        else:
            raise ApiError(415, "unsupported_media_type", f"Content-Type {ctype!r} is not "
                           "accepted; send image bytes or application/json")
        registry.check_name(name)
        # computed and serialised in a worker thread: the event loop stays free for other clients.
        # At most COMPUTE_THREADS explanations run at once (the others wait their turn, in order):
        # the work is mostly Python holding the GIL, so more threads only add switching.
        body = await anyio.to_thread.run_sync(explainer.explain_json, name, image, options,
                                              limiter=compute_limiter())
        return Response(body, media_type="application/json")

    @app.get("/api/models/{name}/units/{layer}/{unit}", tags=["models"],
             responses=_errors_doc(404, 409, 422))
    def unit(name: str, layer: int, unit: int) -> dict:
        """What one unit (or convolution filter) looks for: its bias, its weights drawn as a
        template when it reads the pixels directly, and the bundled training digits that excite it
        most.  ``layer`` is the index of a ``dense`` or ``conv2d`` layer (as in the trace)."""
        registry.check_name(name)
        return explainer.unit(name, layer, unit, None)

    @app.post("/api/models/{name}/units/{layer}/{unit}", tags=["models"],
              responses=_errors_doc(404, 409, 413, 422))
    async def unit_for_image(name: str, layer: int, unit: int, req: UnitRequest) -> dict:
        """As the GET, and for units that read other units rather than pixels, their pixel
        template *at this image*: the input gradient of the unit's activation."""
        registry.check_name(name)
        return await run_in_threadpool(explainer.unit, name, layer, unit, req.image)

    @app.get("/api/digits/random", tags=["digits"], responses=_errors_doc(422))
    def random_digit(label: int | None = Query(None, ge=0, le=9, description="only this digit"),
                     seed: int | None = Query(None, ge=0, description="repeatable pick")) -> dict:
        """A bundled *test* digit (the models never trained on it): its 28×28 pixels (0..255,
        ink bright) and its true label."""
        from ...data import load_digits

        d = load_digits()
        pool = np.flatnonzero(d.y_test == label) if label is not None else np.arange(len(d.y_test))
        if seed is not None:
            i = int(np.random.default_rng(seed).choice(pool))
        else:
            with rng_lock:
                i = int(rng.choice(pool))
        pixels = np.rint(d.x_test[i, 0] * 255).astype(np.uint8)  # (28, 28)
        return {"index": i, "split": "test", "label": int(d.y_test[i]),
                "pixels": pixels.tolist()}

    # -- training ----------------------------------------------------------------------------
    def _need_training() -> None:
        if not training:  # a teacher switched the heavy jobs off for a class
            raise ApiError(403, "training_disabled", "training and the activation lab are "
                           "switched off on this server")

    def _job(job_id: str):
        _need_training()
        if not _JOB_ID.match(job_id):
            raise ApiError(422, "bad_job_id", "a job id is 12 hexadecimal characters")
        try:
            return jobs.get(job_id)
        except UnknownJob as e:
            raise ApiError(404, "unknown_job", str(e)) from None

    @app.post("/api/train", status_code=202, tags=["training"],
              responses=_errors_doc(403, 404, 409, 422))
    def start_training(req: TrainRequest) -> dict:
        """Start training a zoo model on the bundled digits in the background (one job at a time).
        When it completes, the model is saved and the page uses it from then on."""
        _need_training()
        registry.check_name(req.model)
        if lab.running:
            # one heavy job at a time: the lab's runs already keep both cores busy
            raise ApiError(409, "lab_busy", "the activation lab is running; train when it has "
                           "finished (or cancel it)")
        try:
            job = jobs.start(req.model, epochs=req.epochs, seed=req.seed)
        except JobConflict as e:
            raise ApiError(409, "training_busy", str(e)) from None
        except ValueError as e:
            raise ApiError(422, "invalid_request", str(e)) from None
        return job.summary()

    @app.get("/api/train", tags=["training"])
    def list_training() -> dict:
        """Recent training jobs, newest first; ``running`` is the id of the active one."""
        active = jobs.running() if training else None
        return {"enabled": training, "running": active.id if active else None,
                "max_epochs": jobs.max_epochs,
                "jobs": [j.summary() for j in jobs.list()] if training else []}

    @app.get("/api/train/{job_id}", tags=["training"], responses=_errors_doc(403, 404, 422))
    def training_status(job_id: str) -> dict:
        """One job's state; ``events`` lists every progress event so far."""
        job = _job(job_id)
        events, _ = job.events_since(0)
        return {**job.summary(), "events": events}

    @app.post("/api/train/{job_id}/cancel", tags=["training"],
              responses=_errors_doc(403, 404, 422))
    def cancel_training(job_id: str) -> dict:
        """Stop the job at its next mini-batch; nothing is saved and the model in use is kept."""
        return jobs.cancel(_job(job_id).id).summary()

    @app.get("/api/train/{job_id}/events", tags=["training"],
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "server-sent events: start, batch, epoch, end"},
                        **_errors_doc(403, 404, 422)})
    async def training_events(job_id: str, request: Request) -> StreamingResponse:
        """Progress as server-sent events (``event: batch|epoch|start|end``, JSON data, ``id`` =
        the event's index so a reconnecting browser resumes with ``Last-Event-ID``)."""
        job = _job(job_id)
        try:
            start = int(request.headers.get("last-event-id", "-1")) + 1
        except ValueError:
            start = 0

        async def stream():
            i, idle = max(start, 0), 0.0
            yield "retry: 1000\n\n"
            while True:
                events, finished = job.events_since(i)
                for e in events:
                    yield f"id: {i}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n"
                    i += 1
                if finished and not events:
                    return
                if await request.is_disconnected():
                    return
                if events:
                    idle = 0.0
                else:
                    idle += 0.1
                    if idle >= 10:  # a comment line keeps proxies from closing a quiet stream
                        idle = 0.0
                        yield ": keep-alive\n\n"
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- the activation lab ----------------------------------------------------------------
    def _lab_state() -> dict:
        run = lab.current
        try:
            report = lab.report()
            error = None
        except Exception as e:  # noqa: BLE001 - a damaged result.json: say so, run again
            report, error = None, f"the last lab result could not be read ({e}); run it again"
        return {"enabled": training, "run": run.summary() if run else None, "report": report,
                "error": error, "command": "digitlens lab all --quick"}

    @app.get("/api/lab", tags=["lab"])
    def lab_status() -> dict:
        """The activation lab: ``report`` holds the last finished study's verdicts (each rule
        of thumb, its status, the numbers, its figures) or null; ``run`` the latest study started
        from the page (``state``, ``done`` of ``total`` runs)."""
        return _lab_state()

    @app.post("/api/lab/run", status_code=202, tags=["lab"], responses=_errors_doc(403, 409))
    def lab_run() -> dict:
        """Run the quick lab study in the background (the runs of ``digitlens lab all --quick``;
        finished runs are kept, so running it again only computes what is missing)."""
        _need_training()
        if jobs.running() is not None:
            raise ApiError(409, "training_busy", "a model is training; run the lab when it has "
                           "finished (or cancel it)")
        try:
            lab.start()
        except JobConflict as e:
            raise ApiError(409, "lab_busy", str(e)) from None
        return _lab_state()

    @app.post("/api/lab/cancel", tags=["lab"], responses=_errors_doc(403))
    def lab_cancel() -> dict:
        """Stop the running study after the runs in progress (finished runs are kept)."""
        _need_training()
        lab.cancel()
        return _lab_state()

    @app.get("/api/lab/figures/{name}", tags=["lab"],
             responses={200: {"content": {"image/png": {}}}, **_errors_doc(404)})
    def lab_figure(name: str) -> Response:
        """One figure of the last report, by the name the report lists (never a path)."""
        path = lab.figure_path(name)
        if path is None:
            raise ApiError(404, "unknown_figure", f"the lab report has no figure {name!r}")
        try:
            data = path.read_bytes()
        except OSError:
            raise ApiError(404, "unknown_figure", f"the figure {name!r} is gone; run the lab "
                           "again") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})

    return app


# ------------------------------------------------------------------------- explaining
class _Explainer:
    """(model name, image bytes, options) -> the Explanation JSON, by calling the library: the
    recognizer (pre-processing, model, :mod:`digitlens.explain`).  No numerics of its own."""

    def __init__(self, registry: ModelRegistry, *, max_pixels: int | None = None) -> None:
        self.registry = registry
        self.max_pixels = max_pixels

    def _prepare(self, image: bytes, steps: dict[str, bool]):
        from ...preprocessing.pipeline import SWITCHES, PreprocessError

        bad = sorted(set(steps) - set(SWITCHES))
        if bad:
            raise ApiError(422, "invalid_request", f"options.steps: unknown step(s) {bad}; the "
                           f"switchable steps are {list(SWITCHES)}")
        kwargs = {"steps": dict(steps)}
        if self.max_pixels is not None:
            kwargs["max_pixels"] = self.max_pixels
        try:
            # bytes only: preprocess() would treat a str as a path, and the server never
            # opens a path a client sends
            _, pre = self.registry.rec.prepare(bytes(image), **kwargs)
        except PreprocessError as e:
            raise _preprocess_error(e) from None
        return pre

    def explain(self, name: str, image: bytes, options: ExplainOptions) -> dict[str, Any]:
        from ...explain import attribution as A
        from ...recognizer import DEFAULT_METHODS

        model, _ = self.registry.get(name)
        rec = self.registry.rec
        classes = list(model.classes)
        for key in ("vs", "target"):
            v = getattr(options, key)
            if v is not None and v not in classes:
                raise ApiError(422, "invalid_request", f"options.{key}: the {name!r} model only "
                               f"knows the digits {classes}, got {v}")
        pre = self._prepare(image, options.steps)
        notes: list[str] = []
        live = options.detail == "live"
        vs = options.vs
        if vs is not None and not live:
            answer = rec.predict(pre, model=name).label
            if answer == vs:
                notes.append(f"You asked why not {vs}, but the network now reads {vs}; this "
                             f"compares it with the runner-up instead.")
                vs = None
        methods = () if live else ((options.method,) if options.method else DEFAULT_METHODS)
        e = rec.explain(pre, model=name, vs=vs, methods=methods, trace=True, contrast=not live,
                        counterfactual=not live and options.counterfactual, units=not live,
                        nearest=not live)
        t = options.target
        if not live and t is not None and t != e.prediction:
            m = rec.exact_model(name)
            for meth in methods:
                e.attributions.setdefault(meth, {})[t] = A.attribute(
                    m, e.image, t, meth, **_METHOD_OPTIONS.get(meth, {}))
        d = e.to_dict()
        d["detail"] = options.detail
        d["notes"] = notes
        return d

    def explain_json(self, name: str, image: bytes, options: ExplainOptions) -> bytes:
        """:meth:`explain` serialised (``to_dict`` already gives NaN and inf as ``null``).

        orjson, not :mod:`json`: a live answer holds thousands of numbers, and orjson writes
        them in C, many times faster than the standard library's encoder."""
        return orjson.dumps(self.explain(name, image, options))

    def unit(self, name: str, layer: int, unit: int, image) -> dict[str, Any]:
        from ...explain import contrast as C
        from ...explain.result import Example
        from ..._util.jsonsafe import map_list, num

        model, _ = self.registry.get(name)
        rec = self.registry.rec
        if not 0 <= layer < len(model.layers):
            raise ApiError(404, "unknown_layer", f"the {name!r} model has layers 0 to "
                           f"{len(model.layers) - 1}, not {layer}")
        L = model.layers[layer]
        if L.type not in ("dense", "conv2d"):
            raise ApiError(422, "not_a_unit_layer", f"layer {layer} ({L.type}) has no units; units "
                           "with weights live in dense and conv2d layers")
        W, b = L.params["W"], L.params["b"]
        n_units = int(b.shape[0])
        if not 0 <= unit < n_units:
            raise ApiError(404, "unknown_unit", f"layer {layer} has units 0 to {n_units - 1}, "
                           f"not {unit}")
        w = W[:, unit] if L.type == "dense" else W[unit]
        out: dict[str, Any] = {
            "model": name, "layer": layer, "unit": unit, "type": L.type, "n_units": n_units,
            "bias": num(float(b[unit])), "n_weights": int(w.size),
            "weights": {"min": num(float(w.min())), "max": num(float(w.max()))},
            "template": None, "template_kind": None, "template_caption": "", "sentence": "",
            "top_examples": []}
        reads_pixels = C.first_hidden_dense(model, layer + 1) == layer or (
            layer == next(i for i, x in enumerate(model.layers) if x.type in ("dense", "conv2d")))
        if reads_pixels and L.type == "dense" and w.size == 784:
            t = np.asarray(w, dtype=np.float64).reshape(28, 28)  # its 784 weights as a picture
            out.update(template=map_list(t), template_kind="weights",
                       template_caption="its 784 weights: ink on red pixels raises z, on blue "
                                        "pixels lowers it",
                       sentence=f"This unit reads the pixels directly; it "
                                f"{C.where_words(t) or 'has no clear preference'}.")
        elif reads_pixels and L.type == "conv2d":
            f = np.asarray(w, dtype=np.float64).sum(axis=0)  # (kh, kw) over input channels
            out.update(template=map_list(f), template_kind="filter",
                       template_caption=f"its {f.shape[0]}×{f.shape[1]} filter, slid over the "
                                        "image",
                       sentence="A filter: the same small grid of weights is applied at every "
                                "position of the image.")
        elif image is not None:
            x = np.asarray(image, dtype=np.float64)
            if x.shape != (28, 28) or not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
                raise ApiError(422, "invalid_request", "image must be 28 rows of 28 numbers in "
                               "[0, 1]")
            nxt = layer + 1
            if nxt < len(model.layers) and model.layers[nxt].type == "activation":
                nxt += 1  # the unit's activation, not just its sum
            if L.type == "dense":
                g = C.unit_input_gradients(rec.exact_model(name), x, nxt, [unit])[0]
                out.update(template=map_list(g), template_kind="input_gradient",
                           template_caption="how its activation changes with a little more ink "
                                            "on each pixel of this digit",
                           sentence="This unit reads other units, not pixels, so it has no "
                                    "fixed picture; this is what it responds to around your "
                                    "digit.")
        if not out["sentence"] and L.type == "dense":
            out["sentence"] = ("This unit reads other units, not pixels; send the image to see "
                               "what it responds to around a digit.")
        atlas = rec.atlas(name)
        acts = top = None
        if layer == atlas.first_layer:
            acts, top = atlas.first[:, unit], atlas.first_top[unit]
        elif _last_hidden_dense(model, atlas.hidden_layer) == layer:
            acts, top = atlas.hidden[:, unit], atlas.hidden_top[unit]
        if top is not None:
            # as in explanations: training digits travel as 8-bit PNG data URLs (exact)
            out["top_examples"] = [{**Example(int(i), int(atlas.y[i]), atlas.x[i, 0]).to_dict(),
                                    "activation": num(float(acts[i]))} for i in top[:8]]
        return out


#: the attribution settings :meth:`Recognizer.explain` uses by default, for extra targets
_METHOD_OPTIONS = {"integrated_gradients": {"baseline": "black"},
                   "occlusion": {"patch": 4, "stride": 2}}


def _last_hidden_dense(model, final: int) -> int | None:
    """The Dense layer whose (activated) output feeds the final Dense layer ``final``."""
    for i in range(final - 1, -1, -1):
        kind = model.layers[i].type
        if kind == "dense":
            return i
        if kind not in ("activation", "dropout"):
            return None
    return None


#: environment variable carrying ``digitlens serve`` settings to its worker processes
SERVE_ENV = "DIGITLENS_SERVE"


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
                     compute_threads=int(cfg.get("compute_threads", 2)))
    threading.Thread(target=warm_up, args=(app, cfg.get("warm", [])), daemon=True).start()
    return app


def warm_up(app: FastAPI, names) -> None:
    """Load models ``names`` and build their unit atlases now rather than on the first request
    (``digitlens serve`` runs this in a background thread).  Untrained names are skipped."""
    registry: ModelRegistry = app.state.registry
    for name in names:
        try:
            registry.get(name)
            registry.rec.atlas(name)
        except ApiError:
            continue
