"""Argument checks at the library's boundary: one set, so every message reads the same way.

Each check returns the value (converted to a plain Python number) or raises ``error`` (default
:class:`ValueError`) with a message that names the parameter, the rule and the value received,
as scikit-learn's ``_validate_params`` does.  ``bool`` is never accepted as a number.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None, *,
              error: type[Exception] = ValueError) -> int:
    """``value`` as an ``int`` if it is a whole number in ``[lo, hi]`` (either bound optional).

    >>> check_int("epochs", 3, 1)
    3
    >>> check_int("epochs", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be a whole number >= 1, got 0
    """
    if not _is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            rule = f" in [{lo}, {hi}]"
        elif lo is not None:
            rule = f" >= {lo}"
        elif hi is not None:
            rule = f" <= {hi}"
        else:
            rule = ""
        raise error(f"{name} must be a whole number{rule}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, rule: str = "a finite number",
                 ok: Callable[[float], bool] = lambda v: True, *,
                 error: type[Exception] = ValueError) -> float:
    """``value`` as a ``float`` if it is a finite real number and ``ok(value)`` holds; ``rule``
    says in words what ``ok`` checks ("> 0", "in [0, 1)").

    >>> check_number("lr", 0.1, "> 0", lambda v: v > 0)
    0.1
    >>> check_number("lr", float("nan"), "> 0", lambda v: v > 0)
    Traceback (most recent call last):
    ...
    ValueError: lr must be > 0, got nan
    """
    if not _is_real(value) or not math.isfinite(float(value)) or not ok(float(value)):
        raise error(f"{name} must be {rule}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices, *, error: type[Exception] = ValueError) -> Any:
    """``value`` if it is one of ``choices``.

    >>> check_choice("schedule", "cosine", ("constant", "cosine"))
    'cosine'
    """
    if value not in choices:
        raise error(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
