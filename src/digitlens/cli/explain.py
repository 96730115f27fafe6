"""``digitlens explain``: why the network reads what it reads, in a figure and in plain words;
with ``--unit``, one unit's weighted sum worked out as a table (the page's worked-sum view)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import app
from ._common import UserError, console, friendly_errors, resolve_model


@app.command()
@friendly_errors
def explain(
    image: Optional[Path] = typer.Argument(None, help="An image of one digit (PNG, JPEG, ...)."),
    model: str = typer.Option("mlp", "--model", "-m", help="A model file or a trained zoo name "
                              "(logistic, lab, mlp, cnn, ...)."),
    vs: Optional[int] = typer.Option(None, "--vs", help="Explain why the answer is not this "
                                     "digit (default: the runner-up)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the explanation figure "
                                       "here (.png, .svg or .pdf)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the whole explanation "
                                            "as JSON here (the web page's format)."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Write a shareable report "
                                            "here: one self-contained HTML file, readable "
                                            "offline and printable."),
    sample: Optional[int] = typer.Option(None, "--sample", "-n", min=0, max=999,
                                         help="Instead of IMAGE, explain bundled test digit "
                                         "number N (0-999)."),
    ig_steps: int = typer.Option(32, "--ig-steps", min=2, max=4096, help="Integrated-gradients "
                                 "points (doubled automatically until the error is below 1%)."),
    baseline: str = typer.Option("black", "--baseline", help="Integrated-gradients starting "
                                 "image: black (no ink) or blur."),
    counterfactual: bool = typer.Option(True, "--counterfactual/--no-counterfactual",
                                        help="Search for the smallest ink edit that changes "
                                        "the answer."),
    unit: Optional[str] = typer.Option(None, "--unit", "-u", help="Instead, work out one unit's "
                                       "sum: LAYER:NUMBER, e.g. conv2:7 (filter 7 of the second "
                                       "convolution), hidden1:44, output:9 (see `digitlens info "
                                       "MODEL` for the layers)."),
    at: Optional[str] = typer.Option(None, "--at", help="With --unit on a filter: the position "
                                     "ROW,COLUMN in its feature map (default: where it fires "
                                     "most)."),
    rows: int = typer.Option(12, "--rows", min=1, max=10_000, help="With --unit: how many of the "
                             "largest products to list."),
):
    """Explain what MODEL reads in IMAGE: the probabilities, which pixels pushed the answer,
    why it is not the runner-up (or --vs), the smallest edit that would change it, what the
    first layer's units look for, and the training digits it looks like."""
    import numpy as np

    from ..recognizer import Recognizer

    if baseline not in ("black", "blur"):
        raise UserError(f"--baseline must be 'black' or 'blur', got {baseline!r}")
    m, _ = resolve_model(model)
    name = m.name if m.name != "custom" else Path(model).stem
    rec = Recognizer({name: m})
    source, kwargs, where = _what_to_explain(image, sample)
    if unit is not None:
        _print_worked(rec, name, source, kwargs, unit, at, rows, where)
        return
    elif at is not None:
        raise UserError("--at needs --unit (a filter, e.g. --unit conv1:3 --at 12,9)")
    with console.status(f"explaining {where} with {name}..."):
        e = rec.explain(source, model=name, vs=vs, ig_steps=ig_steps, baseline=baseline,
                        counterfactual=counterfactual, **kwargs)
    p = np.asarray(e.probabilities)
    top = np.argsort(-p)[:3]
    console.print(f"[bold]{e.prediction}[/]  ({name}, {p[top[0]]:.1%} sure; then "
                  + ", ".join(f"{e.classes[i]}: {p[i]:.1%}" for i in top[1:]) + ")",
                  highlight=False)
    for s in e.sentences[1:]:
        console.print(f"• {s}", highlight=False)
    for line in _verdict_lines(e):
        console.print(line, highlight=False)
    _write_outputs(e, rec.model(name), out, json_out, html_out)


def _what_to_explain(image: Path | None, sample: int | None):
    """``(source, preprocess kwargs, a description)`` of the digit to explain: bundled test
    digit ``sample`` (already 28x28: no pre-processing) or the file ``image``."""
    if sample is not None:
        from ..data import load_digits

        d = load_digits()
        where = f"bundled test digit {sample} (labelled {int(d.y_test[sample])})"
        return d.x_test[sample, 0], {"skip_preprocess": True}, where
    if image is None:
        raise UserError("give an IMAGE to explain, or --sample N for a bundled test digit")
    if not image.is_file():
        raise UserError(f"file not found: {image}")
    from ..data.images import read_source_bytes

    return read_source_bytes(image), {}, str(image)  # refuses a huge file before reading it


def _write_outputs(e, model, out: Path | None, json_out: Path | None,
                   html_out: Path | None) -> None:
    """The figure, the JSON and the HTML report of explanation ``e``, those asked for."""
    if out is not None:
        from ..explain.names import layer_names
        from ..view.figures.explanation import save_explanation_figure

        save_explanation_figure(e, out, layers=layer_names(model))
        console.print(f"wrote the figure to {out}", highlight=False)
    if json_out is not None:
        from .._util.files import atomic_write

        atomic_write(json_out, lambda f: f.write(e.to_json().encode("utf-8")))
        console.print(f"wrote the explanation JSON to {json_out}", highlight=False)
    if html_out is not None:
        from ..view.report_html import save_report

        save_report(e, html_out)
        console.print(f"wrote the report to {html_out} (open it in any browser)", highlight=False)


def _verdict_lines(e) -> list[str]:
    """The "I don't know" check (its score against its threshold, and the verdict) and the
    digits usually confused with the answer, to try with --vs."""
    out = []
    o = e.ood
    if o is not None:
        verdict = ("does not look like any digit it was trained on" if o.flagged else
                   "looks like the digits it was trained on")
        out.append(f"“I don't know” check: unusualness score {o.score:.2f}, threshold "
                   f"{o.threshold:.2f} (reached by {o.test_flagged:.0%} of the test digits): "
                   f"{'[bold]' if o.flagged else ''}{verdict}{'[/]' if o.flagged else ''}.")
    c = e.contrast
    if c is not None and c.suggestions:
        if any(n > 0 for _, n in c.suggestions):
            tried = ", ".join(f"{d} ({n} time{'s' if n != 1 else ''})" for d, n in c.suggestions
                              if n > 0)
            out.append(f"Digits this model most often confuses with {c.a} on the test digits: "
                       f"{tried}. Compare with one: --vs {c.suggestions[0][0]}.")
        else:
            out.append(f"This model never mixed up {c.a} with another digit on the test digits; "
                       f"compare with another digit anyway: --vs {c.suggestions[0][0]}.")
    return out


def _parse_at(at: str | None) -> tuple[int, int] | None:
    if at is None:
        return None
    parts = at.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserError(f"--at must be ROW,COLUMN (two whole numbers, e.g. 12,9), got {at!r}")
    return int(parts[0]), int(parts[1])


def _print_worked(rec, name: str, source, kwargs: dict, spec: str, at: str | None, rows: int,
                  where: str) -> None:
    """One unit's worked sum (Recognizer.worked_sum) as rich tables: the largest products and
    the running total, the bias, z, the activation; the connections; softmax for an output."""
    from rich.table import Table

    from ..errors import UnknownUnitError
    from ..explain.names import parse_unit

    model = rec.model(name)
    try:
        layer, u = parse_unit(model, spec)
    except UnknownUnitError as e:
        raise UserError(str(e)) from None
    pos = _parse_at(at)
    if pos is not None and model.layers[layer].type != "conv2d":
        raise UserError(f"--at is for filters; {spec} is a unit with one sum, not a map of them")
    w = rec.worked_sum(source, name, layer, u, at=pos, maps=False, **kwargs)
    c = w["conv"]
    head = f"[bold]{w['unit_name']}[/] of {name} on {where}"
    if c:
        head += (f", at row {c['at'][0]}, column {c['at'][1]} of its feature map: the window "
                 f"covers rows {c['rows'][0]}..{c['rows'][1]} and columns "
                 f"{c['cols'][0]}..{c['cols'][1]} of each input map (outside: zero padding)")
    console.print(head, highlight=False)
    console.print(f"z = Σ w·x + b over {w['n_inputs']:,} inputs ({w['reads']}); "
                  f"{w['n_zero']:,} products are 0", highlight=False)
    table = Table(header_style="bold", box=None)
    for col, just in (("#", "right"), ("input x", "left"), ("x", "right"), ("weight w", "right"),
                      ("w·x", "right"), ("running total", "right")):
        table.add_column(col, justify=just)
    terms = w["terms"]
    for k, t in enumerate(terms[:rows], 1):
        table.add_row(str(k), t["label"], f"{t['x']:.4f}", f"{t['w']:+.4f}",
                      f"{t['product']:+.4f}", f"{t['running']:+.4f}")
    if len(terms) > rows:
        rest = terms[-1]["running"] - terms[rows - 1]["running"]
        table.add_row("", f"… {len(terms) - rows} smaller products", "", "", f"{rest:+.4f}",
                      f"{terms[-1]['running']:+.4f}")
    table.add_row("", "+ bias b", "", "", f"{w['bias']:+.4f}", f"{w['total']:+.4f}")
    console.print(table)
    act = w["activation"]
    console.print(f"z = {w['z']:+.4f} (the network's own number)"
                  + (f"; {act}(z) = {w['a']:.4f}" if act else ""), highlight=False)
    for label, cons in (("pushes it up most", w["up"]), ("pushes it down most", w["down"])):
        if cons:
            console.print(f"{label}: " + "; ".join(f"{k['name']} ({k['value']:+.3f})"
                                                     for k in cons), highlight=False)
    o = w["output"]
    if o and o["function"] == "softmax":
        i, d = o["index"], o["classes"][o["index"]]
        console.print(f"softmax: e^(z − max z) = e^({o['shifted'][i]:+.4f}) = {o['exp'][i]:.4f}; "
                      f"÷ {o['sum_exp']:.4f} (the sum over all {len(o['classes'])} digits) = "
                      f"{o['probabilities'][i]:.4f}: P({d}) = {o['probabilities'][i]:.1%}",
                      highlight=False)
    elif o and o["function"] == "sigmoid":
        console.print(f"sigmoid: 1 / (1 + e^−z) = 1 / (1 + {o['exp'][0]:.4f}) = "
                      f"{o['probabilities'][0]:.4f}", highlight=False)
