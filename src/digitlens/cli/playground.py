"""``digitlens playground``: up to four networks trained side by side, from the command line.

    digitlens playground --compare relu sigmoid --width 32 --depth 3
    digitlens playground --preset depth
    digitlens playground --compare relu/relu/sigmoid tanh --slow

A thin shell over :class:`digitlens.lab.playground.Session` (the web page's playground runs the
same): finished networks are cached in ``<DIGITLENS_HOME>/lab/runs``, shared with ``digitlens
lab`` and the page, and the closing sentence comes from :func:`digitlens.lab.play_words.summary`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from . import app
from ._common import UserError, console, friendly_errors


def _configs(acts: list[str], width: int, depth: int, head: str, optimizer: str, lr: float,
             init: str):
    from ..lab.playground import PlayConfig

    out = []
    for a in acts:
        layers = a.split("/")
        out.append(PlayConfig.make(layers, depth=depth if len(layers) == 1 else None,
                                   width=width, head=head, optimizer=optimizer, lr=lr, init=init))
    return out


def _table(session, labels: list[str]) -> Table:
    table = Table(title="test accuracy at the end of each epoch", header_style="bold")
    table.add_column("epoch", justify="right")
    for name in labels:
        table.add_column(name, justify="right")
    epochs = sorted({r["epoch"] for lane in session.lanes for r in lane.rows
                     if float(r["epoch"]).is_integer()})
    for e in epochs:
        cells = []
        for lane in session.lanes:
            row = next((r for r in lane.rows if r["epoch"] == e), None)
            cells.append("—" if row is None or row["test_accuracy"] is None
                         else f"{100 * row['test_accuracy']:.1f}%")
        table.add_row(f"{e:g}", *cells)
    return table


@app.command("playground")
@friendly_errors
def playground(
    compare: Optional[str] = typer.Option(None, "--compare", help="Activations to compare, e.g. "
                                          "`--compare relu sigmoid` (one per network; "
                                          "relu/tanh/sigmoid gives one per hidden layer)."),
    more: Optional[List[str]] = typer.Argument(None, help="More activations for --compare.",
                                               show_default=False),
    preset: Optional[str] = typer.Option(None, "--preset", help="A rule of thumb's preset: "
                                         "speed, width, range, output or depth."),
    width: int = typer.Option(32, "--width", help="Units per hidden layer."),
    depth: int = typer.Option(1, "--depth", help="Hidden layers."),
    head: str = typer.Option("softmax_ce", "--head", help="Output layer: softmax_ce, "
                             "sigmoid_bce or relu_mse."),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd (momentum 0.9) or adam."),
    lr: float = typer.Option(0.05, "--lr", help="Learning rate."),
    init: str = typer.Option("auto", "--init", help="auto, he or xavier."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (default 6)."),
    n_train: Optional[int] = typer.Option(None, "--n-train", help="Training digits (default "
                                          "2,000)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights and the batches."),
    slow: bool = typer.Option(False, "--slow", help="Slow motion: a checkpoint every half "
                              "second."),
    out: Optional[Path] = typer.Option(None, "--json", help="Write every checkpoint as JSON."),
):
    """Train up to four networks side by side on the same digits and batches, and say what
    happened, with the numbers."""
    from .._util import paths
    from .._util.files import atomic_write
    from ..lab.play_presets import play_preset
    from ..lab.playground import Budget, Playground, Session

    acts = [a for part in [compare or ""] + list(more or []) for a in part.split(",") if a]
    if preset is None and not acts:
        raise UserError("give --compare ACTIVATION ... or --preset NAME")
    if preset is not None and acts:
        raise UserError("give either --compare or --preset, not both")
    if preset is not None:
        pg = play_preset(preset).playground
    else:
        pg = Playground(tuple(_configs(acts, width, depth, head, optimizer, lr, init)))
    changes = {k: v for k, v in (("epochs", epochs), ("n_train", n_train)) if v is not None}
    pg = Playground(pg.configs, Budget(**{**pg.budget.to_dict(), **changes, "seed": seed}),
                    pg.preset)
    from ..lab.play_words import labels

    names = labels([c.to_dict() for c in pg.configs])
    b = pg.budget
    console.print(f"[bold]playground[/]: {', '.join(names)} — {b.epochs} epochs on "
                  f"{b.n_train:,} digits, tested on {b.n_test:,}", highlight=False)
    lock = threading.Lock()

    def on_row(lane, row):
        if float(row["epoch"]).is_integer() and row["epoch"] > 0:
            with lock:
                console.print(f"  {names[lane.index]:>20}  epoch {row['epoch']:g}: test "
                              f"{100 * row['test_accuracy']:.1f}%", highlight=False)

    session = Session(pg, cache_dir=paths.lab_runs_dir(), pace=0.5 if slow else 0.0,
                      on_row=on_row)
    try:
        session.run()
    except KeyboardInterrupt:
        session.cancel()
        raise typer.Exit(130) from None
    snap = session.snapshot()
    console.print(_table(session, names))
    for lane in session.lanes:
        if lane.state not in ("completed", "diverged"):
            raise UserError(f"{names[lane.index]}: {lane.state} {lane.message}".strip())
    console.print(snap["summary"]["sentence"], highlight=False)
    if out is not None:
        blob = json.dumps(snap, allow_nan=False).encode("utf-8")
        atomic_write(out, lambda f: f.write(blob))
        console.print(f"checkpoints: {out}", highlight=False)
