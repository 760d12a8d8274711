"""Data-quality checks run before a decision: sample ratio mismatch, sample size reached, incomplete pairs."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from analysis.errors import AnalysisError

# DESIGN.md: a sample ratio mismatch p-value below this makes the analysis invalid. It is
# far below the tests' alpha because the check runs on every experiment and a false alarm
# throws a whole experiment away.
SAMPLE_RATIO_ALPHA = 0.001

# A paired comparison needs a variance of the differences, so at least two complete pairs.
MIN_COMPLETE_PAIRS = 2


@dataclass(frozen=True)
class SampleRatioCheck:
    """The sample ratio mismatch test's p-value and whether it passed (p >= 0.001)."""

    p_value: float
    ok: bool


def sample_ratio_mismatch(counts: Sequence[int], weights: Sequence[float]) -> SampleRatioCheck:
    """Chi-square goodness of fit of assigned units per variant against the planned weights.

    expected_i = N w_i / sum(w), chi2 = sum (count_i - expected_i)^2 / expected_i on k - 1 df;
    matches `scipy.stats.chisquare(counts, f_exp=expected)` (which this calls). With no unit
    assigned yet (N = 0) nothing can be mismatched, so p = 1.0 rather than scipy's NaN.
    """
    if len(counts) != len(weights) or len(counts) < 2:
        raise AnalysisError("the sample ratio check needs one count and one weight per variant, at least 2 variants")
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise AnalysisError(f"assigned counts must be non-negative integers, got {count!r}")
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight) or weight <= 0:
            raise AnalysisError(f"weights must be positive finite numbers, got {weight!r}")
    total = sum(int(c) for c in counts)
    if total == 0:
        return SampleRatioCheck(p_value=1.0, ok=True)
    weight_sum = sum(float(w) for w in weights)
    expected = [total * float(w) / weight_sum for w in weights]
    p_value = float(stats.chisquare([int(c) for c in counts], f_exp=expected).pvalue)
    return SampleRatioCheck(p_value=p_value, ok=p_value >= SAMPLE_RATIO_ALPHA)


def sample_size_reached(actual: Mapping[str, int], planned: Mapping[str, int]) -> dict[str, bool]:
    """For every planned variant, whether actual units >= planned units (a missing variant has 0)."""
    return {key: actual.get(key, 0) >= planned_units for key, planned_units in planned.items()}


def incomplete_pairs_share(incomplete: int, complete: int) -> float:
    """incomplete / (incomplete + complete) units of a champion/challenger test.

    With no unit at all the share is 0.0: nothing is incomplete, and the separate
    minimum-pairs check (`MIN_COMPLETE_PAIRS`) is the one that fails.
    """
    if incomplete < 0 or complete < 0:
        raise AnalysisError("unit counts must be non-negative")
    units = incomplete + complete
    return incomplete / units if units else 0.0
