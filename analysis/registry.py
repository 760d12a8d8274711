"""The preregistered test of each design x metric type, in one place: its name, how it runs, how it is planned.

Each entry also holds the non-inferiority test a guardrail metric of that design and type
runs (`analysis.non_inferiority`) and how a guardrail's margin is planned.

A variant of a test (another metric, CUPED, sequential looks) is one more entry here; the
pipeline and the power calculation read everything they need from the entry. The summary
queries that feed a test live with the database code in `experiments.unit_outcomes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from analysis.errors import AnalysisError
from analysis.hypothesis_tests import (
    MCNEMAR_TEST,
    PAIRED_T_TEST,
    TWO_PROPORTION_Z_TEST,
    WELCH_T_TEST,
    ComparisonResult,
    mcnemar_test,
    paired_t_test,
    two_proportion_z_test,
    welch_t_test,
)
from analysis.non_inferiority import (
    WALD_Z_TEST,
    NonInferiorityResult,
    non_inferiority_name,
    paired_non_inferiority,
    wald_non_inferiority,
    welch_non_inferiority,
)
from analysis.types import AnalysisData
from analysis.vocabulary import Design, MetricType

if TYPE_CHECKING:
    from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower

    from analysis.power import PowerPlan

    PowerSolver = NormalIndPower | TTestIndPower | TTestPower


def _statsmodels_solver(name: str) -> Callable[[], PowerSolver]:
    """A new statsmodels `statsmodels.stats.power.<name>`, imported on first use: every manage.py
    command loads the admin, which plans samples, and importing statsmodels (with the pandas it
    brings) there cost each start-up 0.4 s (`time manage.py import_covariates KEY /dev/null`: 2.09 s
    before, 1.68 s after; bench/covariate_import.py times the import with its start-up)."""
    def solver() -> PowerSolver:
        from statsmodels.stats import power

        return getattr(power, name)()

    solver.__name__ = solver.__qualname__ = name
    return solver


@dataclass(frozen=True)
class PowerPlanning:
    """How power.py plans a test: statsmodels' solver and the planned effect in its units and back.

    `effect_size(plan, mde)` turns an absolute effect into the solver's effect size (Cohen's
    d or h); `effect(plan, effect_size)` is its inverse, for the minimum detectable effect.
    `margin_effect_size(plan, margin)` is the standardized margin of a guardrail's
    non-inferiority test, whose true effect is 0 (DESIGN.md part 2).
    `needs_baseline_mean` and `needs_baseline_sd` say which baseline the conversion reads.
    """

    solver: Callable[[], PowerSolver]
    effect_size: Callable[[PowerPlan, float], float]
    effect: Callable[[PowerPlan, float], float]
    margin_effect_size: Callable[[PowerPlan, float], float]
    needs_baseline_mean: bool
    needs_baseline_sd: bool


@dataclass(frozen=True)
class PreregisteredTest:
    """One design x metric type's test: its name, the function that runs it and its planning.

    A paired test (`paired`) runs on the complete pairs of a challenger with the champion
    and is planned in pairs (statsmodels' `nobs`); an unpaired one runs on the two arms and
    is planned per arm (`nobs1` for the control, times each challenger's weight ratio).
    `non_inferiority` is the guardrail's one-sided test on the same data, shown as
    `non_inferiority_name`.
    """

    design: Design
    metric_type: MetricType
    name: str
    run: Callable[..., ComparisonResult]
    paired: bool
    planning: PowerPlanning
    non_inferiority: Callable[..., NonInferiorityResult]
    non_inferiority_name: str

    def compare(
        self, data: AnalysisData, control: str, challenger: str, *, alternative: str, alpha: float
    ) -> ComparisonResult:
        """`run` on the challenger against the control (see each test's docstring for its formula)."""
        return self.run(*self._samples(data, control, challenger), alternative=alternative, alpha=alpha)

    def compare_non_inferiority(
        self, data: AnalysisData, control: str, challenger: str, *, margin: float, direction: str, alpha: float
    ) -> NonInferiorityResult:
        """`non_inferiority` on the challenger against the control (`analysis.non_inferiority`)."""
        return self.non_inferiority(
            *self._samples(data, control, challenger), margin=margin, direction=direction, alpha=alpha
        )

    def _samples(self, data: AnalysisData, control: str, challenger: str) -> tuple:
        """The tests' positional inputs: the challenger's pairs, or the control's and the challenger's arms."""
        if self.paired:
            return (data.pairs[challenger],)
        return data.arms[control], data.arms[challenger]


def _standardized_effect(plan: PowerPlan, mde: float) -> float:
    return mde / plan.baseline_sd


def _unstandardized_effect(plan: PowerPlan, effect_size: float) -> float:
    return effect_size * plan.baseline_sd


def _standardized_rate_margin(plan: PowerPlan, margin: float) -> float:
    # Under H0 of a non-inferiority test both arms have (about) the baseline rate, so the
    # unit sd is sqrt(p0 (1 - p0)); NormalIndPower then plans the Wald z-test.
    return margin / math.sqrt(plan.baseline_mean * (1 - plan.baseline_mean))


def _cohens_h(plan: PowerPlan, mde: float) -> float:
    treated_rate = plan.baseline_mean + mde
    if not treated_rate < 1:
        raise AnalysisError(f"baseline_mean + mde must be in (0, 1), got {treated_rate}")
    from statsmodels.stats.proportion import proportion_effectsize

    return float(proportion_effectsize(treated_rate, plan.baseline_mean))


def _rate_difference(plan: PowerPlan, cohens_h: float) -> float:
    baseline_rate = plan.baseline_mean
    angle = math.asin(math.sqrt(baseline_rate)) + cohens_h / 2
    if angle >= math.pi / 2:
        raise AnalysisError(
            f"no rate difference is detectable: baseline {baseline_rate} plus the detectable effect "
            f"(Cohen's h = {cohens_h:.4g}) would reach a rate of 1"
        )
    return math.sin(angle) ** 2 - baseline_rate


_COHENS_H = PowerPlanning(_statsmodels_solver("NormalIndPower"), _cohens_h, _rate_difference,
                          _standardized_rate_margin,
                          needs_baseline_mean=True, needs_baseline_sd=False)
_COHENS_D = PowerPlanning(_statsmodels_solver("TTestIndPower"), _standardized_effect, _unstandardized_effect,
                          _standardized_effect,
                          needs_baseline_mean=False, needs_baseline_sd=True)
# A paired test, binary or continuous, is planned as a one-sample t-test of the differences
# (baseline_sd is the sd of the paired difference).
_PAIRED_D = PowerPlanning(_statsmodels_solver("TTestPower"), _standardized_effect, _unstandardized_effect,
                          _standardized_effect,
                          needs_baseline_mean=False, needs_baseline_sd=True)

PREREGISTERED_TESTS: Mapping[tuple[str, str], PreregisteredTest] = MappingProxyType({
    (test.design, test.metric_type): test
    for test in (
        PreregisteredTest(Design.AB, MetricType.BINARY, TWO_PROPORTION_Z_TEST, two_proportion_z_test,
                          paired=False, planning=_COHENS_H, non_inferiority=wald_non_inferiority,
                          non_inferiority_name=non_inferiority_name(WALD_Z_TEST)),
        PreregisteredTest(Design.AB, MetricType.CONTINUOUS, WELCH_T_TEST, welch_t_test,
                          paired=False, planning=_COHENS_D, non_inferiority=welch_non_inferiority,
                          non_inferiority_name=non_inferiority_name(WELCH_T_TEST)),
        # Both paired metric types share the paired t-test of the differences (-1, 0, 1 for binary).
        PreregisteredTest(Design.CHAMPION_CHALLENGER, MetricType.CONTINUOUS, PAIRED_T_TEST, paired_t_test,
                          paired=True, planning=_PAIRED_D, non_inferiority=paired_non_inferiority,
                          non_inferiority_name=non_inferiority_name(PAIRED_T_TEST)),
        PreregisteredTest(Design.CHAMPION_CHALLENGER, MetricType.BINARY, MCNEMAR_TEST, mcnemar_test,
                          paired=True, planning=_PAIRED_D, non_inferiority=paired_non_inferiority,
                          non_inferiority_name=non_inferiority_name(PAIRED_T_TEST)),
    )
})


def preregistered_test(design: str, metric_type: str) -> PreregisteredTest:
    """The test DESIGN.md's table names for a design and metric type; KeyError for another pair."""
    return PREREGISTERED_TESTS[(design, metric_type)]


def hypothesis_test_name(design: str, metric_type: str) -> str:
    """The name of the preregistered test for a design and metric type (DESIGN.md's table)."""
    return preregistered_test(design, metric_type).name


def non_inferiority_test_name(design: str, metric_type: str) -> str:
    """The name of a guardrail's non-inferiority test for a design and metric type."""
    return preregistered_test(design, metric_type).non_inferiority_name
