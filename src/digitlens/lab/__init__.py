"""The activation lab: turn rules of thumb about activation functions into measured facts.

A *study* is a list of training runs that differ in one thing at a time — the hidden activation,
the width, the depth, the output layer — on the same digits, with the same seeds and budget.
The road through the package:

- :mod:`.specs`: what a run is (:class:`RunSpec`, :class:`BenchSpec`), the presets and the
  studies (:func:`activation_study`, :func:`output_study`, :func:`lab_study`);
- :mod:`.measure`: what a run measures (accuracy over training, dead and saturated units,
  gradient norms, activation histograms, output-layer diagnostics, time inside the activation);
- :mod:`.runner`: running runs (:func:`run_one`, :func:`run_study` in a process pool) and the
  run cache;
- :mod:`.result`: :class:`StudyResult`, plain data with tables and JSON;
- :mod:`.verdicts`: the decision rules — numbers in, verdicts out (:func:`assess`);
- :mod:`.functions`: each activation's curve and slope from the engine's own forward and
  backward, and where a digit's sums fall on them;
- :mod:`.playground`: up to four networks trained side by side at a watchable pace
  (:class:`~.playground.Session`), its sentences in :mod:`.play_words`, one preset per rule of
  thumb in :mod:`.play_presets`; finished networks share the run cache.

The Markdown report and the figures are views of a result: :mod:`digitlens.view.report` and
:mod:`digitlens.view.figures.lab`.

Example
-------
>>> from digitlens import lab
>>> study = lab.activation_study("quick", seeds=1)          # doctest: +SKIP
>>> result = lab.run_study(study, cache_dir="lab-cache")    # doctest: +SKIP
>>> [v.status for v in result.verdicts()]                   # doctest: +SKIP
"""

from ..errors import LabError
from .measure import (
                      build_run_model,
                      dead_units,
                      grad_ratio,
                      grad_rms,
                      lab_data,
                      local_slopes,
                      output_diagnostics,
                      peak_slope,
)
from .result import GROUP_FIELDS, StudyResult, load_result, strip_timings, summarise
from .runner import ProgressEvent, execute, load_cached, run_bench, run_one, run_study, save_cached
from .specs import (
                      CORE_ACTIVATIONS,
                      HEADS,
                      LAB_VERSION,
                      PRESETS,
                      STUDIES,
                      BenchSpec,
                      Preset,
                      RunSpec,
                      Study,
                      activation_study,
                      code_fingerprint,
                      get_preset,
                      lab_study,
                      output_study,
)
from .verdicts import STATUSES, Comparison, Verdict, assess, compare, output_example
from .words import fmt

__all__ = [
    "LabError", "build_run_model", "dead_units", "grad_ratio", "grad_rms", "lab_data",
    "local_slopes", "output_diagnostics", "peak_slope", "GROUP_FIELDS", "StudyResult",
    "load_result", "strip_timings", "summarise", "ProgressEvent", "execute", "load_cached",
    "run_bench", "run_one", "run_study", "save_cached", "CORE_ACTIVATIONS", "HEADS",
    "LAB_VERSION", "PRESETS", "STUDIES", "BenchSpec", "Preset", "RunSpec", "Study",
    "activation_study", "code_fingerprint", "get_preset", "lab_study", "output_study",
    "STATUSES", "Comparison", "Verdict", "assess", "compare", "output_example", "fmt",
]
