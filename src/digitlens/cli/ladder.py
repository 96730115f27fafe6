"""``digitlens ladder``: train logistic -> lab -> mlp -> cnn and compare them in one table."""

from __future__ import annotations

import json
import time
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import app
from ._common import UserError, console, err_console, friendly_errors


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


def _pct(value) -> str:
    return "—" if value is None else f"{value:.2%}"


def rung_label(row) -> str:
    """The rung as the table names it: ``mlp + augmentation`` for a rung trained on augmented
    digits, so the step from it to the cnn (augmented too) reads as what convolution adds."""
    return f"{row.name} + augmentation" if row.augment else row.name


def augment_words(augment: dict | None) -> str:
    """The ``augmented`` cell: ``no``, or ``yes`` and which changes (``tilt, size, shift``;
    ``pen`` for stroke thickness, ``warp`` for elastic distortion)."""
    if not augment:
        return "no"
    parts = [word for word, key in (("tilt", "rotation"), ("size", "scale"), ("shift", "shift"),
                                    ("pen", "thickness"), ("warp", "elastic"))
             if augment.get(key)]
    return f"yes: {', '.join(parts)}" if parts else "yes"


def ladder_table(rows) -> Table:
    """One line per trained rung: parameters, training time, accuracy on the bundled test digits
    (MNIST's writers) and on other writers' digits (optdigits, when measured), what it adds."""
    table = Table(title="the ladder: what each step up buys", header_style="bold",
                  show_lines=True, caption_justify="left")
    for col, justify in (("rung", "left"), ("parameters", "right"), ("training", "right"),
                         ("augmented", "center"), ("test\ndigits\n(MNIST)", "right"),
                         ("other\nwriters\n(optdigits)", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    table.add_column("what it adds", justify="left", overflow="fold", min_width=20)
    for row in rows:
        table.add_row(rung_label(row), f"{row.n_params:,}",
                      f"{row.seconds:.1f}s · {row.epochs} ep", augment_words(row.augment),
                      _pct(row.test_accuracy), _pct(row.other_writers_accuracy), row.adds)
    table.caption = ladder_caption(rows)
    return table


def ladder_caption(rows) -> str:
    """What "augmented" means, and whether the step from the mlp to the cnn is convolution alone
    (only when both trained on identically augmented digits)."""
    text = ("augmented: trained on randomly changed copies of the digits (tilt, size, shift; "
            "pen: a thicker or thinner stroke; warp: gently warped paper).")
    by_name = {row.name: row.augment for row in rows}
    if "mlp" in by_name and "cnn" in by_name:
        if by_name["mlp"] and by_name["mlp"] == by_name["cnn"]:
            text += (" The mlp and the cnn see the same augmented digits, so the cnn's lead over "
                     "the mlp + augmentation is what convolution adds beyond augmentation.")
        else:
            text += (" The mlp and the cnn did not see the same augmented digits, so the gap "
                     "between them is not convolution alone.")
    return text


def load_other_writers():
    """The optdigits set (:func:`digitlens.evaluation.datasets.load_eval_set`) and a note; or
    ``(None, why)`` when scikit-learn, which ships it, is not installed."""
    from ..evaluation.datasets import load_eval_set

    try:
        return load_eval_set("optdigits"), ""
    except ImportError as e:
        return None, f"other writers not measured: {e}"


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
                                 "augmentation (the mlp's and cnn's tilted, resized, shifted, "
                                 "re-inked and warped digits)."),
    save: bool = typer.Option(True, "--save/--no-save", help="Save each trained model where "
                              "`--model NAME` finds it (the web page and `explain` use them)."),
    other_writers: bool = typer.Option(True, "--other-writers/--no-other-writers", help="Also "
                                       "test every rung on 1,797 digits by other writers "
                                       "(optdigits, via scikit-learn; ~4 s to prepare)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead of the "
                                 "table."),
):
    """Train the ladder from logistic regression to a CNN on the bundled digits, and show what
    each step up buys: parameters, training time, accuracy on the bundled test digits (MNIST's
    writers) and on digits by other writers (optdigits).

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
    other, note = load_other_writers() if other_writers else (None, "")
    out = err_console if as_json else console  # --json: stdout holds the JSON only

    def n_batches(name):
        cfg = default_recipe(name)
        return math.ceil(n_train / cfg.batch_size) * (epochs or cfg.epochs)

    saved: dict[str, str] = {}

    def finished(row):
        ok = row.history.stop_reason == "completed"
        if save and ok:
            saved[row.name] = str(save_model(row.model, paths.model_path(row.name),
                                             row.checkpoint_meta(data.source)))
        why = "" if ok else f" ({row.history.stop_reason}: not saved)"
        others = ("" if row.other_writers_accuracy is None
                  else f"  {row.other_writers_accuracy:7.2%} other writers")
        progress.console.print(
            f"  [bold]{row.name:<9}[/] {row.test_accuracy:7.2%} test accuracy{others}  "
            f"{row.n_params:>9,} parameters  {row.seconds:6.1f}s{why}", highlight=False)

    out.print(f"Training {' → '.join(names)} on {n_train:,} bundled digits; testing on "
              f"{len(data.x_test):,} others"
              + (f" and on {len(other.y):,} by other writers (optdigits)." if other is not None
                 else "."), highlight=False)
    if note:
        out.print(note, highlight=False)
    t0 = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), console=out, transient=True)
    with progress:
        bars = LadderProgress(progress, sum(n_batches(n) for n in names))
        rows = run_ladder(
            data, rungs=names, seed=seed, epochs=epochs, augment=augment,
            callbacks_for=lambda rung, cfg: bars.for_rung(
                rung, cfg, math.ceil(n_train / cfg.batch_size)),
            on_rung_end=finished,
            other_writers=None if other is None else (other.x, other.y))
    total = time.perf_counter() - t0

    if as_json:
        from .._util.jsonsafe import plain

        typer.echo(json.dumps({"rows": [plain(r.to_dict()) for r in rows],
                               "other_writers": None if other is None else other.description,
                               "total_seconds": total, "saved": saved}, indent=2))
        if any(r.history.stop_reason == "interrupted" for r in rows):
            raise typer.Exit(130)
        return
    console.print(ladder_table(rows))
    console.print(f"total {total:.1f}s", highlight=False)
    if saved:
        console.print(f"saved {', '.join(saved)} to {paths.models_dir()}", highlight=False)
    if any(r.history.stop_reason == "interrupted" for r in rows):
        raise typer.Exit(130)
