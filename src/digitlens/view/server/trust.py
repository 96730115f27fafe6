""""Can I trust this map?": ``POST /api/trust``.

The page asks for it after a full explanation has arrived (the checks take a few tenths of a
second more), sending the 28×28 image the network read.  The handler parses the request and
calls :meth:`digitlens.recognizer.Recognizer.trust` (which computes
:func:`digitlens.explain.trust.trust_report` and caches it); no numerics here.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from .errors import ApiError, errors_doc
from .state import ServerContext, context

router = APIRouter()


class TrustRequest(BaseModel):
    """Body of ``POST /api/trust``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="a zoo model name")
    image: list[list[float]] = Field(description="the 28×28 image the network read (the "
                                     "explanation's `image`), numbers in [0, 1]")
    method: str = Field("integrated_gradients", description="the attribution method checked")
    target: int | None = Field(None, description="the digit whose map is checked (default: "
                               "the answer)")
    seed: int = Field(0, ge=0, description="seeds the random weights and deletion orders")


def _trust(ctx: ServerContext, req: TrustRequest) -> dict[str, Any]:
    ctx.registry.get(req.model)  # 404 / 409
    try:
        return ctx.registry.rec.trust(req.image, req.model, method=req.method,
                                      target=req.target, seed=req.seed)
    except ValueError as e:  # not 28x28 in [0, 1], an unknown method or digit
        raise ApiError(422, "invalid_request", str(e)) from None


@router.post("/api/trust", tags=["explain"], responses=errors_doc(404, 409, 422))
async def trust(req: TrustRequest, ctx: ServerContext = Depends(context)) -> dict:
    """Three checks of one attribution map, each with its number: completeness (integrated
    gradients: does the map add up to the change of the score?), model randomisation (the rank
    correlation of the map with the map of the same network with random weights, last layer
    then all layers) and the deletion curve (the digit's probability as the map's top pixels
    are removed first, against random pixels; the area between the curves).  See
    ``digitlens/explain/trust.py``."""
    ctx.registry.check_name(req.model)
    return await anyio.to_thread.run_sync(_trust, ctx, req, limiter=ctx.compute_limiter())
