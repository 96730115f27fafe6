"""``digitlens lab activations | output | all``: the activation lab, from the command line.

A thin shell over :mod:`digitlens.lab` (the studies, the runs and the verdicts) and
:mod:`digitlens.view.report` (the Markdown report and its figures).  Finished runs are cached in
``<DIGITLENS_HOME>/lab/runs`` (shared with the web page's Activation lab); run the same command
again after an interruption and it picks up where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import app
from ._common import UserError, console, friendly_errors

lab_app = typer.Typer(
    help="Experiments that test the rules of thumb about activation functions with measurements.",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")


def _run(study_name: str, quick: bool, out: Optional[Path], seeds: Optional[int], workers: int,
         fresh: bool) -> None:
    from .. import lab
    from ..view.report import write_report

    preset = "quick" if quick else "full"
    if seeds is not None and not 1 <= seeds <= 100:
        raise UserError(f"--seeds must be between 1 and 100, got {seeds}")
    if not 1 <= workers <= 256:
        raise UserError(f"--workers must be between 1 and 256, got {workers}")
    study = lab.STUDIES[study_name](preset, seeds=seeds)
    from .._util import paths

    out = out if out is not None else Path("digitlens-lab") / f"{study_name}-{preset}"
    cache = paths.lab_runs_dir()  # shared with the web page's lab: what one ran, the other reuses
    p = study.preset
    console.print(f"[bold]activation lab[/]: {study_name} study, {preset} preset — {len(study)} "
                  f"runs ({p.seeds} seeds, {p.epochs} epochs on {p.n_train:,} digits), "
                  f"{workers} worker(s)", highlight=False)
    t0 = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    counts = {"cached": 0, "computed": 0}
    try:
        with progress:
            task = progress.add_task("starting", total=len(study))

            def on_progress(ev: "lab.ProgressEvent") -> None:
                counts[ev.status] += 1
                progress.update(task, completed=ev.done,
                                description=f"{ev.status} {ev.label}"[:48].ljust(48))

            result = lab.run_study(study, cache_dir=cache, max_workers=workers,
                                  progress=on_progress, recompute=fresh)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: {counts['computed'] + counts['cached']} finished "
                      f"runs are cached in {cache}; run the same command again to resume.",
                      highlight=False)
        raise typer.Exit(130) from None
    run_seconds = time.perf_counter() - t0
    with console.status("writing the report and figures"):
        report = write_report(result, out)
    table = Table(title="verdicts", header_style="bold", show_lines=True)
    table.add_column("rule of thumb", ratio=2)
    table.add_column("verdict", ratio=1)
    table.add_column("why (numbers in the report)", ratio=4)
    for v in result.verdicts():
        color = {"supported": "green", "supported only when": "yellow",
                 "not supported here": "red"}.get(v.status, "white")
        table.add_row(v.rule, f"[{color}]{v.status}[/]", v.headline)
    console.print(table)
    console.print(f"{counts['computed']} runs computed, {counts['cached']} taken from the cache, "
                  f"in {run_seconds:.1f} s (report {time.perf_counter() - t0 - run_seconds:.1f} s)"
                  f"\nreport: {report}", highlight=False)


_OPTS = dict(
    quick=typer.Option(False, "--quick", help="Small preset: under a minute on 2 cores."),
    out=typer.Option(None, "--out", "-o", help="Folder for report.md, figures, result.json and "
                     "the run cache (default: digitlens-lab/<study>-<preset>)."),
    seeds=typer.Option(None, "--seeds", help="Seeds per configuration (default: the preset's)."),
    workers=typer.Option(2, "--workers", "-w", help="Worker processes running in parallel."),
    fresh=typer.Option(False, "--fresh", help="Recompute every run, ignoring the cache."),
)


@lab_app.command("activations")
@friendly_errors
def activations(quick: bool = _OPTS["quick"], out: Optional[Path] = _OPTS["out"],
                seeds: Optional[int] = _OPTS["seeds"], workers: int = _OPTS["workers"],
                fresh: bool = _OPTS["fresh"]):
    """Hidden activations compared: speed, width, depth, dead units, gradients, distributions."""
    _run("activations", quick, out, seeds, workers, fresh)


@lab_app.command("output")
@friendly_errors
def output(quick: bool = _OPTS["quick"], out: Optional[Path] = _OPTS["out"],
           seeds: Optional[int] = _OPTS["seeds"], workers: int = _OPTS["workers"],
           fresh: bool = _OPTS["fresh"]):
    """Output layers compared: softmax, sigmoid, linear and ReLU outputs — what goes wrong."""
    _run("output", quick, out, seeds, workers, fresh)


@lab_app.command("all")
@friendly_errors
def all_studies(quick: bool = _OPTS["quick"], out: Optional[Path] = _OPTS["out"],
                seeds: Optional[int] = _OPTS["seeds"], workers: int = _OPTS["workers"],
                fresh: bool = _OPTS["fresh"]):
    """Both studies in one report: every rule of thumb with its verdict."""
    _run("all", quick, out, seeds, workers, fresh)
