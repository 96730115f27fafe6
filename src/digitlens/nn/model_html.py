"""How a :class:`~digitlens.nn.model.Sequential` shows itself in a notebook: one row per layer
(what it does, its output shape, its number of weights).  Plain strings; NumPy-free."""

from __future__ import annotations

import html
from typing import Any


def model_html(model: Any) -> str:
    """HTML for a model: its name and sentence, then a table of :meth:`Sequential.summary`."""
    rows = "".join(
        f"<tr><td>{r['index']}</td><td>{html.escape(r['type'])}</td>"
        f"<td>{' × '.join(map(str, r['output_shape']))}</td><td>{r['params']:,}</td>"
        f"<td style='text-align:left'>{html.escape(r['describe'])}</td></tr>"
        for r in model.summary())
    shape = " × ".join(map(str, model.input_shape))
    return (f"<div><p><b>{html.escape(model.name)}</b>: {model.n_params:,} weights and biases, "
            f"input {shape}, loss {html.escape(model.loss)}.</p>"
            + (f"<p>{html.escape(model.description)}</p>" if model.description else "")
            + "<table style='font-size:12px'><tr><th>#</th><th>layer</th><th>output</th>"
            f"<th>weights</th><th>what it does</th></tr>{rows}</table></div>")
