"""The hypothesis tests, fed sufficient statistics, match scipy and statsmodels run on the raw values."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from analysis.errors import AnalysisError
from analysis.hypothesis_tests import (
    holm_adjust,
    mcnemar_test,
    paired_t_test,
    relative_effect_interval,
    two_proportion_z_test,
    welch_t_test,
)
from analysis.types import PairedSummary, SampleSummary
from tests.analysis.summaries import close, paired, summary

ALTERNATIVES = ("two-sided", "larger", "smaller")
SCIPY_ALTERNATIVE = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}
SEEDS = (0, 1, 2)


def assert_interval_matches(result, low, high, alternative):
    """A one-sided interval has None for its open end; the closed ends match the reference."""
    if alternative == "larger":
        assert result.ci_high is None and result.ci_low == close(low)
    elif alternative == "smaller":
        assert result.ci_low is None and result.ci_high == close(high)
    else:
        assert (result.ci_low, result.ci_high) == (close(low), close(high))


# Continuous arms: (control n, mean, sd), (challenger n, mean, sd); means 0.1 to 100, unequal n,
# including a mean / sd ratio of 200 where a naive variance from sums loses 9 digits.
WELCH_ARMS = [
    ((30, 0.1, 0.05), (45, 0.12, 0.07)),
    ((400, 20.0, 10.0), (350, 21.5, 14.0)),
    ((5_000, 100.0, 30.0), (7_000, 100.0, 30.0)),
    ((50_000, 100.0, 0.5), (42_000, 100.003, 0.6)),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("arms", WELCH_ARMS, ids=lambda a: f"n{a[0][0]}-{a[1][0]}")
def test_welch_t_test_equals_scipy_ttest_ind_with_unequal_variances(seed, alternative, arms):
    rng = np.random.default_rng(seed)
    (n_x, mu_x, sd_x), (n_y, mu_y, sd_y) = arms
    x, y = rng.normal(mu_x, sd_x, n_x), rng.normal(mu_y, sd_y, n_y)
    alpha = 0.05 / (seed + 1)

    result = welch_t_test(summary(x), summary(y), alternative=alternative, alpha=alpha)

    reference = stats.ttest_ind(y, x, equal_var=False, alternative=SCIPY_ALTERNATIVE[alternative])
    assert result.statistic == close(reference.statistic)
    assert result.p_value == close(reference.pvalue)
    assert result.df == close(reference.df)
    assert result.effect == close(y.mean() - x.mean())
    assert_interval_matches(result, *reference.confidence_interval(1 - alpha), alternative)
    assert result.test == "Welch t-test" and result.alternative == alternative


def test_welch_t_test_on_skewed_revenue_with_many_zeros_equals_scipy():
    rng = np.random.default_rng(7)
    x = rng.lognormal(3, 1, 20_000) * (rng.random(20_000) < 0.1)
    y = rng.lognormal(3, 1, 19_000) * (rng.random(19_000) < 0.11)
    result = welch_t_test(summary(x), summary(y), alternative="two-sided", alpha=0.05)
    reference = stats.ttest_ind(y, x, equal_var=False)
    assert (result.statistic, result.p_value) == (close(reference.statistic), close(reference.pvalue))
    assert_interval_matches(result, *reference.confidence_interval(0.95), "two-sided")


# Binary arms: (control n, rate), (challenger n, rate).
PROPORTION_ARMS = [
    ((30, 0.3), (40, 0.45)),
    ((800, 0.1), (1_200, 0.12)),
    ((50_000, 0.02), (45_000, 0.021)),
    ((20_000, 0.5), (20_000, 0.5)),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("arms", PROPORTION_ARMS, ids=lambda a: f"n{a[0][0]}-{a[1][0]}")
def test_two_proportion_z_test_equals_statsmodels_pooled_z_and_wald_interval(seed, alternative, arms):
    rng = np.random.default_rng(seed)
    (n_x, p_x), (n_y, p_y) = arms
    x, y = rng.binomial(1, p_x, n_x), rng.binomial(1, p_y, n_y)
    alpha = 0.05 / (seed + 1)

    result = two_proportion_z_test(summary(x), summary(y), alternative=alternative, alpha=alpha)

    statistic, p_value = proportions_ztest([y.sum(), x.sum()], [n_y, n_x], alternative=alternative)
    assert (result.statistic, result.p_value) == (close(statistic), close(p_value))
    assert result.effect == close(y.mean() - x.mean()) and result.df is None
    # A one-sided bound at alpha is the matching end of the two-sided interval at 2 alpha.
    interval_alpha = alpha if alternative == "two-sided" else 2 * alpha
    low, high = confint_proportions_2indep(
        y.sum(), n_y, x.sum(), n_x, method="wald", compare="diff", alpha=interval_alpha
    )
    assert_interval_matches(result, low, high, alternative)


# Pairs: (n, champion mean, champion sd, mean difference, sd of the difference).
PAIRS = [
    (30, 5.0, 2.0, 0.3, 1.0),
    (787, 10.0, 7.0, -0.5, 5.0),
    (50_000, 100.0, 20.0, 0.002, 0.5),
    (100_000, 0.1, 0.03, 0.0001, 0.01),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("pairs", PAIRS, ids=lambda p: f"n{p[0]}")
def test_paired_t_test_equals_scipy_ttest_rel(seed, alternative, pairs):
    rng = np.random.default_rng(seed)
    n, mu, sd, delta, sd_d = pairs
    x = rng.normal(mu, sd, n)
    y = x + rng.normal(delta, sd_d, n)
    alpha = 0.05 / (seed + 1)

    result = paired_t_test(paired(x, y), alternative=alternative, alpha=alpha)

    reference = stats.ttest_rel(y, x, alternative=SCIPY_ALTERNATIVE[alternative])
    assert (result.statistic, result.p_value) == (close(reference.statistic), close(reference.pvalue))
    assert result.df == n - 1 and result.effect == close(np.mean(y - x))
    assert_interval_matches(result, *reference.confidence_interval(1 - alpha), alternative)


def binary_pairs(rng, n, champion_only, challenger_only, both):
    """n shuffled pairs of 0/1 values with these counts of (1, 0), (0, 1) and (1, 1) pairs."""
    cell = np.repeat([0, 1, 2, 3], [champion_only, challenger_only, both, n - champion_only - challenger_only - both])
    rng.shuffle(cell)
    return np.isin(cell, (0, 2)).astype(float), np.isin(cell, (1, 2)).astype(float)


def discordant(x, y):
    return int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())


# (n, b = champion 1 only, c = challenger 1 only, both 1): exact below 25 discordant pairs.
MCNEMAR_EXACT = [(30, 3, 9, 10), (200, 4, 12, 40), (5_000, 5, 14, 1_500), (40, 0, 7, 10), (60, 12, 12, 20),
                 (90, 15, 9, 30)]
MCNEMAR_CHI_SQUARE = [(80, 12, 13, 20), (300, 30, 45, 60), (2_000, 100, 100, 500), (50_000, 1_500, 1_600, 5_000),
                      (100, 20, 5, 30), (60_000, 700, 0, 30_000)]


def mcnemar_reference_p(x, y, alternative):
    b, c = discordant(x, y)
    exact = b + c < 25
    if alternative == "two-sided":
        return mcnemar([[0, b], [c, 0]], exact=exact, correction=True).pvalue
    if exact:
        return stats.binomtest(c, b + c, 0.5, alternative=SCIPY_ALTERNATIVE[alternative]).pvalue
    half = mcnemar([[0, b], [c, 0]], exact=False, correction=True).pvalue / 2
    in_direction = c > b if alternative == "larger" else c < b
    return half if in_direction else 1 - half


def wald_paired_interval(x, y, alpha, alternative):
    """The Wald interval computed directly on d = y - x with the ML variance (ddof 0)."""
    d = y - x
    se = np.sqrt(np.var(d) / len(d))
    z = stats.norm.ppf(1 - alpha / 2 if alternative == "two-sided" else 1 - alpha)
    return d.mean() - z * se, d.mean() + z * se


def assert_mcnemar_matches(x, y, alternative, alpha):
    b, c = discordant(x, y)
    exact = b + c < 25
    result = mcnemar_test(paired(x, y), alternative=alternative, alpha=alpha)
    assert result.p_value == close(mcnemar_reference_p(x, y, alternative))
    assert result.statistic == close(mcnemar([[0, b], [c, 0]], exact=exact, correction=True).statistic)
    assert result.df == (None if exact else 1)
    assert result.effect == close((c - b) / len(x))
    assert_interval_matches(result, *wald_paired_interval(x, y, alpha, alternative), alternative)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(
    "regime, cell",
    [("exact", c) for c in MCNEMAR_EXACT] + [("chi-square", c) for c in MCNEMAR_CHI_SQUARE],
    ids=lambda v: v if isinstance(v, str) else f"n{v[0]}-b{v[1]}-c{v[2]}",
)
def test_mcnemar_test_equals_statsmodels_mcnemar_and_binomtest(alternative, regime, cell):
    x, y = binary_pairs(np.random.default_rng(0), *cell)
    assert (cell[1] + cell[2] < 25) == (regime == "exact")
    assert_mcnemar_matches(x, y, alternative, alpha=0.05 / 3)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_mcnemar_test_on_randomly_drawn_pairs_equals_the_references(seed, alternative):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 3_000))
    b, c, both = rng.multinomial(n, [0.006, 0.01, 0.3, 0.684])[:3]
    if b + c == 0:
        c = 1
    assert_mcnemar_matches(*binary_pairs(rng, n, b, c, both), alternative, alpha=0.05)


def test_mcnemar_one_sided_chi_square_against_the_observed_direction_is_one_minus_half_the_p_value():
    x, y = np.repeat([1.0, 0.0], [40, 20]), np.repeat([0.0, 1.0], [40, 20])  # b = 40, c = 20
    two_sided = mcnemar([[0, 40], [20, 0]], exact=False, correction=True).pvalue
    assert mcnemar_test(paired(x, y), alternative="smaller", alpha=0.05).p_value == close(two_sided / 2)
    assert mcnemar_test(paired(x, y), alternative="larger", alpha=0.05).p_value == close(1 - two_sided / 2)


def delta_method_reference(x, y, *, paired_data, binary, alternative, alpha):
    """Var(ratio) = g' S g with gradient g = (-my / mx^2, 1 / mx) and S the covariance of the means."""
    mx, my = x.mean(), y.mean()
    ddof = 0 if binary else 1
    if paired_data:
        cov = np.cov(np.vstack([x, y]), ddof=ddof) / len(x)
    else:
        cov = np.diag([np.var(x, ddof=ddof) / len(x), np.var(y, ddof=ddof) / len(y)])
    gradient = np.array([-my / mx**2, 1 / mx])
    se = np.sqrt(gradient @ cov @ gradient)
    z = stats.norm.ppf(1 - alpha / 2 if alternative == "two-sided" else 1 - alpha)
    return my / mx - 1, my / mx - 1 - z * se, my / mx - 1 + z * se


def assert_relative_matches(result, estimate, low, high, alternative):
    assert result.relative_effect == close(estimate)
    if alternative != "smaller":
        assert result.relative_ci_low == close(low)
    if alternative != "larger":
        assert result.relative_ci_high == close(high)
    assert (result.relative_ci_high is None) == (alternative == "larger")
    assert (result.relative_ci_low is None) == (alternative == "smaller")


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_relative_intervals_equal_a_direct_delta_method_computation_for_every_test(alternative):
    rng = np.random.default_rng(11)
    alpha = 0.025
    x, y = rng.normal(20, 5, 800), rng.normal(21, 6, 900)
    result = welch_t_test(summary(x), summary(y), alternative=alternative, alpha=alpha)
    expected = delta_method_reference(x, y, paired_data=False, binary=False, alternative=alternative, alpha=alpha)
    assert_relative_matches(result, *expected, alternative)

    x, y = rng.binomial(1, 0.1, 3000).astype(float), rng.binomial(1, 0.12, 2500).astype(float)
    result = two_proportion_z_test(summary(x), summary(y), alternative=alternative, alpha=alpha)
    expected = delta_method_reference(x, y, paired_data=False, binary=True, alternative=alternative, alpha=alpha)
    assert_relative_matches(result, *expected, alternative)

    x = rng.gamma(2, 5, 1000)
    y = x + rng.normal(-0.5, 5, 1000)
    result = paired_t_test(paired(x, y), alternative=alternative, alpha=alpha)
    expected = delta_method_reference(x, y, paired_data=True, binary=False, alternative=alternative, alpha=alpha)
    assert_relative_matches(result, *expected, alternative)

    x, y = binary_pairs(rng, 2000, 100, 140, 500)
    result = mcnemar_test(paired(x, y), alternative=alternative, alpha=alpha)
    expected = delta_method_reference(x, y, paired_data=True, binary=True, alternative=alternative, alpha=alpha)
    assert_relative_matches(result, *expected, alternative)


def coverage(intervals, truth):
    lows, highs = np.array([i[0] for i in intervals]), np.array([i[1] for i in intervals])
    return float(np.mean((lows <= truth) & (truth <= highs)))


def test_relative_interval_of_independent_arms_covers_the_true_ratio_95_percent_of_the_time():
    rng = np.random.default_rng(3)
    sims, n = 2000, 400
    x = rng.gamma(4, 5, (sims, n))  # mean 20
    y = rng.gamma(4, 5.5, (sims, n))  # mean 22: true relative effect 0.1
    sx, sy, qx, qy = x.sum(1), y.sum(1), (x * x).sum(1), (y * y).sum(1)
    intervals = []
    for i in range(sims):
        r = welch_t_test(SampleSummary(n, sx[i], qx[i]), SampleSummary(n, sy[i], qy[i]), alternative="two-sided",
                         alpha=0.05)
        intervals.append((r.relative_ci_low, r.relative_ci_high))
    assert 0.935 <= coverage(intervals, 0.1) <= 0.965


def test_relative_interval_of_correlated_pairs_covers_the_true_ratio_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    sims, n = 2000, 300
    x = rng.gamma(2, 5, (sims, n))  # mean 10
    y = 0.9 * x + rng.normal(0, 3, (sims, n))  # mean 9: true relative effect -0.1, strongly correlated
    sums = [a.sum(1) for a in (x, x * x, y, y * y, x * y)]
    intervals = []
    for i in range(sims):
        r = paired_t_test(PairedSummary(n, *(s[i] for s in sums)), alternative="two-sided", alpha=0.05)
        intervals.append((r.relative_ci_low, r.relative_ci_high))
    assert 0.935 <= coverage(intervals, -0.1) <= 0.965


def test_relative_effect_interval_is_undefined_for_a_control_mean_of_zero():
    with pytest.raises(AnalysisError, match="control mean is 0"):
        relative_effect_interval(0.0, 1.0, 0.1, 0.1, alternative="two-sided", alpha=0.05)


def test_a_control_mean_of_zero_leaves_the_relative_fields_empty_but_still_tests():
    control, challenger = summary([0.0] * 100), summary([0.0] * 95 + [1.0] * 5)
    result = two_proportion_z_test(control, challenger, alternative="two-sided", alpha=0.05)
    assert result.p_value > 0 and result.relative_effect is None
    assert result.relative_ci_low is None and result.relative_ci_high is None


@pytest.mark.parametrize("test", [welch_t_test, two_proportion_z_test])
@pytest.mark.parametrize("sizes", [(1, 50), (50, 1), (0, 0)])
def test_unpaired_tests_refuse_an_arm_with_fewer_than_two_units(test, sizes):
    control, challenger = (summary([0.0, 1.0] * (n // 2) + [1.0] * (n % 2)) for n in sizes)
    with pytest.raises(AnalysisError, match="at least 2 are needed"):
        test(control, challenger, alternative="two-sided", alpha=0.05)


def test_welch_t_test_refuses_two_arms_without_variation():
    with pytest.raises(AnalysisError, match="same value"):
        welch_t_test(summary([3.0] * 10), summary([4.0] * 12), alternative="two-sided", alpha=0.05)


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy's, on the constant arm
def test_welch_t_test_accepts_one_arm_without_variation_like_scipy():
    x, y = np.full(10, 3.0), np.array([4.0, 5.0, 6.0, 4.5])
    result = welch_t_test(summary(x), summary(y), alternative="two-sided", alpha=0.05)
    reference = stats.ttest_ind(y, x, equal_var=False)
    assert (result.statistic, result.p_value, result.df) == (
        close(reference.statistic), close(reference.pvalue), close(reference.df)
    )


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_two_proportion_z_test_refuses_arms_where_every_unit_has_the_same_value(value):
    with pytest.raises(AnalysisError, match="every unit in both arms"):
        two_proportion_z_test(summary([value] * 50), summary([value] * 60), alternative="two-sided", alpha=0.05)


def test_paired_t_test_refuses_pairs_that_all_differ_by_the_same_amount():
    x = np.arange(10.0)
    with pytest.raises(AnalysisError, match="same difference"):
        paired_t_test(paired(x, x + 2.5), alternative="two-sided", alpha=0.05)


@pytest.mark.parametrize("test", [paired_t_test, mcnemar_test])
def test_paired_tests_refuse_fewer_than_two_pairs(test):
    with pytest.raises(AnalysisError, match="at least 2 are needed"):
        test(paired([1.0], [0.0]), alternative="two-sided", alpha=0.05)


def test_mcnemar_test_refuses_pairs_without_a_discordant_pair():
    x = np.array([1.0, 0.0, 1.0, 1.0])
    with pytest.raises(AnalysisError, match="no pair is discordant"):
        mcnemar_test(paired(x, x), alternative="two-sided", alpha=0.05)


def test_binary_tests_refuse_values_that_are_not_zero_or_one():
    with pytest.raises(AnalysisError, match="not 0/1"):
        two_proportion_z_test(summary([0.0, 2.0, 1.0]), summary([0.0, 1.0, 1.0]), alternative="two-sided", alpha=0.05)
    with pytest.raises(AnalysisError, match="0/1"):
        mcnemar_test(paired([0.5, 1.0, 0.0], [1.0, 0.0, 0.0]), alternative="two-sided", alpha=0.05)


@pytest.mark.parametrize("alternative, alpha", [("greater", 0.05), ("two-sided", 0.0), ("larger", 1.0)])
def test_tests_refuse_an_unknown_alternative_or_an_alpha_outside_zero_one(alternative, alpha):
    with pytest.raises(AnalysisError):
        welch_t_test(summary([1.0, 2.0]), summary([2.0, 4.0]), alternative=alternative, alpha=alpha)


HOLM_CASES = [
    [0.01],
    [0.01, 0.04],
    [0.04, 0.01, 0.03],
    [0.02, 0.02, 0.5, 0.001],
    [0.3, 0.9, 0.6, 0.8, 0.95],
    [0.0, 1.0, 0.012, 0.013],
]


@pytest.mark.parametrize("p_values", HOLM_CASES + [list(np.random.default_rng(s).random(6) / 10) for s in SEEDS])
def test_holm_adjust_equals_statsmodels_multipletests_holm(p_values):
    assert holm_adjust(p_values) == tuple(close(p) for p in multipletests(p_values, method="holm")[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=8))
def test_holm_adjusted_p_values_never_fall_below_the_raw_ones_and_keep_their_order(p_values):
    adjusted = holm_adjust(p_values)
    assert all(p <= a <= 1 for p, a in zip(p_values, adjusted))
    for (p_i, a_i), (p_j, a_j) in itertools.combinations(zip(p_values, adjusted), 2):
        assert (a_i <= a_j) if p_i < p_j else (a_i >= a_j) if p_i > p_j else True


def test_holm_adjust_of_no_p_values_is_empty_and_refuses_values_outside_zero_one():
    assert holm_adjust([]) == ()
    with pytest.raises(AnalysisError):
        holm_adjust([0.5, 1.2])


@pytest.mark.parametrize("test", [welch_t_test, two_proportion_z_test, paired_t_test, mcnemar_test])
def test_results_are_frozen(test):
    x, y = np.array([0.0, 1.0, 1.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    args = (paired(x, y),) if test in (paired_t_test, mcnemar_test) else (summary(x), summary(y))
    result = test(*args, alternative="two-sided", alpha=0.05)
    with pytest.raises(AttributeError):
        result.p_value = 0.0


def test_every_number_of_a_result_is_a_plain_finite_float_or_none():
    rng = np.random.default_rng(5)
    x, y = rng.binomial(1, 0.3, 300).astype(float), rng.binomial(1, 0.35, 300).astype(float)
    results = [
        welch_t_test(summary(x), summary(y), alternative="larger", alpha=0.05),
        two_proportion_z_test(summary(x), summary(y), alternative="smaller", alpha=0.05),
        paired_t_test(paired(x, y), alternative="two-sided", alpha=0.05),
        mcnemar_test(paired(x, y), alternative="two-sided", alpha=0.05),
    ]
    for result in results:
        for name in ("effect", "relative_effect", "ci_low", "ci_high", "relative_ci_low", "relative_ci_high",
                     "p_value", "statistic", "df"):
            value = getattr(result, name)
            assert value is None or (type(value) is float and np.isfinite(value)), name


def test_sample_summary_gives_the_mean_and_the_sample_variance_of_its_values():
    values = np.random.default_rng(9).normal(100, 0.01, 100_000)
    arm = summary(values)
    assert arm.mean == close(values.mean())
    assert arm.variance == pytest.approx(values.var(ddof=1), rel=1e-7)  # 8 digits lost in the sums themselves
    assert arm.sd == pytest.approx(values.std(ddof=1), rel=1e-7)


def test_paired_summary_gives_the_moments_of_the_differences_and_the_covariance():
    rng = np.random.default_rng(10)
    x = rng.normal(50, 10, 5_000)
    y = x + rng.normal(1, 2, 5_000)
    pairs = paired(x, y)
    assert pairs.difference_mean == close(np.mean(y - x))
    assert pairs.difference_variance == close(np.var(y - x, ddof=1))
    assert pairs.covariance == close(np.cov(x, y)[0, 1])
    assert pairs.champion == summary(x) and pairs.challenger == summary(y)


@pytest.mark.parametrize(
    "fields, message",
    [
        ((-1, 0.0, 0.0), "non-negative integer"),
        ((2.0, 1.0, 1.0), "non-negative integer"),
        ((True, 1.0, 1.0), "non-negative integer"),
        ((3, float("nan"), 1.0), "finite"),
        ((3, 1.0, float("inf")), "finite"),
        ((3, 1.0, -1.0), ">= 0"),
        ((0, 1.0, 1.0), "empty sample"),
        ((4, 10.0, 20.0), "cannot be the sum of the squared values"),
    ],
)
def test_sample_summary_refuses_impossible_sufficient_statistics(fields, message):
    with pytest.raises(AnalysisError, match=message):
        SampleSummary(*fields)


def test_sample_summary_mean_and_variance_need_enough_units():
    with pytest.raises(AnalysisError, match="empty sample"):
        SampleSummary(0, 0.0, 0.0).mean
    with pytest.raises(AnalysisError, match="at least 2 values"):
        SampleSummary(1, 3.0, 9.0).variance


@pytest.mark.parametrize(
    "fields, message",
    [
        ((0, 1.0, 1.0, 0.0, 0.0, 0.0), "no pairs"),
        ((3, 3.0, 1.0, 0.0, 0.0, 0.0), "champion_total_of_squares"),
        ((3, 0.0, 0.0, 1.0, 0.0, 0.0), "challenger_total_of_squares"),
        ((3, 1.0, 1.0, 1.0, 1.0, float("nan")), "finite"),
    ],
)
def test_paired_summary_refuses_impossible_sufficient_statistics(fields, message):
    with pytest.raises(AnalysisError, match=message):
        PairedSummary(*fields)
