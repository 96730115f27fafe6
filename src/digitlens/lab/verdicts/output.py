"""Rule 4, the output layer: "Don't use ReLU at the output layer" — and the example digit that
shows what goes wrong with one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..measure import balanced_head, lab_data
from ..specs import HEADS
from ..words import join, pct
from .base import RULES, Verdict, accuracies, compare, find_row, mean_of

if TYPE_CHECKING:
    from ..result import StudyResult


def output_example(result: StudyResult, part: str = "output") -> dict[str, Any] | None:
    """A test digit that shows what goes wrong with a ReLU output layer, with every head's scores.

    ``test_index`` counts within the lab's test digits; ``bundled_test_index`` is the same digit in
    ``load_digits().x_test``.

    Picks, among the digits whose scores were kept (``n_examples``), the first one that the
    softmax + cross-entropy model gets right while a ReLU-output model gets wrong — preferring a
    digit where the ReLU output is all zeros (a tie with no answer).  Uses each head's
    lowest-seed run.  Returns None if the part has no such runs or no such digit.
    """
    if part not in result.parts:
        return None
    first: dict[str, dict[str, Any]] = {}
    for r in result.runs_in(part):
        h = r["spec"]["head"]
        if r["output"]["examples"] and (h not in first
                                        or r["spec"]["seed"] < first[h]["spec"]["seed"]):
            first[h] = r
    relu_heads = [h for h in first if HEADS[h][1] == "relu"]
    if "softmax_ce" not in first or not relu_heads:
        return None
    ex_ref = first["softmax_ce"]["output"]["examples"]
    n = min(len(first[h]["output"]["examples"]["label"]) for h in first)

    def pred(h, i):
        s = first[h]["output"]["examples"]["scores"][i]
        return int(np.argmax(s)), (np.asarray(s) == max(s)).sum() > 1

    candidates = []
    for i in range(n):
        label = ex_ref["label"][i]
        if pred("softmax_ce", i)[0] != label:
            continue
        for h in relu_heads:
            p, tie = pred(h, i)
            if p != label or tie:
                all_zero = max(first[h]["output"]["examples"]["raw"][i]) == 0
                candidates.append((not all_zero, not tie, i, h))
    if not candidates:
        return None
    _, _, i, h = min(candidates)
    spec = first["softmax_ce"]["spec"]
    from ...data import load_digits

    x_te = lab_data(spec["n_train"], spec["n_test"])[2]
    bundled = balanced_head(load_digits().y_test, spec["n_test"])  # lab test digit -> bundled index
    heads = {}
    for name, r in first.items():
        e = r["output"]["examples"]
        p, tie = pred(name, i)
        heads[name] = {"title": HEADS[name][0], "scores": e["scores"][i], "raw": e["raw"][i],
                       "prediction": p, "tie": bool(tie), "seed": r["spec"]["seed"]}
    return {"test_index": int(ex_ref["test_index"][i]),
            "bundled_test_index": int(bundled[ex_ref["test_index"][i]]),
            "label": int(ex_ref["label"][i]),
            "failing_head": h, "heads": heads,
            "image": [[round(float(v), 4) for v in row] for row in x_te[i, 0]]}



def judge_output(res: StudyResult) -> Verdict | None:
    """The output verdict: did every ReLU output layer fail in measurable ways?"""
    if "output" not in res.parts:
        return None
    runs = res.runs_in("output")
    rows = res.summary("output")
    heads = [r["head"] for r in rows]
    relu_heads = [h for h in heads if HEADS[h][1] == "relu"]
    if "softmax_ce" not in heads or not relu_heads:
        return None
    ref = accuracies(runs, head="softmax_ce")
    measurement = ("The same ReLU hidden layer with each output layer: "
                   + ", ".join(HEADS[h][0] for h in heads) + ". Test accuracy, output units that "
                   "are dead (0 for every digit) and whether they recover, digits whose outputs "
                   "tie (no answer), digits whose correct unit is at 0 (no gradient to fix it), "
                   "and whether the scores are probabilities.")
    serious, mild, ev = {}, {}, {"heads": {}}
    for h in relu_heads:
        serious[h], mild[h], ev["heads"][h] = _problems(runs, rows, h, ref, len(relu_heads))
    ev["softmax_ce_accuracy"] = mean_of(ref)
    example = output_example(res)
    ev["example"] = ({k: v for k, v in example.items() if k != "image"}
                     if example is not None else None)
    details = " ".join(f"{HEADS[h][0]}: " + ("; ".join(serious[h] + mild[h]) or "no problem seen")
                       + "." for h in relu_heads)
    if example is not None:
        details += " " + _example_sentence(example)
    failing = [h for h in relu_heads if serious[h]]
    if len(failing) == len(relu_heads):
        status, lead = "supported", "Supported: every ReLU output layer failed in measurable ways."
    elif failing:
        status = "supported only when"
        lead = (f"Supported only when the ReLU output is trained with "
                f"{join([HEADS[h][0] for h in failing])}; "
                + join([HEADS[h][0] for h in relu_heads if h not in failing])
                + " showed no serious failure here.")
    elif any(mild.values()):
        status = "supported only when"
        lead = "Supported only when you need probabilities: accuracy held up."
    else:
        status = "not supported here"
        lead = "Not supported here: the ReLU output layers trained as well as softmax."
    return Verdict("output", RULES["output"], measurement, status, lead + " " + details, ev,
                   ["output_layers"], headline=lead)


def _problems(runs: list[dict], rows: list[dict], h: str, ref: list[float], m: int
              ) -> tuple[list[str], list[str], dict[str, Any]]:
    """What went wrong with output layer ``h``: serious failures, mild ones (the scores are not
    probabilities) and the numbers behind them; ``ref`` are softmax + cross-entropy's accuracies
    and ``m`` the number of comparisons made against them."""
    r = find_row(rows, head=h)
    hr = [x for x in runs if x["spec"]["head"] == h]
    d, differs, _ = compare(accuracies(runs, head=h), ref, m)
    died = sum(len(x["output"]["dead_ever"]) for x in hr)
    recovered = sum(len(x["output"]["recovered"]) for x in hr)
    serious, mild = [], []
    if differs and d < 0:
        serious.append(f"accuracy {pct(r['accuracy'])} vs {pct(mean_of(ref))} with "
                       "softmax + cross-entropy")
    if died:
        serious.append(f"{died} output unit(s) died across {len(hr)} seeds and "
                       f"{recovered} recovered (at the end {r['dead_outputs']:.2g} of 10 "
                       "per network)")
    if r["tie_fraction"] > 0:
        serious.append(f"{pct(r['tie_fraction'])} of digits got tied top scores "
                       "(typically all zeros), so argmax just names the first tied digit")
    if r["true_off_fraction"] > 0:
        serious.append(f"on {pct(r['true_off_fraction'])} of digits the correct unit "
                       "is at 0, so the error sends it no gradient")
    if r["sum_deviation"] > 0.01 or r["outside_01_fraction"] > 0:
        mild.append(f"the scores are not probabilities (they sum to 1 ± "
                    f"{r['sum_deviation']:.2f} on average and reach {r['score_max']:.2f})")
    ev = {"accuracy": r["accuracy"], "accuracy_gap": d, "significant": differs,
          "dead_ever": died, "recovered": recovered,
          "tie_fraction": r["tie_fraction"],
          "true_off_fraction": r["true_off_fraction"],
          "sum_deviation": r["sum_deviation"], "score_max": r["score_max"],
          "problems": serious + mild}
    return serious, mild, ev


def _example_sentence(e: dict[str, Any]) -> str:
    """The example digit (:func:`output_example`) in words."""
    fh = e["heads"][e["failing_head"]]
    sm = e["heads"]["softmax_ce"]
    return (f"Example: lab test digit #{e['test_index']} (a {e['label']}): softmax + "
            f"cross-entropy says {sm['prediction']} ({pct(max(sm['scores']), 0)}); "
            f"{HEADS[e['failing_head']][0]} outputs "
            + ("all zeros" if max(fh["raw"]) == 0 else
               "[" + ", ".join(f"{v:.2f}" for v in fh["scores"]) + "]")
            + f", so it answers {fh['prediction']}"
            + (" only because argmax picks the first of the tied digits."
               if fh["tie"] else "."))
