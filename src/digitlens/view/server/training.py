"""The training view: start, follow (server-sent events) and cancel background training of a zoo
model or of the learner's own network (activation, width, depth, learning rate:
:class:`digitlens.training.custom.CustomSpec`) with
:class:`~digitlens.view.server.training_jobs.TrainingJobs`, one job at a time."""

from __future__ import annotations

import asyncio
import json
import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ...errors import JobConflict, UnknownJob
from .api import TrainRequest
from .errors import ApiError, errors_doc
from .state import ServerContext, context

_JOB_ID = re.compile(r"^[0-9a-f]{12}$")
#: seconds between looks at a job's event list, and of quiet before a keep-alive comment
_POLL, _KEEP_ALIVE = 0.1, 10.0

router = APIRouter()


class CustomTrainRequest(BaseModel):
    """The learner's own network; the bounds are the library's
    (:class:`digitlens.training.custom.CustomSpec`), which checks every value."""

    model_config = ConfigDict(extra="forbid")

    activation: str = Field("relu", description="hidden activation (GET /api/train: choices)")
    width: int = Field(64, description="units per hidden layer")
    depth: int = Field(2, description="hidden layers")
    lr: float = Field(1e-3, description="Adam's learning rate")
    epochs: int = Field(10, description="passes over the 4,000 training digits")
    name: str | None = Field(None, description="saved under this name (default e.g. "
                                               "'sigmoid_2x32'; never a zoo model's name)")
    seed: int = Field(0, ge=0, le=2**31 - 1)


def _heavy_job_free(ctx: ServerContext) -> None:
    if ctx.lab.running or ctx.lab.playground.running:
        # one heavy job at a time: the lab's runs already keep both cores busy
        raise ApiError(409, "lab_busy", "the activation lab or its playground is running; "
                       "train when it has finished (or cancel it)")


def _job(ctx: ServerContext, job_id: str):
    ctx.need_training()
    if not _JOB_ID.match(job_id):
        raise ApiError(422, "bad_job_id", "a job id is 12 hexadecimal characters")
    try:
        return ctx.jobs.get(job_id)
    except UnknownJob as e:
        raise ApiError(404, "unknown_job", str(e)) from None


@router.post("/api/train", status_code=202, tags=["training"],
             responses=errors_doc(403, 404, 409, 422))
def start_training(req: TrainRequest, ctx: ServerContext = Depends(context)) -> dict:
    """Start training a zoo model on the bundled digits in the background (one job at a time).
    When it completes, the model is saved and the page uses it from then on."""
    ctx.need_training()
    ctx.registry.check_name(req.model)
    _heavy_job_free(ctx)
    try:
        job = ctx.jobs.start(req.model, epochs=req.epochs, seed=req.seed)
    except JobConflict as e:
        raise ApiError(409, "training_busy", str(e)) from None
    except ValueError as e:
        raise ApiError(422, "invalid_request", str(e)) from None
    return job.summary()


@router.post("/api/train/custom", status_code=202, tags=["training"],
             responses=errors_doc(403, 409, 422))
def start_custom_training(req: CustomTrainRequest,
                          ctx: ServerContext = Depends(context)) -> dict:
    """Train the learner's own network ``784 -> [width, activation] x depth -> 10`` (Adam at
    the learning rate given) on the bundled digits in the background.  It is saved under its
    own name, joins the model switcher and is explained like the others."""
    from ...training.custom import CustomSpec

    ctx.need_training()
    _heavy_job_free(ctx)
    try:
        spec = CustomSpec(activation=req.activation, width=req.width, depth=req.depth,
                          lr=req.lr, epochs=req.epochs)
        job = ctx.jobs.start_custom(spec, name=req.name, seed=req.seed)
    except JobConflict as e:
        raise ApiError(409, "training_busy", str(e)) from None
    except ValueError as e:
        raise ApiError(422, "invalid_request", str(e)) from None
    return job.summary()


def _custom_choices() -> dict:
    from ...training import custom as c

    return {"activations": list(c.CUSTOM_ACTIVATIONS), "max_width": c.MAX_WIDTH,
            "max_depth": c.MAX_DEPTH, "max_lr": c.MAX_LR, "max_epochs": c.MAX_EPOCHS,
            "default": c.CustomSpec().to_dict()}


@router.get("/api/train", tags=["training"])
def list_training(ctx: ServerContext = Depends(context)) -> dict:
    """Recent training jobs, newest first; ``running`` is the id of the active one;
    ``custom`` the choices for one's own network (activations, the bounds, the defaults)."""
    active = ctx.jobs.running() if ctx.training else None
    return {"enabled": ctx.training, "running": active.id if active else None,
            "max_epochs": ctx.jobs.max_epochs, "custom": _custom_choices(),
            "jobs": [j.summary() for j in ctx.jobs.list()] if ctx.training else []}


@router.get("/api/train/{job_id}", tags=["training"], responses=errors_doc(403, 404, 422))
def training_status(job_id: str, ctx: ServerContext = Depends(context)) -> dict:
    """One job's state; ``events`` lists every progress event so far."""
    job = _job(ctx, job_id)
    events, _ = job.events_since(0)
    return {**job.summary(), "events": events}


@router.post("/api/train/{job_id}/cancel", tags=["training"],
             responses=errors_doc(403, 404, 422))
def cancel_training(job_id: str, ctx: ServerContext = Depends(context)) -> dict:
    """Stop the job at its next mini-batch; nothing is saved and the model in use is kept."""
    return ctx.jobs.cancel(_job(ctx, job_id).id).summary()


async def _event_stream(job, request: Request, start: int):
    """The job's events from index ``start`` on, as server-sent events, until it ends or the
    client leaves."""
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
            idle += _POLL
            if idle >= _KEEP_ALIVE:  # a comment line keeps proxies from closing a quiet stream
                idle = 0.0
                yield ": keep-alive\n\n"
        await asyncio.sleep(_POLL)


@router.get("/api/train/{job_id}/events", tags=["training"],
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "server-sent events: start, batch, epoch, end"},
                       **errors_doc(403, 404, 422)})
async def training_events(job_id: str, request: Request,
                          ctx: ServerContext = Depends(context)) -> StreamingResponse:
    """Progress as server-sent events (``event: batch|epoch|start|end``, JSON data, ``id`` =
    the event's index so a reconnecting browser resumes with ``Last-Event-ID``)."""
    job = _job(ctx, job_id)
    try:
        start = int(request.headers.get("last-event-id", "-1")) + 1
    except ValueError:
        start = 0
    return StreamingResponse(_event_stream(job, request, start), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
