"""The Evaluation tab's API: how good each model is on the bundled test digits, and where it fails.

    GET  /api/evaluation/robustness               every trained model's robustness curves (computed
                                                  once in a background thread; poll until ready)
    GET  /api/evaluation/{name}                   accuracy, confusion matrix, precision and recall,
                                                  calibration, the mistakes (most confident first);
                                                  ?data=optdigits: other writers' digits
    GET  /api/evaluation/{name}/cell              one confusion cell's digits (?true=&predicted=)
    GET  /api/evaluation/{name}/mistakes          the mistakes with their pixels
    GET  /api/evaluation/{name}/map               the digits' map (PCA of the last hidden layer)
    POST /api/evaluation/{name}/map/place         a 28×28 image placed on the map, its neighbours

Every number comes from :mod:`digitlens.evaluation`; the handlers parse, call it through
:class:`EvaluationStore` (which computes each result once per model object and keeps it in
memory) and serialise.  The work runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from .errors import ApiError, errors_doc
from .state import ServerContext, context

router = APIRouter()

#: how many test digits the page's robustness curves use (the CLI uses all 1,000): 500 keep the
#: background computation under a minute for the whole ladder on a busy 2-core machine
ROBUSTNESS_DIGITS = 500
#: digits sent for one confusion cell or the mistakes gallery
MAX_DIGITS = 60


class EvaluationStore:
    """Each evaluation computed once per model object (a retrained model gets new ones), then
    served from memory.  Thread-safe: one lock per result, so two requests never compute the same
    thing twice, and different results compute side by side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple, threading.Lock] = {}
        self._done: dict[tuple, Any] = {}
        self.robustness_state: dict[str, Any] = {"status": "idle", "key": None}
        self._digits = None

    def digits(self):
        if self._digits is None:
            from ...data import load_digits

            self._digits = load_digits()
        return self._digits

    def _once(self, key: tuple, model, compute):
        """``compute()`` once per key; the model is kept with its result, so its ``id`` (in the
        key) cannot be reused by a newer model while the result is cached."""
        with self._lock:
            if key in self._done:
                return self._done[key][1]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._done:
                value = compute()
                with self._lock:
                    self._done[key] = (model, value)
            return self._done[key][1]

    def eval_set(self, data: str):
        """The digits called ``data`` (``bundled`` or ``optdigits``), loaded once."""
        from ...evaluation import load_eval_set

        def load():
            try:
                return load_eval_set(data)
            except ImportError as e:  # scikit-learn is not installed
                raise ApiError(422, "data_unavailable", str(e)) from None

        return self._once(("set", data), None, load)

    def model_evaluation(self, name: str, model, data: str = "bundled"):
        from ...evaluation import evaluate_model

        s = self.eval_set(data)
        return self._once(("eval", name, id(model), data), model, lambda: evaluate_model(
            model, s.x, s.y, name=name, data=data))

    def digit_map(self, name: str, model):
        from ...evaluation import build_map

        d = self.digits()
        return self._once(("map", name, id(model)), model, lambda: build_map(
            model, d.x_train, d.y_train, d.x_test, d.y_test))

    def robustness(self, models: dict) -> dict[str, Any]:
        """The curves if ready; otherwise start them in a background thread (once per set of
        models) and say so."""
        from ...evaluation import robustness

        key = tuple(sorted((n, id(m)) for n, m in models.items()))
        st = self.robustness_state
        with self._lock:
            if st["key"] == key and st["status"] in ("running", "ready", "failed"):
                return dict(st)
            # the models stay referenced with their key, so no newer model can reuse an id in it
            st.update(status="running", key=key, models=dict(models), result=None, error=None)
        d = self.digits()

        def run():
            try:
                r = robustness(models, d.x_test[:ROBUSTNESS_DIGITS], d.y_test[:ROBUSTNESS_DIGITS])
            except Exception as e:  # reported to the page, never silent
                with self._lock:
                    if st["key"] == key:
                        st.update(status="failed", error=str(e))
                return
            with self._lock:
                if st["key"] == key:
                    st.update(status="ready", result=r)

        threading.Thread(target=run, daemon=True, name="digitlens-robustness").start()
        return dict(st)


def store(request: Request) -> EvaluationStore:
    """The app's :class:`EvaluationStore` (made on first use)."""
    s = getattr(request.app.state, "evaluations", None)
    if s is None:
        s = request.app.state.evaluations = EvaluationStore()
    return s


def _model(ctx: ServerContext, name: str):
    model, _ = ctx.registry.get(name)  # 404 unknown, 409 not trained
    if len(model.classes) != 10 or model.loss != "softmax_cross_entropy":
        raise ApiError(422, "not_a_ten_digit_model", f"the {name!r} model does not choose among "
                       "all ten digits, so it is not evaluated on them")
    return model


def _pixels(x: np.ndarray) -> list:
    return np.rint(x * 255).astype(np.uint8).tolist()  # (28, 28) 0..255, ink bright


@router.get("/api/evaluation/robustness", tags=["evaluation"], responses=errors_doc(409))
async def robustness(ctx: ServerContext = Depends(context),
                     st: EvaluationStore = Depends(store)) -> dict:
    """Every trained ten-digit model's accuracy on the first 500 bundled test digits as they are
    rotated, scaled, shifted, thinned or thickened, blurred, speckled and warped; with the example
    digit at every strength.  ``status`` is ``running`` until the curves are ready (ask again)."""
    def models():
        out = {}
        for n in ctx.registry.names():
            if ctx.registry.is_trained(n):
                try:
                    out[n] = _model(ctx, n)
                except ApiError:
                    continue
        return out

    ms = await anyio.to_thread.run_sync(models)
    if not ms:
        raise ApiError(409, "model_not_trained", "no model is trained yet")
    s = st.robustness(ms)
    body = {"status": s["status"], "models": sorted(ms), "error": s.get("error")}
    if s["status"] == "ready":
        body["result"] = s["result"].to_dict()
    return body


#: the digits the page can evaluate on (MNIST's full test set stays on the command line)
PAGE_DATA = ("bundled", "optdigits")
_DATA = Query("bundled", pattern="^(bundled|optdigits)$", description="bundled: the 1,000 "
              "bundled test digits; optdigits: 1,797 digits by other writers (scikit-learn)")


@router.get("/api/evaluation/{name}", tags=["evaluation"], responses=errors_doc(404, 409, 422))
async def evaluation(name: str, data: str = _DATA, ctx: ServerContext = Depends(context),
                     st: EvaluationStore = Depends(store)) -> dict:
    """The model on the 1,000 bundled test digits: accuracy, the confusion matrix, per-digit
    precision and recall, the reliability diagram and expected calibration error with what
    "99% sure" means for it, and the mistakes, most confident first."""
    ctx.registry.check_name(name)
    ev = await anyio.to_thread.run_sync(
        lambda: st.model_evaluation(name, _model(ctx, name), data),
        limiter=ctx.compute_limiter())
    return dict(ev.to_dict(), description=st.eval_set(data).description)


def _digit_list(st: EvaluationStore, ev, indices) -> list[dict]:
    x = st.eval_set(ev.data).x
    return [{"index": int(i), "label": int(ev.y[i]), "predicted": int(ev.predicted[i]),
             "confidence": float(round(ev.confidence[i], 6)), "pixels": _pixels(x[i, 0])}
            for i in indices]


@router.get("/api/evaluation/{name}/cell", tags=["evaluation"],
            responses=errors_doc(404, 409, 422))
async def cell(name: str, true: int = Query(..., ge=0, le=9, description="the true digit"),
               predicted: int = Query(..., ge=0, le=9, description="the model's answer"),
               data: str = _DATA, ctx: ServerContext = Depends(context),
               st: EvaluationStore = Depends(store)) -> dict:
    """The digits of one confusion-matrix cell (at most 60, most confident first), with their
    28×28 pixels (0..255) and index among the bundled test digits."""
    ctx.registry.check_name(name)

    def run():
        ev = st.model_evaluation(name, _model(ctx, name), data)
        idx = ev.confusion.cell(true, predicted)
        return {"true": true, "predicted": predicted, "count": int(len(idx)),
                "digits": _digit_list(st, ev, idx[:MAX_DIGITS])}

    return await anyio.to_thread.run_sync(run, limiter=ctx.compute_limiter())


@router.get("/api/evaluation/{name}/mistakes", tags=["evaluation"],
            responses=errors_doc(404, 409, 422))
async def mistakes(name: str, limit: int = Query(40, ge=1, le=MAX_DIGITS), data: str = _DATA,
                   ctx: ServerContext = Depends(context),
                   st: EvaluationStore = Depends(store)) -> dict:
    """The mistakes, most confident first, with pixels, the probability of the wrong answer and
    of the true digit."""
    ctx.registry.check_name(name)

    def run():
        ev = st.model_evaluation(name, _model(ctx, name), data)
        x = st.eval_set(data).x
        return {"count": len(ev.mistakes),
                "mistakes": [dict(m.to_dict(), pixels=_pixels(x[m.index, 0]))
                             for m in ev.mistakes[:limit]]}

    return await anyio.to_thread.run_sync(run, limiter=ctx.compute_limiter())


@router.get("/api/evaluation/{name}/map", tags=["evaluation"],
            responses=errors_doc(404, 409, 422))
async def digit_map(name: str, ctx: ServerContext = Depends(context),
                    st: EvaluationStore = Depends(store)) -> dict:
    """The digits' map: the 1,000 bundled test digits placed by the two principal components of
    the last hidden layer (fitted on the 4,000 training digits), with how much of the variance
    they keep and how much 4s and 9s overlap."""
    ctx.registry.check_name(name)
    m = await anyio.to_thread.run_sync(lambda: st.digit_map(name, _model(ctx, name)),
                                       limiter=ctx.compute_limiter())
    return m.to_dict()


class PlaceRequest(BaseModel):
    """Body of ``POST /api/evaluation/{name}/map/place``."""

    model_config = ConfigDict(extra="forbid")

    image: list[list[float]] = Field(description="the 28×28 image the network read (the "
                                     "explanation's `image`), numbers in [0, 1]")
    k: int = Field(5, ge=1, le=20, description="how many nearest training digits")


@router.post("/api/evaluation/{name}/map/place", tags=["evaluation"],
             responses=errors_doc(404, 409, 422))
async def place(name: str, req: PlaceRequest, ctx: ServerContext = Depends(context),
                st: EvaluationStore = Depends(store)) -> dict:
    """A drawn digit on the map: where its last hidden layer projects, and its nearest training
    digits (measured in the whole hidden layer) with their pixels."""
    ctx.registry.check_name(name)

    def run():
        model = _model(ctx, name)
        m = st.digit_map(name, model)
        try:
            p = m.place(model, np.asarray(req.image, dtype=np.float32), k=req.k)
        except ValueError as e:
            raise ApiError(422, "invalid_request", str(e)) from None
        out = p.to_dict()
        xtr = st.digits().x_train
        for nb in out["neighbours"]:
            nb["pixels"] = _pixels(xtr[nb["index"], 0])
        return out

    return await anyio.to_thread.run_sync(run, limiter=ctx.compute_limiter())
