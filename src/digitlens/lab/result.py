"""A study's result as plain data: every run's measurements, per-configuration summaries, JSON.

:class:`StudyResult` holds the runs of a study keyed by run key, the study's parts and its
bookkeeping (cached / computed runs, seconds).  :meth:`StudyResult.table` gives tidy rows (one
per configuration, means over seeds); :meth:`StudyResult.verdicts` judges the rules of thumb
(:mod:`digitlens.lab.verdicts`); :meth:`StudyResult.to_dict` is JSON data (NaN and inf never
reach it) and :func:`load_result` reads a saved ``result.json`` back.

Figures of a result are in :mod:`digitlens.view.figures.lab` and its Markdown report in
:mod:`digitlens.view.report`: they import this module, never the reverse.  In a notebook the
object still shows itself as HTML tables (:meth:`StudyResult._repr_html_`, plain HTML built here
from the same tables, with nothing imported from the view).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .._util.jsonsafe import plain
from ..errors import LabError
from .measure import grad_ratio
from .specs import LAB_VERSION
from .verdicts import Verdict, assess, output_example
from .words import fmt


def strip_timings(d: dict[str, Any]) -> dict[str, Any]:
    """A copy of a run or result dict without wall-clock measurements (for reproducibility
    checks): drops every ``"timing"`` entry, the micro-benchmark and the study's own timing and
    cache bookkeeping."""
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()
                    if k not in ("timing", "bench", "seconds", "cached", "computed")}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    return strip(d)


def _median(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.median(vals)) if vals else None


def _mean(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def _std(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None)


def _geomean(vals: list) -> float | None:
    vals = [v for v in vals if v is not None and v > 0]
    return float(np.exp(np.mean(np.log(vals)))) if vals else None


GROUP_FIELDS = ("activation", "width", "depth", "head", "optimizer")


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration (runs that differ only in seed), with means over seeds.

    Columns: the :data:`GROUP_FIELDS`, ``seeds``, ``accuracy`` (mean), ``accuracy_std``,
    ``accuracy_min``, ``accuracy_max``, ``reached`` (seeds that reached the target),
    ``epochs_to_target`` / ``seconds_to_target`` (medians over the seeds that reached it),
    ``epoch_seconds`` (median), ``activation_share`` (median fraction of training time inside
    the hidden activation), ``dead_fraction``, ``zero_fraction``, ``saturated_fraction`` (means),
    ``grad_ratio_init`` / ``grad_ratio_end`` (geometric means of :func:`grad_ratio`), and for
    output heads ``dead_outputs`` (mean count), ``tie_fraction``, ``true_off_fraction``,
    ``sum_deviation``, ``outside_01_fraction``, ``score_max``.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(tuple(r["spec"][f] for f in GROUP_FIELDS), []).append(r)
    rows = []
    for key, rs in groups.items():
        accs = [r["final"]["accuracy"] for r in rs]
        row = dict(zip(GROUP_FIELDS, key))
        row.update({
            "seeds": len(rs),
            "accuracy": _mean(accs), "accuracy_std": _std(accs),
            "accuracy_min": min(accs), "accuracy_max": max(accs),
            "target": rs[0]["reach"]["target"],
            "reached": sum(r["reach"]["epochs"] is not None for r in rs),
            "epochs_to_target": _median([r["reach"]["epochs"] for r in rs]),
            "seconds_to_target": _median([r["timing"]["seconds_to_target"] for r in rs]),
            "epoch_seconds": _median([r["timing"]["robust_epoch_seconds"] for r in rs]),
            "activation_share": _median([r["timing"]["activation_share"] for r in rs]),
            "dead_fraction": _mean([r["hidden"]["dead_fraction"] for r in rs]),
            "zero_fraction": _mean([r["hidden"]["zero_fraction"] for r in rs]),
            "saturated_fraction": _mean([r["hidden"]["saturated_fraction"] for r in rs]),
            "grad_ratio_init": _geomean([grad_ratio(r, 0) for r in rs]),
            "grad_ratio_end": _geomean([grad_ratio(r, -1) for r in rs]),
            "dead_outputs": _mean([len(r["final"]["dead_units"]) for r in rs]),
            "tie_fraction": _mean([r["final"]["tie_fraction"] for r in rs]),
            "true_off_fraction": _mean([r["final"]["true_off_fraction"] for r in rs]),
            "sum_deviation": _mean([r["final"]["sum_deviation"] for r in rs]),
            "outside_01_fraction": _mean([r["final"]["outside_01_fraction"] for r in rs]),
            "score_max": max(r["final"]["score_max"] for r in rs),
        })
        rows.append(row)
    return rows


_TABLE_COLUMNS = {
    "main": ("activation", "seeds", "accuracy", "accuracy_std", "reached", "epochs_to_target",
             "seconds_to_target", "epoch_seconds", "activation_share", "dead_fraction",
             "zero_fraction", "saturated_fraction", "grad_ratio_init"),
    "width": ("activation", "width", "seeds", "accuracy", "accuracy_std", "dead_fraction",
              "zero_fraction"),
    "depth": ("activation", "depth", "seeds", "accuracy", "accuracy_std", "reached",
              "grad_ratio_init", "grad_ratio_end", "saturated_fraction"),
    "output": ("head", "seeds", "accuracy", "accuracy_std", "dead_outputs", "tie_fraction",
               "true_off_fraction", "sum_deviation", "outside_01_fraction", "score_max"),
}
_TABLE_COLUMNS["depth_compare"] = ("optimizer",) + _TABLE_COLUMNS["depth"]


@dataclass
class StudyResult:
    """Every run of a study, keyed by run key, with the study's parts and bookkeeping.

    ``to_dict()`` is JSON-serialisable (adds per-part summaries, the verdicts and the example
    digit of the output study);
    :meth:`table` gives tidy rows; in a notebook the object shows itself as HTML tables.
    Its figures: :func:`digitlens.view.figures.lab.figure` ``(result, name)``.
    """

    study: str
    preset: dict[str, Any]
    parts: dict[str, list[str]]
    runs: dict[str, dict[str, Any]]
    bench: dict[str, Any] | None = None
    cached: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    # -- access --------------------------------------------------------------------------------
    def runs_in(self, part: str) -> list[dict[str, Any]]:
        if part not in self.parts:
            raise LabError(f"this {self.study!r} study has no part {part!r}; "
                           f"it has {list(self.parts)}")
        return [self.runs[k] for k in self.parts[part]]

    def summary(self, part: str) -> list[dict[str, Any]]:
        """:func:`summarise` of one part's runs."""
        return summarise(self.runs_in(part))

    def table(self, part: str = "main", columns: Iterable[str] | None = None
              ) -> list[dict[str, Any]]:
        """Tidy rows (one per configuration) with the columns that matter for ``part``."""
        cols = tuple(columns) if columns is not None else _TABLE_COLUMNS.get(part, GROUP_FIELDS)
        return [{c: row[c] for c in cols} for row in self.summary(part)]

    def verdicts(self) -> list[Verdict]:
        """The rules of thumb judged on this result (:func:`digitlens.lab.verdicts.assess`)."""
        return assess(self)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self, *, with_summary: bool = True) -> dict[str, Any]:
        d = {"study": self.study, "lab_version": LAB_VERSION, "preset": self.preset,
             "parts": self.parts, "runs": self.runs, "bench": self.bench,
             "cached": self.cached, "computed": self.computed, "seconds": self.seconds}
        if with_summary:
            d["summary"] = plain({p: self.summary(p) for p in self.parts})
            d["verdicts"] = [v.to_dict() for v in self.verdicts()]
            # with its 28x28 image, for a web page
            d["output_example"] = plain(output_example(self))
        return d

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(**kwargs), allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StudyResult":
        if d.get("lab_version") != LAB_VERSION:
            raise LabError(f"result has lab version {d.get('lab_version')!r}; this digitlens "
                           f"reads version {LAB_VERSION}")
        return cls(study=d["study"], preset=d["preset"], parts=d["parts"], runs=d["runs"],
                   bench=d.get("bench"), cached=d.get("cached", []),
                   computed=d.get("computed", []), seconds=d.get("seconds", 0.0))

    # -- notebooks -----------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        out = [f"<h4>activation lab: {html.escape(self.study)} study, "
               f"{html.escape(str(self.preset.get('name')))} preset, {len(self.runs)} runs</h4>"]
        verdicts = self.verdicts()
        if verdicts:
            out.append(_html_table([{"rule of thumb": v.rule, "verdict": v.status,
                                     "in numbers": v.text} for v in verdicts]))
        for part in self.parts:
            out.append(f"<h5>{html.escape(part)}</h5>")
            out.append(_html_table(self.table(part)))
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"StudyResult(study={self.study!r}, preset={self.preset.get('name')!r}, "
                f"runs={len(self.runs)}, parts={list(self.parts)})")


def _html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r[c]))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def load_result(path: str | os.PathLike) -> StudyResult:
    """Read a ``result.json`` written by :func:`digitlens.view.report.write_report`."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as e:
        raise LabError(f"{path} is not a lab result (invalid JSON: {e})") from None
    return StudyResult.from_dict(d)
