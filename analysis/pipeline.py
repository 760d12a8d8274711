"""The one entry point of an analysis: plan and sufficient statistics in, the results document out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from analysis.checks import (
    MIN_COMPLETE_PAIRS,
    incomplete_pairs_share,
    sample_ratio_mismatch,
    sample_size_reached,
)
from analysis.decision import ChallengerOutcome, Decision, decide
from analysis.errors import AnalysisError
from analysis.hypothesis_tests import ComparisonResult, holm_adjust
from analysis.registry import hypothesis_test_name, preregistered_test
from analysis.types import AnalysisData, AnalysisPlan, SampleSummary, VariantPlan
from analysis.vocabulary import Design, Outcome

__all__ = [
    "AnalysisData", "AnalysisPlan", "ChallengerComparison", "CheckResults", "ExperimentAnalysis",
    "VariantPlan", "VariantResult", "analyze", "hypothesis_test_name", "not_computable",
]


@dataclass(frozen=True)
class VariantResult:
    """One variant's units, mean and sd (None when there are too few units for them)."""

    key: str
    units: int
    mean: float | None
    sd: float | None


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


@dataclass(frozen=True)
class CheckResults:
    """Sample ratio (ab only), sample size reached per variant and incomplete pairs (cc only)."""

    sample_ratio_p_value: float | None
    sample_ratio_ok: bool
    sample_size_reached: Mapping[str, bool]
    incomplete_pairs: int
    incomplete_pairs_share: float


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Everything DESIGN.md's results document holds that the statistics decide.

    The pure computed result; `experiments.models.AnalysisResult` is the stored one, which
    holds `to_dict()` with the experiment's key, protocol hash and analysis time.
    """

    test: str
    variants: tuple[VariantResult, ...]
    comparisons: tuple[ChallengerComparison, ...]
    checks: CheckResults
    decision: Decision

    def to_dict(self) -> dict:
        """The results JSON of DESIGN.md (without experiment, protocol_hash and analyzed_at,
        which the caller owns): plain str, int, float, bool and None only, never NaN."""
        return {
            "test": self.test,
            "variants": [
                {"key": v.key, "units": v.units, "mean": v.mean, "sd": v.sd} for v in self.variants
            ],
            "comparisons": [
                {
                    "variant": c.variant, "vs": c.vs, "effect": c.effect, "relative_effect": c.relative_effect,
                    "ci_low": c.ci_low, "ci_high": c.ci_high,
                    "relative_ci_low": c.relative_ci_low, "relative_ci_high": c.relative_ci_high,
                    "p_value": c.p_value, "adjusted_p_value": c.adjusted_p_value, "significant": c.significant,
                    "statistic": c.statistic, "df": c.df, "not_computable_reason": c.not_computable_reason,
                }
                for c in self.comparisons
            ],
            "checks": {
                "sample_ratio_p_value": self.checks.sample_ratio_p_value,
                "sample_ratio_ok": self.checks.sample_ratio_ok,
                "sample_size_reached": dict(self.checks.sample_size_reached),
                "incomplete_pairs": self.checks.incomplete_pairs,
                "incomplete_pairs_share": self.checks.incomplete_pairs_share,
            },
            "decision": {
                # str(): the plain string of the Outcome, as every other value here is plain.
                "outcome": str(self.decision.outcome), "variant": self.decision.variant, "reason": self.decision.reason,
            },
        }


def analyze(plan: AnalysisPlan, data: AnalysisData) -> ExperimentAnalysis:
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
    """
    _check_data_fits_plan(plan, data)
    challengers = plan.challengers
    interval_alpha = plan.alpha / len(challengers)
    outcomes = [_compare(plan, data, challenger.key, interval_alpha) for challenger in challengers]
    adjusted = holm_adjust([1.0 if isinstance(o, str) else o.p_value for o in outcomes])
    comparisons = tuple(
        _comparison(challenger.key, plan.control.key, outcome, p_adjusted, plan.alpha)
        for challenger, outcome, p_adjusted in zip(challengers, outcomes, adjusted)
    )
    checks, failed = _checks(plan, data)
    decision = decide(
        direction=plan.direction,
        failed_checks=failed,
        challengers=[
            ChallengerOutcome(c.variant, c.effect, c.significant, c.not_computable_reason) for c in comparisons
        ],
        sample_size_reached=checks.sample_size_reached,
    )
    return ExperimentAnalysis(
        test=preregistered_test(plan.design, plan.metric_type).name,
        variants=tuple(_variant_result(v.key, data.arms[v.key]) for v in plan.variants),
        comparisons=comparisons,
        checks=checks,
        decision=decision,
    )


def not_computable(plan: AnalysisPlan, reason: str) -> ExperimentAnalysis:
    """The result when the data cannot be analysed at all (e.g. sums beyond a double): invalid.

    Every comparison carries `reason` and no number; no planned sample counts as reached.
    """
    control = plan.control.key
    return ExperimentAnalysis(
        test=preregistered_test(plan.design, plan.metric_type).name,
        variants=tuple(VariantResult(v.key, 0, None, None) for v in plan.variants),
        # A str outcome is a comparison that could not be computed, with that reason.
        comparisons=tuple(_comparison(v.key, control, reason, 1.0, plan.alpha) for v in plan.challengers),
        checks=CheckResults(sample_ratio_p_value=None, sample_ratio_ok=True,
                            sample_size_reached=MappingProxyType({v.key: False for v in plan.variants}),
                            incomplete_pairs=0, incomplete_pairs_share=0.0),
        decision=Decision(Outcome.INVALID, None, reason),
    )


def _check_data_fits_plan(plan: AnalysisPlan, data: AnalysisData) -> None:
    keys = [v.key for v in plan.variants]
    missing = [key for key in keys if key not in data.arms]
    if plan.design == Design.AB:
        missing += [f"assigned[{key}]" for key in keys if key not in data.assigned]
    else:
        missing += [f"pairs[{c.key}]" for c in plan.challengers if c.key not in data.pairs]
    if missing:
        raise AnalysisError(f"the data do not fit the plan: missing {', '.join(missing)}")


def _compare(plan: AnalysisPlan, data: AnalysisData, challenger: str, alpha: float) -> ComparisonResult | str:
    """The test's result, or the plain-English reason it cannot be computed."""
    test = preregistered_test(plan.design, plan.metric_type)
    try:
        return test.compare(data, plan.control.key, challenger, alternative=plan.hypothesis_alternative, alpha=alpha)
    except AnalysisError as error:
        return str(error)


def _comparison(
    variant: str, control: str, outcome: ComparisonResult | str, p_adjusted: float, alpha: float
) -> ChallengerComparison:
    if isinstance(outcome, str):
        return ChallengerComparison(
            variant=variant, vs=control, effect=None, relative_effect=None, ci_low=None, ci_high=None,
            relative_ci_low=None, relative_ci_high=None, p_value=None, adjusted_p_value=None,
            significant=False, statistic=None, df=None, not_computable_reason=outcome,
        )
    return ChallengerComparison(
        variant=variant, vs=control, effect=outcome.effect, relative_effect=outcome.relative_effect,
        ci_low=outcome.ci_low, ci_high=outcome.ci_high,
        relative_ci_low=outcome.relative_ci_low, relative_ci_high=outcome.relative_ci_high,
        p_value=outcome.p_value, adjusted_p_value=p_adjusted, significant=p_adjusted < alpha,
        statistic=outcome.statistic, df=outcome.df, not_computable_reason=None,
    )


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


def _variant_result(key: str, arm: SampleSummary) -> VariantResult:
    return VariantResult(
        key=key,
        units=arm.n,
        mean=arm.mean if arm.n >= 1 else None,
        sd=arm.sd if arm.n >= 2 else None,
    )
