"""Rules 2, 3 and 5, on the hidden layers: width ("you need more ReLU units"), range (sigmoid's
0..1 and tanh's -1..+1 as "logical levels") and depth ("sigmoid's gradients vanish")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..measure import grad_ratio
from ..words import fmt, join, pct, pts, widths_phrase
from .base import MIN_EFFECT, RULES, WIDTH_SLACK, Verdict, accuracies, compare, find_row, mean_of

if TYPE_CHECKING:
    from ..result import StudyResult


def judge_width(res: StudyResult) -> Verdict | None:
    """The width verdict: is ReLU less accurate than sigmoid or tanh at the same width?"""
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
    table = {a: {w: find_row(rows, activation=a, width=w)["accuracy"] for w in widths}
             for a in acts}
    worse, better, gaps, resolution = {}, {}, {}, []
    m = len(widths) * len(others)
    for o in others:
        worse[o], better[o], gaps[o] = [], [], {}
        for w in widths:
            c = compare(accuracies(runs, activation="relu", width=w),
                        accuracies(runs, activation=o, width=w), m)
            gaps[o][w] = c.diff
            resolution.append(c.threshold)
            if c.differs and c.diff < 0:
                worse[o].append(w)
            elif c.differs and c.diff > 0:
                better[o].append(w)
    best = max(v for a in acts for v in table[a].values())
    level = best - WIDTH_SLACK
    needed = {a: next((w for w in widths if table[a][w] >= level), None) for a in acts}
    relu_rows = {w: find_row(rows, activation="relu", width=w) for w in widths}
    ev = {"accuracy": table, "relu_minus": gaps, "relu_worse_at": worse, "relu_better_at": better,
          "level": level, "width_needed": needed,
          "relu_zero_fraction": {w: relu_rows[w]["zero_fraction"] for w in widths},
          "relu_dead_fraction": {w: relu_rows[w]["dead_fraction"] for w in widths}}
    parts = _against(others, worse, better, gaps, widths)
    need = "; ".join(f"{a} {needed[a] if needed[a] else f'more than {widths[-1]}'}" for a in acts)
    zero = np.mean([relu_rows[w]["zero_fraction"] for w in widths])
    dead_w = max(widths, key=lambda w: relu_rows[w]["dead_fraction"])
    facts = (f"Units needed to come within {pct(WIDTH_SLACK, 0)} of the best accuracy "
             f"({pct(best)}): {need}. On a typical digit {pct(zero, 0)} of ReLU units output "
             f"exactly 0, and up to {pct(relu_rows[dead_w]['dead_fraction'], 0)} of them are "
             f"dead (silent on every test digit, at width {dead_w}).")
    blind = float(np.median(resolution))
    ev["resolution"] = blind
    if not any(worse.values()) and not any(better.values()) and blind > 2 * MIN_EFFECT:
        status = "inconclusive"
        lead = (f"Inconclusive: with {res.preset['seeds']} seed(s) per configuration only gaps "
                f"above about {pts(blind)} stand out from seed noise, and none did; run more "
                "seeds (--seeds).")
    elif not any(worse.values()):
        status = "not supported here"
        lead = "Not supported here: " + "; ".join(parts) + "."
    elif all(worse[o] == widths for o in others):
        status = "supported"
        lead = "Supported: " + "; ".join(parts) + "."
    else:
        status = "supported only when"
        conds = [f"the layer has {widths_phrase(worse[o], widths)} (against {o})"
                 for o in others if worse[o]]
        lead = "Supported only when " + " or ".join(conds) + ": " + "; ".join(parts) + "."
    return Verdict("width", RULES["width"], measurement, status, lead + " " + facts, ev,
                   ["accuracy_vs_width", "dead_units"], headline=lead)


def _against(others, worse, better, gaps, widths) -> list[str]:
    """Per other activation: where ReLU was less accurate, more accurate, or within seed noise."""
    parts = []
    for o in others:
        bits = []
        if worse[o]:
            bits.append(f"less accurate at {widths_phrase(worse[o], widths)} (by up to "
                        f"{pts(-min(gaps[o][w] for w in worse[o]))})")
        if better[o]:
            bits.append(f"more accurate at {widths_phrase(better[o], widths)} (by up to "
                        f"{pts(max(gaps[o][w] for w in better[o]))})")
        rest = [w for w in widths if w not in worse[o] and w not in better[o]]
        if rest:
            bits.append(f"as accurate within seed noise at {widths_phrase(rest, widths)}")
        parts.append(f"against {o}, ReLU was " + ", ".join(bits))
    return parts


def judge_range(res: StudyResult) -> Verdict | None:
    """The range verdict: do sigmoid and tanh outputs stay in their ranges, at logical levels?"""
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
             f"{pct(s['near_ends'])} of sigmoid outputs, {pct(t['near_ends'])} of tanh outputs.")
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


def judge_depth(res: StudyResult) -> Verdict | None:
    """The depth verdict: does sigmoid lose accuracy with depth while its gradient fades?"""
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
    acc = {a: {d: mean_of(accuracies(runs, activation=a, depth=d)) for d in depths} for a in acts}
    ratios = {a: {d: _ratio(runs, a, d) for d in depths} for a in acts}
    bite = _drop_depth(runs, "sigmoid", depths)
    sigmoid_lost = _drops(runs, "sigmoid", depths)
    others_drop = {o: _drop_depth(runs, o, depths) for o in others}
    ev = {"accuracy": acc, "grad_ratio_init": ratios, "sigmoid_bites_at": bite,
          "sigmoid_lost": sigmoid_lost, "others_drop_at": others_drop}
    lost_phrase = ", ".join(f"{pts(v)} at {d} hidden layers" for d, v in sigmoid_lost.items())
    facts = (f"First-layer / output-layer gradient at depth {dmax}: "
             + ", ".join(f"{a} {fmt(ratios[a][dmax])}" for a in acts)
             + f" (at depth {d0}: " + ", ".join(f"{a} {fmt(ratios[a][d0])}" for a in acts)
             + "). Accuracy by depth " + "; ".join(
                 f"{a} " + " → ".join(pct(acc[a][d], 0) for d in depths) for a in acts) + ".")
    compare_note = ""
    if "depth_compare" in res.parts:
        cruns = res.runs_in("depth_compare")
        opt = cruns[0]["spec"]["optimizer"]
        c = mean_of(accuracies(cruns, activation="sigmoid", depth=dmax))
        if c is not None:
            cbite = _drop_depth(cruns, "sigmoid", depths)
            ev["compare"] = {"optimizer": opt, "sigmoid_accuracy_at_max_depth": c,
                             "sigmoid_bites_at": cbite}
            compare_note = (f" With {opt}, which rescales every weight's step by its own gradient "
                            f"history, sigmoid at depth {dmax} reached {pct(c, 0)} instead of "
                            f"{pct(acc['sigmoid'][dmax], 0)}"
                            + (f"; it still lost accuracy from {cbite} hidden layers on" if cbite
                               else "; its loss with depth is not significant") + ".")
    # the decision rule: sigmoid's gradient reaching the first layer is 10x smaller than the
    # others', and it lost accuracy at a depth where the others did not
    smaller = all(ratios["sigmoid"][dmax] is not None and ratios[o][dmax] is not None
                  and ratios["sigmoid"][dmax] * 10 <= ratios[o][dmax] for o in others)
    if bite is not None and smaller and all(others_drop[o] is None or others_drop[o] > bite
                                            for o in others):
        status = "supported" if bite == depths[1] else "supported only when"
        lead = ((f"Supported: compared with {d0} hidden layer(s), sigmoid lost {lost_phrase} "
                 f"while {join(others)} did not, and its gradient fades on the way back.")
                if status == "supported" else
                (f"Supported only when the network has {bite} or more hidden layers: sigmoid "
                 f"lost {lost_phrase} (against {d0}) while {join(others)} did not."))
    elif smaller:
        status = "supported only when"
        lead = ("Supported only when you look at the gradients: sigmoid's gradient does fade "
                "on its way back, but its accuracy held up with this budget.")
    else:
        status = "not supported here"
        lead = "Not supported here: sigmoid's gradients did not fade more than the others'."
    return Verdict("depth", RULES["depth"], measurement, status,
                   lead + " " + facts + compare_note, ev, ["gradient_norms"], headline=lead)


def _ratio(runs: list[dict], a: str, d: int) -> float | None:
    """Geometric mean over seeds of the first/output-layer gradient ratio at initialisation."""
    vals = [grad_ratio(r, 0) for r in runs if r["spec"]["activation"] == a
            and r["spec"]["depth"] == d]
    vals = [v for v in vals if v]
    return float(np.exp(np.mean(np.log(vals)))) if vals else None


def _drops(runs: list[dict], a: str, depths: list[int]) -> dict[int, float]:
    """depth -> accuracy lost against the shallowest network, where the loss counts."""
    out = {}
    for d in depths[1:]:
        c = compare(accuracies(runs, activation=a, depth=d),
                    accuracies(runs, activation=a, depth=depths[0]), len(depths) - 1)
        if c.differs and c.diff < 0:
            out[d] = -c.diff
    return out


def _drop_depth(runs: list[dict], a: str, depths: list[int]) -> int | None:
    """The shallowest depth at which activation ``a`` lost accuracy, or None."""
    lost = _drops(runs, a, depths)
    return min(lost) if lost else None
