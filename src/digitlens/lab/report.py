"""The activation lab's verdicts and its Markdown report.

Each rule of thumb is stated, the measurement that tests it is named, and a verdict is **computed
from the study's numbers** with the decision rules written below (never typed in):

- ``"supported"`` — the data agrees;
- ``"supported only when"`` — the data agrees under a condition it names (narrow layers, counting
  epochs rather than compute, one of the two comparisons, ...);
- ``"not supported here"`` — the data disagrees, on these digits with this budget;
- ``"inconclusive"`` — the study lacks the runs (or no run reached the target).

Seeds are the noise.  Two means over seeds differ only if Welch's t-test says so at the 5%
level, Bonferroni-corrected for the number of comparisons the verdict makes, and the gap is at
least :data:`MIN_EFFECT`; when too few seeds make that test blind to gaps that matter, the
verdict is "inconclusive" rather than "not supported".  Wall-clock comparisons need a
:data:`TIME_MARGIN` gap, as timings on a shared machine are noisy.

:func:`assess` returns the verdicts; :func:`to_markdown` and :func:`write_report` write the report
(Markdown, PNG figures from :mod:`digitlens.view.lab_figures`, and ``result.json``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .experiments import HEADS, LabError, StudyResult, fmt, grad_ratio, output_example

#: smallest accuracy gap (fraction of digits) that counts as a difference
MIN_EFFECT = 0.01
#: family-wise significance level of each verdict's comparisons
ALPHA = 0.05
#: relative gap in wall-clock time that counts as faster
TIME_MARGIN = 0.10
#: a layer "reaches its accuracy" at the narrowest width within this of the best mean accuracy
WIDTH_SLACK = 0.02

STATUSES = ("supported", "supported only when", "not supported here", "inconclusive")


@dataclass
class Verdict:
    """One rule of thumb judged on the data."""

    id: str
    rule: str
    measurement: str
    status: str
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    headline: str = ""  # the verdict's first sentence (the text starts with it)

    def __post_init__(self) -> None:
        assert self.status in STATUSES, self.status
        if not self.headline:
            self.headline = self.text.split(". ")[0].rstrip(".") + "."

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.bool_):
        return bool(o)
    return o


# --------------------------------------------------------------------------------- statistics


def _accs(runs: list[dict], **where) -> list[float]:
    return [r["final"]["accuracy"] for r in runs
            if all(r["spec"][k] == v for k, v in where.items())]


def _mean(v):
    return float(np.mean(v)) if len(v) else None


class Comparison(NamedTuple):
    """Mean difference of two groups of seeds, whether it counts, and the smallest gap that
    would have counted (the test's resolution)."""

    diff: float
    differs: bool
    threshold: float


def compare(a: list[float], b: list[float], m: int = 1, alpha: float = ALPHA) -> Comparison:
    """Welch's t-test of ``mean(a) - mean(b)`` at level ``alpha / m`` (Bonferroni: ``m`` is the
    number of comparisons the verdict makes), and the gap must be at least :data:`MIN_EFFECT`.

    With one seed per group there is no noise estimate and nothing counts; with no spread at all
    (e.g. every seed stuck at chance) any gap of :data:`MIN_EFFECT` counts.
    """
    from scipy import stats

    if len(a) < 1 or len(b) < 1:
        return Comparison(math.nan, False, math.inf)
    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return Comparison(diff, False, math.inf)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Comparison(diff, abs(diff) >= MIN_EFFECT, MIN_EFFECT)
    # Welch-Satterthwaite degrees of freedom (zero-variance groups contribute none)
    den = sum(v * v / (n - 1) for v, n in ((va, len(a)), (vb, len(b))) if v > 0)
    df = (va + vb) ** 2 / den
    threshold = max(MIN_EFFECT, float(stats.t.ppf(1 - alpha / (2 * m), df)) * se)
    return Comparison(diff, abs(diff) >= threshold, threshold)


def _pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def _pts(v: float) -> str:
    """An accuracy difference in percentage points."""
    return f"{100 * v:.1f} points"


def _secs(v: float) -> str:
    return f"{1000 * v:.0f} ms" if v < 1 else f"{v:.1f} s"


def _widths_phrase(ws: list[int], all_ws: list[int]) -> str:
    ws = sorted(ws)
    if not ws:
        return "no width"
    if ws == sorted(all_ws):
        return "every width"
    if ws == sorted(all_ws)[:len(ws)]:
        return f"{ws[-1]} units or fewer" if len(ws) > 1 else f"{ws[0]} units"
    if ws == sorted(all_ws)[-len(ws):]:
        return f"{ws[0]} units or more"
    return ", ".join(map(str, ws[:-1])) + f" and {ws[-1]} units" if len(ws) > 1 \
        else f"{ws[0]} units"


def _join(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _row(rows: list[dict], **where) -> dict | None:
    for r in rows:
        if all(r[k] == v for k, v in where.items()):
            return r
    return None


# ------------------------------------------------------------------------------------ rules


RULES = {
    "speed": ("ReLU trains faster than sigmoid or tanh because it computes less "
              "(especially in backpropagation)."),
    "width": ("ReLU is \"inefficient\" (no output for negative inputs), so you need more ReLU "
              "units than sigmoid or tanh units."),
    "range": "Sigmoid's output is 0..1 (it maps to logical levels); tanh's is -1..+1.",
    "output": "Don't use ReLU at the output layer.",
    "depth": ("Sigmoid's gradients vanish in deeper networks, so deep sigmoid networks train "
              "badly."),
}


def assess(result: StudyResult) -> list[Verdict]:
    """Every rule of thumb that ``result`` has the runs to judge, in :data:`RULES` order."""
    out = []
    for fn in (_speed, _width, _range, _output, _depth):
        v = fn(result)
        if v is not None:
            out.append(v)
    return out


def _epochs_to_target(runs: list[dict], activation: str) -> list[float]:
    """Per seed, epochs until the target accuracy; a run that never got there counts as one
    epoch beyond its budget (it ranks after every run that did)."""
    return [r["reach"]["epochs"] if r["reach"]["epochs"] is not None else r["spec"]["epochs"] + 1
            for r in runs if r["spec"]["activation"] == activation]


def _fewer(a: list[float], b: list[float], m: int) -> bool:
    """One-sided Mann-Whitney U test that ``a`` tends to be smaller than ``b`` at level 0.05/m
    (ranks, because runs that never reached the target have no number of epochs)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2 or max(a) == min(a) == max(b) == min(b):
        return False
    return bool(stats.mannwhitneyu(a, b, alternative="less").pvalue < ALPHA / m)


def _speed(res: StudyResult) -> Verdict | None:
    """Sooner = fewer epochs to the target *and* less time, where time is epochs x the cost of
    one epoch measured in the interleaved benchmark (all activations timed turn by turn in the
    same minutes, so a busy machine slows them alike).  Cheaper = at least :data:`TIME_MARGIN`
    less time per call / per epoch."""
    if "main" not in res.parts:
        return None
    rows = res.summary("main")
    acts = [a for a in ("relu", "sigmoid", "tanh") if _row(rows, activation=a)]
    if "relu" not in acts or len(acts) < 2:
        return None
    others = [a for a in acts if a != "relu"]
    p = res.preset
    target = _pct(p["target_accuracy"], 0)
    measurement = (f"One network ({p['main_depth']} hidden layers of {p['main_width']} units), "
                   f"same digits, seeds and budget: epochs until the test accuracy first reaches "
                   f"{target}; the time of one training step and of the activation's forward and "
                   "backward alone (benchmarked turn by turn on the real layer size); the share "
                   "of training time spent inside the activation.")
    steps_per_epoch = math.ceil(p["n_train"] / p["batch_size"])
    shape = f"{p['batch_size']}x{p['main_width']}"
    bench = res.bench or {}
    act_us = {a: bench.get("results", {}).get(a, {}).get(shape) for a in acts}
    step_us = (bench.get("steps") or {}).get("step_us", {})
    if any(act_us[a] is None for a in acts) or any(a not in step_us for a in acts):
        return Verdict("speed", RULES["speed"], measurement, "inconclusive",
                       "The result has no benchmark of these activations at this size.", {},
                       ["learning_curves", "speed"])
    per = {}
    for a in acts:
        r = _row(rows, activation=a)
        epoch_s = step_us[a] * 1e-6 * steps_per_epoch
        reached = r["reached"] * 2 >= r["seeds"]
        per[a] = {"epochs_to_target": r["epochs_to_target"] if reached else None,
                  "reached": r["reached"], "seeds": r["seeds"],
                  "epoch_seconds": epoch_s,
                  "seconds_to_target": r["epochs_to_target"] * epoch_s if reached else None,
                  "measured_seconds_to_target": r["seconds_to_target"],
                  "activation_share": r["activation_share"],
                  "activation_us": act_us[a]["forward_us"] + act_us[a]["backward_us"],
                  "forward_us": act_us[a]["forward_us"], "backward_us": act_us[a]["backward_us"],
                  "step_us": step_us[a], "accuracy": r["accuracy"]}
    ev = {"target": p["target_accuracy"], "bench_shape": shape, "runs": per,
          "steps_per_epoch": steps_per_epoch}
    relu = per["relu"]
    if relu["epochs_to_target"] is None and all(per[o]["epochs_to_target"] is None
                                                for o in others):
        return Verdict("speed", RULES["speed"], measurement, "inconclusive",
                       f"No activation reached {target} in most seeds within the budget; rerun "
                       "with more epochs.", ev, ["learning_curves", "speed"])
    cheaper = [o for o in others
               if per[o]["activation_us"] >= (1 + TIME_MARGIN) * relu["activation_us"]]
    cheaper_step = [o for o in others if per[o]["step_us"] >= (1 + TIME_MARGIN) * relu["step_us"]]
    dearer_step = [o for o in others if relu["step_us"] >= (1 + TIME_MARGIN) * per[o]["step_us"]]
    epochs = {a: _epochs_to_target(res.runs_in("main"), a) for a in acts}
    fewer_epochs, more_epochs, n_seeds = [], [], min(len(v) for v in epochs.values())
    for o in others:
        if _fewer(epochs["relu"], epochs[o], len(others)):
            fewer_epochs.append(o)
        elif _fewer(epochs[o], epochs["relu"], len(others)):
            more_epochs.append(o)
    # sooner in time = epochs x the cost of an epoch: fewer epochs at no dearer step, or a
    # cheaper step at no more epochs
    sooner = [o for o in others if (o in fewer_epochs and o not in dearer_step)
              or (o in cheaper_step and o not in more_epochs)]
    ev.update({"relu_sooner_than": sooner, "relu_fewer_epochs_than": fewer_epochs,
               "relu_more_epochs_than": more_epochs, "relu_activation_cheaper_than": cheaper,
               "relu_step_cheaper_than": cheaper_step, "epochs_to_target_per_seed": epochs})

    def reach_phrase(a):
        q = per[a]
        if q["epochs_to_target"] is None:
            return f"{a} did not reach it in most seeds"
        return (f"{a} after {q['epochs_to_target']:.3g} epochs ≈ "
                f"{_secs(q['seconds_to_target'])}")

    sentences = [
        f"Median time to {target} test accuracy: " + "; ".join(reach_phrase(a) for a in acts)
        + ".",
        f"The activation alone (forward + backward on a {shape} batch): "
        + "; ".join(f"{a} {per[a]['forward_us']:.1f} + {per[a]['backward_us']:.1f} µs"
                    for a in acts)
        + " (" + ", ".join(f"{o} {per[o]['activation_us'] / relu['activation_us']:.2f}×, "
                           f"backward {per[o]['backward_us'] / relu['backward_us']:.2f}×"
                           for o in others) + " ReLU's).",
        "A whole training step: " + ", ".join(f"{a} {per[a]['step_us']:.0f} µs" for a in acts)
        + " — the activation is only "
        + ", ".join(f"{_pct(per[a]['activation_share'])} ({a})" for a in acts)
        + " of training time; the matrix products dominate.",
    ]
    def epoch_phrase(o):
        if o in fewer_epochs:
            return f"ReLU needed fewer than {o}"
        if o in more_epochs:
            return f"ReLU needed more than {o}"
        return f"ReLU was within seed noise of {o}"

    sentences.insert(1, "In epochs to the target (seed by seed, Mann-Whitney test): "
                     + "; ".join(epoch_phrase(o) for o in others) + ".")
    not_cheaper = [o for o in others if o not in cheaper]
    if not_cheaper:
        sentences.append(f"ReLU's arithmetic is not measurably cheaper than {_join(not_cheaper)}"
                         " here.")
    if not sooner and not more_epochs and not cheaper_step and n_seeds < 4:
        status = "inconclusive"
        lead = (f"Inconclusive: with {n_seeds} seeds, differences in epochs to the target cannot "
                "be told apart from seed noise; run more seeds (--seeds 4 or more).")
    elif not sooner:
        status = "not supported here"
        lead = f"Not supported here: ReLU did not reach {target} sooner than {_join(others)}."
    elif set(sooner) == set(others) and set(cheaper_step) == set(others):
        status = "supported"
        lead = "Supported: ReLU reached the target sooner and each step costs measurably less."
    else:
        status = "supported only when"
        conds = []
        if set(sooner) != set(others):
            rest = [o for o in others if o not in sooner]
            conds.append(f"compared with {_join(sooner)} (not {_join(rest)})")
        if not set(sooner) <= set(cheaper_step):
            conds.append("“faster” means fewer epochs to the target, not cheaper computation — "
                         f"a training step costs about the same (within {_pct(TIME_MARGIN, 0)})")
        lead = "Supported only when " + " and ".join(conds) + "."
    return Verdict("speed", RULES["speed"], measurement, status, lead + " " + " ".join(sentences),
                   ev, ["learning_curves", "speed"], headline=lead)


def _width(res: StudyResult) -> Verdict | None:
    if "width" not in res.parts:
        return None
    runs = res.runs_in("width")
    widths = sorted({r["spec"]["width"] for r in runs})
    acts = sorted({r["spec"]["activation"] for r in runs})
    if "relu" not in acts or not ({"sigmoid", "tanh"} & set(acts)):
        return None
    others = [a for a in ("sigmoid", "tanh") if a in acts]
    measurement = ("Test accuracy of one hidden layer of each width "
                   f"{{{', '.join(map(str, widths))}}} for every activation (mean over seeds), "
                   "the fraction of ReLU outputs that are exactly 0 on a digit, and the dead "
                   "units (no output for any test digit).")
    rows = res.summary("width")
    table = {a: {w: _row(rows, activation=a, width=w)["accuracy"] for w in widths} for a in acts}
    worse, better, gaps, resolution = {}, {}, {}, []
    m = len(widths) * len(others)
    for o in others:
        worse[o], better[o], gaps[o] = [], [], {}
        for w in widths:
            c = compare(_accs(runs, activation="relu", width=w),
                        _accs(runs, activation=o, width=w), m)
            gaps[o][w] = c.diff
            resolution.append(c.threshold)
            if c.differs and c.diff < 0:
                worse[o].append(w)
            elif c.differs and c.diff > 0:
                better[o].append(w)
    best = max(v for a in acts for v in table[a].values())
    level = best - WIDTH_SLACK
    needed = {a: next((w for w in widths if table[a][w] >= level), None) for a in acts}
    relu_rows = {w: _row(rows, activation="relu", width=w) for w in widths}
    ev = {"accuracy": table, "relu_minus": gaps, "relu_worse_at": worse, "relu_better_at": better,
          "level": level, "width_needed": needed,
          "relu_zero_fraction": {w: relu_rows[w]["zero_fraction"] for w in widths},
          "relu_dead_fraction": {w: relu_rows[w]["dead_fraction"] for w in widths}}
    parts = []
    for o in others:
        bits = []
        if worse[o]:
            bits.append(f"less accurate at {_widths_phrase(worse[o], widths)} (by up to "
                        f"{_pts(-min(gaps[o][w] for w in worse[o]))})")
        if better[o]:
            bits.append(f"more accurate at {_widths_phrase(better[o], widths)} (by up to "
                        f"{_pts(max(gaps[o][w] for w in better[o]))})")
        rest = [w for w in widths if w not in worse[o] and w not in better[o]]
        if rest:
            bits.append(f"as accurate within seed noise at {_widths_phrase(rest, widths)}")
        parts.append(f"against {o}, ReLU was " + ", ".join(bits))
    need = "; ".join(f"{a} {needed[a] if needed[a] else f'more than {widths[-1]}'}" for a in acts)
    zero = np.mean([relu_rows[w]["zero_fraction"] for w in widths])
    dead_w = max(widths, key=lambda w: relu_rows[w]["dead_fraction"])
    facts = (f"Units needed to come within {_pct(WIDTH_SLACK, 0)} of the best accuracy "
             f"({_pct(best)}): {need}. On a typical digit {_pct(zero, 0)} of ReLU units output "
             f"exactly 0, and up to {_pct(relu_rows[dead_w]['dead_fraction'], 0)} of them are "
             f"dead (silent on every test digit, at width {dead_w}).")
    blind = float(np.median(resolution))
    ev["resolution"] = blind
    if not any(worse.values()) and not any(better.values()) and blind > 2 * MIN_EFFECT:
        status = "inconclusive"
        lead = (f"Inconclusive: with {res.preset['seeds']} seed(s) per configuration only gaps "
                f"above about {_pts(blind)} stand out from seed noise, and none did; run more "
                "seeds (--seeds).")
    elif not any(worse.values()):
        status = "not supported here"
        lead = "Not supported here: " + "; ".join(parts) + "."
    elif all(worse[o] == widths for o in others):
        status = "supported"
        lead = "Supported: " + "; ".join(parts) + "."
    else:
        status = "supported only when"
        conds = [f"the layer has {_widths_phrase(worse[o], widths)} (against {o})"
                 for o in others if worse[o]]
        lead = "Supported only when " + " or ".join(conds) + ": " + "; ".join(parts) + "."
    return Verdict("width", RULES["width"], measurement, status, lead + " " + facts, ev,
                   ["accuracy_vs_width", "dead_units"], headline=lead)


def _range(res: StudyResult) -> Verdict | None:
    if "main" not in res.parts:
        return None
    runs = res.runs_in("main")
    stats = {}
    for a in ("sigmoid", "tanh", "relu"):
        rs = [r for r in runs if r["spec"]["activation"] == a]
        if not rs:
            continue
        layers = [layer for r in rs for layer in r["hidden"]["layers"]]
        stats[a] = {"min": min(layer["histogram"]["quantiles"]["0"] for layer in layers),
                    "max": max(layer["histogram"]["quantiles"]["100"] for layer in layers),
                    "mean": float(np.mean([layer["histogram"]["mean"] for layer in layers])),
                    "near_ends": (float(np.mean([layer["near_ends_fraction"] for layer in layers]))
                                  if "near_ends_fraction" in layers[0] else None),
                    "accuracy": float(np.mean([r["final"]["accuracy"] for r in rs]))}
    if "sigmoid" not in stats or "tanh" not in stats:
        return None
    s, t = stats["sigmoid"], stats["tanh"]
    measurement = ("Every hidden unit's output on every test digit, in the main comparison: "
                   "smallest and largest value, mean, and how many outputs sit within 5% of an "
                   "end of the range (a \"logical level\").")
    ok = s["min"] >= 0 and s["max"] <= 1 and t["min"] >= -1 and t["max"] <= 1
    facts = (f"Sigmoid outputs ranged over [{s['min']:.3g}, {s['max']:.3g}] with mean "
             f"{s['mean']:.2f} (always positive, not centred); tanh over [{t['min']:.3g}, "
             f"{t['max']:.3g}] with mean {t['mean']:.2f}. Near an end (a logical level): "
             f"{_pct(s['near_ends'])} of sigmoid outputs, {_pct(t['near_ends'])} of tanh outputs.")
    if "relu" in stats:
        facts += f" For contrast, ReLU outputs reached {stats['relu']['max']:.3g} (no upper bound)."
    if not ok:
        status, lead = "not supported here", "Not supported here: outputs left the stated range."
    elif s["near_ends"] >= 0.5 and t["near_ends"] >= 0.5:
        status, lead = "supported", "Supported: the ranges hold and most outputs sit at a level."
    else:
        status = "supported only when"
        lead = ("Supported only when read as the output range: the ranges hold exactly, but most "
                "hidden outputs are graded values between the ends, not logical levels.")
    return Verdict("range", RULES["range"], measurement, status, lead + " " + facts,
                   {"stats": stats}, ["activation_histograms"], headline=lead)


def _output(res: StudyResult) -> Verdict | None:
    if "output" not in res.parts:
        return None
    runs = res.runs_in("output")
    rows = res.summary("output")
    heads = [r["head"] for r in rows]
    relu_heads = [h for h in heads if HEADS[h][1] == "relu"]
    if "softmax_ce" not in heads or not relu_heads:
        return None
    ref = _accs(runs, head="softmax_ce")
    measurement = ("The same ReLU hidden layer with each output layer: "
                   + ", ".join(HEADS[h][0] for h in heads) + ". Test accuracy, output units that "
                   "are dead (0 for every digit) and whether they recover, digits whose outputs "
                   "tie (no answer), digits whose correct unit is at 0 (no gradient to fix it), "
                   "and whether the scores are probabilities.")
    serious, mild, ev = {}, {}, {"heads": {}}
    for h in relu_heads:
        r = _row(rows, head=h)
        hr = [x for x in runs if x["spec"]["head"] == h]
        d, differs, _ = compare(_accs(runs, head=h), ref, len(relu_heads))
        died = sum(len(x["output"]["dead_ever"]) for x in hr)
        recovered = sum(len(x["output"]["recovered"]) for x in hr)
        serious[h], mild[h] = [], []
        if differs and d < 0:
            serious[h].append(f"accuracy {_pct(r['accuracy'])} vs {_pct(_mean(ref))} with "
                              "softmax + cross-entropy")
        if died:
            serious[h].append(f"{died} output unit(s) died across {len(hr)} seeds and "
                              f"{recovered} recovered (at the end {r['dead_outputs']:.2g} of 10 "
                              "per network)")
        if r["tie_fraction"] > 0:
            serious[h].append(f"{_pct(r['tie_fraction'])} of digits got tied top scores "
                              "(typically all zeros), so argmax just names the first tied digit")
        if r["true_off_fraction"] > 0:
            serious[h].append(f"on {_pct(r['true_off_fraction'])} of digits the correct unit "
                              "is at 0, so the error sends it no gradient")
        if r["sum_deviation"] > 0.01 or r["outside_01_fraction"] > 0:
            mild[h].append(f"the scores are not probabilities (they sum to 1 ± "
                           f"{r['sum_deviation']:.2f} on average and reach {r['score_max']:.2f})")
        ev["heads"][h] = {"accuracy": r["accuracy"], "accuracy_gap": d, "significant": differs,
                          "dead_ever": died, "recovered": recovered,
                          "tie_fraction": r["tie_fraction"],
                          "true_off_fraction": r["true_off_fraction"],
                          "sum_deviation": r["sum_deviation"], "score_max": r["score_max"],
                          "problems": serious[h] + mild[h]}
    ev["softmax_ce_accuracy"] = _mean(ref)
    example = output_example(res)
    ev["example"] = ({k: v for k, v in example.items() if k != "image"}
                     if example is not None else None)
    details = " ".join(f"{HEADS[h][0]}: " + ("; ".join(serious[h] + mild[h]) or "no problem seen")
                       + "." for h in relu_heads)
    if example is not None:
        e = example
        fh = e["heads"][e["failing_head"]]
        sm = e["heads"]["softmax_ce"]
        details += (f" Example: lab test digit #{e['test_index']} (a {e['label']}): softmax + "
                    f"cross-entropy says {sm['prediction']} ({_pct(max(sm['scores']), 0)}); "
                    f"{HEADS[e['failing_head']][0]} outputs "
                    + ("all zeros" if max(fh["raw"]) == 0 else
                       "[" + ", ".join(f"{v:.2f}" for v in fh["scores"]) + "]")
                    + f", so it answers {fh['prediction']}"
                    + (" only because argmax picks the first of the tied digits."
                       if fh["tie"] else "."))
    failing = [h for h in relu_heads if serious[h]]
    if len(failing) == len(relu_heads):
        status, lead = "supported", "Supported: every ReLU output layer failed in measurable ways."
    elif failing:
        status = "supported only when"
        lead = (f"Supported only when the ReLU output is trained with "
                f"{_join([HEADS[h][0] for h in failing])}; "
                + _join([HEADS[h][0] for h in relu_heads if h not in failing])
                + " showed no serious failure here.")
    elif any(mild.values()):
        status = "supported only when"
        lead = "Supported only when you need probabilities: accuracy held up."
    else:
        status = "not supported here"
        lead = "Not supported here: the ReLU output layers trained as well as softmax."
    return Verdict("output", RULES["output"], measurement, status, lead + " " + details, ev,
                   ["output_layers"], headline=lead)


def _depth(res: StudyResult) -> Verdict | None:
    if "depth" not in res.parts:
        return None
    runs = res.runs_in("depth")
    depths = sorted({r["spec"]["depth"] for r in runs})
    acts = sorted({r["spec"]["activation"] for r in runs})
    if "sigmoid" not in acts or len(depths) < 2:
        return None
    others = [a for a in ("relu", "tanh") if a in acts]
    d0, dmax = depths[0], depths[-1]
    measurement = (f"Networks of {d0} to {dmax} hidden layers of {res.preset['depth_width']} "
                   "units: test accuracy, and the size of the gradient reaching the first layer "
                   "relative to the output layer's (root-mean-square per weight, at "
                   "initialisation).")

    def ratio(a, d, rs=runs):
        vals = [grad_ratio(r, 0) for r in rs if r["spec"]["activation"] == a
                and r["spec"]["depth"] == d]
        vals = [v for v in vals if v]
        return float(np.exp(np.mean(np.log(vals)))) if vals else None

    acc = {a: {d: _mean(_accs(runs, activation=a, depth=d)) for d in depths} for a in acts}
    ratios = {a: {d: ratio(a, d) for d in depths} for a in acts}

    def drops(a, rs=runs):
        """depth -> accuracy lost against the shallowest network, where the loss counts."""
        out = {}
        for d in depths[1:]:
            c = compare(_accs(rs, activation=a, depth=d), _accs(rs, activation=a, depth=d0),
                        len(depths) - 1)
            if c.differs and c.diff < 0:
                out[d] = -c.diff
        return out

    def drop_depth(a, rs=runs):
        lost = drops(a, rs)
        return (min(lost), lost[min(lost)]) if lost else (None, None)

    bite, bite_drop = drop_depth("sigmoid")
    sigmoid_lost = drops("sigmoid")
    others_drop = {o: drop_depth(o)[0] for o in others}
    ev = {"accuracy": acc, "grad_ratio_init": ratios, "sigmoid_bites_at": bite,
          "sigmoid_lost": sigmoid_lost, "others_drop_at": others_drop}
    lost_phrase = ", ".join(f"{_pts(v)} at {d} hidden layers" for d, v in sigmoid_lost.items())
    facts = (f"First-layer / output-layer gradient at depth {dmax}: "
             + ", ".join(f"{a} {fmt(ratios[a][dmax])}" for a in acts)
             + f" (at depth {d0}: " + ", ".join(f"{a} {fmt(ratios[a][d0])}" for a in acts)
             + "). Accuracy by depth " + "; ".join(
                 f"{a} " + " → ".join(_pct(acc[a][d], 0) for d in depths) for a in acts) + ".")
    compare_note = ""
    if "depth_compare" in res.parts:
        cruns = res.runs_in("depth_compare")
        opt = cruns[0]["spec"]["optimizer"]
        c = _mean(_accs(cruns, activation="sigmoid", depth=dmax))
        if c is not None:
            cbite, _ = drop_depth("sigmoid", cruns)
            ev["compare"] = {"optimizer": opt, "sigmoid_accuracy_at_max_depth": c,
                             "sigmoid_bites_at": cbite}
            compare_note = (f" With {opt}, which rescales every weight's step by its own gradient "
                            f"history, sigmoid at depth {dmax} reached {_pct(c, 0)} instead of "
                            f"{_pct(acc['sigmoid'][dmax], 0)}"
                            + (f"; it still lost accuracy from {cbite} hidden layers on" if cbite
                               else "; its loss with depth is not significant") + ".")
    smaller = all(ratios["sigmoid"][dmax] is not None and ratios[o][dmax] is not None
                  and ratios["sigmoid"][dmax] * 10 <= ratios[o][dmax] for o in others)
    if bite is not None and smaller and all(others_drop[o] is None or others_drop[o] > bite
                                            for o in others):
        status = "supported" if bite == depths[1] else "supported only when"
        lead = ((f"Supported: compared with {d0} hidden layer(s), sigmoid lost {lost_phrase} "
                 f"while {_join(others)} did not, and its gradient fades on the way back.")
                if status == "supported" else
                (f"Supported only when the network has {bite} or more hidden layers: sigmoid "
                 f"lost {lost_phrase} (against {d0}) while {_join(others)} did not."))
    elif smaller:
        status = "supported only when"
        lead = ("Supported only when you look at the gradients: sigmoid's gradient does fade "
                "on its way back, but its accuracy held up with this budget.")
    else:
        status = "not supported here"
        lead = "Not supported here: sigmoid's gradients did not fade more than the others'."
    return Verdict("depth", RULES["depth"], measurement, status,
                   lead + " " + facts + compare_note, ev, ["gradient_norms"], headline=lead)


# ----------------------------------------------------------------------------------- report


def _md_cell(v: Any) -> str:
    return (fmt(v) if not isinstance(v, str) else v).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_md_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def verdict_rows(verdicts: list[Verdict]) -> list[dict[str, str]]:
    return [{"#": str(i + 1), "rule of thumb": v.rule, "verdict": f"**{v.status}**",
             "in numbers": v.text} for i, v in enumerate(verdicts)]


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
        f"{len(result.runs)} training runs on {p['n_train']:,} of the bundled training digits, "
        f"tested on {p['n_test']:,} held-out digits; {p['epochs']} epochs of {p['optimizer']} "
        f"(learning rate {p['lr']}, momentum {p['momentum']}, batches of {p['batch_size']}), "
        f"{p['seeds']} seeds per configuration. Target accuracy {_pct(p['target_accuracy'], 0)}. "
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
    from .._util.files import atomic_write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verdicts = assess(result)
    figs: dict[str, str] = {}
    if figures:
        from ..view.figures.lab import save_figures

        figs = {name: path.name for name, path in save_figures(result, out).items()}
    md = to_markdown(result, figs, verdicts)
    atomic_write(out / "report.md", lambda f: f.write(md.encode("utf-8")))
    d = result.to_dict(with_summary=True)
    blob = json.dumps(d, allow_nan=False).encode("utf-8")
    atomic_write(out / "result.json", lambda f: f.write(blob))
    return out / "report.md"


def load_result(path: str | os.PathLike) -> StudyResult:
    """Read a ``result.json`` written by :func:`write_report`."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as e:
        raise LabError(f"{path} is not a lab result (invalid JSON: {e})") from None
    return StudyResult.from_dict(d)
