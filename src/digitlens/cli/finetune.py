"""``digitlens finetune``: teach a trained model your handwriting (yours + the bundled digits)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import app
from ._common import UserError, console, friendly_errors


@app.command()
@friendly_errors
def finetune(
    model: str = typer.Option("cnn", help="The trained model to start from (a zoo name)."),
    out: Optional[Path] = typer.Option(None, help="Where to save the fine-tuned model (default: "
                                       "<models>/custom/<model>_mine.npz; never the original)."),
    epochs: int = typer.Option(4, min=1, max=50, help="Passes over the mixed digits."),
    seed: int = typer.Option(0, help="Seed for the held-out choice, shuffling and augmentation."),
    learner: Optional[str] = typer.Option(None, help="Only this learner's digits (class mode)."),
):
    """Fine-tune MODEL on the bundled digits plus yours: a quarter of your digits is kept aside
    to show before and after, beside the bundled test digits (did it forget anything?)."""
    import dataclasses

    import numpy as np

    from ..data import load_digits
    from ..data.mine import DigitStore
    from ..nn.zoo import model_names
    from ..training.finetune import FinetuneConfig, default_path, finetune as run, save_finetuned
    from ._common import resolve_model

    if model not in model_names():
        raise UserError(f"choose a zoo model to start from, one of {model_names()}")
    base, _ = resolve_model(model)
    store = DigitStore()
    x, y, ids = store.arrays(learner=learner)
    if len(y) < 2:
        raise UserError(f"fine-tuning needs at least 2 of your digits; you have {len(y)}")
    config = dataclasses.replace(FinetuneConfig(), epochs=epochs)
    console.print(f"fine-tuning {model} on {len(y)} of your digits and the bundled ones "
                  f"({config.epochs} epochs)…", highlight=False)
    r = run(base, x, y, load_digits(), rng=np.random.default_rng(seed), config=config, ids=ids)
    path = save_finetuned(r, out or default_path(model), base=model)

    def pct(v):
        return "-" if v is None else f"{v:.1%}"

    console.print(f"your {r.n_held} held-out digits:  {pct(r.before['mine_held'])} -> "
                  f"{pct(r.after['mine_held'])}", highlight=False)
    console.print(f"bundled test digits:        {pct(r.before['bundled_test'])} -> "
                  f"{pct(r.after['bundled_test'])}", highlight=False)
    console.print(f"took {r.seconds:.1f}s; saved to {path} (the original {model} is unchanged)",
                  highlight=False)
