"""``digitlens mine``: the learner's own digits (import, list, export, clear, evaluate)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import app
from ._common import UserError, console, friendly_errors

mine_app = typer.Typer(help="Your own digits: import a folder of them, list, export, clear, and "
                            "see how well each model reads them.", no_args_is_help=True)
app.add_typer(mine_app, name="mine")


def _store():
    from ..data.mine import DigitStore

    return DigitStore()


@mine_app.command("import")
@friendly_errors
def import_(folder: Path = typer.Argument(..., help="A folder with one subfolder per digit: "
                                          "FOLDER/0/*.png … FOLDER/9/*.png."),
            learner: str = typer.Option("", help="Whose digits these are (class mode).")):
    """Add every image of FOLDER/0 … FOLDER/9 to your digits (all of them, or none if one is
    bad)."""
    from ..training.mine_io import import_folder

    store = _store()
    ids = import_folder(store, folder, learner=learner)
    console.print(f"added {len(ids)} digits from {folder}; you now have {store.count()} "
                  f"(in {store.path})", highlight=False)


@mine_app.command("list")
@friendly_errors
def list_(learner: Optional[str] = typer.Option(None, help="Only this learner's digits.")):
    """How many digits you have, per digit and per learner, and the latest ones."""
    store = _store()
    c = store.counts()
    console.print(f"{c['total']} digits in {store.path}", highlight=False)
    table = Table(header_style="bold")
    for k in range(10):
        table.add_column(str(k), justify="right")
    table.add_row(*[str(n) for n in c["per_label"]])
    console.print(table)
    if len(c["per_learner"]) > 1 or "" not in c["per_learner"]:
        for who, n in c["per_learner"].items():
            console.print(f"  {who or '(no nickname)'}: {n}", highlight=False)
    for d in store.list(learner=learner)[-20:]:
        console.print(f"  #{d.id}  label {d.label}  {d.source}"
                      + (f"  {d.learner}" if d.learner else ""), highlight=False)


@mine_app.command("export")
@friendly_errors
def export(folder: Path = typer.Argument(..., help="Where to write FOLDER/0 … FOLDER/9 and the "
                                         "IDX files."),
           learner: Optional[str] = typer.Option(None, help="Only this learner's digits.")):
    """Write your digits as an image folder (the originals) and as MNIST-style IDX files (the
    28×28 grids)."""
    from ..data.mine import IDX_IMAGES, IDX_LABELS, export_folder

    out = export_folder(_store(), folder, learner=learner)
    console.print(f"wrote {out['digits']} digits to {folder}/0 … {folder}/9, and "
                  f"{IDX_IMAGES} + {IDX_LABELS}", highlight=False)


@mine_app.command("clear")
@friendly_errors
def clear(yes: bool = typer.Option(False, "--yes", help="Do not ask."),
          learner: Optional[str] = typer.Option(None, help="Only this learner's digits.")):
    """Delete your digits for good."""
    store = _store()
    n = store.count(learner=learner)
    if not yes and not typer.confirm(f"Delete {n} digits for good?"):
        raise typer.Exit(1)
    gone = store.clear() if learner is None else store.delete_learner(learner)
    console.print(f"deleted {gone} digits", highlight=False)


@mine_app.command("evaluate")
@friendly_errors
def evaluate(model: Optional[str] = typer.Option(None, help="One model (a name or a .npz "
                                                 "file); default: every saved model.")):
    """How well each model reads your digits, beside MNIST's writers (the bundled test digits):
    accuracy, the confusion matrix and your misread digits."""
    from ..data import load_digits
    from ..training.mine_eval import read_me_all, saved_models
    from ._common import resolve_model

    store = _store()
    x, y, ids = store.arrays()
    if len(y) == 0:
        raise UserError("you have no digits yet: draw some on the page's My digits tab, or "
                        "`digitlens mine import FOLDER`")
    if model is not None:
        from ..nn.checkpoint import load_model

        saved = saved_models()  # zoo names and the fine-tuned ones (cnn_mine, cnn_class)
        models = {model: load_model(saved[model])} if model in saved else \
            {Path(model).stem if model.endswith(".npz") else model: resolve_model(model)[0]}
    else:
        from ..nn.checkpoint import load_model

        models = {n: load_model(p) for n, p in saved_models().items()}
        if not models:
            raise UserError("no trained models yet: run `digitlens ladder` or "
                            "`digitlens train --model cnn`")
    rows = read_me_all(models, x, y, ids, digits=load_digits())
    if not rows:
        raise UserError("that model does not read all ten digits")
    table = Table(title=f"your {len(y)} digits", header_style="bold")
    for col in ("model", "MNIST's writers", "yours", "most common mistake"):
        table.add_column(col, justify="left" if col != "yours" else "right")
    for r in rows:
        w = r["worst"]
        table.add_row(r["model"], f"{r['bundled_accuracy']:.1%}", f"{r['accuracy']:.1%}",
                      f"{w[0]} read as {w[1]} ({w[2]}×)" if w else "none")
    console.print(table)
    for r in rows:
        console.print(f"{r['model']}: {r['sentence']}", highlight=False)
    if len(rows) == 1:
        r = rows[0]
        console.print("confusion (rows: your digit, columns: the model's answer)")
        console.print("      " + " ".join(f"{k:>3}" for k in range(10)))
        for k, row in enumerate(r["confusion"]):
            console.print(f"  {k}:  " + " ".join(f"{v:>3}" for v in row), highlight=False)
        for m in r["misread"][:20]:
            console.print(f"  #{m['id']}: your {m['label']} read as {m['answer']} "
                          f"({m['probability']:.0%} sure)", highlight=False)


def class_banner(url: str, token: str) -> None:
    """What ``digitlens serve --class`` prints: the learners' page and the teacher's."""
    console.print(f"Class mode. Learners open [bold]{url}static/class.html[/] (use this "
                  "computer's address on the network) and join with a nickname.", highlight=False)
    console.print(f"Your dashboard (keep it to yourself): [bold]{url}static/teacher.html#token="
                  f"{token}[/]", highlight=False, soft_wrap=True)
