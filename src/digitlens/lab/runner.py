"""Running lab runs: one in this process, a study in a process pool, finished runs in a cache.

:func:`run_one` trains one network as its :class:`~digitlens.lab.specs.RunSpec` says and measures
it (:mod:`digitlens.lab.measure`); :func:`run_bench` times each activation's forward and backward.
:func:`run_study` runs a :class:`~digitlens.lab.specs.Study` in parallel worker processes
(``ProcessPoolExecutor``), caches each finished run as JSON in a folder the caller gives (the
command line and the web page share :func:`digitlens._util.paths.lab_runs_dir`; files are written
atomically, so an interrupted study resumes where it stopped), reports progress through a
callback and returns a :class:`~digitlens.lab.result.StudyResult`.

Workers are started with ``spawn`` (clean interpreters, safe with BLAS threads): in a script,
call :func:`run_study` under ``if __name__ == "__main__":``, as Python requires for any
process pool; notebooks and the ``digitlens lab`` command need nothing.

Reproducibility: a run's numbers depend only on its spec (seeded generators, BLAS limited to one
thread per run); only wall-clock timings (kept under ``"timing"`` and in the micro-benchmark)
change between repetitions.  :func:`~digitlens.lab.result.strip_timings` removes them for
comparisons.  A cached run is found by its spec's key, which hashes the spec with the engine's
source (:func:`~digitlens.lab.specs.code_fingerprint`): changed engine code means new runs.

Example
-------
>>> from digitlens import lab
>>> study = lab.activation_study("quick", seeds=1)          # doctest: +SKIP
>>> result = lab.run_study(study, cache_dir="lab-cache")    # doctest: +SKIP
>>> result.table("width")[:2]                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._util.checks import check_int
from .._util.files import atomic_write
from ..errors import LabError, TrainingDiverged
from ..nn.layers import Activation
from ..training.fit import TrainConfig, fit
from .measure import (
    ActivationTimer,
    Monitor,
    build_run_model,
    hidden_activation_indices,
    hidden_summary,
    lab_data,
    output_diagnostics,
    output_history,
    score_examples,
    test_loss,
)
from .result import StudyResult
from .specs import LAB_VERSION, BenchSpec, RunSpec, Study


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Train one network as ``spec`` says and measure it.  Returns a JSON-able dict.

    Everything outside the ``"timing"`` entry depends only on ``spec``.

    Raises
    ------
    KeyboardInterrupt
        if training was interrupted (an incomplete run must never be cached as finished).
    """
    x_tr, y_tr, x_te, y_te = lab_data(spec.n_train, spec.n_test)
    model = build_run_model(spec, np.random.default_rng([spec.seed, 0]))
    hidden = hidden_activation_indices(model)
    timer = ActivationTimer([model.layers[i] for i in hidden])
    steps_per_epoch = math.ceil(len(x_tr) / spec.batch_size)
    probe = slice(0, min(spec.probe_size, len(x_tr)))
    mon = Monitor(model, spec, x_te, y_te, x_tr[probe], y_tr[probe], timer, steps_per_epoch)
    t_wall = time.perf_counter()
    history = _train(model, spec, x_tr, y_tr, mon)
    train_seconds = mon.train_seconds()
    wall_seconds = time.perf_counter() - t_wall
    timer.enabled = False
    if history.stop_reason == "diverged":
        # fit restored the last complete epoch's weights: measure those, like any checkpoint
        mon.checkpoint()
        mon.rows[-1]["epoch"] = float(len(history.epochs))

    # ---- final measurements on the test digits (the last checkpoint's forward pass)
    trace = mon.last_trace
    final = output_diagnostics(model, x_te, y_te, trace=trace)
    final["test_loss"] = test_loss(model, trace, y_te)
    reach = next((k for k, r in enumerate(mon.rows) if r["test_accuracy"] >= spec.target_accuracy),
                 None)
    curve = mon.curve()
    timer.detach()
    return {
        "kind": "train",
        "key": spec.key(),
        "lab_version": LAB_VERSION,
        "spec": spec.to_dict(),
        "label": spec.label(),
        "n_params": model.n_params,
        "stop_reason": history.stop_reason,
        "final": final,
        "hidden": hidden_summary(model, trace, hidden, spec),
        "curve": curve,
        "grad_norms": mon.grad_norms(),
        "reach": {"target": spec.target_accuracy,
                  "epochs": None if reach is None else mon.rows[reach]["epoch"]},
        "output": output_history(curve["dead_output"], score_examples(trace, y_te, spec.n_examples),
                                 final["dead_units"]),
        "timing": _timing(mon, timer, reach, train_seconds, wall_seconds),
    }


def _train(model, spec: RunSpec, x_tr, y_tr, mon: Monitor):
    """``fit`` with the monitor as its callback; the History (also of a diverged run)."""
    config = TrainConfig(epochs=spec.epochs, batch_size=spec.batch_size, optimizer=spec.optimizer,
                         lr=spec.lr, momentum=spec.momentum)
    train_rng = np.random.default_rng([spec.seed, 1])
    mon.start()
    try:
        history = fit(model, x_tr, y_tr, config, rng=train_rng, callbacks=[mon])
    except TrainingDiverged as e:
        history = e.history
    if history.stop_reason == "interrupted":
        raise KeyboardInterrupt
    return history


def _timing(mon: Monitor, timer: ActivationTimer, reach: int | None, train_seconds: float,
            wall_seconds: float) -> dict[str, Any]:
    """The run's wall-clock measurements (the only numbers that change between repetitions)."""
    act_seconds = timer.robust_seconds("forward") + timer.robust_seconds("backward")
    robust_train = mon.robust_step_seconds() * len(mon.step_seconds)
    return {
        "train_seconds": train_seconds,
        "wall_seconds": wall_seconds,
        "epoch_seconds": np.diff([0.0] + mon.epoch_marks).tolist(),
        "step_seconds_median": mon.robust_step_seconds(),
        "robust_epoch_seconds": mon.robust_step_seconds() * mon.steps_per_epoch,
        "checkpoint_seconds": mon.timing_rows,
        "activation_calls": len(timer.calls["forward"]) + len(timer.calls["backward"]),
        "activation_forward_seconds": timer.robust_seconds("forward"),
        "activation_backward_seconds": timer.robust_seconds("backward"),
        "activation_forward_seconds_sum": timer.seconds("forward"),
        "activation_backward_seconds_sum": timer.seconds("backward"),
        # both robust (median call / median step): a ratio of like with like
        "activation_share": act_seconds / robust_train if robust_train > 0 else None,
        "seconds_to_target": None if reach is None else mon.timing_rows[reach],
    }


def run_bench(spec: BenchSpec) -> dict[str, Any]:
    """Time each activation layer's forward and backward on ``(batch, width)`` float32 arrays.

    Returns ``{"kind": "bench", "results": {activation: {"BxW": {"forward_us", "backward_us"}}}}``
    with the fastest of ``rounds`` measurements (microseconds per call).
    """
    rng = np.random.default_rng(spec.seed)
    acts = list(spec.activations)
    results: dict[str, dict[str, dict[str, float]]] = {a: {} for a in acts}
    clock = time.perf_counter
    for n, w in spec.shapes:
        z = rng.standard_normal((n, w)).astype(np.float32)  # (batch, width)
        da = rng.standard_normal((n, w)).astype(np.float32)
        best = {a: [math.inf, math.inf] for a in acts}
        for r in range(spec.rounds):
            for a in acts[r % len(acts):] + acts[:r % len(acts)]:
                layer = Activation(a)
                _, cache = layer.forward(z)
                t = clock()
                layer.forward(z)
                layer.backward(da, cache)
                once = max(clock() - t, 1e-7)
                reps = int(min(max(spec.seconds_per_measure / once, 3), 20000))
                t = clock()
                for _ in range(reps):
                    layer.forward(z)
                fwd = (clock() - t) / reps
                t = clock()
                for _ in range(reps):
                    layer.backward(da, cache)
                bwd = (clock() - t) / reps
                best[a][0] = min(best[a][0], fwd)
                best[a][1] = min(best[a][1], bwd)
        for a in acts:
            results[a][f"{n}x{w}"] = {"forward_us": best[a][0] * 1e6,
                                      "backward_us": best[a][1] * 1e6}
    steps = _bench_steps(spec) if spec.step_depth else None
    return {"kind": "bench", "key": spec.key(), "lab_version": LAB_VERSION,
            "spec": spec.to_dict(), "label": spec.label(), "results": results, "steps": steps}


def _bench_steps(spec: BenchSpec) -> dict[str, Any]:
    """Fastest whole training step (forward, backward, SGD update) per activation, interleaved."""
    from ..data import load_digits
    from ..nn.optim import SGD

    d = load_digits()
    xb, yb = d.x_train[:spec.step_batch], d.y_train[:spec.step_batch]
    acts = list(spec.activations)
    nets = {}
    for a in acts:
        model = build_run_model(RunSpec(activation=a, width=spec.step_width,
                                        depth=spec.step_depth),
                                np.random.default_rng([spec.seed, 0]))
        nets[a] = (model, SGD(0.01, momentum=0.9), model.params())
    clock = time.perf_counter
    best = {a: math.inf for a in acts}
    for r in range(spec.rounds):
        for a in acts[r % len(acts):] + acts[:r % len(acts)]:
            model, opt, params = nets[a]
            t = clock()
            _, grads = model.loss_and_grads(xb, yb)
            opt.step(params, grads)
            once = max(clock() - t, 1e-7)
            reps = int(min(max(spec.seconds_per_measure / once, 3), 1000))
            t = clock()
            for _ in range(reps):
                _, grads = model.loss_and_grads(xb, yb)
                opt.step(params, grads)
            best[a] = min(best[a], (clock() - t) / reps)
    return {"network": f"784-{'-'.join([str(spec.step_width)] * spec.step_depth)}-10",
            "batch": spec.step_batch, "step_us": {a: best[a] * 1e6 for a in acts}}


def execute(kind: str, spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Run one spec given as a dict (what the worker processes receive), BLAS on one thread so
    parallel runs do not fight over cores and results do not depend on the thread count."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        if kind == "bench":
            return run_bench(BenchSpec.from_dict(spec_dict))
        return run_one(RunSpec.from_dict(spec_dict))


# ------------------------------------------------------------------------------------- caching


def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.json"


def load_cached(cache_dir: str | os.PathLike | None, key: str) -> dict[str, Any] | None:
    """A finished run from the cache, or None if absent, unreadable or from another lab version."""
    if cache_dir is None:
        return None
    p = _cache_file(Path(cache_dir), key)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("key") != key or d.get("lab_version") != LAB_VERSION:
        return None
    return d


def save_cached(cache_dir: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write one finished run atomically (a crash mid-write never leaves a half file)."""
    p = _cache_file(Path(cache_dir), result["key"])
    blob = json.dumps(result, sort_keys=True, allow_nan=False).encode("utf-8")
    atomic_write(p, lambda f: f.write(blob))
    return p


# ------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class ProgressEvent:
    """Sent to the ``progress`` callback after each run: ``status`` is ``"cached"`` (loaded,
    not recomputed) or ``"computed"``; ``done`` of ``total`` runs are finished."""

    done: int
    total: int
    key: str
    label: str
    status: str
    seconds: float | None = None


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop now: cancel queued runs and end the workers' current ones (they are not cached).

    ``shutdown(cancel_futures=True)`` alone lets the runs already handed to the workers finish,
    and the interpreter waits for them at exit; so the workers are terminated as well (Python
    3.14 has ``terminate_workers()`` for this; earlier versions only keep them in ``_processes``).
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    # Terminate first, then let the pool's own manager thread reap the workers: joining them here
    # while that thread also joins them races on waitpid and can leave a worker looking alive.
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
    for proc in procs:
        proc.join(timeout=5)


def run_study(study: Study, *, cache_dir: str | os.PathLike | None = None, max_workers: int = 2,
              progress: Callable[[ProgressEvent], Any] | None = None,
              recompute: bool = False) -> StudyResult:
    """Run every run of ``study`` (those already in ``cache_dir`` are loaded, not recomputed).

    Parameters
    ----------
    study : from :func:`~digitlens.lab.specs.activation_study`,
        :func:`~digitlens.lab.specs.output_study` or :func:`~digitlens.lab.specs.lab_study`.
    cache_dir : folder for finished runs (one JSON file each, written atomically as soon as the run
        finishes); None = no cache.  Run the same study again to resume an interrupted one.
    max_workers : worker processes; 1 runs everything in this process.
    progress : called with a :class:`ProgressEvent` after each run (an exception it raises stops
        the study; finished runs stay cached).
    recompute : ignore (and overwrite) cached runs.

    Returns
    -------
    StudyResult
    """
    max_workers = check_int("max_workers", max_workers, 1, 256, error=LabError)
    t0 = time.perf_counter()
    specs: list = list(study.specs())
    if study.bench is not None:
        specs.insert(0, study.bench)
    total = len(specs)
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for s in specs:
        hit = None if recompute else load_cached(cache_dir, s.key())
        if hit is not None:
            results[s.key()] = hit
        else:
            todo.append(s)
    cached: list[str] = list(results)
    for done, k in enumerate(cached, 1):
        if progress is not None:
            progress(ProgressEvent(done, total, k, results[k]["label"], "cached"))
    todo.sort(key=lambda s: -s.cost())  # longest first keeps both workers busy to the end
    computed: list[str] = []

    def finish(spec, result, seconds):
        if result["key"] != spec.key():
            # a worker hashes the engine source it imported: a different key means the code
            # changed on disk while the study ran, and its numbers would not match the others'
            raise LabError("the digitlens engine code changed while the study was running; "
                           "run the study again (finished runs are kept)")
        if cache_dir is not None:
            save_cached(cache_dir, result)
        results[spec.key()] = result
        computed.append(spec.key())
        if progress is not None:
            progress(ProgressEvent(len(cached) + len(computed), total, spec.key(), spec.label(),
                                   "computed", seconds))

    if max_workers == 1 or len(todo) <= 1:
        for s in todo:
            t = time.perf_counter()
            r = execute(s.kind, s.to_dict())
            finish(s, r, time.perf_counter() - t)
    elif todo:
        _run_in_pool(todo, max_workers, finish)
    order = [s.key() for s in specs]
    return StudyResult(
        study=study.name,
        preset=json.loads(json.dumps(study.preset.to_dict())),  # as it reads back from JSON
        parts={name: [r.key() for r in runs] for name, runs in study.parts.items()},
        runs={k: results[k] for k in order if results[k]["kind"] == "train"},
        bench=results[study.bench.key()] if study.bench is not None else None,
        cached=cached, computed=computed, seconds=time.perf_counter() - t0)


def _run_in_pool(todo: list, max_workers: int, finish: Callable) -> None:
    """Run ``todo`` in worker processes, calling ``finish(spec, result, seconds)`` as each run
    ends; on any exception (also one ``finish`` raises, or Ctrl-C) the workers are stopped."""
    # "spawn" starts clean interpreters: safe with BLAS threads, the same on every platform
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(max_workers, len(todo)), mp_context=ctx)
    try:
        started = {}
        futures = {}
        for s in todo:
            f = pool.submit(execute, s.kind, s.to_dict())
            futures[f] = s
            started[f] = time.perf_counter()
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                finish(futures[f], f.result(), time.perf_counter() - started[f])
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
