"""The verdicts: the statistics behind them, and a constructed failing ReLU output layer."""

from __future__ import annotations

import pytest

from digitlens import lab
from digitlens.lab.verdicts import assess, compare


def test_compare_needs_a_gap_larger_than_the_seed_noise():
    c = compare([0.90, 0.91, 0.92], [0.80, 0.81, 0.79])
    assert c.diff == pytest.approx(0.11) and c.differs
    assert not compare([0.90, 0.80], [0.86, 0.85]).differs  # seeds 10 points apart
    assert not compare([0.900], [0.950]).differs  # one seed each: no noise estimate
    assert not compare([0.900, 0.900], [0.905, 0.905]).differs  # below the 1-point minimum
    assert compare([0.1, 0.1], [0.8, 0.82]).differs  # stuck at chance: no spread, big gap
    a, b = [0.90, 0.91, 0.92, 0.91, 0.90], [0.885, 0.895, 0.89, 0.90, 0.88]
    assert compare(a, b, m=1).threshold < compare(a, b, m=12).threshold  # Bonferroni


def test_output_study_detects_a_failing_relu_output_layer(tiny):
    # constructed: the ReLU output layers start with every unit switched off (bias -50), so they
    # can never learn; the softmax reference is normal
    runs = [tiny.run(activation="relu", width=16, head="softmax_ce", n_examples=30, seed=s)
            for s in (0, 1)]
    runs += [tiny.run(activation="relu", width=16, head=h, n_examples=30, seed=s,
                      output_bias=-50.0) for h in ("relu_mse", "relu_ce") for s in (0, 1)]
    study = lab.Study("output", tiny, {"output": tuple(runs)})
    res = lab.run_study(study, max_workers=1)
    for r in res.runs_in("output"):
        if r["spec"]["head"] == "softmax_ce":
            assert r["output"]["dead_ever"] == []
        else:
            assert r["final"]["dead_units"] == list(range(10))
            assert r["output"]["recovered"] == []  # stuck at 0, never recovering
            assert r["final"]["tie_fraction"] == 1.0  # all-zero rows: no answer at all
    (v,) = [v for v in assess(res) if v.id == "output"]
    assert v.status == "supported"
    for h in ("relu_mse", "relu_ce"):
        e = v.evidence["heads"][h]
        assert e["significant"] and e["accuracy_gap"] < 0 and e["dead_ever"] == 20
    example = v.evidence["example"]
    assert example is not None and example["heads"]["softmax_ce"]["prediction"] == example["label"]
    assert example["heads"][example["failing_head"]]["tie"]

