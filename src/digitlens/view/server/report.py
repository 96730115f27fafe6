"""The shareable report: ``POST /api/report`` (the page's "Save report" button).

The body is the one ``POST /api/explain`` takes (JSON with a PNG data URL, or the image's bytes);
the answer is one self-contained HTML file (:func:`digitlens.view.report_html.report_html`) drawn
from the very explanation ``/api/explain`` would send for the same request with
``detail="full"``, so the report shows the page's numbers.  No numerics here.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..report_html import report_html
from .errors import errors_doc
from .explain import _EXPLAIN_BODY, _read_request
from .state import ServerContext, context

router = APIRouter()


def _report(ctx: ServerContext, name: str, image: bytes, options) -> tuple[str, str]:
    """``(html, file name)`` for one request (run in a worker thread)."""
    d = ctx.explainer.explain(name, image, options.model_copy(update={"detail": "full"}))
    return report_html(d), f"digitlens-{d['model']}-reads-{d['prediction']}.html"


@router.post("/api/report", tags=["explain"], response_class=Response,
             responses={200: {"description": "one self-contained HTML page: images embedded, "
                                             "no scripts, no external requests",
                              "content": {"text/html": {}}},
                        **errors_doc(404, 409, 413, 415, 422)},
             openapi_extra=_EXPLAIN_BODY)
async def report(request: Request,
                 model: str | None = Query(None, description="zoo model (raw-bytes bodies; "
                                           "JSON bodies say it in the body)"),
                 vs: int | None = Query(None, description="contrast digit"),
                 ctx: ServerContext = Depends(context)) -> Response:
    """The explanation of one image as a report to save, share and print: the pre-processing
    steps, the probabilities, every layer's numbers, the attribution maps, "why X and not Y"
    and the counterfactual.  Same body and errors as ``POST /api/explain``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query = {"detail": "full", "vs": vs}
    name, image, options = _read_request(ctx, ctype, await request.body(), model, query)
    ctx.registry.check_name(name)
    page, filename = await anyio.to_thread.run_sync(_report, ctx, name, image, options,
                                                    limiter=ctx.compute_limiter())
    return Response(page, media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
