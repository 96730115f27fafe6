"""The server and its models: ``GET /api/health`` and ``GET /api/models`` (the zoo: which models
are trained, their accuracy and layers, and the one the page opens with)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ... import __version__
from .registry import page_ladder
from .state import ServerContext, context

router = APIRouter()


@router.get("/api/health", tags=["server"])
def health() -> dict:
    """Liveness check."""
    return {"ok": True, "version": __version__}


@router.get("/api/models", tags=["models"])
def list_models(ctx: ServerContext = Depends(context)) -> dict:
    """The model zoo, then the learner's own networks: each model's sentence, whether it is
    trained, its test accuracy and its layers, and ``status``: where its training stands when
    it is queued or training (``digitlens serve`` trains missing models in the background,
    ladder order) or null; ``default`` is the model the page opens with (the best trained one
    while the one asked for is still training); ``pending`` names the models not ready yet."""
    zoo = ctx.registry.zoo()
    names = [n for n in page_ladder() if n in zoo]
    names += [n for n in zoo if n not in names]
    names += [n for n in ctx.registry.names() if n not in names]
    infos = [ctx.registry.describe(n, ctx.jobs.status(n)) for n in names]
    default = ctx.default_model
    if not any(i["name"] == default and i["trained"] for i in infos):
        trained = [i["name"] for i in infos if i["trained"] and i["in_ladder"]]
        default = trained[-1] if trained else ctx.default_model
    pending = [i["name"] for i in infos if not i["trained"] and i["status"]
               and i["status"]["state"] in ("queued", "training")]
    return {"models": infos, "default": default, "training": ctx.training, "pending": pending}
