"""One-sided non-inferiority tests of a guardrail metric from sufficient statistics, matching statsmodels.

A guardrail passes when the challenger is shown not to be worse than the control by more
than `margin` (> 0, in units of the per-unit value). effect = challenger - control, and
`direction` says which way is better:
- increase: H0 effect <= -margin against effect > -margin (statsmodels' alternative "larger");
- decrease: H0 effect >= +margin against effect < +margin ("smaller").
statistic = (effect - null_value) / se; the bound is the one-sided (1 - alpha) confidence
bound on the harmful side (the lower end for increase, the upper end for decrease), and
non_inferior = p < alpha, which is the same as the bound lying inside the margin. The
caller passes alpha / k for k challengers; no adjustment for several guardrails is needed
(a challenger must pass every one, an intersection-union test).

Degenerate input (fewer than 2 units or pairs, no variation) raises AnalysisError with a
plain-English reason, as the tests of `analysis.hypothesis_tests` do.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass

from scipy import stats

from analysis.errors import AnalysisError
from analysis.hypothesis_tests import (
    PAIRED_T_TEST,
    WELCH_T_TEST,
    _binary_count,
    _check_alternative_and_alpha,
    _interval,
    _p_value,
    _paired_standard_error,
    _require_two_units,
    _welch_variances,
)
from analysis.types import PairedSummary, SampleSummary
from analysis.validation import one_of, positive
from analysis.vocabulary import Direction

# The unpooled Wald z-test, not the pooled one of the primary: under H0 the proportions
# differ by the margin, so pooling them (which assumes they are equal) would be wrong.
WALD_Z_TEST = "two-proportion Wald z-test"


def non_inferiority_name(test: str) -> str:
    """The name a guardrail's test is shown under: "Welch t-test (non-inferiority)"."""
    return f"{test} (non-inferiority)"


@dataclass(frozen=True)
class NonInferiorityResult:
    """One challenger's guardrail test: the effect, its harmful-side bound and the p-value.

    bound is ci_low for direction increase (ci_high None) and ci_high for decrease (ci_low
    None); null_value is -margin (increase) or +margin (decrease); df is None for the z test.
    """

    test: str
    effect: float
    relative_effect: float | None
    bound: float
    ci_low: float | None
    ci_high: float | None
    null_value: float
    margin: float
    statistic: float
    df: float | None
    p_value: float
    non_inferior: bool

    def __post_init__(self) -> None:
        for value in astuple(self)[1:-1]:
            if value is not None and not math.isfinite(value):
                raise AnalysisError(f"the {self.test} produced a non-finite value; the data are numerically degenerate")


def welch_non_inferiority(
    control: SampleSummary, challenger: SampleSummary, *, margin: float, direction: str, alpha: float
) -> NonInferiorityResult:
    """Welch's t-test of mean_y - mean_x against -margin (increase) or +margin (decrease).

    t = (m_y - m_x - null) / sqrt(v_y/n_y + v_x/n_x) on the Welch-Satterthwaite df (as
    `welch_t_test`); bound m_y - m_x -/+ t(1 - alpha, df) se. Matches
    `statsmodels.stats.weightstats.ttest_ind(y, x, usevar="unequal", value=null,
    alternative=...)` (statistic, p-value, df) and the finite end of
    `CompareMeans.from_data(y, x).tconfint_diff(alpha=alpha, alternative=..., usevar="unequal")`.
    """
    vn_x, vn_y, df = _welch_variances(control, challenger)
    return _one_sided_test(
        non_inferiority_name(WELCH_T_TEST), challenger.mean - control.mean, math.sqrt(vn_x + vn_y),
        stats.t(df), df, control.mean, margin=margin, direction=direction, alpha=alpha,
    )


def wald_non_inferiority(
    control: SampleSummary, challenger: SampleSummary, *, margin: float, direction: str, alpha: float
) -> NonInferiorityResult:
    """The unpooled Wald z-test of p_y - p_x against -margin (increase) or +margin (decrease).

    z = (p_y - p_x - null) / sqrt(p_y (1 - p_y) / n_y + p_x (1 - p_x) / n_x); bound
    p_y - p_x -/+ z(1 - alpha) se. Matches `statsmodels.stats.proportion.
    test_proportions_2indep(x_y, n_y, x_x, n_x, value=null, method="wald", compare="diff",
    alternative=...)` and the harmful-side end of `confint_proportions_2indep(x_y, n_y, x_x,
    n_x, method="wald", compare="diff", alpha=2 * alpha)`. total = the number of units with a 1.
    """
    x_count = _binary_count("control", control)
    y_count = _binary_count("challenger", challenger)
    _require_two_units(control, challenger)
    p_x, p_y = x_count / control.n, y_count / challenger.n
    variance = p_y * (1 - p_y) / challenger.n + p_x * (1 - p_x) / control.n
    if variance == 0:
        raise AnalysisError("every unit in each arm has the same value, so the Wald statistic is undefined")
    return _one_sided_test(
        non_inferiority_name(WALD_Z_TEST), p_y - p_x, math.sqrt(variance), stats.norm, None, p_x,
        margin=margin, direction=direction, alpha=alpha,
    )


def paired_non_inferiority(
    pairs: PairedSummary, *, margin: float, direction: str, alpha: float
) -> NonInferiorityResult:
    """The paired t-test of mean(d), d = y - x, against -margin (increase) or +margin (decrease).

    t = (mean(d) - null) / (sd(d) / sqrt(n)) on n - 1 df; bound mean(d) -/+ t(1 - alpha, n - 1)
    sd(d) / sqrt(n). For 0/1 values too (d in {-1, 0, 1}). Matches
    `statsmodels.stats.weightstats.DescrStatsW(y - x).ttest_mean(value=null, alternative=...)`
    and the finite end of `.tconfint_mean(alpha=alpha, alternative=...)`.
    """
    se = _paired_standard_error(pairs)
    return _one_sided_test(
        non_inferiority_name(PAIRED_T_TEST), pairs.difference_mean, se, stats.t(pairs.n - 1), pairs.n - 1,
        pairs.champion.mean, margin=margin, direction=direction, alpha=alpha,
    )


def null_value(margin: float, direction: str) -> float:
    """The harmful edge of the margin: -margin when an increase is better, +margin otherwise."""
    return -margin if direction == Direction.INCREASE else margin


def _one_sided_test(
    test: str, effect: float, se: float, distribution, df: float | None, control_mean: float,
    *, margin: float, direction: str, alpha: float,
) -> NonInferiorityResult:
    margin = positive("margin", margin)
    one_of("direction", direction, Direction)
    # The better direction is the alternative: the harm the margin bounds is the null.
    alternative = "larger" if direction == Direction.INCREASE else "smaller"
    _check_alternative_and_alpha(alternative, alpha)
    null = null_value(margin, direction)
    statistic = (effect - null) / se
    p_value = _p_value(statistic, distribution, alternative)
    low, high = _interval(effect, se, distribution, alternative, alpha)
    return NonInferiorityResult(
        test=test,
        effect=float(effect),
        relative_effect=None if control_mean == 0 else float(effect / control_mean),
        bound=low if high is None else high,
        ci_low=low,
        ci_high=high,
        null_value=null,
        margin=margin,
        statistic=float(statistic),
        df=None if df is None else float(df),
        p_value=p_value,
        non_inferior=p_value < alpha,
    )
