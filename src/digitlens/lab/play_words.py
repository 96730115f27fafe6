"""The playground's sentences: what happened, in numbers, computed from the networks' histories.

:func:`summary` reads only the rows a :class:`~digitlens.lab.playground.Session` recorded (or a
constructed history in a test) and writes the sentence the page and the command line show at the
end: "ReLU reached 90% test accuracy after 1.5 epochs, sigmoid after 4; 12% of ReLU's hidden
units died."  Every number in it is taken from a row; nothing is typed in.
"""

from __future__ import annotations

from typing import Any, Sequence

from .words import join, name, pct

#: a saturated share worth a sentence
SATURATED_NOTE = 0.05
#: a training/test accuracy gap worth a sentence (5 points)
GAP_NOTE = 0.05


def _epochs(e: float) -> str:
    e = round(float(e), 2)
    return f"{e:g} epoch" + ("" if e == 1 else "s")


def labels(configs: Sequence[dict[str, Any]]) -> list[str]:
    """A short name per network, from the settings that differ between them ("ReLU", "sigmoid";
    "ReLU, 8 units", "ReLU, 64 units"; "softmax + CE", "ReLU + MSE")."""
    def act(c):
        acts = c["activations"]
        return name(acts[0]) if len(set(acts)) == 1 else "-".join(name(a) for a in acts)

    heads = {"softmax_ce": "softmax + CE", "sigmoid_bce": "sigmoid output",
             "relu_mse": "ReLU + MSE"}
    parts = [("activation", act), ("width", lambda c: f"{c['width']} units"),
             ("depth", lambda c: f"{len(c['activations'])} layers"),
             ("head", lambda c: heads.get(c["head"], c["head"])),
             ("optimizer", lambda c: c["optimizer"]), ("lr", lambda c: f"lr {c['lr']:g}"),
             ("init", lambda c: f"{c['init']} init")]
    differ = [(k, f) for k, f in parts if len({f(c) for c in configs}) > 1]
    if not differ:
        return [act(c) if len(configs) == 1 else f"network {i + 1}"
                for i, c in enumerate(configs)]
    return [", ".join(f(c) for _, f in differ) for c in configs]


def reach_epoch(rows: Sequence[dict[str, Any]], target: float) -> float | None:
    """The epoch of the first checkpoint with test accuracy >= ``target`` (None: never)."""
    return next((r["epoch"] for r in rows
                 if r.get("test_accuracy") is not None and r["test_accuracy"] >= target), None)


def facts(playground, lanes: Sequence[dict[str, Any]]) -> list[str]:
    """One sentence per thing worth saying, each with its numbers (see :func:`summary`)."""
    budget = playground.budget
    names = labels([lane["config"] for lane in lanes])
    rows = [lane["rows"] for lane in lanes]
    target = pct(budget.target_accuracy, 0)
    out = []
    # 1. who reached the target, and when
    reached = [(n, reach_epoch(r, budget.target_accuracy)) for n, r in zip(names, rows)]
    best = {n: max((x["test_accuracy"] or 0) for x in r) for n, r in zip(names, rows) if r}
    yes = sorted((t for t in reached if t[1] is not None), key=lambda t: t[1])
    no = [n for n, e in reached if e is None and n in best]
    said = [f"{n} reached {target} test accuracy after {_epochs(e)}" if k == 0
            else f"{n} after {_epochs(e)}" for k, (n, e) in enumerate(yes)]
    if no and yes:
        said.append(join([f"{n} (best {pct(best[n])})" for n in no])
                    + f" never did in {_epochs(budget.epochs)}")
    elif no:
        said.append(f"No network reached {target} test accuracy in {_epochs(budget.epochs)} "
                    "(best " + join([f"{n} {pct(best[n])}" for n in no]) + ")")
    if said:
        out.append(join(said) + ".")
    # 2. the final test accuracies
    finals = [f"{n} {pct(r[-1]['test_accuracy'])}" for n, r in zip(names, rows)
              if r and r[-1].get("test_accuracy") is not None]
    if len(finals) > 1 and yes:
        out.append(f"Test accuracy at the end: {join(finals)}.")
    # 3. dead units
    dead = [f"{pct(r[-1]['dead_fraction'], 0)} in {n} ({r[-1]['dead_units']} of "
            f"{r[-1]['units']})" for n, r in zip(names, rows) if r and r[-1]["dead_units"]]
    if dead:
        out.append("Hidden units that died (zero slope on every test digit, so they never "
                   f"learn again): {join(dead)}.")
    # 4. saturation
    sat = [f"{pct(r[-1]['saturated_fraction'], 0)} in {n}" for n, r in zip(names, rows)
           if r and (r[-1]["saturated_fraction"] or 0) >= SATURATED_NOTE]
    if sat:
        out.append("Hidden values in the flat tails (slope above 0 but below 1% of the "
                   f"steepest): {join(sat)}.")
    # 5. the gradient reaching the first layer, at the start
    ratios = []
    for n, r in zip(names, rows):
        g = r[0]["grad_rms"] if r else None
        if g and len(g) >= 3 and g[-1]:
            ratios.append((n, g[0] / g[-1]))
    if ratios:
        out.append("At the start, the first layer's gradient was "
                   + join([f"{v:.2g}x the output layer's under {n}" if k == 0
                           else f"{v:.2g}x under {n}" for k, (n, v) in enumerate(ratios)])
                   + ".")
    # 6. the train/test gap
    gaps = [f"{n} ({pct(r[-1]['train_accuracy'])} against {pct(r[-1]['test_accuracy'])})"
            for n, r in zip(names, rows)
            if r and r[-1].get("train_accuracy") is not None
            and r[-1]["train_accuracy"] - r[-1]["test_accuracy"] >= GAP_NOTE]
    if gaps:
        out.append(f"Training accuracy ran ahead of test accuracy for {join(gaps)}: "
                   "the network has started to learn its training digits by heart "
                   "(overfitting).")
    return out


def summary(playground, lanes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{"sentence", "facts", "labels", "reach"}``: the end-of-run sentence from the histories.

    Parameters
    ----------
    playground : the :class:`~digitlens.lab.playground.Playground` (its budget's target).
    lanes : each network's ``{"config": PlayConfig.to_dict(), "rows": [...]}`` (the rows a
        session recorded: ``epoch``, ``test_accuracy``, ``train_accuracy``, ``dead_units``,
        ``units``, ``dead_fraction``, ``saturated_fraction``, ``grad_rms``).
    """
    f = facts(playground, lanes)
    return {"sentence": " ".join(f), "facts": f,
            "labels": labels([lane["config"] for lane in lanes]),
            "reach": [reach_epoch(lane["rows"], playground.budget.target_accuracy)
                      for lane in lanes]}


__all__ = ["facts", "labels", "reach_epoch", "summary"]
