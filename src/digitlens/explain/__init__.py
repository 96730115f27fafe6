"""Why the network says what it says: traces, attributions, contrasts, units, nearest examples.

Pure functions over a model and a pre-processed image ``x`` (28×28, or ``(1, 1, 28, 28)``); none
of them owns or changes the model.  :class:`~digitlens.recognizer.Recognizer` bundles them into
one :class:`Explanation` (plain data; its figures live in :mod:`digitlens.view.figures`).

- :mod:`.trace`: every layer's numbers for one image (``trace.trace(model, x)``).
- :mod:`.attribution`: ``attribute(model, x, target, method)`` — saliency, gradient × input,
  integrated gradients (with its completeness delta), occlusion; ``target`` a class label or a
  pair ``(a, b)`` for the logit gap.
- :mod:`.contrast`: why ``a`` and not ``b`` — the gap over pixels and, exactly, over the last
  hidden layer's units; the smallest ink edit that changes the answer.
- :mod:`.units`: what first-layer units and filters look for, hand-made kernels, the unit atlas
  (activations over the training digits) and nearest training examples;
  :mod:`.unit_detail`: one unit's card (the page's unit view).
- :mod:`.result` and :mod:`.parts`: the result objects (``to_dict`` / ``from_dict``).
- :mod:`.words`: every sentence the explanations say.
- :mod:`.steps`: the steps of one explanation, as the recognizer runs them.

Which layer plays which role (reads the pixels, produces the logits, ...) is asked of
:mod:`digitlens.nn.topology`.
"""

from . import trace  # the module; its function is trace.trace (a name clash otherwise)
from .attribution import (METHODS, attribute, gradient_x_input, integrated_gradients,
                          integrated_gradients_many, occlusion, saliency)
from .contrast import counterfactual, pixel_contrast, unit_contrast
from .result import (Attribution, Contrast, Counterfactual, Example, Explanation, KernelResponse,
                     LayerStep, Nearest, Neighbour, TraceReport, UnitContrast, UnitReport, UnitTerm,
                     UnitView)
from .units import (UnitAtlas, build_atlas, first_layer_units, hand_kernels, kernel_responses,
                    nearest_examples)

__all__ = ["METHODS", "attribute", "gradient_x_input", "integrated_gradients",
           "integrated_gradients_many", "occlusion", "saliency", "counterfactual",
           "pixel_contrast", "unit_contrast", "Attribution", "Contrast", "Counterfactual",
           "Example", "Explanation", "KernelResponse", "LayerStep", "Nearest", "Neighbour",
           "TraceReport", "UnitContrast", "UnitReport", "UnitTerm", "UnitView", "trace",
           "UnitAtlas", "build_atlas", "first_layer_units", "hand_kernels", "kernel_responses",
           "nearest_examples"]
