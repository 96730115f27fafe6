"""Fine-tuning on the learner's (or the class's) digits in the background, one job at a time.

The job calls :func:`digitlens.training.finetune.finetune` and
:func:`~digitlens.training.finetune.save_finetuned` (``<models>/custom/<model>_mine.npz``, never
the zoo's file), then hands the new model to the registry so every view can choose it.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

from ...errors import JobConflict


class FinetuneJobs:
    """At most one fine-tuning at a time; :meth:`status` is what the page polls."""

    def __init__(self, on_saved: Callable[[str, Any, dict], None] | None = None) -> None:
        self.on_saved = on_saved
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"state": "idle"}
        self._thread: threading.Thread | None = None

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def start(self, base_name: str, model, x: np.ndarray, y: np.ndarray, ids: np.ndarray, *,
              seed: int = 0, config=None, path=None, suffix: str = "mine") -> dict[str, Any]:
        """Fine-tune a copy of ``model`` (zoo name ``base_name``) on ``x``, ``y`` in a thread."""
        with self._lock:
            if self._state["state"] == "running":
                raise JobConflict("a fine-tuning is already running; wait for it to finish")
            self._state = {"state": "running", "model": base_name, "n": int(len(y)),
                           "started": time.time(), "epoch": 0}
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            args=(base_name, model, x, y, ids, seed, config, path,
                                                  suffix))
            self._thread.start()
            return dict(self._state)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        t = self._thread
        if t is not None:
            t.join(timeout)
        return self.status()

    def _run(self, base_name, model, x, y, ids, seed, config, path, suffix) -> None:
        from ...data import load_digits
        from ...training.finetune import (default_path, finetune, finetuned_name,
                                          save_finetuned)

        jobs = self

        class _Progress:
            def on_batch_end(self, log):
                return None

            def on_epoch_end(self, log):
                with jobs._lock:
                    jobs._state["epoch"] = int(log.get("epoch", 0))

        try:
            r = finetune(model, x, y, load_digits(), rng=np.random.default_rng(seed),
                         config=config, ids=ids, callbacks=[_Progress()])
            saved = save_finetuned(r, path or default_path(base_name, suffix), base=base_name)
            name = finetuned_name(base_name, suffix)
            if self.on_saved is not None:
                self.on_saved(name, r.model, {"finetuned_from": base_name})
            result = {k: v for k, v in r.to_dict().items() if k != "history"}
            with self._lock:
                self._state.update(state="completed", name=name, file=saved.name, **result)
        except Exception as e:  # reported to the page, never lost in a thread
            with self._lock:
                self._state.update(state="failed", message=str(e) or type(e).__name__)
