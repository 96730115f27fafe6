"""``digitlens explain``: why the network reads what it reads, in a figure and in plain words."""

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
    if sample is not None:
        from ..data import load_digits

        d = load_digits()
        source, kwargs = d.x_test[sample, 0], {"skip_preprocess": True}
        where = f"bundled test digit {sample} (labelled {int(d.y_test[sample])})"
    elif image is not None:
        if not image.is_file():
            raise UserError(f"file not found: {image}")
        source, kwargs = image.read_bytes(), {}
        where = str(image)
    else:
        raise UserError("give an IMAGE to explain, or --sample N for a bundled test digit")
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
    if out is not None:
        from ..view.figures.explanation import save_explanation_figure

        save_explanation_figure(e, out)
        console.print(f"wrote the figure to {out}", highlight=False)
    if json_out is not None:
        from .._util.files import atomic_write

        atomic_write(json_out, lambda f: f.write(e.to_json().encode("utf-8")))
        console.print(f"wrote the explanation JSON to {json_out}", highlight=False)
