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
import io
import json
import re
import threading
from importlib import resources
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__

#: largest request body accepted (bytes): a phone photo fits, even as a base64 data URL (+33 %)
MAX_BODY_BYTES = 12 * 1024 * 1024
#: the page's files, read once at start-up; nothing else under static/ is reachable
STATIC_FILES = {"index.html": "text/html; charset=utf-8",
                "app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}
#: the models the page offers, simplest first (only those in the zoo are shown)
LADDER = ("logistic", "lab", "mlp", "cnn_tiny", "cnn")
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")
_JOB_ID = re.compile(r"^[0-9a-f]{12}$")
_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+|application/octet-stream)?(;[a-z0-9=.+-]+)*"
                       r";base64,", re.IGNORECASE)


# ------------------------------------------------------------------------------------ errors
class ApiError(Exception):
    """A request the server refuses, with an HTTP status, a short code and a sentence."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class ErrorBody(BaseModel):
    """What every 4xx (and the rare 5xx) response carries."""

    error: str = Field(description="a short machine-readable code, e.g. 'no_ink'")
    message: str = Field(description="one sentence for the learner")


def _error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


_HTTP_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               406: "not_acceptable", 409: "conflict", 413: "too_large",
               415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests"}


def _preprocess_error(e: Exception) -> ApiError:
    """Map the pipeline's documented errors onto HTTP statuses (imported lazily: the
    pre-processing module may be absent in a partial install)."""
    name = type(e).__name__
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Error")).lower() or "bad_image"
    status = 413 if "TooLarge" in name else 422
    return ApiError(status, code, str(e) or name)


def _errors_doc(*statuses: int) -> dict[int, dict]:
    return {s: {"model": ErrorBody, "description": _HTTP_CODES.get(s, "error").replace("_", " ")}
            for s in statuses}


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
    """One loaded model per zoo name, shared by every request.

    A model is read from :func:`digitlens.paths.model_path` the first time it is asked for, and
    replaced by :meth:`put` when the training view finishes a run.  Names are checked against the
    zoo before any path is built.
    """

    def __init__(self, preloaded: dict[str, Any] | None = None) -> None:
        self._entries: dict[str, tuple[Any, dict]] = {}
        self._lock = threading.Lock()
        for name, model in (preloaded or {}).items():
            self._entries[name] = (model, {})

    @staticmethod
    def zoo() -> dict[str, Any]:
        from ..nn.zoo import MODELS

        return MODELS

    def check_name(self, name: str) -> str:
        if name not in self.zoo():
            raise ApiError(404, "unknown_model", f"there is no model called {name!r}; choose one "
                           f"of {', '.join(self.zoo())}")
        return name

    def is_trained(self, name: str) -> bool:
        from .. import paths

        return name in self._entries or paths.model_path(name).is_file()

    def get(self, name: str) -> tuple[Any, dict]:
        """``(model, meta)``; raises :class:`ApiError` for unknown or untrained names."""
        from .. import paths
        from ..nn.checkpoint import CheckpointError, load_model

        self.check_name(name)
        with self._lock:
            if name in self._entries:
                return self._entries[name]
            path = paths.model_path(name)
            if not path.is_file():
                raise ApiError(409, "model_not_trained",
                               f"the {name!r} model has not been trained yet: train it in the "
                               f"training view, or run `digitlens train --model {name}`")
            try:
                entry = load_model(path, with_meta=True)
            except CheckpointError as e:
                raise ApiError(503, "model_unreadable", f"the saved {name!r} model cannot be "
                               f"read ({e}); train it again") from None
            self._entries[name] = entry
            return entry

    def put(self, name: str, model, meta: dict) -> None:
        self.check_name(name)
        with self._lock:
            self._entries[name] = (model, dict(meta))

    def describe(self, name: str) -> dict[str, Any]:
        """What the page's model switcher shows about ``name``."""
        e = self.zoo()[name]
        info: dict[str, Any] = {"name": name, "sentence": e.sentence, "classes": list(e.classes),
                                "trained": self.is_trained(name), "in_ladder": name in LADDER,
                                "recipe": e.recipe.to_dict()}
        if info["trained"]:
            try:
                model, meta = self.get(name)
            except ApiError as err:
                info.update(trained=False, problem=err.message)
                return info
            info.update(n_params=model.n_params, test_accuracy=meta.get("test_accuracy"),
                        layers=model.summary(), kind=_kind(model))
        return info


def _kind(model) -> str:
    return "cnn" if any(layer.type.startswith("conv") for layer in model.layers) else "dense"


# ----------------------------------------------------------------------------- request bodies
class ExplainOptions(BaseModel):
    """What to compute.  The defaults are what the page asks for while the learner draws."""

    model_config = ConfigDict(extra="forbid")

    vs: int | None = Field(None, ge=0, le=9, description="the digit to contrast with ('why X and "
                           "not Y'); default: the runner-up")
    target: int | None = Field(None, ge=0, le=9, description="the digit whose attribution maps "
                               "are computed; default: the predicted digit")
    method: Literal["saliency", "gradient_x_input", "integrated_gradients", "occlusion"] | None = \
        Field(None, description="attribution method; default: all the fast ones")
    counterfactual: bool = Field(True, description="search for the smallest ink edit that "
                                 "changes the answer to `vs`")
    steps: dict[str, bool] = Field(default_factory=dict, description="pre-processing steps to "
                                   "switch off, e.g. {\"center\": false}")


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
def _page_files() -> dict[str, bytes]:
    root = resources.files("digitlens.view").joinpath("static")
    return {name: root.joinpath(name).read_bytes() for name in STATIC_FILES}


def create_app(recognizer=None, *, default_model: str = "cnn", models: dict | None = None,
               training: bool = True, jobs=None, max_body_bytes: int = MAX_BODY_BYTES,
               seed: int | None = None) -> FastAPI:
    """Build the FastAPI app.

    Parameters
    ----------
    recognizer : a :class:`digitlens.recognizer.Recognizer`-like factory used to explain images
        (None: the default one built over each loaded model).
    default_model : the model the page opens with (falls back to the best trained one).
    models : ``{name: Sequential}`` to serve instead of the cached files (tests, notebooks).
    training : offer the training endpoints (a teacher may switch them off for a class).
    jobs : a :class:`digitlens.training_jobs.TrainingJobs` (None: one that saves to the cache).
    max_body_bytes : the request body limit.
    seed : seeds the Generator that picks random test digits (None: fresh entropy).
    """
    from ..training_jobs import JobConflict, TrainingJobs, UnknownJob

    registry = ModelRegistry(models)
    if default_model not in registry.zoo():
        raise ValueError(f"default_model must be one of {list(registry.zoo())}, got "
                         f"{default_model!r}")
    if jobs is None:
        jobs = TrainingJobs(on_trained=registry.put)
    elif jobs.on_trained is None:
        jobs.on_trained = registry.put
    rng = np.random.default_rng(seed)
    rng_lock = threading.Lock()
    page = _page_files()
    explainer = _Explainer(registry, recognizer)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.shutdown(timeout=5)  # a running training thread stops at its next mini-batch

    app = FastAPI(
        lifespan=lifespan,
        title="digitlens",
        version=__version__,
        description="Draw a digit and look inside the network as it decides. Every number on the "
                    "page comes from this API; errors are JSON `{\"error\", \"message\"}`.",
        docs_url="/docs", redoc_url=None,
    )
    app.state.registry, app.state.jobs, app.state.explainer = registry, jobs, explainer
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)

    # -- errors: always JSON, never a traceback -------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return _error_response(e.status, e.code, e.message, **e.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        code = _HTTP_CODES.get(e.status_code, "error")
        msg = e.detail if isinstance(e.detail, str) else code.replace("_", " ")
        if e.status_code == 404 and msg == "Not Found":
            msg = f"nothing at {request.url.path}; the API is described at /docs"
        return _error_response(e.status_code, code, msg)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
            problems.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return _error_response(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception):  # a bug, not the client's fault
        return _error_response(500, "internal_error", f"the server hit an unexpected "
                               f"{type(e).__name__}; please report it")

    # -- the page ----------------------------------------------------------------------------
    def _file(name: str) -> Response:
        return Response(page[name], media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": PAGE_CSP,
                                 "Referrer-Policy": "no-referrer"})

    @app.get("/", include_in_schema=False)
    def index():
        return _file("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in STATIC_FILES or name == "index.html":
            raise ApiError(404, "not_found", f"no static file {name!r}")
        return _file(name)

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

    @app.post("/api/explain", tags=["explain"], responses=_errors_doc(404, 409, 413, 415, 422),
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
                      vs: int | None = Query(None, ge=0, le=9, description="contrast digit"),
                      target: int | None = Query(None, ge=0, le=9),
                      method: str | None = Query(None),
                      counterfactual: bool = Query(True)) -> dict:
        """Explain one image: the pre-processing steps, the probabilities, every layer's numbers,
        attribution maps, "why X and not Y" and the counterfactual ink edit.

        Send either the image's bytes (PNG, JPEG, ... with any image content type, options in the
        query string) or JSON ``{"image": "data:image/png;base64,...", "model": "cnn",
        "options": {...}}``.  A blank canvas gets 422 ``no_ink``.
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
                options = ExplainOptions(vs=vs, target=target, method=method,
                                         counterfactual=counterfactual)
            except ValueError as e:
                raise RequestValidationError(getattr(e, "errors", lambda: [])()) from None
        else:
            raise ApiError(415, "unsupported_media_type", f"Content-Type {ctype!r} is not "
                           "accepted; send image bytes or application/json")
        registry.check_name(name)
        return await run_in_threadpool(explainer.explain, name, image, options)

    @app.get("/api/models/{name}/units/{layer}/{unit}", tags=["models"],
             responses=_errors_doc(404, 409, 422))
    def unit(name: str, layer: int, unit: int) -> dict:
        """What one hidden unit (or convolution filter) looks for: its weights drawn as a
        template or filter, and the bundled training digits that excite it most."""
        registry.check_name(name)
        return explainer.unit(name, layer, unit)

    @app.get("/api/digits/random", tags=["digits"], responses=_errors_doc(422))
    def random_digit(label: int | None = Query(None, ge=0, le=9, description="only this digit"),
                     seed: int | None = Query(None, ge=0, description="repeatable pick")) -> dict:
        """A bundled *test* digit (the models never trained on it): its 28×28 pixels (0..255,
        ink bright) and its true label."""
        from ..data import load_digits

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
    def _job(job_id: str):
        if not training:
            raise ApiError(403, "training_disabled", "training is switched off on this server")
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
        if not training:
            raise ApiError(403, "training_disabled", "training is switched off on this server")
        registry.check_name(req.model)
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

    return app


# ------------------------------------------------------------------------- explaining
class _Explainer:
    """Turns (model name, image bytes, options) into the Explanation JSON, using the library."""

    def __init__(self, registry: ModelRegistry, recognizer=None) -> None:
        self.registry = registry
        self.recognizer = recognizer

    def explain(self, name: str, image: bytes, options: ExplainOptions) -> dict[str, Any]:
        model, meta = self.registry.get(name)
        x = self._preprocess(image, options)
        p = model.predict_proba(x[None, None])[0]
        pred = int(np.asarray(model.classes)[int(np.argmax(p))])
        return {"model": name, "prediction": pred,
                "probabilities": [float(v) for v in p], "classes": list(model.classes)}

    @staticmethod
    def _preprocess(image: bytes, options: ExplainOptions) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(image)) as im:
                im.load()
                g = np.asarray(im.convert("L").resize((28, 28)), dtype=np.float32) / 255
        except (UnidentifiedImageError, OSError):
            raise ApiError(422, "not_an_image", "that is not an image digitlens can read") from None
        if g.max() - g.min() < 0.05:
            raise ApiError(422, "no_ink", "no ink found — draw or upload a digit")
        return g

    def unit(self, name: str, layer: int, unit: int) -> dict[str, Any]:
        raise ApiError(404, "not_available", "unit details are not available yet")
