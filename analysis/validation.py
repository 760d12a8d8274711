"""The input checks shared by the analysis' dataclasses: each raises AnalysisError with one wording."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from analysis.errors import AnalysisError


def finite(name: str, value: object) -> float:
    """`value` as a float if it is a real, finite number (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise AnalysisError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def positive(name: str, value: object) -> float:
    """`value` as a float if it is finite and > 0."""
    number = finite(name, value)
    if number <= 0:
        raise AnalysisError(f"{name} must be > 0, got {number}")
    return number


def in_open_unit_interval(name: str, value: object) -> float:
    """`value` as a float if it is finite and 0 < value < 1 (an alpha, a power, a rate)."""
    number = finite(name, value)
    if not 0 < number < 1:
        raise AnalysisError(f"{name} must be in (0, 1), got {number}")
    return number


def in_closed_unit_interval(name: str, value: object) -> float:
    """`value` as a float if it is finite and 0 <= value <= 1 (a share)."""
    number = finite(name, value)
    if not 0 <= number <= 1:
        raise AnalysisError(f"{name} must be in [0, 1], got {number}")
    return number


def non_negative_integer(name: str, value: object) -> int:
    """`value` as an int if it is an integer >= 0 (a bool is not a count here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise AnalysisError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def integer_at_least(name: str, value: object, minimum: int) -> int:
    """`value` as an int if it is an integer >= `minimum` (a bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise AnalysisError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise AnalysisError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def one_of(name: str, value: object, choices: Iterable[str]) -> None:
    """AnalysisError unless `value` equals one of `choices` (a StrEnum's members or plain strings)."""
    # A tuple, not the enum itself: `"x" in SomeEnum` raises TypeError on Python 3.11 for a
    # non-member, and a tuple also copes with an unhashable `value`.
    allowed = tuple(choices)
    if value not in allowed:
        raise AnalysisError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
