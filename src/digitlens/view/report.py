"""The activation lab's report: a :class:`~digitlens.lab.result.StudyResult` as Markdown, and the
folder ``digitlens lab`` and the web page write (``report.md``, PNG figures, ``result.json``).

Every verdict comes from :func:`digitlens.lab.verdicts.assess` and every figure from
:mod:`digitlens.view.figures.lab`; this module only lays them out.  Files are written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._util.files import atomic_write
from ..lab.result import StudyResult
from ..lab.verdicts import Verdict, assess
from ..lab.words import fmt, pct, runs_phrase

def _md_cell(v: Any) -> str:
    return (fmt(v) if not isinstance(v, str) else v).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows of equal keys as a Markdown table (numbers through :func:`~digitlens.lab.words.fmt`)."""
    if not rows:
        return "(no rows)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_md_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_PART_TITLES = {
    "main": "Main comparison (same network, every activation)",
    "width": "Width study (one hidden layer)",
    "depth": "Depth study",
    "depth_compare": "Depth study with the comparison optimizer",
    "output": "Output-layer study",
}


def to_markdown(result: StudyResult, figures: dict[str, str] | None = None,
                verdicts: list[Verdict] | None = None) -> str:
    """The report as Markdown; ``figures`` maps figure names to (relative) image paths."""
    figures = figures or {}
    verdicts = assess(result) if verdicts is None else verdicts
    p = result.preset
    lines = [f"# Activation lab: {result.study} study ({p['name']} preset)", ""]
    lines.append(
        f"{runs_phrase(len(result.runs), result.bench is not None)} on {p['n_train']:,} of the "
        f"bundled training digits, "
        f"tested on {p['n_test']:,} held-out digits; {p['epochs']} epochs of {p['optimizer']} "
        f"(learning rate {p['lr']}, momentum {p['momentum']}, batches of {p['batch_size']}), "
        f"{p['seeds']} seeds per configuration. Target accuracy {pct(p['target_accuracy'], 0)}. "
        f"Wall-clock numbers come from a machine that may be shared; everything else is "
        f"exactly reproducible from the seeds.")
    lines += ["", "## Verdicts", ""]
    lines.append(markdown_table([{"#": str(i), "rule of thumb": v.rule,
                                  "verdict": f"**{v.status}**", "why": v.headline}
                                 for i, v in enumerate(verdicts, 1)]))
    for i, v in enumerate(verdicts, 1):
        lines += [f"## {i}. {v.rule}", "", f"**Measured.** {v.measurement}", "",
                  f"**Verdict: {v.status}.** {v.text}", ""]
        for f in v.figures:
            if f in figures:
                lines += [f"![{f}]({figures[f]})", ""]
    lines += ["## All the numbers", ""]
    for part in result.parts:
        lines += [f"### {_PART_TITLES.get(part, part)}", "", markdown_table(result.table(part))]
    if result.bench is not None:
        rows = []
        for a, shapes in result.bench["results"].items():
            for shape, t in shapes.items():
                rows.append({"activation": a, "batch x width": shape,
                             "forward µs": t["forward_us"], "backward µs": t["backward_us"]})
        lines += ["### Micro-benchmark (fastest of several rounds)", "", markdown_table(rows)]
    lines += ["## Reproduce", "",
              "```", _command(result), "```", "",
              "Columns: accuracy = mean test accuracy over seeds; reached = seeds that reached "
              "the target; epochs/seconds_to_target = medians over those; activation_share = "
              "part of training time inside the hidden activation; dead_fraction = hidden units "
              "silent on every test digit; zero_fraction = outputs exactly 0; "
              "saturated_fraction = outputs where the slope is below 1% of its peak; "
              "grad_ratio = first-layer / output-layer RMS gradient per weight.", ""]
    return "\n".join(lines)


def _command(result: StudyResult) -> str:
    p = result.preset
    study = {"activations": "activations", "output": "output"}.get(result.study, "all")
    flags = " --quick" if p["name"] == "quick" else ""
    return f"digitlens lab {study}{flags} --seeds {p['seeds']}"


def write_report(result: StudyResult, out_dir: str | os.PathLike, *, figures: bool = True
                 ) -> Path:
    """Write ``report.md``, the figures (PNG) and ``result.json`` into ``out_dir``.

    Returns the path of ``report.md``.  Files are written atomically.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verdicts = assess(result)
    figs: dict[str, str] = {}
    if figures:
        from .figures.lab import save_figures  # matplotlib, only when figures are asked for

        figs = {name: path.name for name, path in save_figures(result, out).items()}
    md = to_markdown(result, figs, verdicts)
    atomic_write(out / "report.md", lambda f: f.write(md.encode("utf-8")))
    d = result.to_dict(with_summary=True)
    blob = json.dumps(d, allow_nan=False).encode("utf-8")
    atomic_write(out / "result.json", lambda f: f.write(blob))
    return out / "report.md"
