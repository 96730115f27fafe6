"""What every verdict shares: the statuses, the :class:`Verdict` record, the rules of thumb as
stated, and the statistics that decide when two groups of seeds differ.

Seeds are the noise.  Two means over seeds differ only if Welch's t-test says so at the 5%
level, Bonferroni-corrected for the number of comparisons the verdict makes, and the gap is at
least :data:`MIN_EFFECT` (:func:`compare`).  Counts that have no number for some runs (epochs
to a target never reached) are compared by ranks (:func:`fewer`, Mann-Whitney U).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..._util.jsonsafe import plain

#: smallest accuracy gap (fraction of digits) that counts as a difference
MIN_EFFECT = 0.01
#: family-wise significance level of each verdict's comparisons
ALPHA = 0.05
#: relative gap in wall-clock time that counts as faster
TIME_MARGIN = 0.10
#: a layer "reaches its accuracy" at the narrowest width within this of the best mean accuracy
WIDTH_SLACK = 0.02

STATUSES = ("supported", "supported only when", "not supported here", "inconclusive")

#: the rules of thumb, as people say them; a verdict's ``id`` names one
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
        """Plain JSON data: NaN and inf become None (see :func:`plain`)."""
        return plain(asdict(self))


# --------------------------------------------------------------------------------- statistics


def accuracies(runs: list[dict], **where) -> list[float]:
    """Final test accuracies of the runs whose spec has every ``field=value`` in ``where``."""
    return [r["final"]["accuracy"] for r in runs
            if all(r["spec"][k] == v for k, v in where.items())]


def mean_of(v) -> float | None:
    return float(np.mean(v)) if len(v) else None


def find_row(rows: list[dict], **where) -> dict | None:
    """The first summary row with every ``column=value`` in ``where``."""
    for r in rows:
        if all(r[k] == v for k, v in where.items()):
            return r
    return None


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

    >>> compare([0.90, 0.91, 0.92], [0.80, 0.81, 0.79]).differs
    True
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


def fewer(a: list[float], b: list[float], m: int) -> bool:
    """One-sided Mann-Whitney U test that ``a`` tends to be smaller than ``b`` at level 0.05/m
    (ranks, because runs that never reached the target have no number of epochs)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2 or max(a) == min(a) == max(b) == min(b):
        return False
    return bool(stats.mannwhitneyu(a, b, alternative="less").pvalue < ALPHA / m)
