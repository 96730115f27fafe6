""""So, which activation should I use, and why?": the lab's closing summary, every point with the
numbers of the learner's own last study, and the study's budget with its caveats.

:func:`advice` reads a :class:`~digitlens.lab.result.StudyResult` (its per-configuration means,
:meth:`~digitlens.lab.result.StudyResult.summary`) and writes plain sentences; a point whose runs
the study lacks is left out rather than written without numbers.
"""

from __future__ import annotations

from typing import Any

from .words import join, name, pct, runs_phrase


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _row(rows: list[dict[str, Any]], **match) -> dict[str, Any] | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _budget(result) -> tuple[str, list[str]]:
    p = result.preset
    budget = (f"This study is {runs_phrase(len(result.runs), result.bench is not None)}: "
              f"{p['epochs']} epochs of {p['optimizer']} (learning rate {p['lr']:g}) on "
              f"{p['n_train']:,} training digits, tested on {p['n_test']:,} others, "
              f"{_n(p['seeds'], 'seed')} per setting.")
    caveats = []
    if p.get("name") == "quick":
        caveats.append(f"The quick budget exaggerates sigmoid's collapse: with only {p['epochs']} "
                       "epochs, a deep sigmoid network that starts slowly looks like one that "
                       "cannot learn. `digitlens lab all` (15 epochs on 4,000 digits, about 10 "
                       "minutes) gives it the time.")
    caveats.append("Seconds come from a machine that may be shared with others; every other "
                   "number is exactly reproducible from the seeds.")
    caveats.append("These are small fully connected networks on 28x28 digits; other data and "
                   "other networks can rank the activations differently.")
    return budget, caveats


def _hidden(result) -> dict[str, str] | None:
    p = result.preset
    main = result.summary("main") if "main" in result.parts else []
    depth = result.summary("depth") if "depth" in result.parts else []
    relu, sig = _row(main, activation="relu"), _row(main, activation="sigmoid")
    if relu is None or sig is None:
        return None
    others = [f"{name(r['activation'])} {pct(r['accuracy'])}" for r in main
              if r["activation"] in ("leaky_relu", "elu", "gelu")]
    text = (f"In your last run, with {_n(p['main_depth'], 'hidden layer')} of "
            f"{p['main_width']} units, "
            f"ReLU reached {pct(relu['accuracy'])} test accuracy and sigmoid "
            f"{pct(sig['accuracy'])}")
    text += f" (its relatives: {join(others)})." if others else "."
    deep = max((r["depth"] for r in depth), default=None)
    dr, ds = _row(depth, activation="relu", depth=deep), _row(depth, activation="sigmoid",
                                                               depth=deep)
    if dr and ds and dr.get("grad_ratio_init") and ds.get("grad_ratio_init"):
        text += (f" At {deep} layers, sigmoid's first layer received {ds['grad_ratio_init']:.2g}x "
                 f"the output layer's gradient at the start, ReLU's {dr['grad_ratio_init']:.2g}x: "
                 f"sigmoid's slope is at most 0.25, so each layer shrinks the gradient; "
                 f"accuracy {pct(ds['accuracy'])} against {pct(dr['accuracy'])}.")
    if relu.get("dead_fraction"):
        text += (f" The price: {pct(relu['dead_fraction'])} of ReLU's hidden units died (slope 0 "
                 "on every digit); leaky ReLU and ELU never have a zero slope.")
    return {"title": "Hidden layers: start with ReLU (or a relative).", "text": text,
            "preset": "depth"}


def _output(result) -> dict[str, str] | None:
    if "output" not in result.parts:
        return None
    rows = result.summary("output")
    ce, bce = _row(rows, head="softmax_ce"), _row(rows, head="sigmoid_bce")
    relu = _row(rows, head="relu_mse")
    if ce is None:
        return None
    text = (f"Softmax with cross-entropy for one of ten digits ({pct(ce['accuracy'])} in your "
            "run): it is logistic regression's ten-class form, ten sums turned into ten "
            "probabilities that add up to 1.")
    if bce is not None:
        text += (f" A sigmoid with binary cross-entropy is exactly your logistic regression: "
                 f"the right output for a yes/no question (is this a 7?). Ten separate yes/no "
                 f"outputs reached {pct(bce['accuracy'])} here, and their ten scores need not "
                 f"add up to 1 (off by {bce['sum_deviation']:.2f} on average).")
    if relu is not None:
        text += (f" A ReLU output with squared error reached {pct(relu['accuracy'])}: an output "
                 "stuck at 0 passes no gradient, so that digit stops learning "
                 f"({relu['dead_outputs']:.1f} dead output units on average).")
    return {"title": "The output layer: softmax + cross-entropy; a sigmoid for yes/no.",
            "text": text, "preset": "output"}


def _bounded(result) -> dict[str, str] | None:
    width = result.summary("width") if "width" in result.parts else []
    if not width:
        return None
    w = min(r["width"] for r in width)
    tanh, relu = _row(width, activation="tanh", width=w), _row(width, activation="relu", width=w)
    if tanh is None or relu is None:
        return None
    text = (f"At one hidden layer of {w} units, tanh reached {pct(tanh['accuracy'])} and ReLU "
            f"{pct(relu['accuracy'])} in your run"
            + (": with few units, tanh can match or beat ReLU. " if tanh["accuracy"]
               >= relu["accuracy"] - 0.01 else ". ")
            + "Use tanh (-1..1) or sigmoid (0..1) where an output must stay in a "
            "range, e.g. a gate that mixes two signals, or a probability; for yes/no at the "
            "output, the sigmoid is the answer.")
    return {"title": "When tanh or sigmoid are still right.", "text": text, "preset": "width"}


def advice(result) -> dict[str, Any]:
    """``{"budget", "caveats", "points": [{"title", "text", "preset"}]}`` from a study's
    numbers (points whose runs are missing are left out)."""
    budget, caveats = _budget(result)
    points = [p for p in (_hidden(result), _output(result), _bounded(result)) if p is not None]
    return {"budget": budget, "caveats": caveats, "points": points}


__all__ = ["advice"]
