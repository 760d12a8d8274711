"""Sample size and minimum detectable effect planning for A/B and champion/challenger designs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analysis.errors import AnalysisError
from analysis.registry import preregistered_test
from analysis.validation import finite, in_open_unit_interval, integer_at_least, one_of, positive
from analysis.vocabulary import Design, MetricType, PlanAlternative

if TYPE_CHECKING:
    from analysis.registry import PowerSolver

# A one-sided plan tests in the preferred direction with a positive planning effect,
# which is statsmodels' "larger".
_STATSMODELS_ALTERNATIVE = {PlanAlternative.TWO_SIDED: "two-sided", PlanAlternative.ONE_SIDED: "larger"}

# statsmodels' root finder (brentq_expanding) stops within xtol = 1e-5 of a root, but it
# can also return a bracket bound or a value where scipy's noncentral t returns nan (deep
# lower tail of a two-sided t-test at alpha <= 0.005 and high power) and still report
# success. An answer is accepted only if the target power lies between the powers at
# answer -/+ this margin.
_ROOT_MARGIN = 2e-5

_MIN_GROUP_SIZE = 2

# Digits a planned size is rounded to before it is rounded up: far below any size that
# matters, far above the ~1e-13 relative error of a product of floats.
_SAMPLE_SIZE_DIGITS = 9


def round_up_sample_size(value: float) -> int:
    """The smallest whole number of units >= `value`: ceil(round(value, 9)).

    A plain `math.ceil` would turn float noise into a whole extra unit: 100 control units
    times a weight ratio of 1.1 is 110.00000000000001, and 111 units would be planned. Rounding to 9 decimals first drops
    that noise. It differs from `math.ceil` only for a value less than 5e-10 above an
    integer, far inside statsmodels' root tolerance (1e-5), so the sizes solved from
    statsmodels still equal `math.ceil` of its answer (tests/analysis/test_power.py).
    """
    return int(-(-round(value, _SAMPLE_SIZE_DIGITS) // 1))


@dataclass(frozen=True)
class PowerPlan:
    """The preregistered inputs of a power calculation, validated on construction.

    `ratios` holds one entry per challenger: challenger weight / control weight. Every
    challenger is tested against the control at `alpha / k` (Bonferroni over k challengers).
    `baseline_mean` is the control rate p0 (required for an `ab` binary plan);
    `baseline_sd` is the unit sd for `ab` continuous and the sd of the paired difference
    for `champion_challenger` (required for both). Which baseline a plan needs is its
    test's `PowerPlanning` in `analysis.registry`.
    """

    design: str
    metric_type: str
    alpha: float
    power: float
    alternative: str
    ratios: tuple[float, ...]
    baseline_mean: float | None = None
    baseline_sd: float | None = None

    def __post_init__(self) -> None:
        one_of("design", self.design, Design)
        one_of("metric_type", self.metric_type, MetricType)
        one_of("alternative", self.alternative, PlanAlternative)
        in_open_unit_interval("alpha", self.alpha)
        in_open_unit_interval("power", self.power)
        if not isinstance(self.ratios, (tuple, list)) or not self.ratios:
            raise AnalysisError("ratios must be a non-empty sequence, one ratio per challenger")
        ratios = tuple(positive(f"ratios[{i}]", r) for i, r in enumerate(self.ratios))
        object.__setattr__(self, "ratios", ratios)

        planning = preregistered_test(self.design, self.metric_type).planning
        if self.baseline_mean is not None:
            if self.metric_type == MetricType.BINARY:
                in_open_unit_interval("baseline_mean", self.baseline_mean)
            else:
                finite("baseline_mean", self.baseline_mean)
        elif planning.needs_baseline_mean:
            raise AnalysisError(
                f"baseline_mean (the control rate) is required for an {self.design} {self.metric_type} plan"
            )

        if self.baseline_sd is not None:
            positive("baseline_sd", self.baseline_sd)
        elif planning.needs_baseline_sd:
            raise AnalysisError(f"baseline_sd is required for a {self.design} {self.metric_type} plan")

    @property
    def per_comparison_alpha(self) -> float:
        """The alpha each challenger is tested at: alpha / k (Bonferroni)."""
        return self.alpha / len(self.ratios)


@dataclass(frozen=True)
class SampleSizes:
    """Planned units per variant: the control (champion) and each challenger, in plan order.

    For `champion_challenger` every number is the same: the count of scored pairs.
    """

    control: int
    challengers: tuple[int, ...]

    def __post_init__(self) -> None:
        integer_at_least("control", self.control, _MIN_GROUP_SIZE)
        if not isinstance(self.challengers, (tuple, list)) or not self.challengers:
            raise AnalysisError("challengers must be a non-empty sequence of sample sizes")
        sizes = tuple(
            integer_at_least(f"challengers[{i}]", n, _MIN_GROUP_SIZE) for i, n in enumerate(self.challengers)
        )
        object.__setattr__(self, "challengers", sizes)


def _cuped(effect_size: float, expected_correlation: float | None) -> float:
    """The effect size the solver sees: divided by sqrt(1 - rho^2) with CUPED's expected correlation rho."""
    if expected_correlation is None:
        return effect_size
    from analysis.cuped import cuped_effect_size

    return cuped_effect_size(effect_size, expected_correlation)


def sample_sizes(plan: PowerPlan, mde: float, expected_correlation: float | None = None) -> SampleSizes:
    """Units per variant needed to detect an absolute effect `mde` at the plan's power.

    Each challenger i is solved at alpha/k with statsmodels (nobs1 = the control,
    nobs2 = nobs1 * ratio_i), then:
      control = ceil(max_i nobs1_i);  challenger i = ceil(max_i nobs1_i * ratio_i),
    so the control and the binding challenger are exactly statsmodels' nobs1 and nobs2
    rounded up (by `round_up_sample_size`), and every other challenger has at least its
    required power.

    - ab binary: `NormalIndPower().solve_power(effect_size=h, nobs1=None, ...)` with Cohen's
      h = 2 asin(sqrt(p0 + mde)) - 2 asin(sqrt(p0)) (`proportion_effectsize(p0 + mde, p0)`).
    - ab continuous: `TTestIndPower().solve_power(effect_size=mde / baseline_sd, nobs1=None, ...)`.
    - champion_challenger: `TTestPower().solve_power(effect_size=mde / baseline_sd, nobs=None, ...)`,
      the paired t-test; ratios do not matter, every variant gets the same n pairs.

    With CUPED's `expected_correlation` rho the effect size is divided by sqrt(1 - rho^2) first.
    """
    mde = positive("mde", mde)
    effect_size = _cuped(preregistered_test(plan.design, plan.metric_type).planning.effect_size(plan, mde),
                         expected_correlation)
    return _sample_sizes_for_effect_size(plan, effect_size, _STATSMODELS_ALTERNATIVE[plan.alternative])


def corrected_power(power: float, guardrails: int) -> float:
    """The power every test of an experiment with G guardrails is planned at: 1 - (1 - power) / (G + 1).

    Spotify's beta correction (Spotify Confidence; "Risk-aware product decisions in A/B
    tests with multiple metrics", 2024): a challenger ships only if the
    primary and all G guardrails succeed, so each of the G + 1 tests gets a share
    beta / (G + 1) of the type II error, which keeps the chance of shipping a good
    challenger at least `power`. With no guardrail it is `power` itself.
    """
    power = in_open_unit_interval("power", power)
    guardrails = integer_at_least("guardrails", guardrails, 0)
    return 1 - (1 - power) / (guardrails + 1)


def guardrail_effect_size(plan: PowerPlan, margin: float) -> float:
    """The standardized margin of a guardrail's non-inferiority test (the protocol's `effect_size`).

    The true effect is planned as 0, so the distance to the null is the margin:
    ab continuous and champion_challenger d = margin / baseline_sd; ab binary
    d = margin / sqrt(baseline_mean (1 - baseline_mean)), the unit sd at the baseline rate.
    """
    margin = positive("margin", margin)
    return preregistered_test(plan.design, plan.metric_type).planning.margin_effect_size(plan, margin)


def guardrail_sample_sizes(plan: PowerPlan, margin: float, expected_correlation: float | None = None) -> SampleSizes:
    """Units per variant for a guardrail's one-sided non-inferiority test to pass at the plan's power.

    The plan is the guardrail's: its baselines, and a power already corrected for the number
    of guardrails (`corrected_power`). Solved as `sample_sizes` (same ratios and rounding),
    one-sided (statsmodels' alternative "larger") whatever the plan's alternative, at
    alpha / k, with the effect size `guardrail_effect_size(plan, margin)`:
    ab continuous `TTestIndPower`, ab binary `NormalIndPower`, champion_challenger `TTestPower`.
    With CUPED's `expected_correlation` rho that effect size is divided by sqrt(1 - rho^2) first.
    """
    effect_size = _cuped(guardrail_effect_size(plan, margin), expected_correlation)
    return _sample_sizes_for_effect_size(plan, effect_size, "larger")


def _sample_sizes_for_effect_size(plan: PowerPlan, effect_size: float, alternative: str) -> SampleSizes:
    """The rule of `sample_sizes` for a standardized effect size and a statsmodels alternative."""
    test = preregistered_test(plan.design, plan.metric_type)
    alpha = plan.per_comparison_alpha
    if test.paired:
        pairs = round_up_sample_size(
            _solve(
                test.planning.solver(), "nobs",
                effect_size=effect_size, alpha=alpha, power=plan.power, alternative=alternative,
            )
        )
        return SampleSizes(control=pairs, challengers=(pairs,) * len(plan.ratios))

    nobs1 = max(
        _solve(
            test.planning.solver(), "nobs1",
            effect_size=effect_size, alpha=alpha, power=plan.power, ratio=ratio, alternative=alternative,
        )
        for ratio in plan.ratios
    )
    return SampleSizes(
        control=round_up_sample_size(nobs1),
        challengers=tuple(round_up_sample_size(nobs1 * ratio) for ratio in plan.ratios),
    )


def minimum_detectable_effect(plan: PowerPlan, control_sample_size: int,
                              expected_correlation: float | None = None) -> float:
    """The smallest absolute effect (units of `mde`) detectable with n control units.

    Challenger i has n * ratio_i units (for champion_challenger: n pairs); each is solved
    at alpha/k with statsmodels' `solve_power(effect_size=None, ...)` and the largest
    (worst) effect over the challengers is returned.

    - ab binary: Cohen's h from `NormalIndPower`, converted back to a rate difference:
      p1 = sin(asin(sqrt(p0)) + h / 2) ** 2, mde = p1 - p0 (the inverse of
      `proportion_effectsize`); AnalysisError if p1 would reach 1.
    - ab continuous: d from `TTestIndPower`, mde = d * baseline_sd.
    - champion_challenger: d from `TTestPower` (nobs = n pairs), mde = d * baseline_sd.

    With CUPED's `expected_correlation` rho the solved effect size is multiplied by
    sqrt(1 - rho^2) before it is converted back (the inverse of `sample_sizes`' division).
    """
    shrink = 1.0 if expected_correlation is None else _cuped(1.0, expected_correlation) ** -1
    n = integer_at_least("control_sample_size", control_sample_size, _MIN_GROUP_SIZE)
    test = preregistered_test(plan.design, plan.metric_type)
    alpha = plan.per_comparison_alpha
    alternative = _STATSMODELS_ALTERNATIVE[plan.alternative]
    if test.paired:
        d = _solve(
            test.planning.solver(), "effect_size", nobs=n, alpha=alpha, power=plan.power, alternative=alternative
        )
        return test.planning.effect(plan, d * shrink)

    for i, ratio in enumerate(plan.ratios):
        if n * ratio < _MIN_GROUP_SIZE:
            raise AnalysisError(
                f"challenger {i} would have {n * ratio:g} units (< {_MIN_GROUP_SIZE}) with {n} control units"
            )
    effect_size = max(
        _solve(
            test.planning.solver(), "effect_size",
            nobs1=n, alpha=alpha, power=plan.power, ratio=ratio, alternative=alternative,
        )
        for ratio in plan.ratios
    )
    return test.planning.effect(plan, effect_size * shrink)


def _solve(analysis: PowerSolver, unknown: str, **known: float | str) -> float:
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    target_power = known.pop("power")
    with warnings.catch_warnings():
        # The root finder probes invalid points (the sqrt of a negative n) on its way to a
        # root; a failure is detected by the bracket check below, not by a warning.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            value = np.asarray(analysis.solve_power(**{unknown: None}, power=target_power, **known)).item()
        except ValueError as error:  # e.g. an effect size that rounds to 0 (an mde of 1e-300)
            raise AnalysisError(f"statsmodels {type(analysis).__name__}.solve_power cannot plan this: {error}")
        if unknown == "effect_size" and known["alternative"] == "two-sided":
            # Two-sided power is symmetric in the effect's sign, and statsmodels' fallback
            # solver (fsolve) sometimes lands on the negative root.
            value = abs(value)
        below, above = (
            np.asarray(analysis.power(**{unknown: value + step}, **known)).item()
            for step in (-_ROOT_MARGIN, _ROOT_MARGIN)
        )
    if not below <= target_power <= above:
        raise AnalysisError(
            f"statsmodels {type(analysis).__name__}.solve_power found no {unknown} with power "
            f"{target_power} for {known}: the plan is outside what it can solve (fewer than "
            f"{_MIN_GROUP_SIZE} units would do, too few units for any effect, or a power too "
            f"close to 1 for the per-comparison alpha)"
        )
    return value
