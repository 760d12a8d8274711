"""CUPED variance reduction (Deng et al. 2013): the z-test of covariate-adjusted means from sufficient statistics.

A unit's covariate x (its value before exposure; 0 for a unit without one) predicts part of
its value y during the test. Per comparison of a challenger j with the control c, over the
units of both arms:
    theta = sum (x - xbar)(y - ybar) / sum (x - xbar)^2   (the OLS slope of y on x, pooled means)
    y' = y - theta (x - xbar)
effect = mean y'_j - mean y'_c, Var = s2(y'_j)/n_j + s2(y'_c)/n_c (ddof 1), and a z-test.
Because x is measured before exposure, mean x_j - mean x_c has mean 0 under randomization,
so subtracting theta times it keeps the effect unbiased while removing about rho^2 of the
variance. theta is pooled over both arms so that both are adjusted by the same slope (a
slope per arm would let the treatment change the adjustment), and its own sampling error
is ignored (it is O(1/n) of the variance), as Deng et al. and GrowthBook do.

Every centered sum is computed exactly from the float inputs (Fraction), as
`types.centered_sum_of_squares` does: with means of 1e6 and an sd of 1, float arithmetic
would lose 12 digits to cancellation, exact arithmetic none. Relative effects are not
computed (the design defines none for CUPED): their fields are None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction

from scipy import stats

from analysis.errors import AnalysisError
from analysis.hypothesis_tests import (
    ComparisonResult,
    _check_alternative_and_alpha,
    _interval,
    _p_value,
    _require_two_units,
    _welch_variances,
)
from analysis.non_inferiority import NonInferiorityResult, _one_sided_test, non_inferiority_name
from analysis.types import _CAUCHY_SCHWARZ_SLACK, SampleSummary, _sum_of_squares
from analysis.validation import finite, non_negative_integer, positive

CUPED_Z_TEST = "CUPED z-test"
# The test run when the covariate has no variance: the same z-test on the unadjusted values.
UNADJUSTED_Z_TEST = "z-test (unadjusted: the covariate has no variance)"

# DESIGN.md: a covariate balance p-value below this makes the result invalid, like a sample
# ratio mismatch. An imbalance that strong most likely means x was (partly) measured after
# exposure, so the adjustment would remove part of the effect itself.
COVARIATE_BALANCE_ALPHA = 0.001

# An adjusted variance below this share of the unadjusted one means x predicts y exactly
# (x is y, or measured after exposure): what is left is rounding in the sums, so the z
# statistic would divide by noise. No pre-exposure covariate reaches rho^2 > 1 - 1e-9.
_EXACT_PREDICTION_SHARE = 1e-9

_SUMS = ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")


@dataclass(frozen=True)
class CovariateSummary:
    """One arm's units as sufficient statistics of the value y and the covariate x.

    n and the sums of y, y^2, x, x^2 and x*y over the arm's units; a unit without a covariate
    counts with x = 0 (DESIGN.md), so it adds to n and the y sums only.
    """

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float

    def __post_init__(self) -> None:
        n = non_negative_integer("n", self.n)
        values = {name: finite(name, getattr(self, name)) for name in _SUMS}
        if n == 0 and any(values.values()):
            raise AnalysisError("an empty arm (n = 0) must have every sum equal to 0")
        _sum_of_squares("sum_y2", n, values["sum_y"], values["sum_y2"])
        _sum_of_squares("sum_x2", n, values["sum_x"], values["sum_x2"])
        # Cauchy-Schwarz on the raw sums, (sum xy)^2 <= sum x^2 sum y^2: a check on the
        # centered sums would flag rounding whenever the means dwarf the sds.
        sxy, sxx, syy = values["sum_xy"], values["sum_x2"], values["sum_y2"]
        if sxy * sxy > sxx * syy * (1 + _CAUCHY_SCHWARZ_SLACK) + 1e-300:
            raise AnalysisError(
                f"sum_xy = {sxy} exceeds sqrt(sum_x2 * sum_y2) = {math.sqrt(sxx * syy)}: "
                "it cannot be the sum of the products"
            )
        object.__setattr__(self, "n", n)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def outcome(self) -> SampleSummary:
        """The arm's values y alone."""
        return SampleSummary(self.n, self.sum_y, self.sum_y2)

    @property
    def covariate(self) -> SampleSummary:
        """The arm's covariates x alone."""
        return SampleSummary(self.n, self.sum_x, self.sum_x2)

    def adjusted_mean(self, theta: float, covariate_mean: float) -> float:
        """mean(y') = mean(y) - theta (mean(x) - xbar), xbar the pooled `covariate_mean`."""
        if self.n == 0:
            raise AnalysisError("the mean of an empty arm is undefined")
        xbar = Fraction(finite("covariate_mean", covariate_mean))
        return float(_adjusted_mean(self, Fraction(finite("theta", theta)), xbar))

    def adjusted_variance(self, theta: float) -> float:
        """s2(y') = (Syy - 2 theta Sxy + theta^2 Sxx) / (n - 1), with the arm's centered sums."""
        if self.n < 2:
            raise AnalysisError(f"the variance needs at least 2 values, got {self.n}")
        return float(_adjusted_variance(self, Fraction(finite("theta", theta))))


@dataclass(frozen=True)
class CupedResult(ComparisonResult):
    """A challenger's CUPED z-test against the control: a ComparisonResult plus the adjustment.

    df is None (a z-test) and the relative fields are None. `adjusted` is False when the
    covariate has no variance over the two arms: then theta is None, the test is the plain
    z-test of the unadjusted values (`UNADJUSTED_Z_TEST`) and variance_reduction is 0.
    """

    theta: float | None
    variance_reduction: float
    adjusted: bool


@dataclass(frozen=True)
class CupedNonInferiorityResult(NonInferiorityResult):
    """A CUPED guardrail test: a NonInferiorityResult (relative_effect None) plus the adjustment."""

    theta: float | None
    variance_reduction: float
    adjusted: bool


@dataclass(frozen=True)
class _Adjusted:
    effect: float
    se: float
    theta: float | None
    variance_reduction: float


def cuped_theta(control: CovariateSummary, challenger: CovariateSummary) -> float | None:
    """The OLS slope of y on x over both arms' units: Cxy / Cxx with the pooled centered sums.

    Cxx = Sxx - Sx^2 / N and Cxy = Sxy - Sx Sy / N over N = n_c + n_j units, computed
    exactly; matches `numpy.polyfit(x, y, 1)[0]` on the pooled values. None when x has no
    variance (Cxx <= 0 exactly): no slope exists and the caller runs the unadjusted test.
    """
    n, sx, sy, sxx, sxy = (sum(Fraction(getattr(arm, name)) for arm in (control, challenger))
                           for name in ("n", "sum_x", "sum_y", "sum_x2", "sum_xy"))
    if n == 0:
        return None
    cxx = sxx - sx * sx / n
    if cxx <= 0:
        return None
    return float((sxy - sx * sy / n) / cxx)


def cuped_z_test(
    control: CovariateSummary, challenger: CovariateSummary, *, alternative: str, alpha: float, value: float = 0.0
) -> CupedResult:
    """The z-test of mean y'_j - mean y'_c against `value`, y' = y - theta (x - xbar).

    z = (effect - value) / se, se = sqrt(s2(y'_j)/n_j + s2(y'_c)/n_c); normal p-value (two-sided
    2 sf(|z|), larger sf(z), smaller cdf(z)); interval effect -/+ z(1 - alpha/2) se, one-sided
    z(1 - alpha) with the open end None. `alternative` is "two-sided", "larger" or "smaller"
    (as in `analysis.hypothesis_tests`). Matches statsmodels' `CompareMeans(DescrStatsW(y'_j),
    DescrStatsW(y'_c)).ztest_ind(usevar="unequal", alternative=..., value=...)` and
    `.zconfint_diff(alpha=alpha, alternative=..., usevar="unequal")`.
    variance_reduction = 1 - se^2 / (s2(y_j)/n_j + s2(y_c)/n_c).
    """
    _check_alternative_and_alpha(alternative, alpha)
    value = finite("value", value)
    adjusted = _adjusted_comparison(control, challenger)
    statistic = (adjusted.effect - value) / adjusted.se
    low, high = _interval(adjusted.effect, adjusted.se, stats.norm, alternative, alpha)
    return CupedResult(
        test=CUPED_Z_TEST if adjusted.theta is not None else UNADJUSTED_Z_TEST,
        alternative=alternative,
        effect=adjusted.effect,
        relative_effect=None,
        ci_low=low,
        ci_high=high,
        relative_ci_low=None,
        relative_ci_high=None,
        p_value=_p_value(statistic, stats.norm, alternative),
        statistic=float(statistic),
        df=None,
        theta=adjusted.theta,
        variance_reduction=adjusted.variance_reduction,
        adjusted=adjusted.theta is not None,
    )


def cuped_non_inferiority(
    control: CovariateSummary, challenger: CovariateSummary, *, margin: float, direction: str, alpha: float
) -> CupedNonInferiorityResult:
    """A CUPED guardrail: the z-test of `cuped_z_test` against the harmful edge of the margin.

    increase: H0 effect <= -margin, alternative "larger", bound = the lower end; decrease:
    H0 effect >= +margin, "smaller", bound = the upper end (as `analysis.non_inferiority`);
    non_inferior = p < alpha. Matches `ztest_ind(usevar="unequal", value=-margin | +margin,
    alternative="larger" | "smaller")` on the adjusted values and the finite end of
    `zconfint_diff(alpha=alpha, alternative=..., usevar="unequal")`.
    """
    adjusted = _adjusted_comparison(control, challenger)
    test = CUPED_Z_TEST if adjusted.theta is not None else UNADJUSTED_Z_TEST
    # A control mean of 0 leaves relative_effect None: the design defines none for CUPED.
    result = _one_sided_test(
        non_inferiority_name(test), adjusted.effect, adjusted.se, stats.norm, None, 0.0,
        margin=margin, direction=direction, alpha=alpha,
    )
    common = {field.name: getattr(result, field.name) for field in fields(result)}
    return CupedNonInferiorityResult(
        **common, theta=adjusted.theta, variance_reduction=adjusted.variance_reduction,
        adjusted=adjusted.theta is not None,
    )


def covariate_balance_p_value(control: CovariateSummary, challenger: CovariateSummary) -> float:
    """Welch's two-sided t-test of the covariate x between the two arms, from the sums.

    t = (mean x_j - mean x_c) / sqrt(v_j/n_j + v_c/n_c) on the Welch-Satterthwaite df; matches
    `scipy.stats.ttest_ind(x_j, x_c, equal_var=False).pvalue`. When x is constant in each arm
    scipy answers NaN; here the arms are then balanced exactly (1.0) if the constants are
    equal (no covariate at all, for instance) and not at all (0.0) otherwise, so the check
    never has to interpret a NaN. Compare it with `COVARIATE_BALANCE_ALPHA`.
    """
    _require_two_units(control, challenger)
    difference = float(_mean(challenger, "sum_x") - _mean(control, "sum_x"))
    x_c, x_j = control.covariate, challenger.covariate
    if x_c.variance == 0 and x_j.variance == 0:
        return 1.0 if difference == 0 else 0.0
    vn_c, vn_j, df = _welch_variances(x_c, x_j)
    return float(2 * stats.t.sf(abs(difference / math.sqrt(vn_c + vn_j)), df))


def cuped_effect_size(effect_size: float, expected_correlation: float) -> float:
    """The planned effect size with CUPED: effect_size / sqrt(1 - rho^2), rho in [0, 1).

    CUPED leaves the effect and divides the variance by about 1 / (1 - rho^2), so the
    standardized effect the solver sees grows by 1 / sqrt(1 - rho^2) (DESIGN.md).
    """
    size = positive("effect_size", effect_size)
    rho = finite("expected_correlation", expected_correlation)
    if not 0 <= rho < 1:
        raise AnalysisError(f"expected_correlation must be in [0, 1), got {rho}")
    return size / math.sqrt(1 - rho * rho)


def _adjusted_comparison(control: CovariateSummary, challenger: CovariateSummary) -> _Adjusted:
    """The adjusted effect and its se, theta and the variance reduction, exact until the end."""
    _require_two_units(control, challenger)
    theta = cuped_theta(control, challenger)
    slope = Fraction(0) if theta is None else Fraction(theta)
    # xbar cancels from the effect; it is kept so that each arm's mean is mean(y') itself.
    xbar = (Fraction(control.sum_x) + Fraction(challenger.sum_x)) / (control.n + challenger.n)
    effect = _adjusted_mean(challenger, slope, xbar) - _adjusted_mean(control, slope, xbar)
    unadjusted = _mean_variance(challenger, Fraction(0)) + _mean_variance(control, Fraction(0))
    variance = _mean_variance(challenger, slope) + _mean_variance(control, slope)
    if unadjusted == 0:
        raise AnalysisError("every unit in each arm has the same value, so the z statistic is undefined")
    if variance <= _EXACT_PREDICTION_SHARE * unadjusted:
        raise AnalysisError(
            "the covariate predicts every value exactly (is it measured after exposure?), "
            "so the z statistic is undefined"
        )
    return _Adjusted(float(effect), math.sqrt(float(variance)), theta, float(1 - variance / unadjusted))


def _mean(arm: CovariateSummary, name: str) -> Fraction:
    return Fraction(getattr(arm, name)) / arm.n


def _adjusted_mean(arm: CovariateSummary, theta: Fraction, xbar: Fraction) -> Fraction:
    return _mean(arm, "sum_y") - theta * (_mean(arm, "sum_x") - xbar)


def _adjusted_variance(arm: CovariateSummary, theta: Fraction) -> Fraction:
    """(Cyy - 2 theta Cxy + theta^2 Cxx) / (n - 1), exact; clamped at 0 against rounding in the sums."""
    n = arm.n
    sx, sy = Fraction(arm.sum_x), Fraction(arm.sum_y)
    cxx = Fraction(arm.sum_x2) - sx * sx / n
    cxy = Fraction(arm.sum_xy) - sx * sy / n
    cyy = Fraction(arm.sum_y2) - sy * sy / n
    return max(cyy - 2 * theta * cxy + theta * theta * cxx, Fraction(0)) / (n - 1)


def _mean_variance(arm: CovariateSummary, theta: Fraction) -> Fraction:
    """Var(mean y') = s2(y') / n."""
    return _adjusted_variance(arm, theta) / arm.n
