"""Image -> the 28×28 grid MNIST networks read, every step recorded.

:mod:`.pipeline` is the road (the step order, the switches, :class:`Step` and
:class:`Preprocessed`); :mod:`.steps` holds the steps, one module per family.  The errors it raises
are in :mod:`digitlens.errors` (:class:`~digitlens.errors.PreprocessError` and its subclasses).
"""

from .pipeline import (
                       SWITCHES,
                       TITLES,
                       Preprocessed,
                       Step,
                       compact_grid,
                       format_grid,
                       otsu_threshold,
                       plain_resize,
                       preprocess,
)

__all__ = ["SWITCHES", "TITLES", "Preprocessed", "Step", "compact_grid", "format_grid",
           "otsu_threshold", "plain_resize", "preprocess"]
