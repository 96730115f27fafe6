"""Rule 1, speed: "ReLU trains faster than sigmoid or tanh because it computes less".

Sooner = fewer epochs to the target *and* less time, where time is epochs x the cost of one
epoch measured in the interleaved benchmark (all activations timed turn by turn in the same
minutes, so a busy machine slows them alike).  Cheaper = at least :data:`TIME_MARGIN` less time
per call / per epoch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..words import join, pct, secs
from .base import RULES, TIME_MARGIN, Verdict, fewer, find_row

if TYPE_CHECKING:
    from ..result import StudyResult

FIGURES = ["learning_curves", "speed"]


def judge_speed(res: StudyResult) -> Verdict | None:
    """The speed verdict, or None if the study has no main comparison with ReLU and another."""
    if "main" not in res.parts:
        return None
    rows = res.summary("main")
    acts = [a for a in ("relu", "sigmoid", "tanh") if find_row(rows, activation=a)]
    if "relu" not in acts or len(acts) < 2:
        return None
    others = [a for a in acts if a != "relu"]
    p = res.preset
    target = pct(p["target_accuracy"], 0)
    measurement = (f"One network ({p['main_depth']} hidden layers of {p['main_width']} units), "
                   f"same digits, seeds and budget: epochs until the test accuracy first reaches "
                   f"{target}; the time of one training step and of the activation's forward and "
                   "backward alone (benchmarked turn by turn on the real layer size); the share "
                   "of training time spent inside the activation.")
    steps_per_epoch = math.ceil(p["n_train"] / p["batch_size"])
    shape = f"{p['batch_size']}x{p['main_width']}"
    per = _per_activation(res, rows, acts, shape, steps_per_epoch)
    if per is None:
        return Verdict("speed", RULES["speed"], measurement, "inconclusive",
                       "The result has no benchmark of these activations at this size.", {},
                       FIGURES)
    ev: dict[str, Any] = {"target": p["target_accuracy"], "bench_shape": shape, "runs": per,
                          "steps_per_epoch": steps_per_epoch}
    if all(per[a]["epochs_to_target"] is None for a in acts):
        return Verdict("speed", RULES["speed"], measurement, "inconclusive",
                       f"No activation reached {target} in most seeds within the budget; rerun "
                       "with more epochs.", ev, FIGURES)
    t = _tests(res, per, acts, others)
    ev.update({"relu_sooner_than": t["sooner"], "relu_fewer_epochs_than": t["fewer_epochs"],
               "relu_more_epochs_than": t["more_epochs"],
               "relu_activation_cheaper_than": t["cheaper"],
               "relu_step_cheaper_than": t["cheaper_step"],
               "epochs_to_target_per_seed": t["epochs"]})
    sentences = _sentences(per, acts, others, target, shape, t)
    status, lead = _status(t, others, target)
    return Verdict("speed", RULES["speed"], measurement, status, lead + " " + " ".join(sentences),
                   ev, FIGURES, headline=lead)


def _per_activation(res: StudyResult, rows: list[dict], acts: list[str], shape: str,
                    steps_per_epoch: int) -> dict[str, dict[str, Any]] | None:
    """Per activation: epochs and seconds to the target, the benchmarked costs (None if the
    benchmark lacks an activation at this shape)."""
    bench = res.bench or {}
    act_us = {a: bench.get("results", {}).get(a, {}).get(shape) for a in acts}
    step_us = (bench.get("steps") or {}).get("step_us", {})
    if any(act_us[a] is None for a in acts) or any(a not in step_us for a in acts):
        return None
    per = {}
    for a in acts:
        r = find_row(rows, activation=a)
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
    return per


def _epochs_to_target(runs: list[dict], activation: str) -> list[float]:
    """Per seed, epochs until the target accuracy; a run that never got there counts as one
    epoch beyond its budget (it ranks after every run that did)."""
    return [r["reach"]["epochs"] if r["reach"]["epochs"] is not None else r["spec"]["epochs"] + 1
            for r in runs if r["spec"]["activation"] == activation]


def _tests(res: StudyResult, per: dict, acts: list[str], others: list[str]) -> dict[str, Any]:
    """Which activations ReLU beats, on cost per call and per step and on epochs to target."""
    relu = per["relu"]
    cheaper = [o for o in others
               if per[o]["activation_us"] >= (1 + TIME_MARGIN) * relu["activation_us"]]
    cheaper_step = [o for o in others if per[o]["step_us"] >= (1 + TIME_MARGIN) * relu["step_us"]]
    dearer_step = [o for o in others if relu["step_us"] >= (1 + TIME_MARGIN) * per[o]["step_us"]]
    epochs = {a: _epochs_to_target(res.runs_in("main"), a) for a in acts}
    fewer_epochs, more_epochs = [], []
    for o in others:
        if fewer(epochs["relu"], epochs[o], len(others)):
            fewer_epochs.append(o)
        elif fewer(epochs[o], epochs["relu"], len(others)):
            more_epochs.append(o)
    # sooner in time = epochs x the cost of an epoch: fewer epochs at no dearer step, or a
    # cheaper step at no more epochs
    sooner = [o for o in others if (o in fewer_epochs and o not in dearer_step)
              or (o in cheaper_step and o not in more_epochs)]
    return {"cheaper": cheaper, "cheaper_step": cheaper_step, "fewer_epochs": fewer_epochs,
            "more_epochs": more_epochs, "sooner": sooner, "epochs": epochs,
            "n_seeds": min(len(v) for v in epochs.values())}


def _sentences(per: dict, acts: list[str], others: list[str], target: str, shape: str,
               t: dict[str, Any]) -> list[str]:
    """The numbers behind the verdict, in words."""
    relu = per["relu"]

    def reach_phrase(a):
        q = per[a]
        if q["epochs_to_target"] is None:
            return f"{a} did not reach it in most seeds"
        return (f"{a} after {q['epochs_to_target']:.3g} epochs ≈ "
                f"{secs(q['seconds_to_target'])}")

    def epoch_phrase(o):
        if o in t["fewer_epochs"]:
            return f"ReLU needed fewer than {o}"
        if o in t["more_epochs"]:
            return f"ReLU needed more than {o}"
        return f"ReLU was within seed noise of {o}"

    sentences = [
        f"Median time to {target} test accuracy: " + "; ".join(reach_phrase(a) for a in acts)
        + ".",
        "In epochs to the target (seed by seed, Mann-Whitney test): "
        + "; ".join(epoch_phrase(o) for o in others) + ".",
        f"The activation alone (forward + backward on a {shape} batch): "
        + "; ".join(f"{a} {per[a]['forward_us']:.1f} + {per[a]['backward_us']:.1f} µs"
                    for a in acts)
        + " (" + ", ".join(f"{o} {per[o]['activation_us'] / relu['activation_us']:.2f}×, "
                           f"backward {per[o]['backward_us'] / relu['backward_us']:.2f}×"
                           for o in others) + " ReLU's).",
        "A whole training step: " + ", ".join(f"{a} {per[a]['step_us']:.0f} µs" for a in acts)
        + " — the activation is only "
        + ", ".join(f"{pct(per[a]['activation_share'])} ({a})" for a in acts)
        + " of training time; the matrix products dominate.",
    ]
    not_cheaper = [o for o in others if o not in t["cheaper"]]
    if not_cheaper:
        sentences.append(f"ReLU's arithmetic is not measurably cheaper than {join(not_cheaper)}"
                         " here.")
    return sentences


def _status(t: dict[str, Any], others: list[str], target: str) -> tuple[str, str]:
    """The decision rule: (status, the verdict's first sentence)."""
    sooner, cheaper_step = t["sooner"], t["cheaper_step"]
    if not sooner and not t["more_epochs"] and not cheaper_step and t["n_seeds"] < 4:
        return "inconclusive", (
            f"Inconclusive: with {t['n_seeds']} seeds, differences in epochs to the target cannot "
            "be told apart from seed noise; run more seeds (--seeds 4 or more).")
    if not sooner:
        return "not supported here", (f"Not supported here: ReLU did not reach {target} sooner "
                                      f"than {join(others)}.")
    if set(sooner) == set(others) and set(cheaper_step) == set(others):
        return "supported", ("Supported: ReLU reached the target sooner and each step costs "
                             "measurably less.")
    conds = []
    if set(sooner) != set(others):
        rest = [o for o in others if o not in sooner]
        conds.append(f"compared with {join(sooner)} (not {join(rest)})")
    if not set(sooner) <= set(cheaper_step):
        conds.append("“faster” means fewer epochs to the target, not cheaper computation — "
                     f"a training step costs about the same (within {pct(TIME_MARGIN, 0)})")
    return "supported only when", "Supported only when " + " and ".join(conds) + "."
