"""The data-quality checks: sample ratio mismatch against scipy, sample size reached, incomplete pairs."""

import numpy as np
import pytest
from scipy import stats

from analysis.checks import (
    SAMPLE_RATIO_ALPHA,
    incomplete_pairs_share,
    sample_ratio_mismatch,
    sample_size_reached,
)
from analysis.errors import AnalysisError


@pytest.mark.parametrize(
    "counts, weights",
    [
        ([5_000, 5_100], [1, 1]),
        ([1_000, 2_030, 980], [1, 2, 1]),
        ([30, 12], [0.7, 0.3]),
        ([14_745, 14_745, 7_300], [2, 2, 1]),
    ],
)
def test_sample_ratio_mismatch_equals_scipy_chisquare_against_the_weighted_expectation(counts, weights):
    expected = np.sum(counts) * np.asarray(weights, dtype=float) / np.sum(weights)
    check = sample_ratio_mismatch(counts, weights)
    assert check.p_value == pytest.approx(stats.chisquare(counts, f_exp=expected).pvalue, rel=1e-9, abs=1e-12)
    assert check.ok == (check.p_value >= SAMPLE_RATIO_ALPHA)


def test_sample_ratio_mismatch_fails_below_one_in_a_thousand():
    assert sample_ratio_mismatch([10_000, 10_000], [1, 1]).ok
    mismatch = sample_ratio_mismatch([10_000, 10_500], [1, 1])
    assert mismatch.p_value < 0.001 and not mismatch.ok


def test_sample_ratio_mismatch_with_no_units_assigned_passes_with_p_one():
    check = sample_ratio_mismatch([0, 0, 0], [1, 1, 2])
    assert (check.p_value, check.ok) == (1.0, True)


@pytest.mark.parametrize(
    "counts, weights",
    [([10], [1]), ([10, 10], [1]), ([10, -1], [1, 1]), ([10, 1.5], [1, 1]), ([10, 10], [1, 0]),
     ([10, 10], [1, float("nan")])],
)
def test_sample_ratio_mismatch_refuses_malformed_counts_or_weights(counts, weights):
    with pytest.raises(AnalysisError):
        sample_ratio_mismatch(counts, weights)


def test_sample_size_is_reached_per_variant_when_units_meet_the_plan():
    reached = sample_size_reached({"control": 100, "green": 99}, {"control": 100, "green": 100, "red": 10})
    assert reached == {"control": True, "green": False, "red": False}


def test_incomplete_pairs_share_is_incomplete_over_all_units_and_zero_without_units():
    assert incomplete_pairs_share(25, 75) == 0.25
    assert incomplete_pairs_share(10, 0) == 1.0
    assert incomplete_pairs_share(0, 0) == 0.0
