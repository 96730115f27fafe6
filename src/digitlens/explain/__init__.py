"""Why the network says what it says: traces, attributions, contrasts, units, nearest examples.

Pure functions over a model and a pre-processed image ``x`` (28×28, or ``(1, 1, 28, 28)``); none
of them owns or changes the model.  :class:`~digitlens.recognizer.Recognizer` bundles them into
one :class:`Explanation`.
"""

from .explanation import (Attribution, Contrast, Counterfactual, Example, Explanation,
                          KernelResponse, LayerStep, Nearest, Neighbour, TraceReport,
                          UnitContrast, UnitReport, UnitTerm, UnitView)

__all__ = ["Attribution", "Contrast", "Counterfactual", "Example", "Explanation",
           "KernelResponse", "LayerStep", "Nearest", "Neighbour", "TraceReport", "UnitContrast",
           "UnitReport", "UnitTerm", "UnitView"]
