"""The activation lab in the background: what the web page's "rules of thumb, measured" view runs.

:class:`LabRunner` runs one study (by default ``lab_study("quick")``, the same runs as
``digitlens lab all --quick``) in a background thread with :func:`digitlens.lab.runner.run_study`,
keeping finished runs in its cache folder (so a cancelled or interrupted study resumes where it
stopped, and a finished one is never recomputed; the server shares the folder with
``digitlens lab``), then writes the report, its figures and
``result.json`` into ``out_dir`` with :func:`digitlens.view.report.write_report`.

:meth:`LabRunner.report` reads that ``result.json`` back and judges every rule of thumb again
(:func:`digitlens.lab.verdicts.assess`), so the page shows whatever the last finished study
measured, also one run from the command line with ``--out`` pointing here.

Nothing here prints; the runs draw their randomness from their own seeds.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...errors import JobConflict

_FIGURE = re.compile(r"^[a-z0-9_]{1,64}$")


class _Cancelled(Exception):
    pass


@dataclass
class LabRun:
    """One background study and how far it got."""

    id: str
    state: str = "running"            # running | completed | cancelled | failed
    done: int = 0                     # runs finished (computed or taken from the cache)
    total: int = 0
    label: str = ""                   # the run that finished last
    size: str = ""                    # "220 training runs and a micro-benchmark" (lab.words)
    cached: int = 0
    message: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "done": self.done, "total": self.total,
                "label": self.label, "size": self.size, "cached": self.cached,
                "message": self.message,
                "seconds": round((self.ended or time.time()) - self.started, 1)}


class LabRunner:
    """One lab study at a time, in the background, reported into ``out_dir``.

    Parameters
    ----------
    out_dir : where the report, figures and ``result.json`` go.
    cache_dir : finished runs (default ``out_dir/runs``); runs are keyed by their spec and the
        engine's code, so one folder can serve every study (``digitlens lab`` uses the same).
    study : a callable returning the :class:`~digitlens.lab.specs.Study` to run (default:
        ``lab_study("quick")``, every rule of thumb; under a minute on 2 cores).
    max_workers : worker processes for the runs.
    """

    def __init__(self, out_dir, *, study: Callable[[], Any] | None = None,
                 max_workers: int = 2, cache_dir=None) -> None:
        self.out_dir = Path(out_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.out_dir / "runs"
        self._study = study
        self.max_workers = int(max_workers)
        self._lock = threading.Lock()
        self._run: LabRun | None = None
        self._thread: threading.Thread | None = None
        self._report_cache: tuple[float, dict[str, Any]] | None = None
        from .playground_jobs import PlaygroundRunner

        #: the activation playground: it shares this cache and the one-heavy-job rule
        self.playground = PlaygroundRunner(self.cache_dir)

    # ---------------------------------------------------------------------------- control
    def start(self) -> LabRun:
        """Start the study; :class:`~digitlens.errors.JobConflict` if one is running."""
        with self._lock:
            if self.running:
                raise JobConflict("the lab is already running; wait for it or cancel it")
            if self.playground.running:
                raise JobConflict("the playground is running; run the lab when it has "
                                  "finished (or cancel it)")
            run = LabRun(uuid.uuid4().hex[:12])
            self._run = run
            self._thread = threading.Thread(target=self._work, args=(run,), daemon=True,
                                            name=f"digitlens-lab-{run.id}")
            self._thread.start()
        return run

    def cancel(self) -> LabRun | None:
        """Stop the running study after its current runs (finished ones stay cached)."""
        if self.running:
            self._run._cancel.set()
        return self._run

    @property
    def running(self) -> bool:
        """Whether a study is running now."""
        return self._run is not None and self._run.state == "running"

    @property
    def current(self) -> LabRun | None:
        """The latest study started here (running or not), or None."""
        return self._run

    def wait(self, timeout: float | None = None) -> LabRun | None:
        t = self._thread
        if t is not None:
            t.join(timeout)
        return self._run

    def shutdown(self, timeout: float = 10.0) -> None:
        self.cancel()
        self.playground.cancel()
        self.wait(timeout)
        self.playground.wait(timeout)

    def _work(self, run: LabRun) -> None:
        from ... import lab
        from ...lab.words import runs_phrase
        from ..report import write_report

        def on_progress(ev: "lab.ProgressEvent") -> None:
            run.done, run.total, run.label = ev.done, ev.total, ev.label
            run.cached += ev.status == "cached"
            if run._cancel.is_set():
                raise _Cancelled

        try:
            study = self._study() if self._study is not None else lab.lab_study("quick")
            run.total = len(study)
            run.size = runs_phrase(len(study.specs()), study.bench is not None)
            result = lab.run_study(study, cache_dir=self.cache_dir,
                                  max_workers=self.max_workers, progress=on_progress)
            write_report(result, self.out_dir)
        except _Cancelled:
            run.state, run.message = "cancelled", (f"cancelled after {run.done} of {run.total} "
                                                   "runs; they are kept, and the next start "
                                                   "resumes from there")
        except Exception as e:  # noqa: BLE001 - reported to the page, never raised into a thread
            run.state, run.message = "failed", f"the lab stopped: {type(e).__name__}: {e}"
        else:
            run.state = "completed"
            run.message = (f"{run.size} ({run.cached} from the cache) in "
                           f"{time.time() - run.started:.0f} s")
        finally:
            run.ended = time.time()

    # ----------------------------------------------------------------------------- results
    def report(self) -> dict[str, Any] | None:
        """The last finished study's verdicts, or None if there is none in ``out_dir``.

        ``{"study", "preset", "seconds", "verdicts": [Verdict.to_dict()...], "figures":
        [names]}``; a figure's PNG is :meth:`figure_path` ``(name)``.
        """
        from ...lab import assess, load_result
        from ...lab.advice import advice
        from ...lab.words import runs_phrase

        path = self.out_dir / "result.json"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._report_cache
        if cached is not None and cached[0] == mtime:
            return cached[1]
        result = load_result(path)
        figures = sorted(p.stem for p in self.out_dir.glob("*.png") if _FIGURE.match(p.stem))
        report = {"study": result.study, "preset": result.preset.get("name"),
                  "size": runs_phrase(len(result.runs), result.bench is not None),
                  "seeds": result.preset.get("seeds"), "epochs": result.preset.get("epochs"),
                  "n_train": result.preset.get("n_train"), "seconds": round(result.seconds, 1),
                  "verdicts": [v.to_dict() for v in assess(result)], "figures": figures,
                  "advice": advice(result)}
        self._report_cache = (mtime, report)
        return report

    def figure_path(self, name: str) -> Path | None:
        """The PNG of the report's figure ``name``; None unless ``name`` is one of the report's
        figures (a client never names a path)."""
        report = self.report()
        if report is None or not _FIGURE.match(name) or name not in report["figures"]:
            return None
        return self.out_dir / f"{name}.png"


__all__ = ["LabRun", "LabRunner"]
