"""``digitlens evaluate``: how good each model is, and where it fails — the page's Evaluation tab
in the terminal (the same library objects: :mod:`digitlens.evaluation`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import app
from ._common import UserError, console, friendly_errors, resolve_model


def _models(model: Optional[str]) -> dict:
    """``{name: Sequential}``: the one asked for, or every trained zoo model that reads all ten
    digits."""
    from .._util import paths
    from ..nn.checkpoint import load_model
    from ..nn.zoo import model_names

    if model is not None:
        m, _ = resolve_model(model)
        return {m.name if m.name != "custom" else Path(model).stem: m}
    out = {}
    for n in model_names():
        p = paths.model_path(n)
        if p.exists():
            m = load_model(p)
            if len(m.classes) == 10:
                out[n] = m
    if not out:
        raise UserError("no trained model yet: run `digitlens train --model mlp` (or `digitlens "
                        "ladder`) first")
    return out


def _print_model(ev, detail: bool) -> None:
    from ..evaluation import words

    c, cal = ev.confusion, ev.calibration
    console.print(f"[bold]{ev.model}[/bold] on {ev.data} ({len(ev.y):,} digits): "
                  f"{100 * ev.accuracy:.1f}% right, {len(ev.mistakes):,} mistakes")
    console.print("  " + words.ece_sentence(cal.ece))
    console.print("  " + words.sure_sentence(cal))
    pairs = ", ".join(f"{t} read as {p} ({n}×)" for t, p, n in c.most_confused(3))
    console.print(f"  most common mistakes: {pairs or 'none'}")
    if not detail:
        return
    console.print("  digit  precision  recall  count")
    for k, d in enumerate(c.classes):
        prec = "    —" if c.precision[k] != c.precision[k] else f"{100 * c.precision[k]:5.1f}%"
        console.print(f"  {d:>5}  {prec:>9}  {100 * c.recall[k]:5.1f}%  {c.support[k]:>5}")
    top = ", ".join(f"#{m.index} a {m.true} read as {m.predicted} ({100 * m.confidence:.0f}% sure)"
                    for m in ev.mistakes[:5])
    console.print(f"  surest mistakes: {top or 'none'}")


@app.command()
@friendly_errors
def evaluate(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="A model file or a trained "
                                        "zoo name (default: every trained model)."),
    data: str = typer.Option("bundled", "--data", "-d", help="bundled (the 1,000 test digits), "
                             "mnist (the official 10,000; download first), optdigits (other "
                             "writers; needs scikit-learn) or mine (your own digits)."),
    robust: bool = typer.Option(False, "--robustness/--no-robustness", help="Also measure "
                                "accuracy under rotation, scale, shift, thickness, blur, noise "
                                "and elastic distortion (about 45 passes per model)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="Use only the first "
                                        "N digits."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the figure here (.png, "
                                       ".svg or .pdf); with several models, one file per model "
                                       "(NAME added to the file name)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every number as JSON "
                                            "(the page's format)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seeds the noise and elastic changes."),
):
    """How good each model is on DATA, and where it fails: accuracy, per-digit precision and
    recall, the most common confusions, the surest mistakes, calibration (what "99% sure"
    means), and with --robustness the accuracy curves."""
    from .._util import jsonsafe as J
    from .._util.files import atomic_write
    from ..evaluation import DATA_CHOICES, build_map, evaluate_model, load_eval_set, robustness

    if data not in DATA_CHOICES:
        raise UserError(f"--data must be one of {', '.join(DATA_CHOICES)}, got {data!r}")
    try:
        s = load_eval_set(data, limit=limit)
    except (ImportError, FileNotFoundError) as e:
        raise UserError(str(e)) from None
    models = _models(model)
    console.print(f"Evaluating on {s.description}.")
    result = {"data": data, "n": int(len(s.y)), "models": {}}
    for name, m in models.items():
        ev = evaluate_model(m, s.x, s.y, name=name, data=data)
        _print_model(ev, detail=len(models) == 1)
        result["models"][name] = ev.to_dict()
        if out is not None:
            from ..data import load_digits
            from ..view.figures.evaluation import evaluation_figure, save_figure

            d = load_digits()
            dmap = build_map(m, d.x_train, d.y_train, s.x, s.y)
            path = out if len(models) == 1 else out.with_name(f"{out.stem}-{name}{out.suffix}")
            save_figure(evaluation_figure(ev, dmap), path)
            console.print(f"  figure: {path}")
    if robust:
        rob = robustness(models, s.x, s.y, seed=seed)
        result["robustness"] = rob.to_dict()
        from ..evaluation import words

        console.print(f"Robustness: accuracy (%) on {rob.n:,} digits changed one way at a time.")
        width = max(8, *(len(n) for n in rob.accuracy))
        for kind, lv in rob.levels.items():
            console.print(f"  {words.KIND_TITLES[kind]}", highlight=False)
            console.print(f"    {'strength':<{width}}" + "".join(f"{v:>6g}" for v in lv),
                          highlight=False)
            for name, per in rob.accuracy.items():
                console.print(f"    {name:<{width}}" +
                              "".join(f"{100 * a:>6.0f}" for a in per[kind]), highlight=False)
        if out is not None:
            from ..view.figures.evaluation import robustness_figure, save_figure

            path = out.with_name(f"{out.stem}-robustness{out.suffix}")
            save_figure(robustness_figure(rob), path)
            console.print(f"  robustness figure: {path}")
    if json_out is not None:
        text = json.dumps(J.plain(result))
        atomic_write(json_out, lambda f: f.write(text.encode()))
        console.print(f"  numbers: {json_out}")
