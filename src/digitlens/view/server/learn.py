"""How the weights were learned: ``POST /api/models/{name}/step``, one training step on the
learner's drawing.

The drawing is sent as on ``POST /api/explain`` (a PNG data URL and the pre-processing switches),
so the probabilities "before" are the explanation's.  The handler calls
:meth:`digitlens.recognizer.Recognizer.training_step` (the engine's ``loss_and_grads`` and
optimizer on a copy of the model; the served model never moves): no numerics here.
"""

from __future__ import annotations

from typing import Literal

import anyio.to_thread
from fastapi import APIRouter, Depends
from pydantic import Field

from .errors import errors_doc
from .inspect import InspectRequest, _call
from .state import ServerContext, context

router = APIRouter()


class StepRequest(InspectRequest):
    """``POST /api/models/{name}/step``."""

    label: int | None = Field(None, ge=0, le=9, description="the digit the drawing is (default: "
                              "the model's answer)")
    layer: int | None = Field(None, ge=0, description="the Dense or Conv2D layer whose unit's "
                              "weights are shown (default: the layer that reads the pixels)")
    unit: int = Field(0, ge=0, description="that unit (or filter)")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="'sgd': ΔW = −lr·∂L/∂W; "
                                              "'adam': Adam's first step")
    lr: float | None = Field(None, gt=0, le=10, description="learning rate (default: 0.1 for "
                             "SGD, 0.001 for Adam)")


@router.post("/api/models/{name}/step", tags=["inspect"], responses=errors_doc(404, 409, 413, 422))
async def step(name: str, req: StepRequest, ctx: ServerContext = Depends(context)) -> dict:
    """One training step on the drawing: ``loss_before`` (for ``label``), the chosen unit's
    gradient ``grad`` (a 28×28 picture for a unit reading the pixels, a filter's kernel),
    ``update`` (= −lr × grad for SGD), ``p_before`` and ``p_after`` (the drawing's
    probabilities before and after the step), ``loss_after``, one weight worked out
    (``example``) and the bias."""
    ctx.registry.check_name(name)
    return await anyio.to_thread.run_sync(
        lambda: _call(ctx, name, req, ctx.registry.rec.training_step, req.label, layer=req.layer,
                      unit=req.unit, optimizer=req.optimizer, lr=req.lr),
        limiter=ctx.compute_limiter())
