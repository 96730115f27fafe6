"""The lab's "what to use, and why": each point carries the numbers of the study it summarises."""

from __future__ import annotations

from digitlens.lab.advice import advice
from digitlens.lab.words import pct


def _row(rows, **m):
    return next(r for r in rows if all(r[k] == v for k, v in m.items()))


def test_advice_quotes_the_studys_own_numbers(tiny_result):
    a = advice(tiny_result)
    assert "20 training runs and a micro-benchmark" in a["budget"]
    assert "1 seed per setting" in a["budget"]
    points = {p["preset"]: p for p in a["points"]}
    assert set(points) == {"depth", "output", "width"}
    main = tiny_result.summary("main")
    relu = pct(_row(main, activation="relu")["accuracy"])
    assert f"ReLU reached {relu}" in points["depth"]["text"]
    out = tiny_result.summary("output")
    assert pct(_row(out, head="softmax_ce")["accuracy"]) in points["output"]["text"]
    assert "exactly your logistic regression" in points["output"]["text"]
    width = tiny_result.summary("width")
    assert f"tanh reached {pct(_row(width, activation='tanh', width=4)['accuracy'])}" \
        in points["width"]["text"]


def test_the_quick_budget_says_it_exaggerates_sigmoids_collapse(tiny_result):
    import dataclasses

    quick = dataclasses.replace(tiny_result, preset={**tiny_result.preset, "name": "quick"})
    assert any("exaggerates sigmoid's collapse" in c for c in advice(quick)["caveats"])
    assert not any("exaggerates" in c for c in advice(tiny_result)["caveats"])
