"""The activation playground in the background: one :class:`~digitlens.lab.playground.Session` at
a time, in a thread, for the web page to poll.

:class:`PlaygroundRunner` belongs to the :class:`~digitlens.view.server.lab_jobs.LabRunner` (it
shares the lab's run cache, so a network the playground finished is never trained again, by
either).  One heavy job at a time: the lab refuses to start while the playground runs, and the
playground refuses while a lab study runs (the training view checks both).

Nothing here prints; the networks draw their randomness from the budget's seed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from ...errors import JobConflict


class PlaygroundRunner:
    """Start, follow and cancel one playground session at a time.

    Parameters
    ----------
    cache_dir : the lab's run cache (None: no cache).
    """

    def __init__(self, cache_dir=None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._lock = threading.Lock()
        self._session = None
        self._thread: threading.Thread | None = None
        self.message = ""
        self.started: float | None = None
        self.ended: float | None = None

    @property
    def running(self) -> bool:
        """Whether a session is training now."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, playground, *, pace: float = 0.5):
        """Start ``playground`` (a :class:`~digitlens.lab.playground.Playground`) at ``pace``
        seconds per checkpoint; :class:`~digitlens.errors.JobConflict` if one is running."""
        from ...lab.playground import Session

        with self._lock:
            if self.running:
                raise JobConflict("the playground is already running; wait for it or cancel it")
            session = Session(playground, cache_dir=self.cache_dir, pace=pace)
            self._session, self.message = session, ""
            self.started, self.ended = time.time(), None
            self._thread = threading.Thread(target=self._work, args=(session,), daemon=True,
                                            name="digitlens-playground")
            self._thread.start()
        return session

    def _work(self, session) -> None:
        try:
            session.run()
            cached = sum(lane.cached for lane in session.lanes)
            self.message = (f"{len(session.lanes)} networks"
                            + (f" ({cached} replayed from the cache)" if cached else "")
                            + f" in {time.time() - self.started:.0f} s"
                            if session.state == "completed" else
                            "cancelled; finished networks are kept, unfinished ones are not")
        except Exception as e:  # noqa: BLE001 - reported to the page, never raised into a thread
            session.state = "failed"
            self.message = f"the playground stopped: {type(e).__name__}: {e}"
        finally:
            self.ended = time.time()

    def cancel(self) -> None:
        """Stop every network at its next mini-batch (nothing unfinished is cached)."""
        if self._session is not None:
            self._session.cancel()

    def wait(self, timeout: float | None = None) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        self.cancel()
        self.wait(timeout)

    def snapshot(self) -> dict[str, Any] | None:
        """The latest session as JSON (see :meth:`~digitlens.lab.playground.Session.snapshot`),
        with ``running``, ``message`` and ``seconds``; None before the first start."""
        s = self._session
        if s is None:
            return None
        snap = s.snapshot()
        snap.update(running=self.running, message=self.message,
                    seconds=round((self.ended or time.time()) - (self.started or time.time()), 1))
        return snap


__all__ = ["PlaygroundRunner"]
