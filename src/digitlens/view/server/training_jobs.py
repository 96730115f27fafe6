"""Background training with live progress: what the web page's training view runs.

:class:`TrainingJobs` trains one zoo model at a time in a background thread with
:func:`digitlens.training.fit` and the model's default recipe.  Every mini-batch and every epoch
becomes an *event* (a small JSON-able dict) appended to the job's event list; a reader (the
server's server-sent-events stream) follows the list by index and can resume where it left off.

Cancelling sets a flag that the ``fit`` callback returns at the next mini-batch; ``fit`` then
restores the weights of the last complete epoch.  A cancelled job saves nothing, so the model
the page was using stays as it was.  A completed job saves the model atomically to
:func:`digitlens._util.paths.model_path` (unless ``save=False``) and calls ``on_trained(name, model,
meta)`` so the server can start using it.

Events (``"type"`` key):

- ``"start"``: ``model``, ``epochs``, ``batches`` per epoch, ``config`` (the recipe used);
- ``"batch"``: ``epoch``, ``batch``, ``batches``, ``step`` (1-based over the run), ``loss``,
  ``accuracy`` (on that mini-batch), ``lr``;
- ``"epoch"``: ``epoch``, ``epochs``, ``loss``, ``accuracy`` (training, averaged over the
  epoch), ``test_loss``, ``test_accuracy`` (the 1,000 held-out digits), ``seconds``;
- ``"end"``: ``state`` (``completed`` | ``cancelled`` | ``failed``), ``message``, and for a
  completed run ``test_accuracy`` and ``saved`` (whether the model file was written).

Nothing here prints; randomness comes only from ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..._util.jsonsafe import clean_meta
from ...errors import JobConflict, UnknownJob

#: the states a job moves through; the last three are final
STATES = ("queued", "running", "completed", "cancelled", "failed")
FINAL_STATES = ("completed", "cancelled", "failed")


@dataclass
class TrainingJob:
    """One background training run and everything it has reported so far."""

    id: str
    model: str
    config: dict[str, Any]
    seed: int
    state: str = "queued"
    message: str = ""
    test_accuracy: float | None = None
    saved: bool = False
    created: float = field(default_factory=time.time)
    finished: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _emit(self, event: dict[str, Any]) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def events_since(self, index: int, timeout: float = 0.0) -> tuple[list[dict[str, Any]], bool]:
        """Events from ``index`` on (waiting up to ``timeout`` seconds for at least one), and
        whether the job is finished (no more events will come after these)."""
        with self._cond:
            if timeout > 0 and len(self.events) <= index and not self.done:
                self._cond.wait(timeout)
            return self.events[index:], self.done

    def summary(self) -> dict[str, Any]:
        """The job's state as JSON (without the event list)."""
        last_epoch = next((e for e in reversed(self.events) if e["type"] == "epoch"), None)
        return {"id": self.id, "model": self.model, "state": self.state, "message": self.message,
                "config": self.config, "seed": self.seed, "epochs": self.config["epochs"],
                "epochs_completed": last_epoch["epoch"] if last_epoch else 0,
                "test_accuracy": self.test_accuracy, "saved": self.saved,
                "cancel_requested": self.cancel_requested, "n_events": len(self.events),
                "created": self.created, "finished": self.finished}


class _Reporter:
    """The ``fit`` callback: turns batch/epoch logs into events and asks ``fit`` to stop when
    the job is cancelled.  :func:`digitlens.training.recipes.train_rung` hands it the model it
    builds, so every epoch also reports the accuracy on the held-out test digits.  Numbers go
    through :func:`digitlens._util.jsonsafe.clean_meta`: ints stay ints, floats are rounded and
    a NaN loss becomes ``null`` (the events are JSON)."""

    def __init__(self, job: TrainingJob, x_test: np.ndarray, y_test: np.ndarray) -> None:
        self.job = job
        self.x_test, self.y_test = x_test, y_test
        self.model = None
        self.step = 0

    def set_model(self, model) -> None:
        self.model = model

    def on_batch_end(self, log: dict[str, float]) -> bool:
        self.step += 1
        self.job._emit({"type": "batch", "step": self.step, **clean_meta(log)})
        return self.job.cancel_requested

    def on_epoch_end(self, log: dict[str, float]) -> bool:
        from ...training.fit import evaluate

        event = {"type": "epoch", **clean_meta(log)}
        if self.model is not None:
            test_loss, test_acc = evaluate(self.model, self.x_test, self.y_test)
            event.update(test_loss=float(test_loss), test_accuracy=float(test_acc))
        self.job._emit(event)
        return self.job.cancel_requested


class TrainingJobs:
    """Start, follow and cancel background training of zoo models, one at a time.

    Parameters
    ----------
    data : a :class:`digitlens.data.Digits` split, or None to load the bundled digits on first use.
    on_trained : called as ``on_trained(name, model, meta)`` after a completed job (after saving).
    save : write completed models to :func:`digitlens._util.paths.model_path`.
    max_epochs : the largest ``epochs`` a client may ask for.
    keep : how many finished jobs to remember (oldest are forgotten first).

    Examples
    --------
    >>> jobs = TrainingJobs(save=False)
    >>> job = jobs.start("logistic", epochs=1)       # doctest: +SKIP
    >>> jobs.wait(job.id, timeout=60).state          # doctest: +SKIP
    'completed'
    """

    def __init__(self, data=None, *, on_trained: Callable[[str, Any, dict], None] | None = None,
                 save: bool = True, max_epochs: int = 60, keep: int = 20) -> None:
        if int(max_epochs) < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        self._data = data
        self.on_trained = on_trained
        self.save = save
        self.max_epochs = int(max_epochs)
        self.keep = int(keep)
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}

    # ------------------------------------------------------------------------------ lookups
    def get(self, job_id: str) -> TrainingJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(f"no training job with id {job_id!r}")
        return job

    def list(self) -> list[TrainingJob]:
        """All remembered jobs, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def running(self) -> TrainingJob | None:
        with self._lock:
            return next((j for j in self._jobs.values() if not j.done), None)

    # ---------------------------------------------------------------------------- actions
    def start(self, name: str, *, epochs: int | None = None, seed: int = 0) -> TrainingJob:
        """Start training zoo model ``name`` with its default recipe in the background.

        Raises
        ------
        ValueError
            unknown model name, or ``epochs`` outside ``1..max_epochs``.
        JobConflict
            another job is still running.
        """
        from ...nn.zoo import MODELS
        from ...training.recipes import default_recipe

        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; choose one of {list(MODELS)}")
        config = default_recipe(name)
        if epochs is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) \
                    or not 1 <= int(epochs) <= self.max_epochs:
                raise ValueError(f"epochs must be a whole number from 1 to {self.max_epochs}, "
                                 f"got {epochs!r}")
            config = dataclasses.replace(config, epochs=int(epochs))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
        with self._lock:
            busy = next((j for j in self._jobs.values() if not j.done), None)
            if busy is not None:
                raise JobConflict(f"a training job is already running ({busy.model}, id "
                                  f"{busy.id}); cancel it or wait for it to finish")
            job = TrainingJob(id=uuid.uuid4().hex[:12], model=name, config=config.to_dict(),
                              seed=int(seed))
            self._jobs[job.id] = job
            self._forget_old()
            thread = threading.Thread(target=self._run, args=(job, config), daemon=True,
                                      name=f"digitlens-train-{name}-{job.id}")
            self._threads[job.id] = thread
        thread.start()
        return job

    def cancel(self, job_id: str) -> TrainingJob:
        """Ask a job to stop at its next mini-batch (no effect on a finished job)."""
        job = self.get(job_id)
        if not job.done:
            job._cancel.set()
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> TrainingJob:
        """Block until the job finishes (or ``timeout`` seconds pass); returns the job."""
        job = self.get(job_id)
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return job

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every running job and wait for the threads to end."""
        for job in self.list():
            if not job.done:
                job._cancel.set()
        for t in list(self._threads.values()):
            t.join(timeout)

    # ---------------------------------------------------------------------------- internals
    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.done), key=lambda j: j.created)
        while len(self._jobs) > self.keep and finished:
            old = finished.pop(0)
            self._jobs.pop(old.id, None)
            self._threads.pop(old.id, None)

    def _digits(self):
        if self._data is None:
            from ...data import load_digits

            self._data = load_digits()
        return self._data

    def _finish(self, job: TrainingJob, state: str, message: str, **extra) -> None:
        with job._cond:
            job.state, job.message, job.finished = state, message, time.time()
            job.events.append({"type": "end", "state": state, "message": message, **extra})
            job._cond.notify_all()

    def _run(self, job: TrainingJob, config) -> None:
        from ..._util import paths
        from ...errors import TrainingDiverged
        from ...nn.checkpoint import save_model
        from ...nn.zoo import MODELS
        from ...training.recipes import train_rung

        try:
            job.state = "running"
            d = self._digits()
            classes = MODELS[job.model].classes
            keep_tr, keep_te = np.isin(d.y_train, classes), np.isin(d.y_test, classes)
            n_train = int(keep_tr.sum())
            job._emit({"type": "start", "model": job.model, "epochs": config.epochs,
                       "batches": -(-n_train // config.batch_size), "config": job.config})
            reporter = _Reporter(job, d.x_test[keep_te], d.y_test[keep_te])
            # the one training path of digitlens (as `digitlens train` and the ladder)
            row = train_rung(job.model, d.x_train, d.y_train, d.x_test, d.y_test,
                             seed=job.seed, config=config, callbacks=[reporter])
            history = row.history
            if job.cancel_requested:
                self._finish(job, "cancelled",
                             f"cancelled after {len(history.epochs)} of {config.epochs} epochs; "
                             "nothing was saved, the model in use is unchanged")
                return
            test_acc = row.test_accuracy
            job.test_accuracy = float(test_acc)
            meta = {"test_accuracy": float(test_acc), "train_config": config.to_dict(),
                    "seed": job.seed, "data": getattr(d, "source", "bundled"),
                    "stop_reason": history.stop_reason, "seconds": history.seconds,
                    "epochs_completed": len(history.epochs), "augment": row.augment,
                    "history": {"epochs": history.epochs}, "trained_by": "web page"}
            if self.save:
                save_model(row.model, paths.model_path(job.model), meta)
                job.saved = True
            if self.on_trained is not None:
                self.on_trained(job.model, row.model, meta)
            self._finish(job, "completed",
                         f"{job.model}: {test_acc:.1%} of the {int(keep_te.sum()):,} held-out test "
                         f"digits right after {len(history.epochs)} epochs "
                         f"({history.seconds:.1f} s)",
                         test_accuracy=float(test_acc), saved=job.saved)
        except TrainingDiverged as e:
            self._finish(job, "failed", str(e))
        except Exception as e:  # a background thread must always end its job with a message
            self._finish(job, "failed", f"training failed: {type(e).__name__}: {e}")


__all__ = ["STATES", "FINAL_STATES", "JobConflict", "UnknownJob", "TrainingJob", "TrainingJobs"]
