"""Every metric of a plan analysed by its role: the design's test, Holm over secondaries, guardrails' non-inferiority.

- primary and secondary: the design's test for the metric's type (`analysis.registry`) at
  the plan's alternative, one-sided in the metric's own preferred direction; intervals at
  alpha / k for k challengers. The primary is Holm-adjusted over its k challengers, the
  secondaries over every (secondary metric, challenger) pair together; significant =
  adjusted p < alpha. A comparison that cannot be computed enters Holm as p = 1.
  Secondaries never decide.
- guardrail: per challenger, the one-sided non-inferiority test (`analysis.non_inferiority`)
  at alpha / k, not adjusted for the number of guardrails (a challenger must pass every
  one: an intersection-union test needs no adjustment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from analysis.cuped import CUPED_Z_TEST, cuped_non_inferiority, cuped_z_test
from analysis.decision import GuardrailOutcome
from analysis.errors import AnalysisError
from analysis.hypothesis_tests import ComparisonResult, holm_adjust
from analysis.non_inferiority import non_inferiority_name
from analysis.registry import preregistered_test
from analysis.results import (
    ChallengerComparison,
    GuardrailComparison,
    MetricAnalysis,
    VariantResult,
    challenger_comparison,
    guardrail_comparison,
    metric_analysis,
    variant_result,
)
from analysis.types import AnalysisData, AnalysisPlan, MetricPlan, hypothesis_alternative
from analysis.vocabulary import Aggregation, MetricRole


def design_test_comparisons(
    plan: AnalysisPlan, tested: Sequence[tuple[MetricPlan, AnalysisData]]
) -> tuple[ChallengerComparison, ...]:
    """The design's test of every challenger on each metric, Holm-adjusted over all of them together.

    In the order of `tested`, then of the plan's challengers; p_adj equals
    `statsmodels.stats.multitest.multipletests(p, method="holm")[1]` (`holm_adjust`).
    """
    outcomes = [pair for metric, data in tested for pair in _design_test(plan, metric, data)]
    adjusted = holm_adjust([1.0 if isinstance(o, str) else o.p_value for _, o in outcomes])
    return tuple(
        challenger_comparison(challenger, plan.control.key, outcome, p_adjusted, plan.alpha)
        for (challenger, outcome), p_adjusted in zip(outcomes, adjusted)
    )


def primary_metric(plan: AnalysisPlan, data: AnalysisData) -> MetricAnalysis:
    """The primary's analysis: the design's test of every challenger, Holm over the k of them."""
    primary = plan.primary
    comparisons = design_test_comparisons(plan, [(primary, data)])
    return metric_analysis(primary, metric_test_name(plan, primary), variant_results(plan, primary, data), comparisons)


def other_metrics(plan: AnalysisPlan, metric_data: Mapping[str, AnalysisData]) -> tuple[MetricAnalysis, ...]:
    """The analyses of the plan's secondary and guardrail metrics, in the plan's order."""
    secondaries = [m for m in plan.metrics if m.role == MetricRole.SECONDARY]
    adjusted = iter(design_test_comparisons(plan, [(m, metric_data[m.key]) for m in secondaries]))
    k = len(plan.challengers)
    analyses = []
    for metric in plan.metrics:
        data = metric_data[metric.key]
        if metric.role == MetricRole.GUARDRAIL:
            comparisons = _guardrail_comparisons(plan, metric, data)
        else:
            # The secondaries' comparisons come out of Holm in plan order, k per metric.
            comparisons = tuple(next(adjusted) for _ in range(k))
        analyses.append(metric_analysis(metric, metric_test_name(plan, metric), variant_results(plan, metric, data),
                                        comparisons))
    return tuple(analyses)


def not_computable_metrics(plan: AnalysisPlan, reason: str) -> tuple[MetricAnalysis, ...]:
    """Every metric's entry when nothing could be analysed: no unit, and `reason` on every comparison."""
    control = plan.control.key

    def comparison(metric: MetricPlan, challenger: str) -> ChallengerComparison:
        if metric.role == MetricRole.GUARDRAIL:
            return guardrail_comparison(challenger, control, reason, metric)
        return challenger_comparison(challenger, control, reason, 1.0, plan.alpha)

    return tuple(
        metric_analysis(
            metric, metric_test_name(plan, metric),
            tuple(VariantResult(v.key, 0, None, None, _without(metric, {}, v.key)) for v in plan.variants),
            tuple(comparison(metric, c.key) for c in plan.challengers),
        )
        for metric in (plan.primary, *plan.metrics)
    )


def guardrail_outcomes(analyses: Iterable[MetricAnalysis]) -> dict[str, list[GuardrailOutcome]]:
    """What the decision needs from the guardrails: challenger -> one outcome per guardrail metric."""
    outcomes: dict[str, list[GuardrailOutcome]] = {}
    for analysis in analyses:
        for c in analysis.comparisons:
            if isinstance(c, GuardrailComparison):
                outcomes.setdefault(c.variant, []).append(GuardrailOutcome(
                    analysis.key, c.non_inferior, c.effect, c.bound, c.margin, analysis.direction,
                    c.not_computable_reason,
                ))
    return outcomes


def metric_test_name(plan: AnalysisPlan, metric: MetricPlan) -> str:
    """The design's test for the metric's type (the CUPED z-test with `cuped`), or its non-inferiority test
    for a guardrail."""
    if metric.cuped:
        return non_inferiority_name(CUPED_Z_TEST) if metric.role == MetricRole.GUARDRAIL else CUPED_Z_TEST
    test = preregistered_test(plan.design, metric.metric_type)
    return test.non_inferiority_name if metric.role == MetricRole.GUARDRAIL else test.name


def variant_results(plan: AnalysisPlan, metric: MetricPlan, data: AnalysisData) -> tuple[VariantResult, ...]:
    """Every planned variant's units, mean and sd of the metric (and, by mean, the units without observations)."""
    return tuple(
        variant_result(v.key, data.arms[v.key], _without(metric, data.without_observations, v.key))
        for v in plan.variants
    )


def _without(metric: MetricPlan, counts: Mapping[str, int], variant: str) -> int | None:
    """A variant's units without an observation, counted for a metric by mean only (absent from `counts` = 0)."""
    return counts.get(variant, 0) if metric.aggregation == Aggregation.MEAN else None


def _design_test(
    plan: AnalysisPlan, metric: MetricPlan, data: AnalysisData
) -> list[tuple[str, ComparisonResult | str]]:
    """(challenger, the design's test of the metric, or why it cannot be computed) for every challenger."""
    test = preregistered_test(plan.design, metric.metric_type)
    alternative = hypothesis_alternative(plan.alternative, metric.direction)
    alpha = plan.per_comparison_alpha
    if metric.cuped:
        covariates = data.covariates
        return [
            (c.key, _attempt(cuped_z_test, covariates[plan.control.key], covariates[c.key], alternative=alternative,
                             alpha=alpha))
            for c in plan.challengers
        ]
    return [
        (c.key, _attempt(test.compare, data, plan.control.key, c.key, alternative=alternative, alpha=alpha))
        for c in plan.challengers
    ]


def _guardrail_comparisons(
    plan: AnalysisPlan, metric: MetricPlan, data: AnalysisData
) -> tuple[GuardrailComparison, ...]:
    test = preregistered_test(plan.design, metric.metric_type)
    alpha = plan.per_comparison_alpha
    control = plan.control.key
    if metric.cuped:
        covariates = data.covariates
        return tuple(
            guardrail_comparison(
                c.key, control,
                _attempt(cuped_non_inferiority, covariates[control], covariates[c.key], margin=metric.margin,
                         direction=metric.direction, alpha=alpha),
                metric,
            )
            for c in plan.challengers
        )
    return tuple(
        guardrail_comparison(
            c.key, control,
            _attempt(test.compare_non_inferiority, data, control, c.key, margin=metric.margin,
                     direction=metric.direction, alpha=alpha),
            metric,
        )
        for c in plan.challengers
    )


def _attempt(run: Callable, *args, **kwargs):
    """The test's result, or the plain-English reason it cannot be computed."""
    try:
        return run(*args, **kwargs)
    except AnalysisError as error:
        return str(error)
