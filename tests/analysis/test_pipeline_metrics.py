"""analyze() with several metrics: the primary unchanged, secondaries Holm-adjusted together, guardrails gating."""

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from analysis.errors import AnalysisError
from analysis.pipeline import AnalysisData, AnalysisPlan, MetricPlan, VariantPlan, analyze, not_computable
from tests.analysis.summaries import ab_data, cc_data, close, summary

ALPHA = 0.05
LATENCY = MetricPlan("latency_ms", "guardrail", "continuous", "decrease", "mean", margin=5.0)
REVENUE = MetricPlan("revenue", "secondary", "continuous", "increase")
REFUNDS = MetricPlan("refunds", "secondary", "binary", "decrease")


def plan_with(metrics, *, design="ab", metric_type="binary", alternative="two-sided", planned=1_000,
              keys=("control", "green", "red")) -> AnalysisPlan:
    variants = tuple(VariantPlan(key, 1, i == 0, planned) for i, key in enumerate(keys))
    return AnalysisPlan(design, metric_type, "increase", alternative, ALPHA, variants, metric_key="conversion",
                        metrics=tuple(metrics))


def by_mean(values, without) -> AnalysisData:
    """An ab metric by mean: the observed units' means, and the units without an observation per variant."""
    return AnalysisData(arms={key: summary(v) for key, v in values.items()}, without_observations=without)


def experiment(seed=0, *, latency_shift=(0.0, 0.0), conversion=(0.10, 0.13, 0.12)):
    """Conversion (primary), latency by mean (guardrail), revenue and refunds (secondaries) of three arms."""
    rng = np.random.default_rng(seed)
    n = 4_000
    keys = ("control", "green", "red")
    shifts = dict(zip(keys, (0.0, *latency_shift)))
    return dict(
        conversion={k: rng.binomial(1, p, n) for k, p in zip(keys, conversion)},
        latency_ms={k: rng.gamma(4, 10, n - 300) + shifts[k] for k in keys},
        revenue={k: rng.gamma(1, 20 + 2 * i, n) for i, k in enumerate(keys)},
        refunds={k: rng.binomial(1, 0.05 - 0.005 * i, n) for i, k in enumerate(keys)},
    )


def metric_data(values):
    return {
        "latency_ms": by_mean(values["latency_ms"], {"control": 300, "green": 300, "red": 300}),
        "revenue": ab_data(values["revenue"]),
        "refunds": ab_data(values["refunds"]),
    }


def plain(value) -> bool:
    """Only JSON's own types, all the way down, and no NaN or infinity."""
    if isinstance(value, dict):
        return all(type(k) is str and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    if type(value) is float:
        return np.isfinite(value)
    return value is None or type(value) in (str, int, bool)


def test_the_primary_is_analysed_exactly_as_without_other_metrics():
    values = experiment()
    several = analyze(plan_with([REVENUE, LATENCY, REFUNDS]), ab_data(values["conversion"]), metric_data(values))
    single = analyze(plan_with([]), ab_data(values["conversion"]))

    assert (several.test, several.variants, several.comparisons, several.checks) == (
        single.test, single.variants, single.comparisons, single.checks)
    assert several.decision == single.decision
    document = several.to_dict()
    assert document.pop("metrics") and document == single.to_dict()
    assert several.metrics[0].comparisons == several.comparisons and several.metrics[0].key == "conversion"
    assert [m.key for m in several.metrics] == ["conversion", "revenue", "latency_ms", "refunds"]
    assert [m.key for m in single.metrics] == ["conversion"] and "metrics" not in single.to_dict()


@pytest.mark.parametrize("alternative", ["two-sided", "one-sided"])
def test_secondaries_use_the_designs_test_in_their_own_direction_and_holm_over_every_pair(alternative):
    values = experiment(1)
    result = analyze(plan_with([REVENUE, LATENCY, REFUNDS], alternative=alternative),
                     ab_data(values["conversion"]), metric_data(values))
    revenue, refunds = result.metrics[1], result.metrics[3]

    sided = alternative == "one-sided"
    raw = []
    for comparison, key in zip(revenue.comparisons, ("green", "red")):
        reference = stats.ttest_ind(values["revenue"][key], values["revenue"]["control"], equal_var=False,
                                    alternative="greater" if sided else "two-sided")
        assert comparison.p_value == close(reference.pvalue)
        low = reference.confidence_interval(1 - ALPHA / 2).low
        assert comparison.ci_low == close(low) and (comparison.ci_high is None) == sided
        raw.append(reference.pvalue)
    for comparison, key in zip(refunds.comparisons, ("green", "red")):
        # Refunds should go down: one-sided, the challenger's rate is tested "smaller".
        assert comparison.ci_low is None if sided else comparison.ci_low is not None
        raw.append(comparison.p_value)
    adjusted = multipletests(raw, method="holm")[1]
    assert [c.adjusted_p_value for c in revenue.comparisons + refunds.comparisons] == [close(p) for p in adjusted]
    assert [c.significant for c in revenue.comparisons + refunds.comparisons] == list(adjusted < ALPHA)
    assert (revenue.test, refunds.test) == ("Welch t-test", "two-proportion z-test")


def test_a_secondary_that_cannot_be_computed_enters_holm_as_p_one():
    values = experiment(2)
    data = metric_data(values)
    data["refunds"] = ab_data({key: np.zeros(4_000) for key in ("control", "green", "red")})
    result = analyze(plan_with([REVENUE, REFUNDS]), ab_data(values["conversion"]), data)
    revenue, refunds = result.metrics[1], result.metrics[2]

    assert all(c.p_value is None and "the value 0" in c.not_computable_reason for c in refunds.comparisons)
    raw = [c.p_value for c in revenue.comparisons] + [1.0, 1.0]
    adjusted = multipletests(raw, method="holm")[1]
    assert [c.adjusted_p_value for c in revenue.comparisons] == [close(p) for p in adjusted[:2]]
    assert result.decision.outcome == "promote"


def test_a_guardrail_is_tested_for_non_inferiority_at_alpha_over_k_and_not_adjusted():
    values = experiment(3, latency_shift=(2.0, 9.0))
    result = analyze(plan_with([REVENUE, LATENCY]), ab_data(values["conversion"]), metric_data(values))
    latency = result.metrics[2]

    control = values["latency_ms"]["control"]
    for comparison, key in zip(latency.comparisons, ("green", "red")):
        challenger = values["latency_ms"][key]
        statistic, p_value, df = ttest_ind(challenger, control, usevar="unequal", value=5.0, alternative="smaller")
        _, high = CompareMeans.from_data(challenger, control).tconfint_diff(alpha=ALPHA / 2, alternative="smaller",
                                                                            usevar="unequal")
        assert (comparison.statistic, comparison.p_value, comparison.df) == (close(statistic), close(p_value),
                                                                             close(df))
        assert (comparison.ci_low, comparison.ci_high, comparison.bound) == (None, close(high), close(high))
        assert comparison.adjusted_p_value == comparison.p_value
        assert comparison.significant == comparison.non_inferior == (p_value < ALPHA / 2)
        assert (comparison.margin, comparison.null_value) == (5.0, 5.0)
    assert [c.non_inferior for c in latency.comparisons] == [True, False]
    assert latency.test == "Welch t-test (non-inferiority)" and latency.margin == 5.0
    assert [v.units_without_observations for v in latency.variants] == [300, 300, 300]


def test_the_better_challenger_breaking_a_guardrail_is_held_back_and_the_other_promoted():
    values = experiment(4, latency_shift=(12.0, 0.0), conversion=(0.10, 0.14, 0.125))
    result = analyze(plan_with([LATENCY]), ab_data(values["conversion"]), metric_data(values))
    green, red = result.comparisons
    assert green.significant and red.significant and green.effect > red.effect

    assert (result.decision.outcome, result.decision.variant) == ("promote", "red")
    assert result.decision.reason.startswith(
        f"green is significantly better on the primary metric (effect {green.effect:+.4g}), but latency_ms was "
        "not shown to stay within +5 (estimate +"
    )
    single = analyze(plan_with([]), ab_data(values["conversion"]))
    assert single.decision.variant == "green"


def test_a_guardrail_that_cannot_be_computed_holds_every_winner_back():
    values = experiment(5, conversion=(0.10, 0.14, 0.14))
    data = metric_data(values)
    data["latency_ms"] = by_mean({key: np.full(10, 200.0) for key in ("control", "green", "red")}, {})
    result = analyze(plan_with([LATENCY], planned=10_000), ab_data(values["conversion"]), data)

    assert all("same value" in c.not_computable_reason and not c.non_inferior for c in result.metrics[1].comparisons)
    assert (result.decision.outcome, result.decision.variant) == ("inconclusive", None)
    assert "latency_ms could not be computed" in result.decision.reason


def test_champion_challenger_guardrails_and_secondaries_run_on_the_pairs():
    rng = np.random.default_rng(6)
    n = 3_000
    champion = rng.gamma(2, 5, n)
    loss = {"control": champion, "green": champion - rng.normal(0.5, 3, n)}
    latency_champion = rng.gamma(4, 20, n)
    latency = {"control": latency_champion, "green": latency_champion + rng.normal(1.0, 4.0, n)}
    calibrated = {"control": rng.binomial(1, 0.5, n).astype(float), "green": rng.binomial(1, 0.5, n).astype(float)}
    plan = AnalysisPlan("champion_challenger", "continuous", "decrease", "one-sided", ALPHA,
                        (VariantPlan("control", 1, True, 2_000), VariantPlan("green", 1, False, 2_000)),
                        metric_key="loss", metrics=(
                            MetricPlan("latency_ms", "guardrail", "continuous", "decrease", margin=2.0),
                            MetricPlan("calibrated", "secondary", "binary", "increase"),
                        ))

    result = analyze(plan, cc_data(loss), {"latency_ms": cc_data(latency), "calibrated": cc_data(calibrated)})

    guardrail = result.metrics[1].comparisons[0]
    differences = DescrStatsW(latency["green"] - latency["control"])
    statistic, p_value, df = differences.ttest_mean(value=2.0, alternative="smaller")
    assert (guardrail.statistic, guardrail.p_value, guardrail.df) == (close(statistic), close(p_value), close(df))
    assert guardrail.bound == close(differences.tconfint_mean(alpha=ALPHA, alternative="smaller")[1])
    assert result.metrics[2].test == "McNemar test" and result.metrics[2].comparisons[0].p_value is not None
    assert result.metrics[1].test == "paired t-test (non-inferiority)"
    assert (result.decision.outcome, result.decision.variant) == ("promote", "green")


def test_the_results_json_adds_one_plain_entry_per_metric():
    values = experiment(7, latency_shift=(1.0, 2.0))
    document = analyze(plan_with([REVENUE, LATENCY]), ab_data(values["conversion"]), metric_data(values)).to_dict()

    assert plain(document) and json.loads(json.dumps(document, allow_nan=False)) == document
    conversion, revenue, latency = document["metrics"]
    for entry in document["metrics"]:
        assert set(entry) == {"key", "role", "type", "direction", "aggregation", "test", "margin", "variants",
                              "comparisons"}
    assert (conversion["role"], conversion["variants"], conversion["comparisons"]) == (
        "primary", document["variants"], document["comparisons"])
    assert (revenue["role"], revenue["margin"], set(revenue["comparisons"][0])) == (
        "secondary", None, set(document["comparisons"][0]))
    assert (latency["role"], latency["aggregation"], latency["margin"]) == ("guardrail", "mean", 5.0)
    assert set(latency["variants"][0]) == {"key", "units", "mean", "sd", "units_without_observations"}
    assert set(latency["comparisons"][0]) == set(document["comparisons"][0]) | {
        "margin", "null_value", "non_inferior", "bound"}
    assert latency["comparisons"][0]["ci_low"] is None and latency["comparisons"][0]["relative_ci_high"] is None


def test_a_result_that_could_not_be_computed_has_every_metrics_entry_with_the_reason():
    plan = plan_with([REVENUE, LATENCY])
    values = experiment(8)
    computed = analyze(plan, ab_data(values["conversion"]), metric_data(values)).to_dict()

    document = not_computable(plan, "sums beyond a double").to_dict()

    assert plain(document) and document.keys() == computed.keys()
    for entry, reference in zip(document["metrics"], computed["metrics"]):
        assert entry.keys() == reference.keys()
        assert entry["variants"][0].keys() == reference["variants"][0].keys()
        for comparison, computed_comparison in zip(entry["comparisons"], reference["comparisons"]):
            assert comparison.keys() == computed_comparison.keys()
            assert comparison["not_computable_reason"] == "sums beyond a double"
            assert comparison["p_value"] is None and comparison["significant"] is False
    assert document["metrics"][2]["comparisons"][0]["margin"] == 5.0


def test_metric_data_must_cover_every_planned_metric_and_fit_the_plan():
    plan = plan_with([REVENUE, LATENCY])
    values = experiment(9)
    data = metric_data(values)
    with pytest.raises(AnalysisError, match="no data for the metric"):
        analyze(plan, ab_data(values["conversion"]))
    with pytest.raises(AnalysisError, match="latency_ms"):
        analyze(plan, ab_data(values["conversion"]), {"revenue": data["revenue"]})
    with pytest.raises(AnalysisError, match=r"data of revenue do not fit the plan: missing red"):
        analyze(plan, ab_data(values["conversion"]),
                data | {"revenue": ab_data({k: values["revenue"][k] for k in ("control", "green")})})


def test_metric_results_are_frozen():
    values = experiment(10)
    result = analyze(plan_with([LATENCY]), ab_data(values["conversion"]), metric_data(values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.metrics[1].comparisons[0].bound = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.metrics[1].key = "other"
