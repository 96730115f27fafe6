"""The activation lab on the page: the last study's verdicts, running the quick study in the
background, and the report's figures (:class:`~digitlens.view.server.lab_jobs.LabRunner`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ...errors import JobConflict
from .errors import ApiError, errors_doc
from .state import ServerContext, context

router = APIRouter()


def _lab_state(ctx: ServerContext) -> dict:
    lab = ctx.lab
    run = lab.current
    try:
        report = lab.report()
        error = None
    except Exception as e:  # noqa: BLE001 - a damaged result.json: say so, run again
        report, error = None, f"the last lab result could not be read ({e}); run it again"
    return {"enabled": ctx.training, "run": run.summary() if run else None, "report": report,
            "error": error, "command": "digitlens lab all --quick"}


@router.get("/api/lab", tags=["lab"])
def lab_status(ctx: ServerContext = Depends(context)) -> dict:
    """The activation lab: ``report`` holds the last finished study's verdicts (each rule
    of thumb, its status, the numbers, its figures) or null; ``run`` the latest study started
    from the page (``state``, ``done`` of ``total`` runs)."""
    return _lab_state(ctx)


@router.post("/api/lab/run", status_code=202, tags=["lab"], responses=errors_doc(403, 409))
def lab_run(ctx: ServerContext = Depends(context)) -> dict:
    """Run the quick lab study in the background (the runs of ``digitlens lab all --quick``;
    finished runs are kept, so running it again only computes what is missing)."""
    ctx.need_training()
    if ctx.jobs.running() is not None:
        raise ApiError(409, "training_busy", "a model is training; run the lab when it has "
                       "finished (or cancel it)")
    try:
        ctx.lab.start()
    except JobConflict as e:
        raise ApiError(409, "lab_busy", str(e)) from None
    return _lab_state(ctx)


@router.post("/api/lab/cancel", tags=["lab"], responses=errors_doc(403))
def lab_cancel(ctx: ServerContext = Depends(context)) -> dict:
    """Stop the running study after the runs in progress (finished runs are kept)."""
    ctx.need_training()
    ctx.lab.cancel()
    return _lab_state(ctx)


@router.get("/api/lab/figures/{name}", tags=["lab"],
            responses={200: {"content": {"image/png": {}}}, **errors_doc(404)})
def lab_figure(name: str, ctx: ServerContext = Depends(context)) -> Response:
    """One figure of the last report, by the name the report lists (never a path)."""
    path = ctx.lab.figure_path(name)
    if path is None:
        raise ApiError(404, "unknown_figure", f"the lab report has no figure {name!r}")
    try:
        data = path.read_bytes()
    except OSError:
        raise ApiError(404, "unknown_figure", f"the figure {name!r} is gone; run the lab "
                       "again") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})
