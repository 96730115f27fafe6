"""Every error digitlens raises on purpose, in one leaf module (it imports nothing of digitlens).

Each message names what was wrong and what to do.  The families:

- :class:`PreprocessError` (a ``ValueError``): an image that cannot become a digit — not an image,
  damaged, too large, or with no ink.
- :class:`IDXError`, :class:`DownloadError`: data files that cannot be read or fetched.
- :class:`CheckpointError`: a model file that cannot be loaded.
- :class:`TrainingDiverged`: the loss became NaN or infinite.
- :class:`LabError`: an activation-lab study that cannot be set up as asked.
- :class:`JobConflict`, :class:`UnknownJob`: background jobs (one heavy job at a time).
"""

from __future__ import annotations

from typing import Any


class PreprocessError(ValueError):
    """The image cannot be turned into a digit; the message says why and what to do."""


class NotAnImageError(PreprocessError):
    """The input is not an image digitlens can read (wrong format, shape or values).  ``code``
    names the rule for the JSON API when it is more specific than "not an image"
    (``"bad_data_url"``, ``"bad_base64"``)."""

    def __init__(self, message: str, code: str = "not_an_image") -> None:
        super().__init__(message)
        self.code = code


class TruncatedImageError(PreprocessError):
    """The file starts like an image but is cut short or damaged."""


class ImageTooLargeError(PreprocessError):
    """The file has too many bytes, or the image too many pixels (e.g. a decompression bomb)."""


class NoInkError(PreprocessError):
    """Nothing that looks like a digit was found."""

    def __init__(self, detail: str = "") -> None:
        msg = "no ink found — draw or upload a digit"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class IDXError(ValueError):
    """An IDX file that cannot be read; the message names the file and the broken rule."""


class DigitStoreError(ValueError):
    """The learner's digit database (``mine.sqlite``) cannot be used as asked: a schema written
    by another version of digitlens, an unknown digit, a bad label."""


class DownloadError(OSError):
    """A file could not be fetched from any mirror; the message lists what each mirror did."""


class ChecksumError(DownloadError):
    """Every mirror that answered sent bytes whose MD5 did not match the known checksum."""


class CheckpointError(ValueError):
    """A model file that cannot be loaded; the message says why."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the model was restored to its last good weights."""

    def __init__(self, message: str, history: Any) -> None:
        super().__init__(message)
        self.history = history


class LabError(ValueError):
    """A study or run that cannot be set up as asked; the message says why."""


class JobConflict(RuntimeError):
    """Another training job is still running (one at a time: the machine has few cores)."""


class UnknownJob(KeyError):
    """No job has this id."""

    def __str__(self) -> str:  # KeyError's str() adds quotes; keep the message readable
        return str(self.args[0]) if self.args else "unknown job"


class UnknownUnitError(LookupError):
    """A model has no such layer, or its layer no such unit.  ``code`` names which, for the JSON
    API (``"unknown_layer"`` or ``"unknown_unit"``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:  # LookupError is fine, but KeyError-style quoting is not wanted
        return str(self.args[0])


class NotAUnitLayerError(ValueError):
    """The layer asked for has no units with weights (an activation, pooling, flatten, dropout)."""

    code = "not_a_unit_layer"
