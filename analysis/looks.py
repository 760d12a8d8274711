"""One look of a group-sequential design: each comparison's Z against its boundary, and whether the test ends.

DESIGN.md part 2, "Planned interim looks". With more than one planned look every comparison
uses Z = effect / SE, SE the Welch, paired, unpooled Wald or CUPED standard error of the
design's test. Its information fraction t_i is the units of its two arms (complete pairs for
champion/challenger) over their planned maximum; the boundaries are recomputed at the
fractions the comparison had at its earlier looks plus t_i (`analysis.sequential`), so the
alpha spent follows the information that actually arrived. Each side has level a: one-sided
a = alpha/k on the preferred side, two-sided a = alpha/(2k) on each; a guardrail's
non-inferiority test is one-sided at alpha/k on the non-inferior side. A comparison crosses
when its nominal p is below its nominal alpha (`1 - Phi(b_i)`, two-sided twice that), i.e.
when the oriented Z exceeds b_i. The repeated confidence interval is effect +- b_i SE
(one-sided: only the preferred side's bound).

An interim look ends the test only if a challenger is eligible (its primary crossed on the
preferred side and every guardrail crossed its non-inferiority boundary: `promote`), or every
challenger crossed the primary's boundary on the harmful side (two-sided only: `keep`). A
failed check or a comparison that cannot be computed never ends it early. The last look
decides as part 1's analysis does, significance being the crossing of the last boundary, which
spends whatever alpha is left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType

from scipy import stats

from analysis.cuped import _adjusted_comparison
from analysis.decision import ChallengerOutcome, Decision, decide
from analysis.errors import AnalysisError
from analysis.hypothesis_tests import _binary_count, _paired_standard_error, _require_two_units, _welch_variances
from analysis.metrics import guardrail_outcomes
from analysis.non_inferiority import null_value
from analysis.pipeline import ExperimentAnalysis, analysis_parts
from analysis.results import ChallengerComparison, GuardrailComparison, MetricAnalysis
from analysis.sequential import MAX_LOOKS, SPENDING_FUNCTIONS, efficacy_boundaries
from analysis.types import AnalysisData, AnalysisPlan, MetricPlan
from analysis.validation import one_of
from analysis.vocabulary import Design, Direction, MetricRole, MetricType, Outcome, PlanAlternative

# A look whose fraction is less than this above the comparison's previous one (or above 0) brings
# no information of its own: the comparison is not assessed at it (an interim look), or is assessed
# a step later (the last look, which must spend what is left). Planned looks must be this far apart
# too (experiments.definitions.rules). Closer fractions would also cost seconds to solve.
MIN_FRACTION_STEP = 0.01

CROSSED_PREFERRED = "preferred"
CROSSED_HARMFUL = "harmful"


@dataclass(frozen=True)
class LookSpec:
    """Which look this is and what the earlier looks observed.

    `index` counts from 1 up to `of`, the planned number of looks; `last` makes this look the final
    one (the planned last, or an interim look where the primary's information reached its maximum).
    `earlier` maps a comparison's id (`comparison_id`) to the information fractions at which it
    was assessed at the earlier looks, in order.
    """

    index: int
    of: int
    spending: str
    last: bool
    earlier: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        one_of("spending", self.spending, SPENDING_FUNCTIONS)
        if not (isinstance(self.of, int) and 2 <= self.of <= MAX_LOOKS and isinstance(self.index, int)
                and 1 <= self.index <= self.of):
            raise AnalysisError(f"a look is 1 to `of` of 2 to {MAX_LOOKS} looks, got {self.index} of {self.of}")
        object.__setattr__(self, "earlier", MappingProxyType({k: tuple(v) for k, v in self.earlier.items()}))


@dataclass(frozen=True)
class LookAnalysis:
    """A look's outcome: whether it ends the test, its analysis, and what a sealed look stores.

    `analysis` is the results document's source when the look ends the test (its comparisons carry
    their `sequential` fields); `statistics` holds one entry per assessed comparison, {"id",
    "metric", "variant", "information_fraction", "statistic_z", "boundary", "crossed"}, which the
    later looks read (`fractions_by_comparison`) and the report charts once the test has ended.
    """

    ends: bool
    last: bool
    analysis: ExperimentAnalysis
    statistics: tuple[Mapping, ...]


def comparison_id(metric: str, variant: str) -> str:
    """The key of a (metric, challenger) comparison across looks."""
    return f"{metric}/{variant}"


def fractions_by_comparison(looks_statistics: list[list[Mapping]]) -> dict[str, tuple[float, ...]]:
    """`LookSpec.earlier` from the stored statistics of the earlier looks, in look order."""
    earlier: dict[str, list[float]] = {}
    for statistics in looks_statistics:
        for entry in statistics:
            earlier.setdefault(entry["id"], []).append(entry["information_fraction"])
    return {key: tuple(values) for key, values in earlier.items()}


def two_sided(plan: AnalysisPlan, metric: MetricPlan) -> bool:
    """Whether a comparison is tested on both sides: a two-sided plan's, except a guardrail's (one-sided)."""
    return plan.alternative == PlanAlternative.TWO_SIDED and metric.role != MetricRole.GUARDRAIL


def side_alpha(plan: AnalysisPlan, metric: MetricPlan) -> float:
    """The level a of the side a comparison is tested on: alpha/k, two-sided alpha/(2k)."""
    k = len(plan.challengers)
    return plan.alpha / (2 * k) if two_sided(plan, metric) else plan.alpha / k


@lru_cache(maxsize=4096)
def _boundaries(fractions: tuple[float, ...], spending: str, a: float, final: bool) -> tuple[float, ...]:
    # The same observed fractions recur across a simulation's runs (bench/calibration.py) and
    # across a test's metrics: solving them once each is the whole cost of a look.
    return efficacy_boundaries(fractions, spending, a, final=final)


def boundary_at(fractions: tuple[float, ...], spending: str, a: float, *, final: bool) -> float:
    """The last look's boundary when a side at level `a` has looked at `fractions`."""
    try:
        return _boundaries(tuple(float(f) for f in fractions), spending, float(a), bool(final))[-1]
    except ValueError as error:  # a root the integration could not bracket: say so, never crash a look
        raise AnalysisError(f"the boundary at information fractions {list(fractions)} could not be solved "
                            f"({error})") from None


def effect_and_standard_error(plan: AnalysisPlan, metric: MetricPlan, data: AnalysisData,
                              challenger: str) -> tuple[float, float]:
    """The comparison's effect (challenger - control) and its standard error, as its test computes them.

    ab continuous: Welch's sqrt(v_c/n_c + v_j/n_j); ab binary: the unpooled Wald
    sqrt(p_c (1 - p_c)/n_c + p_j (1 - p_j)/n_j); champion/challenger (binary too, differences in
    {-1, 0, 1}): the paired sd(d)/sqrt(n); CUPED: the adjusted se of `analysis.cuped`.
    AnalysisError (the plain-English reason) when it cannot be computed.
    """
    control = plan.control.key
    if metric.cuped:
        adjusted = _adjusted_comparison(data.covariates[control], data.covariates[challenger])
        return adjusted.effect, adjusted.se
    if plan.design == Design.CHAMPION_CHALLENGER:
        pairs = data.pairs[challenger]
        se = _paired_standard_error(pairs)
        return pairs.difference_mean, se
    c, j = data.arms[control], data.arms[challenger]
    if metric.metric_type == MetricType.BINARY:
        _require_two_units(c, j)
        p_c, p_j = _binary_count("control", c) / c.n, _binary_count("challenger", j) / j.n
        se = math.sqrt(p_c * (1 - p_c) / c.n + p_j * (1 - p_j) / j.n)
        if se == 0:
            raise AnalysisError("every unit in each arm has the same value, so the z statistic is undefined")
        return p_j - p_c, se
    vn_c, vn_j, _ = _welch_variances(c, j)
    return j.mean - c.mean, math.sqrt(vn_c + vn_j)


def information_fraction(plan: AnalysisPlan, data: AnalysisData, challenger: str) -> float:
    """Units of the comparison's two arms over their planned maximum (champion/challenger: complete pairs)."""
    planned = {v.key: v.planned_sample_size for v in plan.variants}
    if plan.design == Design.CHAMPION_CHALLENGER:
        pairs = data.pairs.get(challenger)
        return (pairs.n if pairs else 0) / max(planned[challenger], 1)
    control = plan.control.key
    n = data.arms[control].n + data.arms[challenger].n
    return n / max(planned[control] + planned[challenger], 1)


def primary_information_reached(plan: AnalysisPlan, data: AnalysisData) -> bool:
    """Whether every comparison of the primary has reached its planned maximum: that look is the last."""
    return all(information_fraction(plan, data, c.key) >= 1 for c in plan.challengers)


def analyze_look(plan: AnalysisPlan, data: AnalysisData, metric_data: Mapping[str, AnalysisData] | None,
                 look: LookSpec) -> LookAnalysis:
    """One look: `analysis.pipeline`'s tests, every comparison against its boundary, and the decision.

    The comparisons keep the design test's fields (effect, interval at alpha/k, p-value) and add
    `sequential`; `significant` (a guardrail's `non_inferior`) becomes the crossing, and
    `adjusted_p_value` is None at an interim look (Holm does not apply to a boundary already at
    alpha/k). The checks' `sample_size_reached` is None at an interim look.
    """
    metrics, checks, failed = analysis_parts(plan, data, metric_data)
    by_key = {m.key: m for m in (plan.primary, *plan.metrics)}
    datasets = {plan.primary.key: data, **(metric_data or {})}
    statistics: list[Mapping] = []
    assessed = []
    for analysis in metrics:
        metric = by_key[analysis.key]
        comparisons = []
        for comparison in analysis.comparisons:
            entry, new = _sequential_comparison(plan, metric, datasets[metric.key], comparison, look)
            if entry is not None:
                statistics.append(entry)
            comparisons.append(new)
        assessed.append(replace(analysis, comparisons=tuple(comparisons)))
    metrics = tuple(assessed)
    primary = metrics[0]
    if not look.last:
        checks = replace(checks, sample_size_reached=None)
    decision, ends = _decision(plan, primary, metrics, checks, failed, look)
    result = ExperimentAnalysis(primary.test, primary.variants, primary.comparisons, checks, decision, metrics,
                                look=_look_summary(primary, decision, look))
    return LookAnalysis(ends=ends, last=look.last, analysis=result, statistics=tuple(statistics))


def _sequential_comparison(plan: AnalysisPlan, metric: MetricPlan, data: AnalysisData,
                           comparison: ChallengerComparison, look: LookSpec):
    """(the stored statistics entry or None, the comparison with its look's fields)."""
    key = comparison_id(metric.key, comparison.variant)
    earlier = look.earlier.get(key, ())
    guardrail = metric.role == MetricRole.GUARDRAIL
    not_assessed = {"significant": False, "adjusted_p_value": None}
    if guardrail:
        not_assessed["non_inferior"] = False
    try:
        effect, se = effect_and_standard_error(plan, metric, data, comparison.variant)
    except AnalysisError as error:
        reason = comparison.not_computable_reason or str(error)
        return None, replace(comparison, **not_assessed, sequential=_empty_fields(reason))
    fraction = min(information_fraction(plan, data, comparison.variant), 1.0)
    previous = earlier[-1] if earlier else 0.0
    if fraction < previous + MIN_FRACTION_STEP:
        if not look.last:
            reason = "no new units since the previous look"
            return None, replace(comparison, **not_assessed, sequential=_empty_fields(reason, fraction))
        fraction = previous + MIN_FRACTION_STEP
    elif fraction >= 1 and not look.last:
        # An interim look cannot spend the last look's alpha; a later look still has to.
        fraction = 1 - MIN_FRACTION_STEP
        if fraction < previous + MIN_FRACTION_STEP:
            return None, replace(comparison, **not_assessed,
                                 sequential=_empty_fields("no new units since the previous look", fraction))
    fraction = min(fraction, 1.0)
    a = side_alpha(plan, metric)
    try:
        b = boundary_at((*earlier, fraction), look.spending, a, final=look.last)
    except AnalysisError as error:
        return None, replace(comparison, **not_assessed, sequential=_empty_fields(str(error), fraction))
    sign = 1 if metric.direction == Direction.INCREASE else -1
    if guardrail:
        z = sign * (effect - null_value(metric.margin, metric.direction)) / se
    else:
        z = sign * effect / se
    both = two_sided(plan, metric)
    crossed = CROSSED_PREFERRED if z > b else (CROSSED_HARMFUL if both and z < -b else None)
    nominal_alpha = (2 if both else 1) * float(stats.norm.sf(b))  # 0 for an infinite boundary
    nominal_p = float(2 * stats.norm.sf(abs(z))) if both else float(stats.norm.sf(z))
    if both:
        low, high = (effect - b * se, effect + b * se) if math.isfinite(b) else (None, None)
    elif not math.isfinite(b):
        low = high = None
    elif sign > 0:
        low, high = effect - b * se, None
    else:
        low, high = None, effect + b * se
    fields = {
        "information_fraction": fraction, "statistic_z": float(z), "boundary": _finite_or_none(b),
        "nominal_alpha": nominal_alpha, "nominal_p_value": nominal_p, "rci_low": low, "rci_high": high,
        "crossed": crossed,
    }
    entry = MappingProxyType({"id": key, "metric": metric.key, "variant": comparison.variant,
                              "information_fraction": fraction, "statistic_z": float(z),
                              "boundary": _finite_or_none(b), "crossed": crossed})
    changes = {"significant": crossed is not None, "sequential": fields}
    if not look.last:
        changes["adjusted_p_value"] = None
    if guardrail:
        bound = low if sign > 0 else high
        changes.update(significant=crossed == CROSSED_PREFERRED, non_inferior=crossed == CROSSED_PREFERRED,
                       bound=bound)
    return entry, replace(comparison, **changes)


def _empty_fields(reason: str, fraction: float | None = None) -> dict:
    return {"information_fraction": fraction, "statistic_z": None, "boundary": None, "nominal_alpha": None,
            "nominal_p_value": None, "rci_low": None, "rci_high": None, "crossed": None, "look_note": reason}


def _finite_or_none(value: float) -> float | None:
    # A look that spends (almost) no alpha has an infinite boundary, which JSON cannot hold.
    return value if math.isfinite(value) else None


def _decision(plan: AnalysisPlan, primary: MetricAnalysis, metrics, checks, failed: list[str],
              look: LookSpec) -> tuple[Decision, bool]:
    challengers = [ChallengerOutcome(c.variant, c.effect, c.significant, c.not_computable_reason)
                   for c in primary.comparisons]
    guardrails = guardrail_outcomes(metrics)
    if look.last:
        decision = decide(direction=plan.direction, failed_checks=failed, challengers=challengers,
                          sample_size_reached=checks.sample_size_reached, guardrails=guardrails)
        return _at_look(decision, look), True
    continues = Decision(Outcome.INCONCLUSIVE, None,
                         f"Look {look.index} of {look.of}: the test continues.")
    if failed:
        return continues, False
    reached = {v.key: True for v in plan.variants}  # the planned sample does not apply at an interim look
    decision = decide(direction=plan.direction, failed_checks=[], challengers=challengers,
                      sample_size_reached=reached, guardrails=guardrails)
    if decision.outcome == Outcome.PROMOTE:
        return _at_look(decision, look), True
    harmful = [c for c in primary.comparisons if (c.sequential or {}).get("crossed") == CROSSED_HARMFUL]
    if harmful and len(harmful) == len(primary.comparisons):
        names = ", ".join(c.variant for c in harmful)
        reason = (f"Keep the control: {names} crossed the boundary on the harmful side ({plan.direction} is "
                  f"preferred), so no challenger can win.")
        return _at_look(Decision(Outcome.KEEP, None, reason), look), True
    return continues, False


def _at_look(decision: Decision, look: LookSpec) -> Decision:
    """The decision's reason, said to have been reached at its look."""
    when = (f"At look {look.index} of {look.of}" if not (look.last and look.index == look.of)
            else f"At the last look ({look.index} of {look.of})")
    return replace(decision, reason=f"{when}: {decision.reason}")


def _look_summary(primary: MetricAnalysis, decision: Decision, look: LookSpec) -> dict:
    """The result's `look`: the decided (else the first) challenger's primary comparison at this look."""
    chosen = next((c for c in primary.comparisons if c.variant == decision.variant), primary.comparisons[0])
    fields = chosen.sequential or {}
    return {"index": look.index, "of": look.of, "information_fraction": fields.get("information_fraction"),
            "boundary": fields.get("boundary"), "nominal_alpha": fields.get("nominal_alpha")}
