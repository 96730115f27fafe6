"""``digitlens train``, ``predict`` and ``info``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import app
from ..nn.zoo import model_names
from ._common import UserError, console, friendly_errors, resolve_model


def default_lr(name: str) -> float:
    from ..training.recipes import default_recipe

    return default_recipe(name).lr


def previous_path(path: Path) -> Path:
    from ..training.recipes import previous_path as where

    return where(path)


class EpochProgress:
    """A rich progress bar fed by ``fit``'s callbacks: epoch, batch, loss, accuracy, time."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.label = label
        self.task = None

    def on_batch_end(self, log):
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=log["batches"] * self._epochs)
        self.progress.update(self.task, advance=1,
                             description=f"{self.label} epoch {log['epoch']}/{self._epochs} "
                                         f"loss {log['loss']:.3f} acc {log['accuracy']:.3f}")

    def on_epoch_end(self, log):
        extra = ""
        if "val_accuracy" in log:
            extra = f" · val acc {log['val_accuracy']:.3f}"
        self.progress.console.print(
            f"  epoch {log['epoch']:>3}/{log['epochs']}  loss {log['loss']:.4f}  "
            f"acc {log['accuracy']:.4f}{extra}  ({log['seconds']:.1f}s)", highlight=False)

    def start(self, epochs: int) -> "EpochProgress":
        self._epochs = epochs
        return self


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def train_and_save(name: str, out: Path, **kwargs):
    """Train zoo model ``name`` with its default recipe (overridable) and save it by the save
    policy (:func:`train_and_keep`); shared by the commands that need a trained model.  Returns
    ``(model, history, test_accuracy)``."""
    return train_and_keep(name, out, **kwargs)[:3]


def train_and_keep(name: str, out: Path, *, epochs: int | None = None, lr: float | None = None,
                   batch_size: int | None = None, seed: int = 0, data=None,
                   label: str | None = None, augment: bool = True, cache: bool | None = None,
                   **overrides):
    """Train zoo model ``name`` and save it so that a good model is never lost
    (:func:`digitlens.training.recipes.save_plan`): a diverged run is not saved, an interrupted
    one goes beside the cache (``NAME.partial.npz``), and the model a run replaces in the cache
    is kept as ``NAME.previous.npz``.  ``cache``: whether ``out`` is the model cache (None: if it
    is :func:`digitlens._util.paths.model_path`).  Returns ``(model, history, test_accuracy,
    plan)``."""
    from .._util import paths
    from ..data import load_digits
    from ..nn.checkpoint import save_model
    from ..nn.zoo import MODELS
    from ..training.recipes import default_recipe, keep_previous, save_plan, train_rung

    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {list(MODELS)}")
    changes = {k: v for k, v in dict(epochs=epochs, lr=lr, batch_size=batch_size,
                                     **overrides).items() if v is not None}
    config = dataclasses.replace(default_recipe(name), **changes)
    d = data if data is not None else load_digits()
    with progress_bar() as progress:
        cb = EpochProgress(progress, label or name).start(config.epochs)
        row = train_rung(name, d.x_train, d.y_train, d.x_test, d.y_test, seed=seed,
                         config=config, augment=augment, callbacks=[cb])
    meta = row.checkpoint_meta(getattr(d, "source", "bundled"), trained_by="digitlens train")
    cache = Path(out) == paths.model_path(name) if cache is None else cache
    plan = save_plan(row, out, cache=cache)
    if plan.path is not None:
        if plan.kind == "saved" and cache:
            keep_previous(out)
        save_model(row.model, plan.path, meta)
    return row.model, row.history, row.test_accuracy, plan


@app.command()
@friendly_errors
def train(
    model: str = typer.Option("mlp", "--model", "-m", help="Which zoo model: "
                              f"{', '.join(model_names())} (see `digitlens info`)."),
    epochs: Optional[int] = typer.Option(None, help="Passes over the training digits "
                                         "(default: the model's recipe)."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (default: the recipe's)."),
    batch_size: Optional[int] = typer.Option(None, help="Digits per gradient step."),
    seed: int = typer.Option(0, help="Seed for the weights, shuffling and dropout."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to save the model "
                                       "(default: the cache, where `--model NAME` finds it)."),
    data: str = typer.Option("bundled", "--data", help="bundled (4,000 + 1,000 digits shipped "
                             "with digitlens) or mnist (60,000 + 10,000; see `digitlens data "
                             "download mnist`)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="A directory of MNIST IDX "
                                            "files you already have (implies --data mnist)."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Use the recipe's data "
                                 "augmentation (small random rotations, shifts, ...), if it has "
                                 "one."),
):
    """Train a model (on the 4,000 bundled training digits by default) and report its accuracy.

    Ctrl-C stops after saving the last complete epoch.
    """
    from .._util import paths
    from ..data import load_dataset
    from ..nn.zoo import MODELS

    if model not in MODELS:
        raise UserError(f"unknown model {model!r}; choose one of {list(MODELS)}")
    if data not in ("bundled", "mnist"):
        raise UserError(f"--data must be 'bundled' or 'mnist'; got {data!r}")
    digits = load_dataset("mnist" if data_dir is not None else data, data_dir)
    target = out or paths.model_path(model)
    if out is not None and not out.parent.is_dir():
        raise UserError(f"--out: the folder {out.parent} does not exist; create it first")
    console.print(f"[bold]{model}[/]: {MODELS[model].sentence}", highlight=False)
    if digits.source != "bundled":
        console.print(f"training on {len(digits.x_train):,} {digits.source} digits",
                      highlight=False)
    t0 = time.perf_counter()
    m, history, acc, plan = train_and_keep(model, target, epochs=epochs, lr=lr,
                                           batch_size=batch_size, seed=seed, data=digits,
                                           augment=augment, cache=out is None)
    if not history.epochs:
        raise UserError("stopped before the first epoch finished; nothing was saved")
    if plan.kind == "diverged":
        kept = " The cached model was kept." if out is None and target.exists() else ""
        raise UserError(f"training went wrong: {plan.reason}; nothing was saved.{kept} Try a "
                        f"smaller --lr (the recipe's is {default_lr(model)}).")
    note = {"interrupted": " (interrupted: kept the last complete epoch)",
            "early_stopping": " (stopped early)"}.get(history.stop_reason, "")
    n_test = int(np.isin(digits.y_test, m.classes).sum())  # the binary model reads 0s and 1s only
    console.print(f"test accuracy [bold]{acc:.2%}[/] on {n_test:,} held-out digits "
                  f"after {len(history.epochs)} epochs in {time.perf_counter() - t0:.1f}s{note}",
                  highlight=False)
    console.print(f"saved {m.n_params:,} parameters to {plan.path}", highlight=False)
    if plan.kind == "partial":
        console.print(f"interrupted: the cached model at {target} is unchanged; to use this "
                      f"one, copy it there or pass `--model {plan.path}`", highlight=False)
    elif plan.kind == "saved" and out is None and previous_path(target).exists():
        console.print(f"the model it replaced is kept as {previous_path(target).name}; "
                      f"`digitlens models restore {model}` brings it back", highlight=False)


def prepare_image(path: Path) -> np.ndarray:
    """The image as the network reads it, ``(1, 1, 28, 28)``: through the one pre-processing
    path (a path, so the byte limit is checked before reading)."""
    from ..preprocessing import preprocess

    return preprocess(path).image[None, None]


def ascii_digit(image: np.ndarray) -> str:
    """A 28×28 image as 14 lines of shaded characters (two image rows per line)."""
    shades = " ░▒▓█"
    img = image.reshape(28, 28)
    rows = (img[0::2] + img[1::2]) / 2  # (14, 28)
    return "\n".join("".join(shades[min(int(v * len(shades)), len(shades) - 1)] for v in row)
                     for row in rows)


def probability_table(classes, p) -> Table:
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("digit")
    table.add_column("probability", justify="right")
    table.add_column("")
    for c, pc in zip(classes, p):
        table.add_row(str(c), f"{pc:.4f}", "█" * int(round(float(pc) * 30)))
    return table


@app.command()
@friendly_errors
def predict(
    image: Optional[Path] = typer.Argument(None, help="An image of one digit (PNG, JPEG, ...)."),
    model: str = typer.Option("mlp", "--model", "-m", help="A model file or a trained zoo name."),
    sample: Optional[int] = typer.Option(None, "--sample", "-n", min=0, max=999,
                                         help="Instead of IMAGE, read bundled test digit "
                                         "number N (0-999), as `digitlens explain --sample N`."),
    random: int = typer.Option(0, "--random", "-r", min=0, help="Instead of IMAGE, read K "
                               "random digits from the bundled test set (never seen in "
                               "training)."),
    seed: int = typer.Option(0, help="Which random test digits --random picks."),
):
    """Read the digit in IMAGE (or bundled test digits) and show the ten probabilities."""
    m, _ = resolve_model(model)
    if sample is not None or random:
        from ..data import load_digits

        d = load_digits()
        idx = np.array([sample]) if sample is not None else np.random.default_rng(seed).choice(
            len(d.x_test), size=min(random, len(d.x_test)), replace=False)
        p = m.predict_proba(d.x_test[idx])
        pred = m.predict(d.x_test[idx])
        for k, i in enumerate(idx):
            mark = "[green]right[/]" if pred[k] == d.y_test[i] else "[red]wrong[/]"
            console.print(ascii_digit(d.x_test[i]), highlight=False)
            console.print(f"test digit #{i}: true label {d.y_test[i]}, network says "
                          f"[bold]{pred[k]}[/] ({float(p[k].max()):.1%} sure) — {mark}\n",
                          highlight=False)
        console.print(f"{int((pred == d.y_test[idx]).sum())}/{len(idx)} right", highlight=False)
        return
    if image is None:
        raise UserError("give an IMAGE to read, --sample N to read bundled test digit number "
                        "N, or --random K to read K random test digits")
    if not image.is_file():
        raise UserError(f"file not found: {image}")
    x = prepare_image(image)
    p = m.predict_proba(x)[0]
    pred = m.predict(x)[0]
    console.print(ascii_digit(x[0]), highlight=False)
    console.print(f"[bold]{pred}[/]  ({m.name}, {float(p.max()):.1%} sure)", highlight=False)
    console.print(probability_table(m.classes, p))


@app.command()
@friendly_errors
def info(model: Optional[str] = typer.Argument(None, help="A model file or zoo name; "
                                                "omit to list the zoo.")):
    """Show a model's layers and parameter counts (or list the zoo)."""
    from .._util import paths
    from ..nn.zoo import MODELS, build_model

    if model is None:
        table = Table(title="model zoo", header_style="bold")
        for col in ("name", "parameters", "trained", "what it is"):
            table.add_column(col, overflow="fold")
        for name, e in MODELS.items():
            n = build_model(name, np.random.default_rng(0)).n_params
            table.add_row(name, f"{n:,}", "yes" if paths.model_path(name).exists() else "no",
                          e.sentence)
        console.print(table)
        return
    m, meta = resolve_model(model)
    console.print(f"[bold]{m.name}[/]: {m.description}", highlight=False)
    from ..explain.names import layer_names

    names = layer_names(m)  # the names the page and `explain --unit` use
    table = Table(header_style="bold")
    for col in ("layer", "--unit", "type", "output shape", "parameters", "what it does"):
        table.add_column(col, overflow="fold")
    for row in m.summary():
        cfg = ", ".join(f"{k}={v}" for k, v in row["config"].items() if k != "type")
        n = names[row["index"]]
        table.add_row(n.name, f"{n.key}:N" if n.n_units else "", f"{row['type']}({cfg})",
                      "×".join(map(str, row["output_shape"])), f"{row['params']:,}",
                      row["describe"])
    console.print(table)
    console.print(f"total parameters: [bold]{m.n_params:,}[/]", highlight=False)
    if "test_accuracy" in meta:
        console.print(f"test accuracy when saved: {meta['test_accuracy']:.2%}", highlight=False)
