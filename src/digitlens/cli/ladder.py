"""``digitlens ladder``: train logistic -> lab -> mlp -> cnn and compare them in one table."""

from __future__ import annotations

import time
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import app
from ._common import UserError, console, friendly_errors


class LadderProgress:
    """Two bars fed by ``fit``'s callbacks: the whole ladder, and the rung in training."""

    def __init__(self, progress: Progress, total_batches: int) -> None:
        self.progress = progress
        self.overall = progress.add_task("ladder", total=total_batches)
        self.task = None

    def for_rung(self, rung, config, batches_per_epoch: int) -> list:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(rung.name, total=batches_per_epoch * config.epochs)
        label, epochs = rung.name, config.epochs
        progress, task, overall = self.progress, self.task, self.overall

        class _Callback:
            def on_batch_end(self, log):
                progress.update(task, advance=1, description=(
                    f"{label:<9} epoch {log['epoch']}/{epochs}  loss {log['loss']:.3f}  "
                    f"acc {log['accuracy']:.3f}"))
                progress.update(overall, advance=1)

        return [_Callback()]


def ladder_table(rows) -> Table:
    """One line per trained rung: parameters, training time, test accuracy, what it adds."""
    table = Table(title="the ladder: what each step up buys", header_style="bold",
                  show_lines=True)
    for col, justify in (("rung", "left"), ("parameters", "right"), ("training", "right"),
                         ("test accuracy", "right"), ("what it adds", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for row in rows:
        aug = " (augmented)" if row.augment else ""
        table.add_row(row.name, f"{row.n_params:,}", f"{row.seconds:.1f}s · {row.epochs} ep",
                      f"{row.test_accuracy:.2%}", row.adds + aug)
    return table


@app.command()
@friendly_errors
def ladder(
    seed: int = typer.Option(0, help="Seed for every rung's weights, shuffling, dropout and "
                             "augmentation (the same models as `digitlens train --seed`)."),
    epochs: Optional[int] = typer.Option(None, help="Train every rung this many epochs instead "
                                         "of its recipe's (quicker, less accurate)."),
    only: Optional[str] = typer.Option(None, help="Comma-separated rungs to train, e.g. "
                                       "'logistic,cnn' (default: logistic,lab,mlp,cnn)."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Use the recipes' data "
                                 "augmentation (the cnn's tilted, resized, shifted digits)."),
    save: bool = typer.Option(True, "--save/--no-save", help="Save each trained model where "
                              "`--model NAME` finds it (the web page and `explain` use them)."),
):
    """Train the ladder from logistic regression to a CNN on the bundled digits, and show what
    each step up buys: parameters, training time, test accuracy.

    Ctrl-C stops the rung in training (it is not saved) and ends the ladder.
    """
    import math

    from .._util import paths
    from ..data import load_digits
    from ..nn.checkpoint import save_model
    from ..nn.zoo import MODELS
    from ..training.ladder import RUNGS, run_ladder
    from ..training.recipes import default_recipe

    names = [r.name for r in RUNGS] if only is None else [
        s.strip() for s in only.split(",") if s.strip()]
    unknown = [n for n in names if n not in MODELS]
    if not names or unknown:
        raise UserError(f"--only must list zoo models from {list(MODELS)}; got {only!r}")
    if epochs is not None and epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    data = load_digits()
    n_train = len(data.x_train)

    def n_batches(name):
        cfg = default_recipe(name)
        return math.ceil(n_train / cfg.batch_size) * (epochs or cfg.epochs)

    saved: dict[str, str] = {}

    def finished(row):
        ok = row.history.stop_reason == "completed"
        if save and ok:
            saved[row.name] = str(save_model(row.model, paths.model_path(row.name),
                                             row.checkpoint_meta(data.source)))
        note = "" if ok else f" ({row.history.stop_reason}: not saved)"
        progress.console.print(
            f"  [bold]{row.name:<9}[/] {row.test_accuracy:7.2%} test accuracy  "
            f"{row.n_params:>9,} parameters  {row.seconds:6.1f}s{note}", highlight=False)

    console.print(f"Training {' → '.join(names)} on {n_train:,} bundled digits; testing on "
                  f"{len(data.x_test):,} others.", highlight=False)
    t0 = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    with progress:
        bars = LadderProgress(progress, sum(n_batches(n) for n in names))
        rows = run_ladder(
            data, rungs=names, seed=seed, epochs=epochs, augment=augment,
            callbacks_for=lambda rung, cfg: bars.for_rung(
                rung, cfg, math.ceil(n_train / cfg.batch_size)),
            on_rung_end=finished)
    total = time.perf_counter() - t0

    console.print(ladder_table(rows))
    console.print(f"total {total:.1f}s", highlight=False)
    if saved:
        console.print(f"saved {', '.join(saved)} to {paths.models_dir()}", highlight=False)
    if any(r.history.stop_reason == "interrupted" for r in rows):
        raise typer.Exit(130)
