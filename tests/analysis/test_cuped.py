"""CUPED, fed sufficient statistics, matches statsmodels' z-test run on the adjusted per-unit values."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis.cuped import (
    COVARIATE_BALANCE_ALPHA,
    CUPED_Z_TEST,
    UNADJUSTED_Z_TEST,
    CovariateSummary,
    covariate_balance_p_value,
    cuped_effect_size,
    cuped_non_inferiority,
    cuped_theta,
    cuped_z_test,
)
from analysis.errors import AnalysisError
from tests.analysis.summaries import close

ALTERNATIVES = ("two-sided", "larger", "smaller")
DIRECTIONS = ("increase", "decrease")
# statsmodels' words: the better direction is the alternative, the harmful edge of the margin the null.
GUARDRAIL_ALTERNATIVE = {"increase": "larger", "decrease": "smaller"}
SIGN = {"increase": -1, "decrease": 1}
SEEDS = (0, 1)


def covariate_summary(y, x) -> CovariateSummary:
    """n and the sums of y, y^2, x, x^2 and x*y of one arm's per-unit values."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    return CovariateSummary(
        len(y), float(y.sum()), float((y * y).sum()), float(x.sum()), float((x * x).sum()), float((x * y).sum())
    )


def adjusted_values(control, challenger, theta):
    """y' = y - theta (x - xbar) of both arms, xbar the pooled covariate mean; arms are (y, x)."""
    xbar = np.concatenate([control[1], challenger[1]]).mean()
    return control[0] - theta * (control[1] - xbar), challenger[0] - theta * (challenger[1] - xbar)


def reference_theta(control, challenger):
    """numpy's OLS slope of y on x over both arms' units."""
    return np.polyfit(np.concatenate([control[1], challenger[1]]), np.concatenate([control[0], challenger[0]]), 1)[0]


def z_reference(y_c, y_j, *, alternative, alpha, value=0.0):
    """statsmodels' unequal-variance z-test of y_j - y_c against `value` and its interval."""
    compare = CompareMeans(DescrStatsW(y_j), DescrStatsW(y_c))
    statistic, p_value = compare.ztest_ind(usevar="unequal", alternative=alternative, value=value)
    low, high = compare.zconfint_diff(alpha=alpha, alternative=alternative, usevar="unequal")
    return statistic, p_value, low, high


def mean_variance(y_c, y_j):
    return y_j.var(ddof=1) / len(y_j) + y_c.var(ddof=1) / len(y_c)


def assert_interval(result, low, high, alternative):
    """A one-sided interval has None for its open end (statsmodels' infinity)."""
    if alternative == "larger":
        assert (result.ci_low, result.ci_high) == (close(low), None)
    elif alternative == "smaller":
        assert (result.ci_low, result.ci_high) == (None, close(high))
    else:
        assert (result.ci_low, result.ci_high) == (close(low), close(high))


def continuous(rng, n, effect):
    x = rng.gamma(2, 50, n)
    return 20 + 0.7 * x + rng.normal(effect, 30, n), x


def binary_y_continuous_x(rng, n, effect):
    x = rng.gamma(2, 1, n)
    return rng.binomial(1, np.clip(0.1 + 0.08 * x + effect, 0, 1)), x


def binary(rng, n, effect):
    x = rng.binomial(1, 0.3, n)
    return rng.binomial(1, 0.1 + 0.4 * x + effect), x


def some_units_without_covariate(rng, n, effect):
    """A fifth of the units have no covariate, so they count with x = 0 (DESIGN.md)."""
    y, x = continuous(rng, n, effect)
    return y, np.where(rng.random(n) < 0.2, 0.0, x)


ARMS = [
    pytest.param(continuous, 4.0, id="continuous"),
    pytest.param(binary_y_continuous_x, 0.02, id="binary-y"),
    pytest.param(binary, 0.03, id="binary-y-and-x"),
    pytest.param(some_units_without_covariate, 4.0, id="units-without-covariate"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("draw, effect", ARMS)
def test_cuped_z_test_equals_statsmodels_ztest_ind_on_the_adjusted_values(seed, alternative, draw, effect):
    rng = np.random.default_rng(seed)
    control, challenger = draw(rng, 3_000 + 400 * seed, 0.0), draw(rng, 2_600 + 900 * seed, effect)
    alpha = 0.05 / (seed + 1)

    result = cuped_z_test(covariate_summary(*control), covariate_summary(*challenger),
                          alternative=alternative, alpha=alpha)

    theta = reference_theta(control, challenger)
    y_c, y_j = adjusted_values(control, challenger, theta)
    statistic, p_value, low, high = z_reference(y_c, y_j, alternative=alternative, alpha=alpha)
    assert (result.test, result.adjusted, result.theta) == (CUPED_Z_TEST, True, close(theta))
    assert (result.effect, result.statistic, result.p_value) == (close(y_j.mean() - y_c.mean()), close(statistic),
                                                                  close(p_value))
    assert_interval(result, low, high, alternative)
    assert result.variance_reduction == close(1 - mean_variance(y_c, y_j) / mean_variance(control[0], challenger[0]))
    assert result.variance_reduction > 0
    assert (result.df, result.relative_effect, result.relative_ci_low, result.relative_ci_high) == (None,) * 4


def test_each_arm_s_adjusted_mean_and_variance_equal_numpy_on_its_adjusted_values():
    rng = np.random.default_rng(5)
    control, challenger = continuous(rng, 1_500, 0.0), continuous(rng, 1_700, 3.0)
    summaries = covariate_summary(*control), covariate_summary(*challenger)
    theta = cuped_theta(*summaries)
    xbar = np.concatenate([control[1], challenger[1]]).mean()

    for summary, adjusted in zip(summaries, adjusted_values(control, challenger, theta)):
        assert summary.adjusted_mean(theta, xbar) == close(adjusted.mean())
        assert summary.adjusted_variance(theta) == close(adjusted.var(ddof=1))


def half_integers_near_a_million(rng, n, effect):
    """Values 1e6 + k/2 with an sd of about 1: all their sums (n <= 2,000) are exact in float."""
    z_x = rng.normal(0, 1, n)
    z_y = 0.8 * z_x + 0.6 * rng.normal(0, 1, n)
    return 1e6 + np.round(2 * (z_y + effect)) / 2, 1e6 + np.round(2 * z_x) / 2


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_means_of_a_million_with_an_sd_of_one_lose_no_digits(alternative):
    rng = np.random.default_rng(11)
    control, challenger = half_integers_near_a_million(rng, 2_000, 0.0), half_integers_near_a_million(rng, 1_800, 0.5)

    result = cuped_z_test(covariate_summary(*control), covariate_summary(*challenger),
                          alternative=alternative, alpha=0.05)

    # The sums hold every digit, so the answers must too, to 1e-12 rather than 1e-9. numpy
    # itself loses digits on values of 1e6 (its polyfit is off by 5e-11 here, its z by 3e-10);
    # subtracting 1e6 is exact for these values and changes neither theta, the effect nor the
    # variances, so the reference is computed on the shifted values.
    control, challenger = [(y - 1e6, x - 1e6) for y, x in (control, challenger)]
    theta = reference_theta(control, challenger)
    y_c, y_j = adjusted_values(control, challenger, theta)
    statistic, p_value, low, high = z_reference(y_c, y_j, alternative=alternative, alpha=0.05)
    expected = [theta, y_j.mean() - y_c.mean(), statistic, p_value, low, high]
    actual = [result.theta, result.effect, result.statistic, result.p_value, result.ci_low, result.ci_high]
    for value, reference in zip(actual, expected):
        if value is not None:
            assert value == pytest.approx(reference, rel=1e-12)
    assert_interval(result, low, high, alternative)
    assert result.variance_reduction == close(1 - mean_variance(y_c, y_j) / mean_variance(control[0], challenger[0]))


def test_each_challenger_is_adjusted_with_the_theta_of_its_own_two_arms():
    rng = np.random.default_rng(3)
    control = continuous(rng, 2_000, 0.0)
    # The second challenger's values follow its covariate more steeply, so the pooled slopes differ.
    steep_y, steep_x = continuous(rng, 1_900, 5.0)
    challengers = [continuous(rng, 2_100, 2.0), (steep_y + 0.2 * steep_x, steep_x)]

    thetas = []
    for challenger in challengers:
        result = cuped_z_test(covariate_summary(*control), covariate_summary(*challenger),
                              alternative="two-sided", alpha=0.025)

        theta = reference_theta(control, challenger)
        y_c, y_j = adjusted_values(control, challenger, theta)
        statistic, p_value, low, high = z_reference(y_c, y_j, alternative="two-sided", alpha=0.025)
        assert (result.theta, result.effect) == (close(theta), close(y_j.mean() - y_c.mean()))
        assert (result.statistic, result.p_value) == (close(statistic), close(p_value))
        assert_interval(result, low, high, "two-sided")
        thetas.append(result.theta)
    assert abs(thetas[0] - thetas[1]) > 0.05


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("draw, effect, margin", [(continuous, 1.0, 3.0), (binary, 0.005, 0.02)],
                         ids=["continuous", "binary"])
def test_cuped_guardrail_equals_statsmodels_ztest_ind_against_the_margin(seed, direction, draw, effect, margin):
    rng = np.random.default_rng(seed)
    control, challenger = draw(rng, 3_000 + 500 * seed, 0.0), draw(rng, 2_800 + 700 * seed, effect)
    alpha = 0.05 / (seed + 1)

    result = cuped_non_inferiority(covariate_summary(*control), covariate_summary(*challenger),
                                   margin=margin, direction=direction, alpha=alpha)

    theta = reference_theta(control, challenger)
    y_c, y_j = adjusted_values(control, challenger, theta)
    alternative, null = GUARDRAIL_ALTERNATIVE[direction], SIGN[direction] * margin
    statistic, p_value, low, high = z_reference(y_c, y_j, alternative=alternative, alpha=alpha, value=null)
    assert (result.statistic, result.p_value) == (close(statistic), close(p_value))
    assert_interval(result, low, high, alternative)
    assert result.bound == close(low if direction == "increase" else high)
    assert (result.effect, result.theta) == (close(y_j.mean() - y_c.mean()), close(theta))
    assert (result.margin, result.null_value, result.df, result.relative_effect) == (margin, null, None, None)
    assert result.non_inferior == (result.p_value < alpha)
    assert result.test == f"{CUPED_Z_TEST} (non-inferiority)" and result.adjusted


def test_the_guardrail_and_the_z_test_agree_when_the_z_test_is_given_the_margin():
    rng = np.random.default_rng(8)
    control = covariate_summary(*continuous(rng, 2_000, 0.0))
    challenger = covariate_summary(*continuous(rng, 2_000, 1.0))

    guardrail = cuped_non_inferiority(control, challenger, margin=4.0, direction="increase", alpha=0.05)
    z_test = cuped_z_test(control, challenger, alternative="larger", alpha=0.05, value=-4.0)

    assert (guardrail.statistic, guardrail.p_value) == (z_test.statistic, z_test.p_value)
    assert guardrail.bound == z_test.ci_low
    assert guardrail.non_inferior


def test_variance_reduction_is_about_rho_squared_on_a_large_correlated_sample():
    rng = np.random.default_rng(21)
    rho, n = 0.8, 100_000
    arms = []
    for effect in (0.0, 0.05):
        x = rng.normal(10, 1, n)
        arms.append((rho * x + math.sqrt(1 - rho * rho) * rng.normal(effect, 1, n), x))

    result = cuped_z_test(*(covariate_summary(*arm) for arm in arms), alternative="two-sided", alpha=0.05)

    assert result.variance_reduction == pytest.approx(rho * rho, abs=0.01)
    y_c, y_j = adjusted_values(*arms, reference_theta(*arms))
    assert result.variance_reduction == close(1 - mean_variance(y_c, y_j) / mean_variance(arms[0][0], arms[1][0]))


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("constant", [0.0, 3.0], ids=["no-covariates", "constant-covariate"])
def test_a_covariate_without_variance_falls_back_to_the_unadjusted_z_test(alternative, constant):
    rng = np.random.default_rng(4)
    y_c, y_j = rng.gamma(2, 50, 1_000), rng.gamma(2, 53, 1_200)
    control, challenger = (covariate_summary(y, np.full(len(y), constant)) for y in (y_c, y_j))

    result = cuped_z_test(control, challenger, alternative=alternative, alpha=0.05)

    statistic, p_value, low, high = z_reference(y_c, y_j, alternative=alternative, alpha=0.05)
    assert (result.adjusted, result.theta, result.variance_reduction) == (False, None, 0.0)
    assert result.test == UNADJUSTED_Z_TEST
    assert (result.effect, result.statistic, result.p_value) == (close(y_j.mean() - y_c.mean()), close(statistic),
                                                                  close(p_value))
    assert_interval(result, low, high, alternative)
    assert cuped_theta(control, challenger) is None
    guardrail = cuped_non_inferiority(control, challenger, margin=5.0, direction="decrease", alpha=0.05)
    assert (guardrail.adjusted, guardrail.theta) == (False, None)
    assert guardrail.test == f"{UNADJUSTED_Z_TEST} (non-inferiority)"


def test_theta_is_none_for_no_units_or_a_single_one():
    empty = CovariateSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert cuped_theta(empty, empty) is None
    assert cuped_theta(empty, CovariateSummary(1, 2.0, 4.0, 3.0, 9.0, 6.0)) is None


unit_values = st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=2, max_size=30)


@settings(max_examples=60, deadline=None)
@given(unit_values, unit_values, st.integers(-10**6, 10**6))
def test_shifting_every_covariate_by_a_constant_changes_nothing(control, challenger, shift):
    """theta, the effect and its se depend on x only through x - xbar; integer sums are exact."""
    def arm(units, offset):
        y, x = np.array(units, dtype=float).T
        return covariate_summary(y, x + offset)

    original, shifted = (arm(control, 0), arm(challenger, 0)), (arm(control, shift), arm(challenger, shift))

    assert cuped_theta(*shifted) == cuped_theta(*original)
    try:
        expected = cuped_z_test(*original, alternative="two-sided", alpha=0.05)
    except AnalysisError:
        with pytest.raises(AnalysisError):
            cuped_z_test(*shifted, alternative="two-sided", alpha=0.05)
        return
    result = cuped_z_test(*shifted, alternative="two-sided", alpha=0.05)
    assert (result.effect, result.statistic, result.variance_reduction) == (
        expected.effect, expected.statistic, expected.variance_reduction)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("draw", [continuous, binary, some_units_without_covariate],
                         ids=["continuous", "binary", "units-without-covariate"])
def test_covariate_balance_p_value_equals_scipy_welch_t_test(seed, draw):
    rng = np.random.default_rng(seed)
    control, challenger = draw(rng, 800 + 300 * seed, 0.0), draw(rng, 900, 0.0)
    # A covariate measured after exposure would move with the treatment; shift one to see small p-values too.
    if seed == 1:
        challenger = (challenger[0], challenger[1] + 0.1 * challenger[1].std())

    p_value = covariate_balance_p_value(covariate_summary(*control), covariate_summary(*challenger))

    assert p_value == close(stats.ttest_ind(challenger[1], control[1], equal_var=False).pvalue)


def test_covariate_balance_with_one_constant_arm_equals_scipy():
    rng = np.random.default_rng(2)
    x_c, x_j = np.zeros(500), rng.binomial(1, 0.01, 600).astype(float)
    y_c, y_j = rng.normal(0, 1, 500), rng.normal(0, 1, 600)

    p_value = covariate_balance_p_value(covariate_summary(y_c, x_c), covariate_summary(y_j, x_j))

    assert p_value == close(stats.ttest_ind(x_j, x_c, equal_var=False).pvalue)


def test_covariate_balance_of_constant_arms_is_1_when_equal_and_0_when_not():
    """scipy answers NaN there; a NaN would neither pass nor fail the check."""
    def constant_arm(value, n=50):
        return covariate_summary(np.arange(n, dtype=float), np.full(n, value))

    assert covariate_balance_p_value(constant_arm(0.0), constant_arm(0.0)) == 1.0
    assert covariate_balance_p_value(constant_arm(2.0), constant_arm(2.0, 70)) == 1.0
    assert covariate_balance_p_value(constant_arm(1.0), constant_arm(2.0)) == 0.0
    assert COVARIATE_BALANCE_ALPHA == 0.001


def test_cuped_effect_size_divides_by_the_square_root_of_one_minus_rho_squared():
    assert cuped_effect_size(0.2, 0.6) == pytest.approx(0.25, rel=1e-15)
    assert cuped_effect_size(0.1, 0) == 0.1
    assert cuped_effect_size(0.3, 0.99) == close(0.3 / math.sqrt(1 - 0.99**2))


@pytest.mark.parametrize("effect_size, rho", [(0.2, 1.0), (0.2, -0.1), (0.2, 1.5), (0.2, math.nan), (0.2, True),
                                              (0.0, 0.5), (-0.2, 0.5), (math.inf, 0.5), ("0.2", 0.5)])
def test_cuped_effect_size_refuses_a_correlation_outside_0_1_and_a_non_positive_effect(effect_size, rho):
    with pytest.raises(AnalysisError):
        cuped_effect_size(effect_size, rho)


@pytest.mark.parametrize("arguments", [
    pytest.param((-1, 0.0, 0.0, 0.0, 0.0, 0.0), id="negative-n"),
    pytest.param((2.0, 1.0, 1.0, 1.0, 1.0, 1.0), id="float-n"),
    pytest.param((True, 1.0, 1.0, 1.0, 1.0, 1.0), id="bool-n"),
    pytest.param((2, math.nan, 1.0, 1.0, 1.0, 1.0), id="nan-sum"),
    pytest.param((2, 1.0, 1.0, 1.0, 1.0, math.inf), id="infinite-sum"),
    pytest.param((0, 1.0, 1.0, 0.0, 0.0, 0.0), id="empty-arm-with-sums"),
    pytest.param((2, 10.0, 20.0, 1.0, 1.0, 1.0), id="sum-y2-below-sum-y-squared-over-n"),
    pytest.param((2, 1.0, 1.0, 10.0, 20.0, 1.0), id="sum-x2-below-sum-x-squared-over-n"),
    pytest.param((2, 2.0, 2.0, 2.0, 2.0, 3.0), id="sum-xy-beyond-cauchy-schwarz"),
    pytest.param((2, 1.0, -1.0, 1.0, 1.0, 1.0), id="negative-sum-of-squares"),
])
def test_an_inconsistent_summary_is_refused(arguments):
    with pytest.raises(AnalysisError):
        CovariateSummary(*arguments)


def degenerate_arms():
    """Named arm pairs for the refusals below."""
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, 100)
    return {
        "usual": (covariate_summary(*continuous(rng, 100, 0.0)), covariate_summary(*continuous(rng, 100, 1.0))),
        "one-unit": (CovariateSummary(1, 5.0, 25.0, 2.0, 4.0, 10.0), covariate_summary(*continuous(rng, 100, 1.0))),
        "constant-y": (covariate_summary(np.ones(100), x), covariate_summary(np.ones(100), x + 1)),
        # Rounding in the float sums leaves a variance of ~1e-30 rather than 0: still refused.
        "exactly-predicted": (covariate_summary(2 * x, x), covariate_summary(2 * x + 1, x)),
        "covariate-is-the-value": (covariate_summary(x, x), covariate_summary(x + 0.3, x + 0.3)),
    }


@pytest.mark.parametrize("arms, call, message", [
    ("one-unit", lambda c, j: cuped_z_test(c, j, alternative="two-sided", alpha=0.05), "at least 2"),
    ("usual", lambda c, j: cuped_z_test(c, j, alternative="one-sided", alpha=0.05), "alternative"),
    ("usual", lambda c, j: cuped_z_test(c, j, alternative="two-sided", alpha=1.0), "alpha"),
    ("usual", lambda c, j: cuped_z_test(c, j, alternative="two-sided", alpha=0.05, value=math.nan), "value"),
    ("constant-y", lambda c, j: cuped_z_test(c, j, alternative="two-sided", alpha=0.05), "same value"),
    ("exactly-predicted", lambda c, j: cuped_z_test(c, j, alternative="two-sided", alpha=0.05), "exactly"),
    ("covariate-is-the-value", lambda c, j: cuped_z_test(c, j, alternative="larger", alpha=0.05), "exactly"),
    ("covariate-is-the-value", lambda c, j: cuped_non_inferiority(c, j, margin=1.0, direction="increase", alpha=0.05),
     "exactly"),
    ("usual", lambda c, j: cuped_non_inferiority(c, j, margin=0.0, direction="increase", alpha=0.05), "margin"),
    ("usual", lambda c, j: cuped_non_inferiority(c, j, margin=1.0, direction="up", alpha=0.05), "direction"),
    ("one-unit", lambda c, j: covariate_balance_p_value(c, j), "at least 2"),
    ("one-unit", lambda c, j: c.adjusted_variance(0.5), "at least 2"),
    ("usual", lambda c, j: c.adjusted_mean(math.nan, 0.0), "theta"),
])
def test_degenerate_comparisons_and_bad_arguments_are_refused(arms, call, message):
    with pytest.raises(AnalysisError, match=message):
        call(*degenerate_arms()[arms])
