"""The pre-processing steps, one module per family; :mod:`..pipeline` runs them in order.

- :mod:`.light`: ``polarity`` (ink bright on dark), ``flatten_lighting`` (shadows are not ink)
- :mod:`.lines`: ``remove_lines`` (ruled and squared paper)
- :mod:`.ink`: ``threshold`` (ink from paper), ``despeckle``, ``largest_blob`` (keep the digit)
- :mod:`.frame`: ``crop``, ``scale``, ``place`` (the ``center`` step), ``normalize`` (MNIST's frame)

Every step is a function ``step(a, ctx) -> (image, numbers, sentence)``: ``a`` is the (H, W)
float32 image in [0, 1] the previous step produced, ``ctx`` a dict one step may leave for later
ones, ``numbers`` the values that matter (JSON-able) and ``sentence`` what happened, for a learner.
"""

from .frame import BOX, CENTER, SIZE, center_of_mass, crop, normalize, place, scale
from .ink import MIN_CONTRAST, despeckle, largest_blob, otsu_threshold, threshold
from .light import LIGHTING_DEGREE, flatten_lighting, polarity
from .lines import LINE_SPAN, MIN_LINES, remove_lines

__all__ = ["BOX", "CENTER", "SIZE", "MIN_CONTRAST", "LIGHTING_DEGREE", "LINE_SPAN", "MIN_LINES",
           "polarity", "flatten_lighting", "remove_lines", "threshold", "despeckle",
           "largest_blob", "crop", "scale", "center_of_mass", "place", "normalize",
           "otsu_threshold"]
