"""The activation functions and the playground on the page.

    GET  /api/functions             every activation's curve and slope (the engine's own)
    POST /api/functions/rug         where one layer's sums for the learner's digit fall on one
    GET  /api/playground            the presets, the choices, and the latest session
    POST /api/playground/run        train up to four networks side by side in the background
    POST /api/playground/cancel     stop them (finished networks stay cached)

Handlers parse, call :mod:`digitlens.lab.functions` or the
:class:`~digitlens.view.server.playground_jobs.PlaygroundRunner`, and serialise; the numbers are
the library's.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..._util.jsonsafe import plain
from ...errors import JobConflict, LabError
from .errors import ApiError, errors_doc
from .state import ServerContext, context

router = APIRouter()

#: seconds per checkpoint in slow motion (the default: 4 checkpoints per epoch, 6 epochs ≈ 12 s)
SLOW_PACE = 0.5


class RugRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activation: str = Field(description="the activation to place the sums on")
    z: list[float] = Field(description="one layer's sums for one digit (the explanation's "
                           "trace: a Dense layer's values)", min_length=1, max_length=4096)


class ConfigBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activations: list[str] = Field(min_length=1, max_length=8,
                                   description="one activation per hidden layer")
    width: int = Field(32, ge=1, le=512)
    head: Literal["softmax_ce", "sigmoid_bce", "relu_mse"] = "softmax_ce"
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0, le=10)
    init: Literal["auto", "he", "xavier"] = "auto"


class BudgetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(2000, ge=100, le=4000)
    epochs: int = Field(6, ge=1, le=20)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class PlayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description="a preset's name (its networks and budget); "
                               "or give `configs`")
    configs: list[ConfigBody] | None = Field(None, min_length=1, max_length=4)
    budget: BudgetBody | None = None
    speed: Literal["slow", "full"] = Field("slow", description="slow motion (a checkpoint "
                                           "every half second) or full speed")
    pace: float | None = Field(None, ge=0, le=5, description="seconds per checkpoint "
                               "(overrides `speed`)")


def _options() -> dict:
    from ...lab.functions import FUNCTIONS
    from ...lab.play_presets import PLAY_PRESETS
    from ...lab.playground import MAX_CONFIGS, PLAY_HEADS, PLAY_INITS
    from ...lab.verdicts import RULES

    return {"activations": list(FUNCTIONS), "heads": list(PLAY_HEADS), "inits": list(PLAY_INITS),
            "optimizers": ["sgd", "adam"], "max_configs": MAX_CONFIGS,
            "presets": [{"name": p.name, "rule": p.rule, "rule_text": RULES[p.rule],
                         "title": p.title, "look": p.look,
                         "playground": p.playground.to_dict()} for p in PLAY_PRESETS.values()]}


@router.get("/api/functions", tags=["playground"])
def functions_curves() -> dict:
    """Each activation's curve ``a = g(z)`` and slope ``g'(z)`` on z = -6..6 in steps of 0.05,
    from the engine's forward and backward pass (float64)."""
    from ...lab.functions import curves

    return plain(curves())


@router.post("/api/functions/rug", tags=["playground"], responses=errors_doc(422))
def functions_rug(req: RugRequest) -> dict:
    """The learner's sums on one activation: each sum's activation and slope, and how many sit
    where the slope is (almost) flat."""
    from ...lab.functions import rug

    try:
        return plain(rug(req.activation, req.z))
    except LabError as e:
        raise ApiError(422, "invalid_request", str(e)) from None


@router.get("/api/playground", tags=["playground"])
def playground_status(ctx: ServerContext = Depends(context)) -> dict:
    """The presets (one per rule of thumb), the choices, and ``session``: the latest
    playground's networks with their checkpoints so far, and at the end ``summary``."""
    return {"enabled": ctx.training, **_options(),
            "session": plain(ctx.lab.playground.snapshot())}


def _playground(req: PlayRequest):
    from ...lab.play_presets import play_preset
    from ...lab.playground import Budget, PlayConfig, Playground

    if req.preset is not None:
        pg = play_preset(req.preset).playground
    elif req.configs:
        pg = Playground(tuple(PlayConfig.from_dict(c.model_dump()) for c in req.configs))
    else:
        raise LabError("give a preset or one to four configs")
    if req.budget is not None:
        pg = Playground(pg.configs, Budget(**{**pg.budget.to_dict(), **req.budget.model_dump()}),
                        pg.preset if req.configs is None else None)
    return pg


@router.post("/api/playground/run", status_code=202, tags=["playground"],
             responses=errors_doc(403, 409, 422))
def playground_run(req: PlayRequest, ctx: ServerContext = Depends(context)) -> dict:
    """Train the networks side by side in the background (finished ones come from the lab's
    run cache, replayed at the same pace)."""
    ctx.need_training()
    if ctx.jobs.running() is not None:
        raise ApiError(409, "training_busy", "a model is training; use the playground when it "
                       "has finished (or cancel it)")
    if ctx.lab.running:
        raise ApiError(409, "lab_busy", "the activation lab is running; use the playground when "
                       "it has finished (or cancel it)")
    try:
        pg = _playground(req)
        pace = req.pace if req.pace is not None else (SLOW_PACE if req.speed == "slow" else 0.0)
        ctx.lab.playground.start(pg, pace=pace)
    except LabError as e:
        raise ApiError(422, "invalid_request", str(e)) from None
    except JobConflict as e:
        raise ApiError(409, "playground_busy", str(e)) from None
    return playground_status(ctx)


@router.post("/api/playground/cancel", tags=["playground"], responses=errors_doc(403))
def playground_cancel(ctx: ServerContext = Depends(context)) -> dict:
    """Stop the networks at their next mini-batch (finished ones stay cached)."""
    ctx.need_training()
    ctx.lab.playground.cancel()
    return playground_status(ctx)
