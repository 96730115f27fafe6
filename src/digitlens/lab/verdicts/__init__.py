"""The activation lab's verdicts: numbers in, verdicts out.

Each rule of thumb is stated, the measurement that tests it is named, and a verdict is **computed
from the study's numbers** with the decision rules written in these modules (never typed in):

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

One module per rule family: :mod:`.speed`, :mod:`.hidden` (width, range, depth), :mod:`.output`;
what they share is in :mod:`.base`.  :func:`assess` judges every rule a result has the runs for.
The Markdown report and the figures are drawn from these verdicts in :mod:`digitlens.view`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    ALPHA,
    MIN_EFFECT,
    RULES,
    STATUSES,
    TIME_MARGIN,
    WIDTH_SLACK,
    Comparison,
    Verdict,
    compare,
)
from .hidden import judge_depth, judge_range, judge_width
from .output import judge_output, output_example
from .speed import judge_speed

if TYPE_CHECKING:
    from ..result import StudyResult


def assess(result: StudyResult) -> list[Verdict]:
    """Every rule of thumb that ``result`` has the runs to judge, in :data:`RULES` order."""
    out = []
    for fn in (judge_speed, judge_width, judge_range, judge_output, judge_depth):
        v = fn(result)
        if v is not None:
            out.append(v)
    return out


__all__ = ["ALPHA", "MIN_EFFECT", "RULES", "STATUSES", "TIME_MARGIN", "WIDTH_SLACK", "Comparison",
           "Verdict", "assess", "compare", "output_example"]
