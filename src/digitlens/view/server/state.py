"""What every route shares: one :class:`ServerContext` per app, at ``app.state.ctx``.

Routes reach it through FastAPI's dependency injection (``ctx: ServerContext = Depends(context)``),
never through a closure, so each router module stands on its own and a test can build an app,
reach in and swap one part (e.g. the static files).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
from fastapi import Request

from .errors import ApiError


@dataclass
class ServerContext:
    """The server's shared state.

    Attributes
    ----------
    registry : the :class:`~digitlens.view.server.registry.ModelRegistry` (models by name).
    explainer : the :class:`~digitlens.view.server.explain.Explainer` (image -> Explanation JSON).
    jobs : the :class:`~digitlens.view.server.training_jobs.TrainingJobs` (background training).
    lab : the :class:`~digitlens.view.server.lab_jobs.LabRunner` (the activation lab).
    static_files : ``{relative path: (bytes, content type)}``, read once at start-up.
    default_model : the model the page opens with (falls back to the best trained one).
    training : whether the training and lab endpoints are on.
    rng : the Generator that picks random test digits (used under ``rng_lock``).
    compute_threads : explanations computed at once (see :meth:`compute_limiter`).
    """

    registry: Any
    explainer: Any
    jobs: Any
    lab: Any
    static_files: dict[str, tuple[bytes, str]]
    default_model: str
    training: bool
    rng: np.random.Generator
    compute_threads: int = 2
    rng_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _limiters: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary,
                                                 repr=False)

    def compute_limiter(self) -> anyio.CapacityLimiter:
        """This event loop's limiter on concurrent explanations (a limiter belongs to one loop;
        tests start a loop per TestClient)."""
        loop = asyncio.get_running_loop()
        if loop not in self._limiters:
            self._limiters[loop] = anyio.CapacityLimiter(self.compute_threads)
        return self._limiters[loop]

    def need_training(self) -> None:
        """Raise 403 when a teacher switched the heavy jobs (training, the lab) off."""
        if not self.training:
            raise ApiError(403, "training_disabled", "training and the activation lab are "
                           "switched off on this server")


def context(request: Request) -> ServerContext:
    """The app's :class:`ServerContext` (a FastAPI dependency)."""
    return request.app.state.ctx
