"""Shared pieces of the command-line shell: the console, friendly errors, model lookup."""

from __future__ import annotations

import functools
from pathlib import Path

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class UserError(Exception):
    """A problem the user can fix; shown as one line, never a traceback."""


def friendly_errors(fn):
    """Turn expected failures into one readable line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..errors import CheckpointError, TrainingDiverged

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (UserError, CheckpointError, TrainingDiverged, ValueError, OSError) as e:
            msg = str(e) or type(e).__name__
            if isinstance(e, FileNotFoundError) and e.filename:
                msg = f"file not found: {e.filename}"
            err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def resolve_model(model: str):
    """``model`` is a path to a ``.npz`` file or the name of a trained zoo model in the cache."""
    from .._util import paths
    from ..nn.checkpoint import load_model
    from ..nn.zoo import model_names

    p = Path(model)
    if p.suffix == ".npz" or p.exists():
        return load_model(p, with_meta=True)
    if model in model_names():
        cached = paths.model_path(model)
        if cached.exists():
            return load_model(cached, with_meta=True)
        raise UserError(f"no trained {model!r} model yet: run `digitlens train --model {model}` "
                        f"(it is saved to {cached})")
    from ..training.mine_eval import saved_models

    saved = saved_models()  # also the fine-tuned and custom ones (cnn_mine, sigmoid_2x32)
    if model in saved:
        return load_model(saved[model], with_meta=True)
    others = [n for n in saved if n not in model_names()]
    raise UserError(f"{model!r} is neither a model file nor one of {model_names()}"
                    + (f" or your saved models {others}" if others else ""))
