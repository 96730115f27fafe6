"""Specs, presets and studies: bad fields are refused with a clear message; budgets on paper."""

from __future__ import annotations

import math

import pytest

from digitlens import lab


@pytest.mark.parametrize("field, value, words", [
    ("activation", "softplus", "activation must be one of"),
    ("width", 0, "width must be a whole number"),
    ("head", "relu", "head must be one of"),
    ("n_train", 5000, "n_train must be a whole number in [10, 4000]"),
    ("target_accuracy", math.nan, "target_accuracy must be in (0, 1]"),
    ("hidden_bias", math.inf, "hidden_bias must be a finite number"),
])
def test_bad_specs_are_refused_with_a_clear_message(field, value, words):
    with pytest.raises(lab.LabError, match=r"^" + words.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)").replace("]", r"\]")):
        lab.RunSpec(**{field: value})


def test_presets_fit_their_budgets_on_paper():
    quick, full = lab.lab_study("quick"), lab.lab_study("full")
    assert len(quick) < len(full)
    assert lab.PRESETS["quick"].n_train < lab.PRESETS["full"].n_train
    assert lab.PRESETS["quick"].epochs < lab.PRESETS["full"].epochs

