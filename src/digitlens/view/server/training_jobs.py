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

Each ``"epoch"`` event (and a completed job's ``"end"``) also carries ``gap``: the sentence of
:func:`digitlens.training.words.gap_sentence` on the epochs so far (None while training and
test accuracy are close).

Besides zoo models, :meth:`TrainingJobs.start_custom` trains the learner's own network
(:class:`digitlens.training.custom.CustomSpec`), saved under its own name in
:func:`~digitlens.view.server.registry.custom_model_path` (never over a zoo model's file).

*First start.* :meth:`TrainingJobs.enqueue` trains a list of zoo models one after another in a
background thread (``digitlens serve`` on a fresh install: the ladder, logistic first), each as
an ordinary job, so the one-heavy-job-at-a-time rule holds; it waits while another job (or
``wait_while()``, e.g. the lab) is busy.  :meth:`TrainingJobs.status` says where each name
stands.

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
    #: ``"zoo"`` (a zoo model and its recipe) or ``"custom"`` (the learner's own network)
    kind: str = "zoo"
    #: set by :meth:`TrainingJobs.enqueue` for the models ``digitlens serve`` trains on its own
    first_start: bool = False
    state: str = "queued"
    message: str = ""
    test_accuracy: float | None = None
    #: the train/test gap sentence after the last epoch (None: no gap worth a sentence)
    gap: str | None = None
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
        return {"id": self.id, "model": self.model, "kind": self.kind,
                "first_start": self.first_start, "state": self.state, "message": self.message,
                "config": self.config, "seed": self.seed, "epochs": self.config["epochs"],
                "epochs_completed": last_epoch["epoch"] if last_epoch else 0,
                "test_accuracy": self.test_accuracy, "gap": self.gap, "saved": self.saved,
                "cancel_requested": self.cancel_requested, "n_events": len(self.events),
                "created": self.created, "finished": self.finished}


class _Reporter:
    """The ``fit`` callback: turns batch/epoch logs into events and asks ``fit`` to stop when
    the job is cancelled.  :func:`digitlens.training.recipes.train_rung` hands it the model it
    builds, so every epoch also reports the accuracy on the held-out test digits.  Numbers go
    through :func:`digitlens._util.jsonsafe.clean_meta`: ints stay ints, floats are rounded and
    a NaN loss becomes ``null`` (the events are JSON).  Each epoch event also carries the
    train/test ``gap`` sentence (:func:`digitlens.training.words.gap_sentence`), told whether
    the model has dropout and whether the run is ``augment``-ed."""

    def __init__(self, job: TrainingJob, x_test: np.ndarray, y_test: np.ndarray, *,
                 augment: bool = False) -> None:
        self.job = job
        self.x_test, self.y_test = x_test, y_test
        self.augment = bool(augment)
        self.dropout = False
        self.model = None
        self.step = 0

    def set_model(self, model) -> None:
        from ...nn.topology import has_dropout

        self.model = model
        self.dropout = has_dropout(model)

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
        event["gap"] = self.gap_after(event)
        self.job.gap = event["gap"]
        self.job._emit(event)
        return self.job.cancel_requested

    def gap_after(self, event: dict[str, Any]) -> str | None:
        """The library's gap sentence on the epochs so far, ``event`` last."""
        from ...training.words import gap_sentence

        epochs = [e for e in self.job.events if e["type"] == "epoch"] + [event]
        return gap_sentence(epochs, dropout=self.dropout, augment=self.augment)


class TrainingJobs:
    """Start, follow and cancel background training, one job at a time: zoo models with their
    recipe (:meth:`start`), the learner's own network (:meth:`start_custom`), and a queue of zoo
    models trained one after another (:meth:`enqueue`, ``digitlens serve``'s first start).

    Parameters
    ----------
    data : a :class:`digitlens.data.Digits` split, or None to load the bundled digits on first use.
    on_trained : called as ``on_trained(name, model, meta)`` after a completed job (after saving).
    save : write completed models to :func:`digitlens._util.paths.model_path` (a custom model
        to :func:`~digitlens.view.server.registry.custom_model_path`).
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
        #: the first-start queue: name -> "queued" | "training" | "trained" | "failed" | ...
        self._queue: dict[str, str] = {}
        self._queue_jobs: dict[str, str] = {}
        self._queue_thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: the queue also waits while this returns True (the server: the lab or playground runs)
        self.wait_while: Callable[[], bool] | None = None

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
    def _check_epochs(self, epochs) -> int:
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) \
                or not 1 <= int(epochs) <= self.max_epochs:
            raise ValueError(f"epochs must be a whole number from 1 to {self.max_epochs}, "
                             f"got {epochs!r}")
        return int(epochs)

    @staticmethod
    def _check_seed(seed) -> int:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
        return int(seed)

    def start(self, name: str, *, epochs: int | None = None, seed: int = 0,
              first_start: bool = False) -> TrainingJob:
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
            config = dataclasses.replace(config, epochs=self._check_epochs(epochs))
        job = TrainingJob(id=uuid.uuid4().hex[:12], model=name, config=config.to_dict(),
                          seed=self._check_seed(seed), first_start=first_start)
        return self._launch(job, config)

    def start_custom(self, spec, *, name: str | None = None, seed: int = 0) -> TrainingJob:
        """Start training the learner's own network (a
        :class:`~digitlens.training.custom.CustomSpec`) in the background, under ``name``
        (default ``spec.default_name()``; never a zoo model's name).

        Raises
        ------
        ValueError
            a bad name, or ``spec.epochs`` above ``max_epochs``.
        JobConflict
            another job is still running.
        """
        from ...training.custom import check_custom_name

        name = check_custom_name(spec.default_name() if name is None else name)
        self._check_epochs(spec.epochs)
        config = spec.train_config()
        job = TrainingJob(id=uuid.uuid4().hex[:12], model=name, kind="custom",
                          config={**config.to_dict(), "custom": spec.to_dict()},
                          seed=self._check_seed(seed))
        return self._launch(job, spec)

    def _launch(self, job: TrainingJob, what) -> TrainingJob:
        with self._lock:
            busy = next((j for j in self._jobs.values() if not j.done), None)
            if busy is not None:
                raise JobConflict(f"a training job is already running ({busy.model}, id "
                                  f"{busy.id}); cancel it or wait for it to finish")
            self._jobs[job.id] = job
            self._forget_old()
            thread = threading.Thread(target=self._run, args=(job, what), daemon=True,
                                      name=f"digitlens-train-{job.model}-{job.id}")
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
        """Stop the queue, cancel every running job and wait for the threads to end."""
        self._stop.set()
        for job in self.list():
            if not job.done:
                job._cancel.set()
        for t in list(self._threads.values()):
            t.join(timeout)
        if self._queue_thread is not None:
            self._queue_thread.join(timeout)

    # ------------------------------------------------------------------- the first start
    def enqueue(self, names, *, epochs: int | None = None, seed: int = 0) -> list[str]:
        """Train zoo models ``names`` one after another in a background thread, in the order
        given (the ladder's: logistic first, ready in about a second), each as an ordinary
        job with its recipe (or ``epochs``); returns the names queued.  A name already queued
        is not queued twice.  The queue waits while another job runs or ``wait_while()`` is
        true; a job that fails or is cancelled leaves its model untrained and the queue goes on.
        """
        from ...nn.zoo import MODELS

        for n in names:
            if n not in MODELS:
                raise ValueError(f"unknown model {n!r}; choose one of {list(MODELS)}")
        if epochs is not None:
            epochs = self._check_epochs(epochs)
        seed = self._check_seed(seed)
        with self._lock:
            new = [n for n in dict.fromkeys(names) if self._queue.get(n) not in
                   ("queued", "training")]
            for n in new:
                self._queue[n] = "queued"
            if new:
                t = threading.Thread(target=self._run_queue, args=(new, epochs, seed),
                                     daemon=True, name="digitlens-first-start")
                self._queue_thread = t
        if new:
            t.start()
        return new

    def _run_queue(self, names: list[str], epochs: int | None, seed: int) -> None:
        from ..._util import paths

        for name in names:
            if self.save and paths.model_path(name).is_file():  # trained meanwhile (e.g. the CLI)
                with self._lock:
                    self._queue[name] = "trained"
                continue
            while not self._stop.is_set():
                if self.running() is None and not (self.wait_while and self.wait_while()):
                    try:
                        job = self.start(name, epochs=epochs, seed=seed, first_start=True)
                        break
                    except JobConflict:
                        pass  # someone started a job in between: wait for it
                self._stop.wait(0.2)
            else:
                return
            with self._lock:
                self._queue[name], self._queue_jobs[name] = "training", job.id
            thread = self._threads.get(job.id)
            if thread is not None:
                thread.join()
            with self._lock:
                self._queue[name] = "trained" if job.state == "completed" else job.state

    def status(self, name: str) -> dict[str, Any] | None:
        """Where model ``name`` stands: ``{"state": "queued" | "training" | "failed" |
        "cancelled" | "trained", "job", "epochs_completed", "epochs"}`` if it is in the queue
        or a job is training it now; else None."""
        with self._lock:
            state, job_id = self._queue.get(name), self._queue_jobs.get(name)
            live = next((j for j in self._jobs.values() if not j.done and j.model == name), None)
        if live is not None:
            s = live.summary()
            return {"state": "training", "job": live.id, "epochs": s["epochs"],
                    "epochs_completed": s["epochs_completed"], "first_start": live.first_start}
        if state is None:
            return None
        out: dict[str, Any] = {"state": state, "job": job_id, "first_start": True}
        if job_id is not None:
            try:
                s = self.get(job_id).summary()
                out.update(epochs=s["epochs"], epochs_completed=s["epochs_completed"],
                           message=s["message"])
            except UnknownJob:
                pass
        return out

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

    def _train(self, job: TrainingJob, what, d):
        """Run the one training path for the job; returns ``(LadderRow, n_test, path)``."""
        from ..._util import paths
        from ...nn.zoo import MODELS
        from ...training.recipes import recipe, train_rung
        from .registry import custom_model_path

        if job.kind == "custom":
            from ...training.custom import train_custom

            keep_te = np.ones(len(d.y_test), dtype=bool)
            n_train, batch, augment = len(d.y_train), what.train_config().batch_size, False
            path = custom_model_path(job.model)
        else:
            classes = MODELS[job.model].classes
            keep_tr, keep_te = np.isin(d.y_train, classes), np.isin(d.y_test, classes)
            n_train, batch = int(keep_tr.sum()), what.batch_size
            augment = recipe(job.model).augment is not None
            path = paths.model_path(job.model)
        job._emit({"type": "start", "model": job.model, "kind": job.kind,
                   "epochs": job.config["epochs"], "batches": -(-n_train // batch),
                   "config": job.config})
        reporter = _Reporter(job, d.x_test[keep_te], d.y_test[keep_te], augment=augment)
        if job.kind == "custom":
            row = train_custom(what, d.x_train, d.y_train, d.x_test, d.y_test, name=job.model,
                               seed=job.seed, callbacks=[reporter])
        else:  # the one training path of digitlens (as `digitlens train` and the ladder)
            row = train_rung(job.model, d.x_train, d.y_train, d.x_test, d.y_test,
                             seed=job.seed, config=what, callbacks=[reporter])
        return row, int(keep_te.sum()), path

    def _run(self, job: TrainingJob, what) -> None:
        from ...errors import TrainingDiverged
        from ...nn.checkpoint import save_model
        from ...training.recipes import diverged_reason, keep_previous

        try:
            job.state = "running"
            d = self._digits()
            row, n_test, path = self._train(job, what, d)
            history, epochs = row.history, job.config["epochs"]
            if job.cancel_requested:
                self._finish(job, "cancelled",
                             f"cancelled after {len(history.epochs)} of {epochs} epochs; "
                             "nothing was saved, the model in use is unchanged")
                return
            test_acc = row.test_accuracy
            job.test_accuracy = float(test_acc)
            test_epochs = [e for e in job.events if e["type"] == "epoch"]
            meta = {"test_accuracy": float(test_acc), "train_config": row.config.to_dict(),
                    "seed": job.seed, "data": getattr(d, "source", "bundled"),
                    "stop_reason": history.stop_reason, "seconds": history.seconds,
                    "epochs_completed": len(history.epochs), "augment": row.augment,
                    "history": {"epochs": history.epochs, "test": test_epochs},
                    "trained_by": "web page" if not job.first_start else "first start",
                    **({"custom": job.config["custom"]} if job.kind == "custom" else {})}
            why = diverged_reason(row)  # a good model is never replaced by one that learned nothing
            if why is not None:
                self._finish(job, "failed", f"training went wrong: {why}; nothing was saved, "
                             "the model in use is unchanged")
                return
            if self.save:
                keep_previous(path)  # NAME.previous.npz: `digitlens models restore NAME`
                save_model(row.model, path, meta)
                job.saved = True
            if self.on_trained is not None:
                self.on_trained(job.model, row.model, meta)
            self._finish(job, "completed",
                         f"{job.model}: {test_acc:.1%} of the {n_test:,} held-out test "
                         f"digits right after {len(history.epochs)} epochs "
                         f"({history.seconds:.1f} s)",
                         test_accuracy=float(test_acc), saved=job.saved, gap=job.gap)
        except TrainingDiverged as e:
            self._finish(job, "failed", str(e))
        except Exception as e:  # a background thread must always end its job with a message
            self._finish(job, "failed", f"training failed: {type(e).__name__}: {e}")


__all__ = ["STATES", "FINAL_STATES", "JobConflict", "UnknownJob", "TrainingJob", "TrainingJobs"]
