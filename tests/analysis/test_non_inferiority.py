"""The guardrails' non-inferiority tests, fed sufficient statistics, match statsmodels run on the raw values."""

import dataclasses

import numpy as np
import pytest
from statsmodels.stats import proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from analysis.errors import AnalysisError
from analysis.non_inferiority import paired_non_inferiority, wald_non_inferiority, welch_non_inferiority
from tests.analysis.summaries import close, paired, summary

DIRECTIONS = ("increase", "decrease")
SEEDS = (0, 1, 2)
# statsmodels' words: the better direction is the alternative, the harmful edge of the margin the null.
ALTERNATIVE = {"increase": "larger", "decrease": "smaller"}
SIGN = {"increase": -1, "decrease": 1}


def assert_bound(result, bound, direction):
    """The bound is the harmful-side end of the one-sided interval; the other end is open (None)."""
    assert result.bound == close(bound)
    if direction == "increase":
        assert (result.ci_low, result.ci_high) == (close(bound), None)
    else:
        assert (result.ci_low, result.ci_high) == (None, close(bound))


def assert_common(result, *, effect, control_mean, margin, direction, alpha):
    assert result.effect == close(effect)
    assert result.relative_effect == close(effect / control_mean)
    assert result.margin == margin and result.null_value == SIGN[direction] * margin
    assert result.non_inferior == (result.p_value < alpha)


def welch_reference(x, y, null, alternative, alpha):
    """statsmodels' Welch t-test of y - x against `null` and its one-sided interval."""
    statistic, p_value, df = ttest_ind(y, x, usevar="unequal", value=null, alternative=alternative)
    low, high = CompareMeans.from_data(y, x).tconfint_diff(alpha=alpha, alternative=alternative, usevar="unequal")
    return statistic, p_value, df, low, high


def wald_reference(x, y, null, alternative, alpha):
    """statsmodels' Wald z-test of p_y - p_x against `null`; the two-sided 2 alpha interval's ends."""
    counts = (y.sum(), len(y), x.sum(), len(x))
    # Through the module: pytest would collect a bare `test_proportions_2indep` as a test.
    reference = proportion.test_proportions_2indep(
        *counts, value=null, method="wald", compare="diff", alternative=alternative
    )
    low, high = proportion.confint_proportions_2indep(*counts, method="wald", compare="diff", alpha=2 * alpha)
    return reference.statistic, reference.pvalue, None, low, high


UNPAIRED = [
    pytest.param(welch_non_inferiority, welch_reference, lambda rng, n: rng.gamma(2, 50, n),
                 lambda rng, n: rng.gamma(2, 51, n), 8.0, id="continuous"),
    pytest.param(wald_non_inferiority, wald_reference, lambda rng, n: rng.binomial(1, 0.2, n),
                 lambda rng, n: rng.binomial(1, 0.21, n), 0.02, id="binary"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("test, reference, draw_control, draw_challenger, margin", UNPAIRED)
def test_unpaired_non_inferiority_equals_statsmodels(
    seed, direction, test, reference, draw_control, draw_challenger, margin
):
    rng = np.random.default_rng(seed)
    x, y = draw_control(rng, 3_000 + 500 * seed), draw_challenger(rng, 2_800 + 700 * seed)
    alpha = 0.05 / (seed + 1)

    result = test(summary(x), summary(y), margin=margin, direction=direction, alpha=alpha)

    statistic, p_value, df, low, high = reference(x, y, SIGN[direction] * margin, ALTERNATIVE[direction], alpha)
    assert (result.statistic, result.p_value) == (close(statistic), close(p_value))
    assert result.df == (None if df is None else close(df))
    assert_bound(result, low if direction == "increase" else high, direction)
    assert_common(result, effect=y.mean() - x.mean(), control_mean=x.mean(), margin=margin, direction=direction,
                  alpha=alpha)


def descr_reference(x, y, margin, direction, alpha):
    """statsmodels' one-sample t-test and interval of the paired differences d = y - x."""
    alternative = ALTERNATIVE[direction]
    differences = DescrStatsW(np.asarray(y, dtype=float) - np.asarray(x, dtype=float))
    statistic, p_value, df = differences.ttest_mean(value=SIGN[direction] * margin, alternative=alternative)
    low, high = differences.tconfint_mean(alpha=alpha, alternative=alternative)
    return statistic, p_value, df, low if direction == "increase" else high


def continuous_pairs(rng, seed):
    n = 500 + 200 * seed
    x = rng.gamma(2, 40, n)
    return x, x + rng.normal(1.0, 12.0, n)


def binary_pairs(rng, seed):
    n = 2_000 + 500 * seed
    x = rng.binomial(1, 0.3, n)
    flip = rng.random(n) < 0.08
    return x, np.where(flip, 1 - x, x)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("draw, margin", [(continuous_pairs, 3.0), (binary_pairs, 0.01)],
                         ids=["continuous", "binary"])
def test_paired_non_inferiority_equals_statsmodels_descrstatsw_ttest_mean(seed, direction, draw, margin):
    rng = np.random.default_rng(seed)
    x, y = draw(rng, seed)
    alpha = 0.05 / (seed + 1)

    result = paired_non_inferiority(paired(x, y), margin=margin, direction=direction, alpha=alpha)

    statistic, p_value, df, bound = descr_reference(x, y, margin, direction, alpha)
    assert (result.statistic, result.p_value, result.df) == (close(statistic), close(p_value), close(df))
    assert_bound(result, bound, direction)
    assert_common(result, effect=y.mean() - x.mean(), control_mean=x.mean(), margin=margin, direction=direction,
                  alpha=alpha)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_non_inferior_is_the_bound_lying_inside_the_margin(direction):
    rng = np.random.default_rng(3)
    x = rng.normal(100, 10, 2_000)
    for shift in (-3.0, -0.5, 0.0, 0.5, 3.0):
        y = rng.normal(100 + shift, 10, 2_000)
        result = welch_non_inferiority(summary(x), summary(y), margin=1.0, direction=direction, alpha=0.05)
        inside = result.bound > -1.0 if direction == "increase" else result.bound < 1.0
        assert result.non_inferior == inside


def test_the_names_say_the_test_and_that_it_is_a_non_inferiority_test():
    x, y = summary([0, 1, 1, 0]), summary([1, 1, 0, 0])
    assert welch_non_inferiority(x, y, margin=1, direction="increase", alpha=0.05).test == (
        "Welch t-test (non-inferiority)")
    assert wald_non_inferiority(x, y, margin=0.1, direction="increase", alpha=0.05).test == (
        "two-proportion Wald z-test (non-inferiority)")
    assert paired_non_inferiority(paired([0, 1, 1], [1, 1, 0]), margin=0.1, direction="decrease",
                                  alpha=0.05).test == "paired t-test (non-inferiority)"


def test_a_control_mean_of_zero_leaves_the_relative_effect_empty():
    result = welch_non_inferiority(summary([0, 0, 0]), summary([1, 2, 3]), margin=1, direction="decrease", alpha=0.05)
    assert result.relative_effect is None and result.p_value is not None


@pytest.mark.parametrize("test", [welch_non_inferiority, wald_non_inferiority])
@pytest.mark.parametrize("sizes", [(1, 50), (50, 1), (0, 0)])
def test_unpaired_non_inferiority_refuses_an_arm_with_fewer_than_two_units(test, sizes):
    control, challenger = (summary([0] * (n - 1) + [1] if n else []) for n in sizes)
    with pytest.raises(AnalysisError, match="at least 2 are needed"):
        test(control, challenger, margin=0.1, direction="increase", alpha=0.05)


@pytest.mark.parametrize("test, value", [(welch_non_inferiority, 5.0), (wald_non_inferiority, 0.0),
                                         (wald_non_inferiority, 1.0)])
def test_unpaired_non_inferiority_refuses_arms_without_variation(test, value):
    arm = summary(np.full(100, value))
    with pytest.raises(AnalysisError, match="same value"):
        test(arm, arm, margin=0.1, direction="decrease", alpha=0.05)


def test_paired_non_inferiority_refuses_fewer_than_two_pairs_and_constant_differences():
    with pytest.raises(AnalysisError, match="at least 2 are needed"):
        paired_non_inferiority(paired([1.0], [2.0]), margin=1, direction="increase", alpha=0.05)
    with pytest.raises(AnalysisError, match="same difference"):
        paired_non_inferiority(paired([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]), margin=1, direction="increase", alpha=0.05)


def test_wald_non_inferiority_refuses_values_that_are_not_zero_or_one():
    with pytest.raises(AnalysisError, match="not 0/1"):
        wald_non_inferiority(summary([0, 2, 1]), summary([0, 1, 1]), margin=0.1, direction="increase", alpha=0.05)


@pytest.mark.parametrize("margin, direction, alpha", [(0.0, "increase", 0.05), (-1.0, "increase", 0.05),
                                                      (1.0, "up", 0.05), (1.0, "decrease", 1.0)])
def test_non_inferiority_refuses_a_margin_that_is_not_positive_an_unknown_direction_or_a_bad_alpha(
    margin, direction, alpha
):
    with pytest.raises(AnalysisError):
        welch_non_inferiority(summary([1, 2, 3]), summary([2, 3, 5]), margin=margin, direction=direction, alpha=alpha)


def test_a_result_is_frozen_and_holds_only_plain_finite_numbers():
    result = paired_non_inferiority(paired([1, 2, 3, 4], [2, 2, 5, 4]), margin=1, direction="increase", alpha=0.05)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 0.0
    for value in dataclasses.astuple(result)[1:]:
        assert value is None or type(value) in (float, bool)


def test_at_the_harmful_edge_of_the_margin_a_challenger_is_shown_non_inferior_alpha_of_the_time():
    # 2,000 experiments whose true effect is exactly -margin (increase is better): H0 holds,
    # so the test may pass it only alpha = 5% of the time (binomial sd 0.5 points).
    rng = np.random.default_rng(11)
    n, runs, margin = 200, 2_000, 0.5
    x, y = rng.normal(10.0, 2.0, (runs, n)), rng.normal(10.0 - margin, 3.0, (runs, n))
    passed = [
        welch_non_inferiority(summary(a), summary(b), margin=margin, direction="increase", alpha=0.05).non_inferior
        for a, b in zip(x, y)
    ]
    assert np.mean(passed) == pytest.approx(0.05, abs=0.015)
