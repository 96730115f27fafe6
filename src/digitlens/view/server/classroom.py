"""Class mode (``digitlens serve --class``): learners on the local network draw digits under a
nickname; the teacher's dashboard, behind the token printed at start-up, shows what the class
collected and how each model reads it, and fine-tunes a model on the class.

Learners (``static/class.html``)::

    POST   /api/class/join            {"nickname"} -> {"key"}: the learner's key, sent back as
                                      the ``X-Learner-Key`` header on every request below
    GET    /api/class/me              my digits, counts, the next prompt
    POST   /api/class/digits          {"image", "label"} add one of my digits
    GET    /api/class/digits/{id}     one of my digits, with its drawing
    DELETE /api/class/digits/{id}     delete one of my digits for good

A learner reaches only their own digits: every query is scoped by the nickname their key belongs
to (another learner's digit answers 404, exactly like a digit that does not exist).  A nickname
is held by the first key that joined with it.

Teacher (``static/teacher.html#token=...``; ``Authorization: Bearer <token>``)::

    GET    /api/class/dashboard       per-digit and per-learner counts, each model's confusion
                                      matrix on the class's digits, the hardest digits
    POST   /api/class/finetune        {"model"} fine-tune on the class (background)
    GET    /api/class/finetune        its state, before/after
    GET    /api/class/digits-all/{id} any digit (the dashboard's pictures)
    DELETE /api/class/learners/{nick} delete a learner's digits for good
    GET    /api/class/export          the class's digits: a zip of the image folder + IDX

Limits per client (:class:`Limits`): digits added per minute, joins per minute, the size of one
drawing, digits per learner and learners per class; over a limit is 429 or 413.  The keys live
in memory: after a restart learners join again (their digits stay in the database).
"""

from __future__ import annotations

import collections
import hmac
import io
import secrets
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ...errors import DigitStoreError
from . import mine as M
from .errors import ApiError, errors_doc
from .state import ServerContext, context

router = APIRouter(tags=["class"])


@dataclass(frozen=True)
class Limits:
    """What one client may do (``per_minute``: sliding 60-second window per IP address)."""

    digits_per_minute: int = 30
    joins_per_minute: int = 5
    max_image_chars: int = 300_000       # one drawing as a data URL (a 140×140 PNG is ~5 kB)
    max_digits_per_learner: int = 300
    max_learners: int = 200


class Classroom:
    """The class's state: the teacher's token, the learners' keys, the rate counters."""

    def __init__(self, token: str, limits: Limits | None = None) -> None:
        if not token:
            raise ValueError("class mode needs the teacher's token")
        self.token = token
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._nick_of: dict[str, str] = {}   # key -> nickname
        self._key_of: dict[str, str] = {}    # nickname -> key
        self._hits: dict[tuple[str, str], collections.deque] = {}

    def rate(self, kind: str, client: str, per_minute: int) -> None:
        """Count one ``kind`` request from ``client``; 429 when over ``per_minute``."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault((kind, client), collections.deque())
            while q and now - q[0] > 60:
                q.popleft()
            if len(q) >= per_minute:
                raise ApiError(429, "too_many_requests", f"slow down: at most {per_minute} "
                               f"per minute (try again in {60 - (now - q[0]):.0f} s)")
            q.append(now)

    def join(self, nickname: str) -> str:
        from ...data.mine import check_nickname

        try:
            nick = check_nickname(nickname)
        except DigitStoreError as e:
            raise ApiError(422, "invalid_request", str(e)) from None
        if not nick:
            raise ApiError(422, "invalid_request", "choose a nickname (1 to 24 characters)")
        with self._lock:
            if nick in self._key_of:
                raise ApiError(409, "nickname_taken", f"the nickname {nick!r} is taken; "
                               "choose another")
            if len(self._key_of) >= self.limits.max_learners:
                raise ApiError(429, "class_full", f"the class is full "
                               f"({self.limits.max_learners} learners)")
            key = secrets.token_urlsafe(18)
            self._nick_of[key], self._key_of[nick] = nick, key
        return key

    def learner(self, request: Request) -> str:
        key = request.headers.get("x-learner-key", "")
        with self._lock:
            nick = self._nick_of.get(key) if key else None
        if nick is None:
            raise ApiError(401, "not_joined", "join the class with a nickname first")
        return nick

    def forget(self, nickname: str) -> None:
        with self._lock:
            key = self._key_of.pop(nickname, None)
            self._nick_of.pop(key, None)

    def learners(self) -> list[str]:
        with self._lock:
            return sorted(self._key_of)

    def check_teacher(self, request: Request) -> None:
        got = request.headers.get("authorization", "")
        if not hmac.compare_digest(got.encode(), f"Bearer {self.token}".encode()):
            raise ApiError(401, "teacher_only", "this is the teacher's dashboard: it needs the "
                           "token printed when `digitlens serve --class` started")


def enable_class(app, token: str | None = None, limits: Limits | None = None) -> str:
    """Turn class mode on for ``app`` (made by ``create_app``): the learner and teacher routes
    and their state.  Returns the teacher's token (a new random one if None)."""
    token = token or secrets.token_urlsafe(12)
    app.state.classroom = Classroom(token, limits)
    app.include_router(router)
    return token


def classroom(request: Request) -> Classroom:
    room = getattr(request.app.state, "classroom", None)
    if room is None:
        raise ApiError(404, "no_class", "class mode is off on this server")
    return room


def learner(request: Request, room: Classroom = Depends(classroom)) -> str:
    return room.learner(request)


def teacher(request: Request, room: Classroom = Depends(classroom)) -> Classroom:
    room.check_teacher(request)
    return room


def class_jobs(request: Request):
    jobs = getattr(request.app.state, "class_jobs", None)
    if jobs is None:
        from .mine_jobs import FinetuneJobs

        ctx = request.app.state.ctx
        jobs = request.app.state.class_jobs = FinetuneJobs(
            on_saved=lambda name, model, meta: ctx.registry.put(name, model, meta))
    return jobs


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


class Join(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nickname: str = Field(max_length=64)


# ------------------------------------------------------------------------------ learners
@router.post("/api/class/join", responses=errors_doc(409, 422, 429))
def join(body: Join, request: Request, room: Classroom = Depends(classroom)) -> dict:
    """Join with a nickname (no account); keep the key: it is how the server knows you."""
    room.rate("join", _client(request), room.limits.joins_per_minute)
    key = room.join(body.nickname)
    return {"key": key, "nickname": body.nickname.strip()}


@router.get("/api/class/me", responses=errors_doc(401))
def me(nick: str = Depends(learner), s=Depends(M.store)) -> dict:
    """My digits only."""
    return {"nickname": nick, **M.listing(s, nick)}


@router.post("/api/class/digits", responses=errors_doc(401, 413, 422, 429))
async def add(body: M.AddDigit, request: Request, nick: str = Depends(learner),
              room: Classroom = Depends(classroom), s=Depends(M.store)) -> dict:
    """Add one of my digits (the one pre-processing path, stored under my nickname)."""
    if len(body.image) > room.limits.max_image_chars:
        raise ApiError(413, "image_too_large", f"a drawing may be at most "
                       f"{room.limits.max_image_chars:,} characters as a data URL")
    room.rate("digit", _client(request), room.limits.digits_per_minute)
    if s.count(learner=nick) >= room.limits.max_digits_per_learner:
        raise ApiError(429, "too_many_digits", f"you have {room.limits.max_digits_per_learner} "
                       "digits, the most one learner may add")
    return await anyio.to_thread.run_sync(M.add_digit, s, body, nick, "class")


@router.get("/api/class/digits/{digit_id}", responses=errors_doc(401, 404))
def one(digit_id: int, nick: str = Depends(learner), s=Depends(M.store)) -> dict:
    return M.get_digit(s, digit_id, nick)


@router.delete("/api/class/digits/{digit_id}", responses=errors_doc(401, 404))
def delete(digit_id: int, nick: str = Depends(learner), s=Depends(M.store)) -> dict:
    if not s.delete(digit_id, learner=nick):
        raise ApiError(404, "unknown_digit", f"there is no digit {digit_id} of yours")
    return {"deleted": digit_id}


# ------------------------------------------------------------------------------ teacher
def dashboard_data(ctx: ServerContext, s, room: Classroom) -> dict[str, Any]:
    from ...training.mine_eval import hardest

    counts = s.counts()
    counts["per_learner"].pop("", None)  # the teacher's own digits are not the class's
    x, y, ids = s.arrays(class_only=True)
    ev = M.evaluate_arrays(ctx, x, y, ids)
    return {"n": int(len(y)), "per_label": np.bincount(y, minlength=10).tolist(),
            "per_learner": counts["per_learner"], "joined": room.learners(),
            "models": ev, "hardest": hardest(ev, ids, y)}


@router.get("/api/class/dashboard", responses=errors_doc(401))
async def dashboard(ctx: ServerContext = Depends(context), room: Classroom = Depends(teacher),
                    s=Depends(M.store)) -> dict:
    """What the class collected, and how every trained model reads it."""
    return await anyio.to_thread.run_sync(dashboard_data, ctx, s, room,
                                          limiter=ctx.compute_limiter())


@router.get("/api/class/digits-all/{digit_id}", responses=errors_doc(401, 404))
def any_digit(digit_id: int, room: Classroom = Depends(teacher), s=Depends(M.store)) -> dict:
    return M.get_digit(s, digit_id, None)


@router.post("/api/class/finetune", responses=errors_doc(401, 403, 404, 409))
def finetune(req: M.FinetuneRequest, ctx: ServerContext = Depends(context),
             room: Classroom = Depends(teacher), s=Depends(M.store),
             jobs=Depends(class_jobs)) -> dict:
    """Fine-tune ``model`` on the bundled digits plus the class's (a quarter kept aside)."""
    return M.start_finetune(ctx, s, jobs, req, None, class_only=True, suffix="class")


@router.get("/api/class/finetune", responses=errors_doc(401))
def finetune_status(room: Classroom = Depends(teacher), jobs=Depends(class_jobs)) -> dict:
    return jobs.status()


@router.delete("/api/class/learners/{nickname}", responses=errors_doc(401))
def delete_learner(nickname: str, room: Classroom = Depends(teacher), s=Depends(M.store)
                   ) -> dict:
    """Delete every digit of a learner for good (and free their nickname)."""
    if not nickname.strip():  # "" is the teacher's own digits, never a learner's
        raise ApiError(422, "invalid_request", "name a learner")
    try:
        n = s.delete_learner(nickname)
    except DigitStoreError as e:
        raise ApiError(422, "invalid_request", str(e)) from None
    room.forget(nickname.strip())
    return {"learner": nickname, "deleted": n}


def export_zip(s) -> bytes:
    from ...data.mine import export_folder

    with tempfile.TemporaryDirectory() as tmp:
        from pathlib import Path

        root = Path(tmp) / "class-digits"
        export_folder(s, root, class_only=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(root.parent).as_posix())
        return buf.getvalue()


@router.get("/api/class/export", responses=errors_doc(401))
async def export(room: Classroom = Depends(teacher), s=Depends(M.store)) -> Response:
    """The class's digits as ``class-digits.zip``: ``0/`` … ``9/`` (the drawings) and the IDX
    files (the 28×28 grids)."""
    data = await anyio.to_thread.run_sync(export_zip, s)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="class-digits.zip"'})

