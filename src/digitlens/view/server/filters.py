"""What a filter looks for: ``GET /api/models/{name}/filters/{layer}/{unit}`` (and ``POST``, with
the drawing: the filter on it too).

For any Dense unit or Conv2D filter (every depth): the training patches that excite it most,
cropped to its receptive field; its response curves to synthetic lines and arcs; the hand-made
kernels with their own curves; and, for a first-layer filter, its likeness to them with the
threshold used.  The handler calls :meth:`digitlens.recognizer.Recognizer.filter_detail` in a
worker thread (the first call per model builds the filter atlas, about a second): no numerics.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Depends

from ...errors import NotAUnitLayerError, UnknownUnitError
from .errors import ApiError, errors_doc
from .inspect import InspectRequest, _call
from .state import ServerContext, context

router = APIRouter()


def _detail(ctx: ServerContext, name: str, layer: int, unit: int) -> dict:
    ctx.registry.get(name)  # 404 / 409
    try:
        return ctx.registry.rec.filter_detail(name, layer, unit)
    except UnknownUnitError as e:
        raise ApiError(404, e.code, str(e)) from None
    except NotAUnitLayerError as e:
        raise ApiError(422, e.code, str(e)) from None


@router.get("/api/models/{name}/filters/{layer}/{unit}", tags=["inspect"],
            responses=errors_doc(404, 409, 422))
async def filter_detail(name: str, layer: int, unit: int,
                        ctx: ServerContext = Depends(context)) -> dict:
    """What one filter or unit looks for: ``patches`` (the bundled training digits' windows that
    excite it most, each with its activation and position), ``receptive_field``, ``curves``
    (its weighted sum z for lines at 0°–165° and arcs opening towards 0°–330°, best shift kept),
    ``hand`` (the hand-made kernels and their curves), ``likeness`` and ``like_threshold``,
    ``sentences``.  ``layer`` is the index of a ``dense`` or ``conv2d`` layer."""
    ctx.registry.check_name(name)
    return await anyio.to_thread.run_sync(_detail, ctx, name, layer, unit,
                                          limiter=ctx.compute_limiter())


@router.post("/api/models/{name}/filters/{layer}/{unit}", tags=["inspect"],
             responses=errors_doc(404, 409, 413, 422))
async def filter_on_digit(name: str, layer: int, unit: int, req: InspectRequest,
                          ctx: ServerContext = Depends(context)) -> dict:
    """As the GET, plus ``digit`` for the drawing (sent as on ``POST /api/explain``): the unit's
    strongest activation on it, where, the window of the drawing it read there, and the units
    of the same layer that fire most on it (``strongest``)."""
    ctx.registry.check_name(name)
    rec = ctx.registry.rec
    return await anyio.to_thread.run_sync(
        lambda: _call(ctx, name, req, lambda image, n, **kw: rec.filter_detail(
            n, layer, unit, image, **kw)),
        limiter=ctx.compute_limiter())
