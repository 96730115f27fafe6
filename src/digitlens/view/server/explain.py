"""Explaining: ``POST /api/explain`` (an image -> the Explanation JSON) and the unit panel
(``/api/models/{name}/units/{layer}/{unit}``: what one hidden unit or filter looks for).

The handlers parse the request and call :class:`Explainer`, which calls the library:
:meth:`digitlens.recognizer.Recognizer.explain_dict` and
:meth:`~digitlens.recognizer.Recognizer.unit_detail`.  No numerics here: which layer reads pixels,
which attributions to add, the "you asked why not X" note, all come from the recognizer.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ...data.images import decode_data_url
from ...errors import NotAUnitLayerError, PreprocessError, UnknownUnitError
from .api import ExplainJSON, ExplainOptions, UnitRequest
from .errors import ApiError, errors_doc, preprocess_error, validation_error
from .state import ServerContext, context


class Explainer:
    """(model name, image bytes, options) -> the Explanation JSON, by calling the library: the
    recognizer (pre-processing, model, :mod:`digitlens.explain`).  No numerics of its own.

    Parameters
    ----------
    registry : the :class:`~digitlens.view.server.registry.ModelRegistry` holding the models.
    max_pixels : the image pixel limit passed to the pre-processing (None: its default).
    """

    def __init__(self, registry, *, max_pixels: int | None = None) -> None:
        self.registry = registry
        self.max_pixels = max_pixels

    def _switches(self, steps: dict[str, bool]) -> dict[str, Any]:
        """The pre-processing keywords of a request (its step switches, the pixel limit)."""
        from ...preprocessing import SWITCHES

        bad = sorted(set(steps) - set(SWITCHES))
        if bad:
            raise ApiError(422, "invalid_request", f"options.steps: unknown step(s) {bad}; the "
                           f"switchable steps are {list(SWITCHES)}")
        switches: dict[str, Any] = {"steps": dict(steps)}
        if self.max_pixels is not None:
            switches["max_pixels"] = self.max_pixels
        return switches

    def explain(self, name: str, image: bytes, options: ExplainOptions) -> dict[str, Any]:
        """``Explanation.to_dict()`` plus ``detail`` and ``notes``
        (:meth:`~digitlens.recognizer.Recognizer.explain_dict`, which checks ``vs`` and
        ``target`` against the model's digits before it reads the image)."""
        self.registry.get(name)  # 404 / 409 before the image is read
        switches = self._switches(options.steps)
        try:
            # bytes only: preprocess() would treat a str as a path, and the server never
            # opens a path a client sends
            return self.registry.rec.explain_dict(
                bytes(image), name, detail=options.detail, vs=options.vs, method=options.method,
                target=options.target, counterfactual=options.counterfactual, **switches)
        except PreprocessError as e:
            raise preprocess_error(e) from None
        except ValueError as e:  # a vs or target the model does not know
            raise ApiError(422, "invalid_request", str(e)) from None

    def explain_json(self, name: str, image: bytes, options: ExplainOptions) -> bytes:
        """:meth:`explain` serialised (``to_dict`` already gives NaN and inf as ``null``).

        orjson, not :mod:`json`: a live answer holds thousands of numbers, and orjson writes
        them in C, many times faster than the standard library's encoder."""
        return orjson.dumps(self.explain(name, image, options))

    def unit(self, name: str, layer: int, unit: int, image=None) -> dict[str, Any]:
        """What one unit looks for (:meth:`~digitlens.recognizer.Recognizer.unit_detail`)."""
        self.registry.get(name)
        try:
            return self.registry.rec.unit_detail(name, layer, unit, image)
        except UnknownUnitError as e:
            raise ApiError(404, e.code, str(e)) from None
        except NotAUnitLayerError as e:
            raise ApiError(422, e.code, str(e)) from None
        except ValueError as e:  # an image that is not 28 rows of 28 numbers in [0, 1]
            raise ApiError(422, "invalid_request", str(e)) from None


def image_from_data_url(text: str) -> bytes:
    """The bytes of a data URL or plain base64, by the library's one guarded decoder, with the
    API's codes: ``bad_data_url`` (a malformed ``data:`` header), ``bad_base64``, and 413
    ``image_too_large``."""
    from ...errors import ImageTooLargeError, NotAnImageError

    try:
        return decode_data_url(text)
    except ImageTooLargeError as e:
        raise preprocess_error(e) from None
    except NotAnImageError as e:
        code = getattr(e, "code", "bad_base64")
        raise ApiError(422, code, str(e)) from None


router = APIRouter()

_EXPLAIN_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ExplainJSON.model_json_schema(
        ref_template="#/components/schemas/{model}")},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}}


def _read_request(ctx: ServerContext, ctype: str, body: bytes, model: str | None,
                  query: dict[str, Any]) -> tuple[str, bytes, ExplainOptions]:
    """``(model name, image bytes, options)`` from a JSON or a raw-bytes request."""
    if not body:
        raise ApiError(422, "empty_body", "send an image: its bytes, or JSON with a PNG "
                       "data URL in \"image\"")
    if ctype == "application/json":
        try:
            payload = ExplainJSON.model_validate_json(body)
        except ValueError as e:
            raise validation_error(e) from None
        image = image_from_data_url(payload.image)
        return payload.model or model or ctx.default_model, image, payload.options
    if ctype.startswith("image/") or ctype in ("application/octet-stream", ""):
        try:
            options = ExplainOptions(**query)
        except ValueError as e:
            raise validation_error(e) from None
        return model or ctx.default_model, body, options
    raise ApiError(415, "unsupported_media_type", f"Content-Type {ctype!r} is not "
                   "accepted; send image bytes or application/json")


@router.post("/api/explain", tags=["explain"], response_class=Response,
             responses={200: {"description": "the Explanation JSON (Explanation.to_dict() plus "
                                             "`detail` and `notes`)",
                              "content": {"application/json": {}}},
                        **errors_doc(404, 409, 413, 415, 422)},
             openapi_extra=_EXPLAIN_BODY)
async def explain(request: Request,
                  model: str | None = Query(None, description="zoo model (raw-bytes "
                                            "bodies; JSON bodies say it in the body)"),
                  detail: str = Query("full", description="'full' or 'live'"),
                  vs: int | None = Query(None, description="contrast digit"),
                  target: int | None = Query(None, description="attribution digit"),
                  method: str | None = Query(None, description="attribution method"),
                  counterfactual: bool = Query(True),
                  ctx: ServerContext = Depends(context)) -> Response:
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
    query = {"detail": detail, "vs": vs, "target": target, "method": method,
             "counterfactual": counterfactual}
    name, image, options = _read_request(ctx, ctype, await request.body(), model, query)
    ctx.registry.check_name(name)
    # computed and serialised in a worker thread: the event loop stays free for other clients.
    # At most compute_threads explanations run at once (the others wait their turn, in order):
    # the work is mostly Python holding the GIL, so more threads only add switching.
    body = await anyio.to_thread.run_sync(ctx.explainer.explain_json, name, image, options,
                                          limiter=ctx.compute_limiter())
    return Response(body, media_type="application/json")


@router.get("/api/models/{name}/units/{layer}/{unit}", tags=["models"],
            responses=errors_doc(404, 409, 422))
def unit(name: str, layer: int, unit: int, ctx: ServerContext = Depends(context)) -> dict:
    """What one unit (or convolution filter) looks for: its bias, its weights drawn as a
    template when it reads the pixels directly, and the bundled training digits that excite it
    most.  ``layer`` is the index of a ``dense`` or ``conv2d`` layer (as in the trace)."""
    ctx.registry.check_name(name)
    return ctx.explainer.unit(name, layer, unit, None)


@router.post("/api/models/{name}/units/{layer}/{unit}", tags=["models"],
             responses=errors_doc(404, 409, 413, 422))
async def unit_for_image(name: str, layer: int, unit: int, req: UnitRequest,
                         ctx: ServerContext = Depends(context)) -> dict:
    """As the GET, and for units that read other units rather than pixels, their pixel
    template *at this image*: the input gradient of the unit's activation."""
    ctx.registry.check_name(name)
    return await run_in_threadpool(ctx.explainer.unit, name, layer, unit, req.image)
