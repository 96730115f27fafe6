"""Looking inside: every layer's name, one unit's worked sum, every convolution's feature maps.

    GET  /api/models/{name}/layers                      every layer's name for people
    POST /api/models/{name}/worked/{layer}/{unit}       one unit's sum worked out on an image
    POST /api/models/{name}/maps                        every convolution's feature maps

The image is sent as on ``POST /api/explain`` (a PNG data URL and the pre-processing switches),
so it goes through the same pre-processing and the numbers are those of the explanation of the
same drawing.  The handlers parse, call the :class:`~digitlens.recognizer.Recognizer`
(:meth:`~digitlens.recognizer.Recognizer.worked_sum`,
:meth:`~digitlens.recognizer.Recognizer.feature_maps`) and return its JSON data: no numerics here.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ...errors import NotAUnitLayerError, PreprocessError, UnknownUnitError
from .errors import ApiError, errors_doc, preprocess_error
from .explain import image_from_data_url
from .state import ServerContext, context


class InspectRequest(BaseModel):
    """The drawing to look at, as sent to ``POST /api/explain``."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="the image as a data URL (data:image/png;base64,...)")
    steps: dict[str, bool] = Field(default_factory=dict, description="pre-processing switches, "
                                   "as in the explain options")


class WorkedRequest(InspectRequest):
    """``POST /api/models/{name}/worked/{layer}/{unit}``."""

    at: list[int] | None = Field(None, min_length=2, max_length=2, description="a filter's "
                                 "position [row, column] in its feature map (default: where it "
                                 "fires most); ignored for a dense unit")
    maps: bool = Field(True, description="for a filter, also send its input maps, its feature "
                       "map and its activation map")


def _call(ctx: ServerContext, name: str, req: InspectRequest, fn, *args, **kwargs) -> Any:
    """Run a recognizer method on the request's image, with the API's errors."""
    from ...preprocessing import SWITCHES

    ctx.registry.get(name)  # 404 / 409 before the image is read
    bad = sorted(set(req.steps) - set(SWITCHES))
    if bad:
        raise ApiError(422, "invalid_request", f"steps: unknown step(s) {bad}; the switchable "
                       f"steps are {list(SWITCHES)}")
    image = image_from_data_url(req.image)
    if ctx.explainer.max_pixels is not None:
        kwargs["max_pixels"] = ctx.explainer.max_pixels
    try:
        return fn(image, name, *args, steps=dict(req.steps), **kwargs)
    except PreprocessError as e:
        raise preprocess_error(e) from None
    except UnknownUnitError as e:
        raise ApiError(404, e.code, str(e)) from None
    except NotAUnitLayerError as e:
        raise ApiError(422, e.code, str(e)) from None
    except ValueError as e:  # a position outside the feature map
        raise ApiError(422, "invalid_request", str(e)) from None


router = APIRouter()


@router.get("/api/models/{name}/layers", tags=["inspect"], responses=errors_doc(404, 409))
def layers(name: str, ctx: ServerContext = Depends(context)) -> dict:
    """Every layer's name for people, by its index in the model: ``{"model", "layers": [{"index",
    "type", "name" ("convolution 2 (32 filters)"), "short", "key" ("conv2"), "n_units"}]}``."""
    ctx.registry.check_name(name)
    ctx.registry.get(name)  # loads the model into the recognizer (404 / 409 if it cannot)
    return {"model": name, "layers": ctx.registry.rec.layer_names(name)}


@router.post("/api/models/{name}/worked/{layer}/{unit}", tags=["inspect"],
             responses=errors_doc(404, 409, 413, 422))
async def worked(name: str, layer: int, unit: int, req: WorkedRequest,
                 ctx: ServerContext = Depends(context)) -> dict:
    """One unit's weighted sum worked out on the drawing: the inputs it reads, its weights, the
    products w·x sorted by size, the running total, the bias, z (the engine's) and the
    activation; for a filter, the window on each input map at ``at``; for an output unit, the
    softmax.  Also the units of the layer before that push it up and down most (``up``,
    ``down``).  ``layer`` is the index of a ``dense`` or ``conv2d`` layer (as in the trace)."""
    ctx.registry.check_name(name)
    return await anyio.to_thread.run_sync(
        lambda: _call(ctx, name, req, ctx.registry.rec.worked_sum, layer, unit,
                      at=None if req.at is None else tuple(req.at), maps=req.maps),
        limiter=ctx.compute_limiter())


@router.post("/api/models/{name}/maps", tags=["inspect"], responses=errors_doc(404, 409, 413, 422))
async def maps(name: str, req: InspectRequest, ctx: ServerContext = Depends(context)) -> dict:
    """Every convolution's feature maps on the drawing, after its activation function:
    ``{"model", "layers": [{"layer", "name", "key", "maps": C×H×W}]}`` (empty for a model
    without convolutions)."""
    ctx.registry.check_name(name)
    out = await anyio.to_thread.run_sync(
        lambda: _call(ctx, name, req, ctx.registry.rec.feature_maps),
        limiter=ctx.compute_limiter())
    return {"model": name, "layers": out}
