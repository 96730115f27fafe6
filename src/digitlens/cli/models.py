"""``digitlens models restore NAME``: bring back the model a training run replaced."""

from __future__ import annotations

import typer

from . import app
from ._common import UserError, console, friendly_errors

models_app = typer.Typer(help="The model cache: bring back a replaced model.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("restore")
@friendly_errors
def restore(name: str = typer.Argument(..., help="A zoo model name (mlp, cnn, ...).")):
    """Swap the cached model NAME with the one the last training run replaced
    (NAME.previous.npz); running it again swaps them back."""
    from .._util import paths
    from ..nn.checkpoint import load_model
    from ..nn.zoo import model_names
    from ..training.recipes import previous_path, restore_previous

    if name not in model_names():
        raise UserError(f"unknown model {name!r}; choose one of {model_names()}")
    path = paths.model_path(name)
    prev = previous_path(path)
    if not prev.is_file():
        raise UserError(f"there is no earlier {name!r} model to restore ({prev} does not exist)")
    _, meta = load_model(prev, with_meta=True)  # a damaged file is refused before any swap
    restore_previous(path)
    acc = meta.get("test_accuracy")
    shown = f" ({acc:.1%} of the test digits right)" if isinstance(acc, (int, float)) else ""
    console.print(f"restored the earlier {name} model{shown}; the one it replaced is now "
                  f"{prev.name}", highlight=False)
