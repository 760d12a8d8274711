"""Challenger-versus-control hypothesis tests from sufficient statistics, matching scipy and statsmodels.

Every test compares challenger minus control (champion). `alternative` is "two-sided",
"larger" (challenger > control) or "smaller"; `alpha` is the interval's alpha (the caller
passes alpha / k for k challengers). A one-sided interval has None for its open end.

Relative effects use the delta method for r = mean_y / mean_x - 1 (y challenger, x control):
    Var(r) ~= (Var(mean_y) + R^2 Var(mean_x) - 2 R Cov(mean_x, mean_y)) / mean_x^2,  R = mean_y / mean_x
with a normal quantile (z at 1 - alpha/2, or 1 - alpha one-sided). Cov is 0 for independent
arms and estimated from the cross products for pairs. It is not reference-matched (no
library computes it from these inputs); the tests check it against a direct computation on
raw data and against simulated coverage. When the control mean is 0 the relative fields
are None.

Degenerate input (fewer than 2 units, no variation, no discordant pairs) raises
AnalysisError with a plain-English reason; no result ever holds NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from scipy import stats

from analysis.errors import AnalysisError
from analysis.types import PairedSummary, SampleSummary
from analysis.validation import one_of

# The tests' alternatives are scipy's and statsmodels' words (the challenger is larger or
# smaller than the control), not the plan's `vocabulary.PlanAlternative` (two-sided or
# one-sided): `AnalysisPlan.hypothesis_alternative` translates one into the other.
TEST_ALTERNATIVES = ("two-sided", "larger", "smaller")

TWO_PROPORTION_Z_TEST = "two-proportion z-test"
WELCH_T_TEST = "Welch t-test"
PAIRED_T_TEST = "paired t-test"
MCNEMAR_TEST = "McNemar test"

# statsmodels' mcnemar is exact below this many discordant pairs (DESIGN.md).
MCNEMAR_EXACT_BELOW = 25

# Binary totals arrive as floats from SQL; a count further than this from an integer is not a count.
_COUNT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ComparisonResult:
    """One challenger against the control: effect, intervals, p-value and test statistic.

    effect = challenger mean - control mean; relative_effect = effect / control mean.
    df is the t distribution's degrees of freedom, 1 for McNemar's chi-square, else None.
    """

    test: str
    alternative: str
    effect: float
    relative_effect: float | None
    ci_low: float | None
    ci_high: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    p_value: float
    statistic: float
    df: float | None

    def __post_init__(self) -> None:
        for value in astuple(self)[2:]:
            if value is not None and not math.isfinite(value):
                raise AnalysisError(f"the {self.test} produced a non-finite value; the data are numerically degenerate")


@dataclass(frozen=True)
class RelativeEffect:
    """The relative effect mean_y / mean_x - 1 and its delta-method interval (None = open end)."""

    estimate: float
    ci_low: float | None
    ci_high: float | None


def relative_effect_interval(
    control_mean: float,
    challenger_mean: float,
    control_mean_variance: float,
    challenger_mean_variance: float,
    means_covariance: float = 0.0,
    *,
    alternative: str,
    alpha: float,
) -> RelativeEffect:
    """Delta-method interval of r = y / x - 1 for the means x (control) and y (challenger).

    se(r) = sqrt(Var(y) + R^2 Var(x) - 2 R Cov(x, y)) / |x| with R = y / x, where the
    arguments are the variances and covariance of the *means*; the interval is
    r -/+ z(1 - alpha/2) se, or one-sided r - z(1 - alpha) se ("larger") or
    r + z(1 - alpha) se ("smaller"). Reference: the first-order Taylor expansion of a ratio
    (Casella & Berger, Statistical Inference, 5.5.4). AnalysisError when x = 0.
    """
    _check_alternative_and_alpha(alternative, alpha)
    if control_mean == 0:
        raise AnalysisError("the relative effect is undefined because the control mean is 0")
    ratio = challenger_mean / control_mean
    variance = (
        challenger_mean_variance + ratio * ratio * control_mean_variance - 2 * ratio * means_covariance
    ) / (control_mean * control_mean)
    low, high = _interval(ratio - 1, math.sqrt(max(variance, 0.0)), stats.norm, alternative, alpha)
    return RelativeEffect(ratio - 1, low, high)


def two_proportion_z_test(
    control: SampleSummary, challenger: SampleSummary, *, alternative: str, alpha: float
) -> ComparisonResult:
    """Pooled two-proportion z-test with an unpooled Wald interval of p_y - p_x.

    z = (p_y - p_x) / sqrt(p (1 - p) (1/n_y + 1/n_x)), p = (x_y + x_x) / (n_y + n_x), normal
    p-value: matches `statsmodels.stats.proportion.proportions_ztest([x_y, x_x], [n_y, n_x])`.
    Interval: (p_y - p_x) -/+ z(1 - alpha/2) sqrt(p_y (1 - p_y) / n_y + p_x (1 - p_x) / n_x),
    matching `confint_proportions_2indep(x_y, n_y, x_x, n_x, method="wald", compare="diff")`;
    one-sided, the same bound with z(1 - alpha). total = the number of units with a 1.
    """
    _check_alternative_and_alpha(alternative, alpha)
    x_count = _binary_count("control", control)
    y_count = _binary_count("challenger", challenger)
    _require_two_units(control, challenger)
    n_x, n_y = control.n, challenger.n
    p_x, p_y = x_count / n_x, y_count / n_y
    pooled = (x_count + y_count) / (n_x + n_y)
    if pooled in (0.0, 1.0):
        raise AnalysisError(
            f"every unit in both arms has the value {int(pooled)}, so the proportions cannot be compared"
        )
    effect = p_y - p_x
    z = effect / math.sqrt(pooled * (1 - pooled) * (1 / n_y + 1 / n_x))
    var_x, var_y = p_x * (1 - p_x) / n_x, p_y * (1 - p_y) / n_y
    low, high = _interval(effect, math.sqrt(var_x + var_y), stats.norm, alternative, alpha)
    relative = _relative(p_x, p_y, var_x, var_y, 0.0, alternative, alpha)
    return _result(TWO_PROPORTION_Z_TEST, alternative, effect, relative, low, high,
                   _p_value(z, stats.norm, alternative), z, None)


def welch_t_test(
    control: SampleSummary, challenger: SampleSummary, *, alternative: str, alpha: float
) -> ComparisonResult:
    """Welch's unequal-variance t-test and Welch-Satterthwaite interval of mean_y - mean_x.

    t = (m_y - m_x) / sqrt(v_y/n_y + v_x/n_x), v = sample variance (ddof 1),
    df = (v_y/n_y + v_x/n_x)^2 / ((v_y/n_y)^2/(n_y - 1) + (v_x/n_x)^2/(n_x - 1)); p-value from
    the t distribution; interval (m_y - m_x) -/+ t(1 - alpha/2, df) se (one-sided t(1 - alpha, df)).
    Matches `scipy.stats.ttest_ind(y, x, equal_var=False, alternative=...)` and its
    `.confidence_interval(1 - alpha)`.
    """
    _check_alternative_and_alpha(alternative, alpha)
    vn_x, vn_y, df = _welch_variances(control, challenger)
    effect = challenger.mean - control.mean
    se = math.sqrt(vn_x + vn_y)
    t_distribution = stats.t(df)
    low, high = _interval(effect, se, t_distribution, alternative, alpha)
    relative = _relative(control.mean, challenger.mean, vn_x, vn_y, 0.0, alternative, alpha)
    t = effect / se
    return _result(WELCH_T_TEST, alternative, effect, relative, low, high,
                   _p_value(t, t_distribution, alternative), t, df)


def paired_t_test(pairs: PairedSummary, *, alternative: str, alpha: float) -> ComparisonResult:
    """Paired t-test of d = y - x and the t interval of the mean difference.

    t = mean(d) / (sd(d) / sqrt(n)), df = n - 1, with sum d = Sy - Sx and
    sum d^2 = Syy - 2 Sxy + Sxx; interval mean(d) -/+ t(1 - alpha/2, n - 1) sd(d) / sqrt(n)
    (one-sided t(1 - alpha, n - 1)). Matches `scipy.stats.ttest_rel(y, x, alternative=...)`
    and its `.confidence_interval(1 - alpha)`.
    """
    _check_alternative_and_alpha(alternative, alpha)
    se = _paired_standard_error(pairs)
    n = pairs.n
    effect = pairs.difference_mean
    t_distribution = stats.t(n - 1)
    low, high = _interval(effect, se, t_distribution, alternative, alpha)
    relative = _relative(
        pairs.champion.mean, pairs.challenger.mean,
        pairs.champion.variance / n, pairs.challenger.variance / n, pairs.covariance / n,
        alternative, alpha,
    )
    t = effect / se
    return _result(PAIRED_T_TEST, alternative, effect, relative, low, high,
                   _p_value(t, t_distribution, alternative), t, n - 1)


def mcnemar_test(pairs: PairedSummary, *, alternative: str, alpha: float) -> ComparisonResult:
    """McNemar's test of paired 0/1 values and the Wald interval of the paired difference.

    Discordant pairs: b = Sx - Sxy (champion 1, challenger 0), c = Sy - Sxy (champion 0,
    challenger 1). With b + c < 25 the test is exact: two-sided p = min(1, 2 P(Bin(b + c, 1/2)
    <= min(b, c))) and statistic min(b, c), as `statsmodels...contingency_tables.mcnemar(table,
    exact=True)`; one-sided p = `scipy.stats.binomtest(c, b + c, 0.5, alternative=...)`.
    Otherwise chi2 = (|c - b| - 1)^2 / (b + c) on 1 df, as `mcnemar(table, exact=False,
    correction=True)`; one-sided p = p2 / 2 when c - b lies in the tested direction, else
    1 - p2 / 2 (the chi-square is the square of a continuity-corrected z; a tie c = b counts
    as not in the tested direction). The statistic is statsmodels' whatever the alternative.

    effect = (c - b) / n, the mean of d in {-1, 0, 1}. Its Wald interval uses the maximum
    likelihood variance Var(mean d) = (mean(d^2) - mean(d)^2) / n = ((b + c)/n - ((c - b)/n)^2) / n,
    i.e. denominator n, not n - 1: this is the textbook Wald interval for the difference of
    dependent proportions (Agresti, Categorical Data Analysis, 3rd ed., section 11.1), and it uses
    the same p (1 - p) / n variances as the unpooled Wald interval of the two-proportion test.
    """
    _check_alternative_and_alpha(alternative, alpha)
    _require_two_pairs(pairs)
    x_count = _binary_count("champion", pairs.champion)
    y_count = _binary_count("challenger", pairs.challenger)
    both = _nearest_count("cross_total", pairs.cross_total)
    b, c = x_count - both, y_count - both
    if b < 0 or c < 0:
        raise AnalysisError("cross_total exceeds a side's number of ones, so the values cannot be 0/1 pairs")
    discordant = b + c
    if discordant == 0:
        raise AnalysisError(
            "no pair is discordant (champion and challenger always agree), so McNemar's test is undefined"
        )
    n = pairs.n
    if discordant < MCNEMAR_EXACT_BELOW:
        statistic, df = float(min(b, c)), None
        if alternative == "two-sided":
            p_value = min(1.0, 2 * float(stats.binom.cdf(min(b, c), discordant, 0.5)))
        elif alternative == "larger":
            p_value = float(stats.binom.sf(c - 1, discordant, 0.5))
        else:
            p_value = float(stats.binom.cdf(c, discordant, 0.5))
    else:
        statistic, df = (abs(c - b) - 1) ** 2 / discordant, 1
        two_sided = float(stats.chi2.sf(statistic, 1))
        in_direction = (c > b) if alternative == "larger" else (c < b)
        if alternative == "two-sided":
            p_value = two_sided
        else:
            p_value = two_sided / 2 if in_direction else 1 - two_sided / 2
    effect = (c - b) / n
    se = math.sqrt(max(discordant / n - effect * effect, 0.0) / n)
    low, high = _interval(effect, se, stats.norm, alternative, alpha)
    p_x, p_y = x_count / n, y_count / n
    relative = _relative(
        p_x, p_y, p_x * (1 - p_x) / n, p_y * (1 - p_y) / n, (both / n - p_x * p_y) / n, alternative, alpha
    )
    return _result(MCNEMAR_TEST, alternative, effect, relative, low, high, p_value, statistic, df)


def holm_adjust(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down adjusted p-values, in the input order.

    With p sorted ascending, p_adj(i) = min(1, max_{j <= i} (m - j + 1) p(j)) for m tests;
    matches `statsmodels.stats.multitest.multipletests(p, method="holm")[1]`.
    """
    values = [float(p) for p in p_values]
    for p in values:
        if not 0 <= p <= 1:
            raise AnalysisError(f"p-values must be in [0, 1], got {p}")
    m = len(values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=values.__getitem__)):
        running = max(running, values[index] * (m - rank))
        adjusted[index] = min(running, 1.0)
    return tuple(adjusted)


def _check_alternative_and_alpha(alternative: str, alpha: float) -> None:
    one_of("alternative", alternative, TEST_ALTERNATIVES)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be in (0, 1), got {alpha!r}")


def _require_two_units(control: SampleSummary, challenger: SampleSummary) -> None:
    for name, arm in (("control", control), ("challenger", challenger)):
        if arm.n < 2:
            raise AnalysisError(f"the {name} has {arm.n} unit(s); at least 2 are needed")


def _require_two_pairs(pairs: PairedSummary) -> None:
    if pairs.n < 2:
        raise AnalysisError(f"there are {pairs.n} complete pair(s); at least 2 are needed")


def _welch_variances(control: SampleSummary, challenger: SampleSummary) -> tuple[float, float, float]:
    """Var(mean_x) = v_x / n_x, Var(mean_y) = v_y / n_y and the Welch-Satterthwaite df."""
    _require_two_units(control, challenger)
    vn_x, vn_y = control.variance / control.n, challenger.variance / challenger.n
    if vn_x == 0 and vn_y == 0:
        raise AnalysisError("every unit in each arm has the same value, so the t statistic is undefined")
    df = (vn_x + vn_y) ** 2 / (vn_y**2 / (challenger.n - 1) + vn_x**2 / (control.n - 1))
    return vn_x, vn_y, df


def _paired_standard_error(pairs: PairedSummary) -> float:
    """se of the mean difference: sd(d) / sqrt(n)."""
    _require_two_pairs(pairs)
    variance = pairs.difference_variance
    if variance == 0:
        raise AnalysisError("every pair has the same difference, so the t statistic is undefined")
    return math.sqrt(variance / pairs.n)


def _nearest_count(name: str, value: float) -> int:
    count = round(value)
    if abs(value - count) > _COUNT_TOLERANCE * max(1.0, abs(value)):
        raise AnalysisError(f"{name} = {value} is not a whole number, so the values are not 0/1")
    return int(count)


def _binary_count(name: str, summary: SampleSummary) -> int:
    """The number of ones in a 0/1 sample; for 0/1 values sum x^2 = sum x and 0 <= sum x <= n."""
    ones = _nearest_count(f"the {name}'s total", summary.total)
    squares = _nearest_count(f"the {name}'s total_of_squares", summary.total_of_squares)
    if ones != squares or not 0 <= ones <= summary.n:
        raise AnalysisError(f"the {name}'s values are not 0/1 (total {summary.total}, n {summary.n})")
    return ones


def _interval(estimate: float, se: float, distribution, alternative: str, alpha: float):
    if alternative == "two-sided":
        margin = float(distribution.ppf(1 - alpha / 2)) * se
        return estimate - margin, estimate + margin
    margin = float(distribution.ppf(1 - alpha)) * se
    return (estimate - margin, None) if alternative == "larger" else (None, estimate + margin)


def _p_value(statistic: float, distribution, alternative: str) -> float:
    """As scipy's `_get_pvalue`: two-sided 2 sf(|s|), larger sf(s), smaller cdf(s)."""
    if alternative == "two-sided":
        return float(2 * distribution.sf(abs(statistic)))
    if alternative == "larger":
        return float(distribution.sf(statistic))
    return float(distribution.cdf(statistic))


def _relative(control_mean, challenger_mean, control_var, challenger_var, covariance, alternative, alpha):
    if control_mean == 0:
        return None
    return relative_effect_interval(
        control_mean, challenger_mean, control_var, challenger_var, covariance, alternative=alternative, alpha=alpha
    )


def _result(test, alternative, effect, relative, low, high, p_value, statistic, df) -> ComparisonResult:
    return ComparisonResult(
        test=test,
        alternative=alternative,
        effect=float(effect),
        relative_effect=None if relative is None else relative.estimate,
        ci_low=low,
        ci_high=high,
        relative_ci_low=None if relative is None else relative.ci_low,
        relative_ci_high=None if relative is None else relative.ci_high,
        p_value=float(p_value),
        statistic=float(statistic),
        df=None if df is None else float(df),
    )
