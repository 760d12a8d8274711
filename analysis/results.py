"""The computed results of an analysis, per variant, per comparison and per metric, and their plain-JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from analysis.hypothesis_tests import ComparisonResult
from analysis.non_inferiority import NonInferiorityResult, null_value
from analysis.types import MetricPlan, SampleSummary
from analysis.vocabulary import Aggregation


@dataclass(frozen=True)
class VariantResult:
    """One variant's units, mean and sd (None when there are too few units for them).

    `units_without_observations` is set for a metric with aggregation "mean": assigned units
    with no observation, which are left out of `units`.
    """

    key: str
    units: int
    mean: float | None
    sd: float | None
    units_without_observations: int | None = None

    def to_dict(self, *, with_units_without_observations: bool = False) -> dict:
        """{"key", "units", "mean", "sd"}, and "units_without_observations" when asked for."""
        document = {"key": self.key, "units": self.units, "mean": self.mean, "sd": self.sd}
        if with_units_without_observations:
            document["units_without_observations"] = self.units_without_observations
        return document


@dataclass(frozen=True)
class ChallengerComparison:
    """One challenger against the control; every number is None when it could not be computed."""

    variant: str
    vs: str
    effect: float | None
    relative_effect: float | None
    ci_low: float | None
    ci_high: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    p_value: float | None
    adjusted_p_value: float | None
    significant: bool
    statistic: float | None
    df: float | None
    not_computable_reason: str | None
    # A CUPED metric's comparison only (else None and left out of the JSON, which keeps the
    # results of metrics without CUPED as they were): the test run, and {"theta",
    # "variance_reduction"} (theta None, with a "note", when the covariate has no variance).
    test: str | None = field(default=None, kw_only=True)
    cuped: dict | None = field(default=None, kw_only=True)
    # A look of a design with interim looks only (`analysis.looks`): "information_fraction",
    # "statistic_z", "boundary", "nominal_alpha", "nominal_p_value", "rci_low", "rci_high",
    # "crossed", flattened into the JSON (a null RCI end included); else None and left out.
    sequential: dict | None = field(default=None, kw_only=True)

    def to_dict(self) -> dict:
        """Every field under its own name, in order (a guardrail's extra fields included); the
        CUPED fields only when set, and a look's fields (`sequential`) flattened in."""
        document = {f.name: getattr(self, f.name) for f in fields(self)
                    if f.name not in _OPTIONAL or getattr(self, f.name) is not None}
        document.update(document.pop("sequential", None) or {})
        return document


_OPTIONAL = ("test", "cuped", "sequential")
# Said in a comparison whose covariate has no variance, so no adjustment was possible.
NO_COVARIATE_VARIANCE_NOTE = "the covariate has no variance over the two arms: the test is unadjusted"


def cuped_fields(outcome: object) -> dict:
    """{"test", "cuped"} of a CUPED result (`analysis.cuped`); {} of any other test's."""
    if not hasattr(outcome, "variance_reduction"):
        return {}
    cuped = {"theta": outcome.theta, "variance_reduction": outcome.variance_reduction}
    if not outcome.adjusted:
        cuped["note"] = NO_COVARIATE_VARIANCE_NOTE
    test = outcome.test
    return {"test": test, "cuped": cuped}


@dataclass(frozen=True)
class GuardrailComparison(ChallengerComparison):
    """A guardrail's non-inferiority test of one challenger.

    The usual fields, with the interval's harmful-side end only (the other end None, no
    relative interval), adjusted_p_value = p_value (guardrails are not adjusted) and
    significant = non_inferior; plus the margin, the null value (-margin or +margin) and the
    harmful-side `bound` (None when it could not be computed).
    """

    margin: float
    null_value: float
    non_inferior: bool
    bound: float | None


@dataclass(frozen=True)
class MetricAnalysis:
    """One metric's results: its plan (key, role, type, direction, aggregation, margin), test, variants, comparisons."""

    key: str
    role: str
    metric_type: str
    direction: str
    aggregation: str
    test: str
    margin: float | None
    variants: tuple[VariantResult, ...]
    comparisons: tuple[ChallengerComparison, ...]

    def to_dict(self) -> dict:
        """The entry of the results' `metrics` list: plain str, int, float, bool and None only."""
        by_mean = self.aggregation == Aggregation.MEAN
        return {
            "key": self.key, "role": self.role, "type": self.metric_type, "direction": self.direction,
            "aggregation": self.aggregation, "test": self.test, "margin": self.margin,
            "variants": [v.to_dict(with_units_without_observations=by_mean) for v in self.variants],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def metric_analysis(
    metric: MetricPlan, test: str, variants: tuple[VariantResult, ...], comparisons: tuple[ChallengerComparison, ...]
) -> MetricAnalysis:
    """The MetricAnalysis of a planned metric, its words as plain strings."""
    return MetricAnalysis(
        key=metric.key, role=str(metric.role), metric_type=str(metric.metric_type), direction=str(metric.direction),
        aggregation=str(metric.aggregation), test=test, margin=metric.margin, variants=variants,
        comparisons=comparisons,
    )


def variant_result(key: str, arm: SampleSummary, units_without_observations: int | None = None) -> VariantResult:
    """A variant's units, mean (from 1 unit) and sd (from 2 units)."""
    return VariantResult(
        key=key,
        units=arm.n,
        mean=arm.mean if arm.n >= 1 else None,
        sd=arm.sd if arm.n >= 2 else None,
        units_without_observations=units_without_observations,
    )


def challenger_comparison(
    variant: str, control: str, outcome: ComparisonResult | str, p_adjusted: float, alpha: float
) -> ChallengerComparison:
    """A test's result with its Holm-adjusted p-value (significant = adjusted p < alpha); a str
    outcome is the reason it could not be computed, and leaves every number None."""
    if isinstance(outcome, str):
        return ChallengerComparison(**_without_numbers(variant, control, outcome))
    return ChallengerComparison(
        variant=variant, vs=control, effect=outcome.effect, relative_effect=outcome.relative_effect,
        ci_low=outcome.ci_low, ci_high=outcome.ci_high,
        relative_ci_low=outcome.relative_ci_low, relative_ci_high=outcome.relative_ci_high,
        p_value=outcome.p_value, adjusted_p_value=p_adjusted, significant=p_adjusted < alpha,
        statistic=outcome.statistic, df=outcome.df, not_computable_reason=None, **cuped_fields(outcome),
    )


def guardrail_comparison(
    variant: str, control: str, outcome: NonInferiorityResult | str, metric: MetricPlan
) -> GuardrailComparison:
    """A non-inferiority result as a comparison; a str outcome is the reason it could not be computed."""
    margin, null = metric.margin, null_value(metric.margin, metric.direction)
    if isinstance(outcome, str):
        return GuardrailComparison(
            **_without_numbers(variant, control, outcome), margin=margin, null_value=null, non_inferior=False,
            bound=None,
        )
    return GuardrailComparison(
        variant=variant, vs=control, effect=outcome.effect, relative_effect=outcome.relative_effect,
        ci_low=outcome.ci_low, ci_high=outcome.ci_high, relative_ci_low=None, relative_ci_high=None,
        p_value=outcome.p_value, adjusted_p_value=outcome.p_value, significant=outcome.non_inferior,
        statistic=outcome.statistic, df=outcome.df, not_computable_reason=None,
        margin=margin, null_value=null, non_inferior=outcome.non_inferior, bound=outcome.bound,
        **cuped_fields(outcome),
    )


def _without_numbers(variant: str, control: str, reason: str) -> dict:
    """The fields of a comparison that could not be computed: no number, not significant, the reason."""
    return dict(
        variant=variant, vs=control, effect=None, relative_effect=None, ci_low=None, ci_high=None,
        relative_ci_low=None, relative_ci_high=None, p_value=None, adjusted_p_value=None,
        significant=False, statistic=None, df=None, not_computable_reason=reason,
    )
