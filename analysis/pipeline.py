"""The one entry point of an analysis: plan and sufficient statistics in, the results document out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from analysis.checks import (
    MIN_COMPLETE_PAIRS,
    incomplete_pairs_share,
    sample_ratio_mismatch,
    sample_size_reached,
)
from analysis.cuped import COVARIATE_BALANCE_ALPHA, covariate_balance_p_value
from analysis.decision import ChallengerOutcome, Decision, decide
from analysis.errors import AnalysisError
from analysis.metrics import guardrail_outcomes, not_computable_metrics, other_metrics, primary_metric
from analysis.registry import hypothesis_test_name
from analysis.results import ChallengerComparison, MetricAnalysis, VariantResult
from analysis.types import AnalysisData, AnalysisPlan, MetricPlan, VariantPlan
from analysis.vocabulary import Design, Outcome

__all__ = [
    "AnalysisData", "AnalysisPlan", "ChallengerComparison", "CheckResults", "ExperimentAnalysis", "MetricAnalysis",
    "MetricPlan", "VariantPlan", "VariantResult", "analysis_parts", "analyze", "hypothesis_test_name", "not_computable",
]


@dataclass(frozen=True)
class CheckResults:
    """Sample ratio (ab only), sample size reached per variant and incomplete pairs (cc only)."""

    sample_ratio_p_value: float | None
    sample_ratio_ok: bool
    sample_size_reached: Mapping[str, bool] | None
    incomplete_pairs: int
    incomplete_pairs_share: float
    # CUPED metrics only: one entry per (metric, challenger), {"metric", "variant", "p_value", "ok"}.
    covariate_balance: tuple[Mapping, ...] = ()


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Everything DESIGN.md's results document holds that the statistics decide.

    The pure computed result; `experiments.models.AnalysisResult` is the stored one, which
    holds `to_dict()` with the experiment's key, protocol hash and analysis time. The top-level
    test, variants and comparisons are the primary metric's; `metrics` holds one analysis
    per metric, the primary first (the same variants and comparisons), then the plan's
    secondary and guardrail metrics in their order.
    """

    test: str
    variants: tuple[VariantResult, ...]
    comparisons: tuple[ChallengerComparison, ...]
    checks: CheckResults
    decision: Decision
    metrics: tuple[MetricAnalysis, ...] = ()
    # A look of a design with interim looks (`analysis.looks`): {"index", "of", "information_fraction",
    # "boundary", "nominal_alpha"}; None for part 1's single analysis, whose document keeps its shape.
    look: Mapping | None = None

    def to_dict(self) -> dict:
        """The results JSON of DESIGN.md (without experiment, protocol_hash and analyzed_at,
        which the caller owns): plain str, int, float, bool and None only, never NaN.

        "metrics" (one entry per metric, `MetricAnalysis.to_dict`) is there only when the plan
        has secondary or guardrail metrics, so a single-metric result keeps part 1's shape.
        """
        document = {
            "test": self.test,
            "variants": [v.to_dict() for v in self.variants],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "checks": {
                "sample_ratio_p_value": self.checks.sample_ratio_p_value,
                "sample_ratio_ok": self.checks.sample_ratio_ok,
                # None at an interim look, where the planned sample does not apply (DESIGN.md).
                "sample_size_reached": (None if self.checks.sample_size_reached is None
                                        else dict(self.checks.sample_size_reached)),
                "incomplete_pairs": self.checks.incomplete_pairs,
                "incomplete_pairs_share": self.checks.incomplete_pairs_share,
                # Only with a CUPED metric, so results without one keep their shape.
                **({"covariate_balance": [dict(c) for c in self.checks.covariate_balance]}
                   if self.checks.covariate_balance else {}),
            },
            "decision": {
                # str(): the plain string of the Outcome, as every other value here is plain.
                "outcome": str(self.decision.outcome), "variant": self.decision.variant, "reason": self.decision.reason,
            },
        }
        if len(self.metrics) > 1:
            document["metrics"] = [m.to_dict() for m in self.metrics]
        if self.look is not None:
            document["look"] = dict(self.look)
        return document


def analyze(
    plan: AnalysisPlan, data: AnalysisData, metric_data: Mapping[str, AnalysisData] | None = None
) -> ExperimentAnalysis:
    """Run the preregistered test for every challenger, the checks and the decision.

    - Test by design x metric (`analysis.registry`): ab binary two-proportion z-test, ab
      continuous Welch t-test, champion_challenger continuous paired t-test,
      champion_challenger binary McNemar.
    - One-sided plans test in the preferred direction ("larger" for increase, else
      "smaller"). With k challengers every interval is at alpha / k and the p-values are
      Holm-adjusted over the k of them; significant = adjusted p < alpha. A comparison that
      cannot be computed enters Holm as p = 1 (it can never be rejected), so the others are
      still adjusted for k tests.
    - Checks: sample ratio mismatch (ab only: assigned units against the weights; for
      champion_challenger p is None and ok is True); sample size reached (ab: units per arm;
      champion_challenger: complete pairs per challenger, and for the champion the fewest
      complete pairs of any challenger); champion_challenger only: incomplete-pair share
      = incomplete / (incomplete + complete), where complete is the fewest complete pairs
      of any challenger (exact for one challenger; with several, units missing different
      challengers may make it understate the share slightly), and at least 2 complete pairs.
    - Degenerate data never raise: the comparison is recorded with its reason and the
      decision says invalid or inconclusive. AnalysisError is raised only when `data` does
      not fit `plan` (a missing arm, pair or assigned count), which is the caller's bug.
    - Several metrics: `data` is the primary's and `metric_data` maps each of `plan.metrics`'
      keys to its data (AnalysisError if one is missing; other keys are ignored). Secondaries
      and guardrails are analysed as `analysis.metrics` says; the checks stay the primary's;
      a challenger is promoted only if it is non-inferior on every guardrail.
    """
    metrics, checks, failed = analysis_parts(plan, data, metric_data)
    primary = metrics[0]
    decision = decide(
        direction=plan.direction,
        failed_checks=failed,
        challengers=[
            ChallengerOutcome(c.variant, c.effect, c.significant, c.not_computable_reason) for c in primary.comparisons
        ],
        sample_size_reached=checks.sample_size_reached,
        guardrails=guardrail_outcomes(metrics),
    )
    return ExperimentAnalysis(primary.test, primary.variants, primary.comparisons, checks, decision, metrics)


def analysis_parts(
    plan: AnalysisPlan, data: AnalysisData, metric_data: Mapping[str, AnalysisData] | None = None
) -> tuple[tuple[MetricAnalysis, ...], CheckResults, list[str]]:
    """What the decision is made from: every metric's analysis (the primary first), the checks,
    and each failed check as a clause. `analyze` decides on them; `analysis.looks` first puts
    each comparison against its group-sequential boundary."""
    _check_data_fits_plan(plan, data)
    _check_covariates(plan, plan.primary, data)
    others = _metric_data(plan, metric_data or {})
    metrics = (primary_metric(plan, data), *other_metrics(plan, others))
    checks, failed = _checks(plan, data)
    balance, unbalanced = _covariate_balance(plan, [(plan.primary, data), *((m, others[m.key]) for m in plan.metrics)])
    if balance:
        checks = replace(checks, covariate_balance=balance)
        failed += unbalanced
    return metrics, checks, failed


def not_computable(plan: AnalysisPlan, reason: str) -> ExperimentAnalysis:
    """The result when the data cannot be analysed at all (e.g. sums beyond a double): invalid.

    Every comparison, of every metric, carries `reason` and no number; no planned sample
    counts as reached.
    """
    metrics = not_computable_metrics(plan, reason)
    primary = metrics[0]
    checks = CheckResults(sample_ratio_p_value=None, sample_ratio_ok=True,
                          sample_size_reached=MappingProxyType({v.key: False for v in plan.variants}),
                          incomplete_pairs=0, incomplete_pairs_share=0.0)
    decision = Decision(Outcome.INVALID, None, reason)
    return ExperimentAnalysis(primary.test, primary.variants, primary.comparisons, checks, decision, metrics)


def _check_data_fits_plan(plan: AnalysisPlan, data: AnalysisData, metric: str | None = None) -> None:
    """The primary's data need assigned counts (ab) for the sample ratio check; a metric's only its tests' inputs."""
    keys = [v.key for v in plan.variants]
    missing = [key for key in keys if key not in data.arms]
    if plan.design == Design.AB:
        if metric is None:
            missing += [f"assigned[{key}]" for key in keys if key not in data.assigned]
    else:
        missing += [f"pairs[{c.key}]" for c in plan.challengers if c.key not in data.pairs]
    if missing:
        whose = "data" if metric is None else f"data of {metric}"
        raise AnalysisError(f"the {whose} do not fit the plan: missing {', '.join(missing)}")


def _metric_data(plan: AnalysisPlan, metric_data: Mapping[str, AnalysisData]) -> Mapping[str, AnalysisData]:
    absent = [m.key for m in plan.metrics if m.key not in metric_data]
    if absent:
        raise AnalysisError(f"the data do not fit the plan: no data for the metric(s) {', '.join(absent)}")
    for metric in plan.metrics:
        if not isinstance(metric_data[metric.key], AnalysisData):
            raise AnalysisError(f"the data of {metric.key} must be an AnalysisData")
        _check_data_fits_plan(plan, metric_data[metric.key], metric.key)
        _check_covariates(plan, metric, metric_data[metric.key])
    return metric_data


def _check_covariates(plan: AnalysisPlan, metric: MetricPlan, data: AnalysisData) -> None:
    """A CUPED metric is A/B only and needs every variant's covariate sums."""
    if not metric.cuped:
        return
    if plan.design != Design.AB:
        raise AnalysisError(f"CUPED is for A/B tests only; {metric.key} of a {plan.design} plan has it")
    missing = [v.key for v in plan.variants if v.key not in data.covariates]
    if missing:
        raise AnalysisError(f"the data of {metric.key} do not fit the plan: missing covariates[{', '.join(missing)}]")


def _covariate_balance(
    plan: AnalysisPlan, tested: list[tuple[MetricPlan, AnalysisData]]
) -> tuple[tuple[Mapping, ...], list[str]]:
    """The covariate balance check of every CUPED metric and challenger: entries and failed-check reasons.

    Welch's t-test of x, challenger against control (`covariate_balance_p_value`); below
    COVARIATE_BALANCE_ALPHA the check fails, like a sample ratio mismatch. With fewer than 2
    units in an arm it cannot run: p None, and it does not fail (the test itself then says why).
    """
    entries, failed = [], []
    control = plan.control.key
    for metric, data in tested:
        if not metric.cuped:
            continue
        for challenger in plan.challengers:
            try:
                p = covariate_balance_p_value(data.covariates[control], data.covariates[challenger.key])
            except AnalysisError:
                p = None
            ok = p is None or p >= COVARIATE_BALANCE_ALPHA
            entries.append(MappingProxyType({"metric": metric.key, "variant": challenger.key, "p_value": p, "ok": ok}))
            if not ok:
                failed.append(
                    f"the covariate of {metric.key} differs between {challenger.key} and {control} before exposure "
                    f"(covariate balance p = {p:.3g}): it may have been measured after exposure"
                )
    return tuple(entries), failed


def _checks(plan: AnalysisPlan, data: AnalysisData) -> tuple[CheckResults, list[str]]:
    failed: list[str] = []
    planned = {v.key: v.planned_sample_size for v in plan.variants}
    if plan.design == Design.AB:
        ratio = sample_ratio_mismatch([data.assigned[v.key] for v in plan.variants], [v.weight for v in plan.variants])
        if not ratio.ok:
            failed.append(
                f"the assigned units do not match the planned weights (sample ratio mismatch p = {ratio.p_value:.3g})"
            )
        reached = sample_size_reached({key: arm.n for key, arm in data.arms.items()}, planned)
        check = CheckResults(ratio.p_value, ratio.ok, MappingProxyType(reached), 0, 0.0)
        return check, failed

    complete = {c.key: data.pairs[c.key].n for c in plan.challengers}
    fewest = min(complete.values())
    share = incomplete_pairs_share(data.incomplete_pairs, fewest)
    if share > plan.incomplete_pairs_max_share:
        failed.append(
            f"{share:.1%} of the units miss a variant, more than the allowed "
            f"{plan.incomplete_pairs_max_share:.1%}"
        )
    too_few = [key for key, n in complete.items() if n < MIN_COMPLETE_PAIRS]
    if too_few:
        failed.append(f"{', '.join(too_few)} {'has' if len(too_few) == 1 else 'have'} fewer than "
                      f"{MIN_COMPLETE_PAIRS} complete pairs with the champion")
    reached = sample_size_reached({plan.control.key: fewest, **complete}, planned)
    return CheckResults(None, True, MappingProxyType(reached), data.incomplete_pairs, share), failed
