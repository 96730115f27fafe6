"""My digits: the learner's own labelled digits, how well each model reads them, and
fine-tuning on them.

    GET    /api/mine                    the digits (grid pictures), counts, the next prompt
    POST   /api/mine                    {"image": PNG data URL, "label": 0-9} -> a new digit
    GET    /api/mine/{id}               one digit with its original image (a data URL)
    POST   /api/mine/{id}/label         {"label": 0-9} relabel
    DELETE /api/mine/{id}               delete for good
    GET    /api/mine/evaluate           every trained model on my digits vs the bundled test
    POST   /api/mine/finetune           {"model": "cnn"} start fine-tuning in the background
    GET    /api/mine/finetune           its state and, when done, before/after

Thin: the handlers parse, call :class:`~digitlens.data.mine.DigitStore`,
:mod:`digitlens.training.mine_io`, :mod:`digitlens.training.mine_eval` or the
:class:`~digitlens.view.server.mine_jobs.FinetuneJobs`, and serialise.  The store is
``<DIGITLENS_HOME>/mine.sqlite`` unless the app was given one (``app.state.mine_store``).
On the single-learner page every digit belongs to learner ``""``; class mode (classroom.py)
scopes them by nickname.
"""

from __future__ import annotations

import base64
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ...errors import DigitStoreError, JobConflict, PreprocessError
from .errors import ApiError, errors_doc, preprocess_error
from .explain import image_from_data_url
from .state import ServerContext, context

LOCAL = ""  # the learner at this computer


def local_learner(request: Request) -> None:
    """In class mode the learners on the network use /api/class/...; the collection of the
    person at the server (learner "") is then the teacher's: open from this computer
    (loopback), else it needs the token."""
    import ipaddress

    room = getattr(request.app.state, "classroom", None)
    if room is None:
        return
    try:
        if request.client and ipaddress.ip_address(request.client.host).is_loopback:
            return
    except ValueError:
        pass
    room.check_teacher(request)


router = APIRouter(tags=["mine"], dependencies=[Depends(local_learner)])


class AddDigit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(description="the drawing or upload: a PNG/JPEG data URL or base64")
    label: int = Field(ge=0, le=9, description="the digit it is")


class Relabel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: int = Field(ge=0, le=9)


class FinetuneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field("cnn", description="the zoo model to start from")
    seed: int = Field(0, ge=0)


def store(request: Request):
    """The app's :class:`~digitlens.data.mine.DigitStore` (created on first use)."""
    s = getattr(request.app.state, "mine_store", None)
    if s is None:
        from ...data.mine import DigitStore

        s = request.app.state.mine_store = DigitStore()
    return s


def finetune_jobs(request: Request):
    jobs = getattr(request.app.state, "mine_jobs", None)
    if jobs is None:
        from .mine_jobs import FinetuneJobs

        ctx = request.app.state.ctx
        jobs = request.app.state.mine_jobs = FinetuneJobs(
            on_saved=lambda name, model, meta: ctx.registry.put(name, model, meta))
    return jobs


def digit_json(d, *, original: bool = False) -> dict[str, Any]:
    from ..._util.png import png_data_url

    out = {**d.to_dict(), "grid": png_data_url(d.grid)}
    if original and d.original:
        out["original"] = "data:image/png;base64," + base64.b64encode(d.original).decode()
    return out


def listing(s, learner: str | None) -> dict[str, Any]:
    digits = s.list(learner=learner)
    counts = [0] * 10
    for d in digits:
        counts[d.label] += 1
    return {"digits": [digit_json(d) for d in digits], "per_label": counts,
            "total": len(digits), "prompt": s.next_label(learner=learner)}


def add_digit(s, body: AddDigit, learner: str, source: str) -> dict[str, Any]:
    from ...training.mine_io import add_image

    data = image_from_data_url(body.image)
    try:
        i = add_image(s, data, body.label, source=source, learner=learner)
    except PreprocessError as e:
        raise preprocess_error(e) from None
    except DigitStoreError as e:
        raise ApiError(422, "invalid_request", str(e)) from None
    return {"digit": digit_json(s.get(i)), "prompt": s.next_label(learner=learner)}


def get_digit(s, digit_id: int, learner: str | None) -> dict[str, Any]:
    try:
        return digit_json(s.get(digit_id, learner=learner), original=True)
    except DigitStoreError as e:
        raise ApiError(404, "unknown_digit", str(e)) from None


def evaluate(ctx: ServerContext, s, learner: str | None) -> dict[str, Any]:
    x, y, ids = s.arrays(learner=learner)
    return {"n": int(len(y)), "models": evaluate_arrays(ctx, x, y, ids)}


def evaluate_arrays(ctx: ServerContext, x, y, ids) -> list[dict[str, Any]]:
    """:func:`~digitlens.training.mine_eval.read_me_all` for every trained model."""
    from ...data import load_digits
    from ...training.mine_eval import read_me_all

    models = {}
    for name in ctx.registry.names():
        if ctx.registry.is_trained(name):
            try:
                models[name] = ctx.registry.get(name)[0]
            except ApiError:
                continue
    return read_me_all(models, x, y, ids, digits=load_digits())


def start_finetune(ctx: ServerContext, s, jobs, req: FinetuneRequest, learner: str | None, *,
                   class_only: bool = False, suffix: str = "mine") -> dict[str, Any]:
    from ...nn.zoo import model_names

    ctx.need_training()
    if req.model not in model_names():
        raise ApiError(404, "unknown_model", f"fine-tuning starts from a zoo model, one of "
                       f"{', '.join(model_names())}")
    model, _ = ctx.registry.get(req.model)  # 409 if not trained
    x, y, ids = s.arrays(learner=learner, class_only=class_only)
    if len(y) < 2:
        raise ApiError(409, "too_few_digits", f"fine-tuning needs at least 2 of your digits; "
                       f"there are {len(y)}")
    try:
        return jobs.start(req.model, model, x, y, ids, seed=req.seed, suffix=suffix)
    except JobConflict as e:
        raise ApiError(409, "job_conflict", str(e)) from None


@router.get("/api/mine")
def mine(s=Depends(store)) -> dict:
    """My digits (each with its 28×28 grid as a PNG), how many of each, and the digit to draw
    next (cycling 0–9)."""
    return listing(s, LOCAL)


@router.post("/api/mine", responses=errors_doc(413, 422))
async def add(body: AddDigit, s=Depends(store)) -> dict:
    """Add a drawing: it goes through the one pre-processing path and is stored with its
    label."""
    return await anyio.to_thread.run_sync(add_digit, s, body, LOCAL, "page")


@router.get("/api/mine/evaluate")
async def mine_evaluate(ctx: ServerContext = Depends(context), s=Depends(store)) -> dict:
    """Every trained model that reads 0–9, on my digits and on the bundled test digits:
    accuracy, confusion matrix, misread digits, the sentence."""
    return await anyio.to_thread.run_sync(evaluate, ctx, s, LOCAL,
                                          limiter=ctx.compute_limiter())


@router.post("/api/mine/finetune", responses=errors_doc(403, 404, 409))
def finetune(req: FinetuneRequest, ctx: ServerContext = Depends(context), s=Depends(store),
             jobs=Depends(finetune_jobs)) -> dict:
    """Start fine-tuning ``model`` on the bundled digits plus mine (a quarter of mine kept
    aside); poll ``GET /api/mine/finetune``."""
    return start_finetune(ctx, s, jobs, req, LOCAL)


@router.get("/api/mine/finetune")
def finetune_status(jobs=Depends(finetune_jobs)) -> dict:
    """The fine-tuning's state; when completed: ``before``/``after`` (``mine_held``,
    ``bundled_test``), the new model's ``name``, ``seconds``."""
    return jobs.status()


@router.get("/api/mine/{digit_id}", responses=errors_doc(404))
def one(digit_id: int, s=Depends(store)) -> dict:
    """One digit, with the original drawing (a data URL) for its full explanation."""
    return get_digit(s, digit_id, LOCAL)


@router.post("/api/mine/{digit_id}/label", responses=errors_doc(404))
def relabel(digit_id: int, body: Relabel, s=Depends(store)) -> dict:
    if not s.relabel(digit_id, body.label, learner=LOCAL):
        raise ApiError(404, "unknown_digit", f"there is no digit {digit_id}")
    return {"id": digit_id, "label": body.label}


@router.delete("/api/mine/{digit_id}", responses=errors_doc(404))
def delete(digit_id: int, s=Depends(store)) -> dict:
    if not s.delete(digit_id, learner=LOCAL):
        raise ApiError(404, "unknown_digit", f"there is no digit {digit_id}")
    return {"deleted": digit_id}
