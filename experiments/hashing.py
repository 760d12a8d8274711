"""Sticky, deterministic assignment of units to experiments and variants, by hashing.

The recipe (see docs/assignment.md; any client can reproduce it with the stdlib):

- ``H(text)`` = the first 8 bytes of SHA-256 of ``text`` (UTF-8) read as a big-endian
  unsigned integer, divided by 2**64; uniform in [0, 1).
- Inclusion: ``h_in = H("in:" + salt + ":" + unit)``; the unit is in the experiment iff
  ``h_in < traffic_percent / 100``. Raising ``traffic_percent`` keeps everyone already in.
- Variant: ``h_v = H("v:" + salt + ":" + unit)``; the variants, in the order they were
  defined, split [0, 1) into consecutive intervals proportional to their weights, and the
  unit gets the first variant ``i`` with ``h_v < cum_weight_i / total_weight``.

The two hashes use different prefixes so that the variant does not depend on the traffic:
a ramp from 10 % to 50 % adds units but never moves one between variants.

This module is pure (no Django) because it sits on every assignment request. A stored
assignment always wins over the hash; this module only says what the first answer is.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from functools import lru_cache
from hashlib import sha256
from math import inf

__all__ = [
    "assign",
    "choose_variant",
    "inclusion_hash",
    "is_included",
    "unit_hash",
    "variant_hash",
]

_TWO_POW_64 = float(2**64)
_BELOW_ONE = 1.0 - 2.0**-53  # math.nextafter(1.0, 0.0)


def unit_hash(text: str) -> float:
    """Return ``int.from_bytes(sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64``.

    Uniform in [0, 1). The quotient rounds to exactly 1.0 for the top 2**10 integers (a
    chance of 2**-54), so it is clamped to the largest double below 1.0 to keep the
    promise that ``traffic_percent=100`` includes everyone.
    """
    value = int.from_bytes(sha256(text.encode("utf-8")).digest()[:8], "big") / _TWO_POW_64
    return value if value < 1.0 else _BELOW_ONE


def inclusion_hash(salt: str, unit: str) -> float:
    """Return ``H("in:" + salt + ":" + unit)``, the hash that decides whether a unit is in."""
    return unit_hash(f"in:{salt}:{unit}")


def variant_hash(salt: str, unit: str) -> float:
    """Return ``H("v:" + salt + ":" + unit)``, the hash that picks the unit's variant."""
    return unit_hash(f"v:{salt}:{unit}")


def is_included(salt: str, unit: str, traffic_percent: float) -> bool:
    """Return ``inclusion_hash(salt, unit) < traffic_percent / 100``.

    Monotone in ``traffic_percent``: a unit in at some traffic stays in at any higher one.
    At 100 % the hash is not computed: ``unit_hash`` is below 1.0 by construction, so every
    unit is in (half the hashing of a 10,000-unit batch at full traffic).
    """
    if traffic_percent >= 100.0:
        return True
    return inclusion_hash(salt, unit) < traffic_percent / 100.0


@lru_cache(maxsize=1024)
def _bounds(weights: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Turn ``((key, weight), ...)`` into the keys and the upper bounds ``cum_i / total``.

    The last bound is left out: the last variant takes every hash at or above the
    second-to-last bound, so rounding in ``cum / total`` can never leave a hash unassigned.
    """
    if not weights:
        raise ValueError("at least one variant is needed")
    keys = tuple(key for key, _ in weights)
    total = 0.0
    for _, weight in weights:
        if not 0 < weight < inf:
            raise ValueError(f"weights must be positive and finite, got {weight!r}")
        total += weight
    cumulative = 0.0
    bounds = []
    for _, weight in weights[:-1]:
        cumulative += weight
        bounds.append(cumulative / total)
    return keys, tuple(bounds)


def choose_variant(salt: str, unit: str, weights: Sequence[tuple[str, float]]) -> str:
    """Return the first variant ``i`` (in the given order) with ``variant_hash < cum_i / total``.

    ``weights`` is a sequence of ``(key, weight)`` pairs with positive weights; the last
    variant catches every hash the earlier ones do not, whatever the float rounding.
    """
    try:
        keys, bounds = _bounds(weights)
    except TypeError:  # Lists (from JSON or a queryset) are unhashable; the cache needs tuples.
        keys, bounds = _bounds(tuple(map(tuple, weights)))
    # bisect_right counts the bounds <= h, which is the index of the first bound > h.
    return keys[bisect_right(bounds, variant_hash(salt, unit))]


def assign(
    salt: str, unit: str, traffic_percent: float, weights: Sequence[tuple[str, float]]
) -> tuple[bool, str | None]:
    """Return ``(True, choose_variant(...))`` if the unit is included, else ``(False, None)``."""
    if inclusion_hash(salt, unit) < traffic_percent / 100.0:
        return True, choose_variant(salt, unit, weights)
    return False, None

