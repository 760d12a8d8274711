"""analyze() end to end: the right test per design and metric, Holm, checks, decision and the results JSON."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from analysis.errors import AnalysisError
from analysis.pipeline import AnalysisData, AnalysisPlan, VariantPlan, analyze, not_computable
from analysis.types import SampleSummary
from tests.analysis.summaries import ab_data, cc_data, close, summary

KEYS = ("control", "green", "red")


def make_plan(design, metric, *, weights=(1, 1), planned=100, direction="increase", alternative="two-sided",
              alpha=0.05, max_share=0.2):
    variants = tuple(
        VariantPlan(key, weight, i == 0, planned) for i, (key, weight) in enumerate(zip(KEYS, weights))
    )
    return AnalysisPlan(design, metric, direction, alternative, alpha, variants, incomplete_pairs_max_share=max_share)


def holm(p_values):
    return multipletests(p_values, method="holm")[1]


def test_ab_binary_uses_the_z_test_at_alpha_over_k_with_holm_across_challengers():
    rng = np.random.default_rng(1)
    values = {"control": rng.binomial(1, 0.10, 4_000), "green": rng.binomial(1, 0.13, 3_900),
              "red": rng.binomial(1, 0.11, 8_100)}
    plan = make_plan("ab", "binary", weights=(1, 1, 2), planned=3_000)

    result = analyze(plan, ab_data(values))

    x = values["control"]
    raw_p = []
    for comparison, key in zip(result.comparisons, ("green", "red")):
        y = values[key]
        _, p_value = proportions_ztest([y.sum(), x.sum()], [len(y), len(x)])
        low, high = confint_proportions_2indep(y.sum(), len(y), x.sum(), len(x), method="wald", alpha=0.05 / 2)
        assert (comparison.variant, comparison.vs) == (key, "control")
        assert comparison.p_value == close(p_value)
        assert (comparison.ci_low, comparison.ci_high) == (close(low), close(high))
        assert comparison.relative_effect == close(y.mean() / x.mean() - 1)
        raw_p.append(p_value)
    for comparison, adjusted in zip(result.comparisons, holm(raw_p)):
        assert comparison.adjusted_p_value == close(adjusted)
        assert comparison.significant == (adjusted < 0.05)
    assert result.test == "two-proportion z-test"
    assert [(v.key, v.units) for v in result.variants] == [("control", 4_000), ("green", 3_900), ("red", 8_100)]
    assert result.variants[1].mean == close(values["green"].mean())
    assert result.variants[1].sd == close(values["green"].std(ddof=1))
    expected = np.array([4_000, 3_900, 8_100]).sum() * np.array([1, 1, 2]) / 4
    assert result.checks.sample_ratio_p_value == close(stats.chisquare([4_000, 3_900, 8_100], expected).pvalue)
    assert result.checks.sample_ratio_ok
    assert (result.decision.outcome, result.decision.variant) == ("promote", "green")


def test_ab_continuous_one_sided_decrease_uses_welch_smaller_with_an_open_lower_end():
    rng = np.random.default_rng(2)
    values = {"control": rng.gamma(2, 5, 2_000), "green": rng.gamma(2, 4.6, 2_050)}
    plan = make_plan("ab", "continuous", direction="decrease", alternative="one-sided", planned=1_500)

    comparison = analyze(plan, ab_data(values)).comparisons[0]

    reference = stats.ttest_ind(values["green"], values["control"], equal_var=False, alternative="less")
    assert comparison.p_value == close(reference.pvalue) and comparison.adjusted_p_value == close(reference.pvalue)
    assert comparison.statistic == close(reference.statistic) and comparison.df == close(reference.df)
    assert comparison.ci_low is None and comparison.relative_ci_low is None
    assert comparison.ci_high == close(reference.confidence_interval(0.95).high)


def test_champion_challenger_continuous_uses_the_paired_t_test_on_complete_pairs():
    rng = np.random.default_rng(3)
    n = 3_000
    champion = rng.gamma(2, 5, n)
    values = {"control": champion, "green": champion + rng.normal(-0.4, 5, n),
              "red": champion + rng.normal(0.1, 5, n)}
    for key in ("green", "red"):
        values[key][rng.random(n) < 0.05] = np.nan
    plan = make_plan("champion_challenger", "continuous", weights=(1, 1, 1), direction="decrease", planned=2_500)

    result = analyze(plan, cc_data(values))

    raw_p = []
    for comparison, key in zip(result.comparisons, ("green", "red")):
        both = ~np.isnan(values[key])
        reference = stats.ttest_rel(values[key][both], champion[both])
        assert comparison.p_value == close(reference.pvalue) and comparison.df == both.sum() - 1
        assert (comparison.ci_low, comparison.ci_high) == tuple(close(e) for e in reference.confidence_interval(0.975))
        raw_p.append(reference.pvalue)
    assert [c.adjusted_p_value for c in result.comparisons] == [close(p) for p in holm(raw_p)]
    incomplete = int((np.isnan(values["green"]) | np.isnan(values["red"])).sum())
    assert result.checks.incomplete_pairs == incomplete
    fewest = min((~np.isnan(values[k])).sum() for k in ("green", "red"))
    assert result.checks.incomplete_pairs_share == close(incomplete / (incomplete + fewest))
    assert result.checks.sample_ratio_p_value is None and result.checks.sample_ratio_ok
    assert result.variants[1].units == (~np.isnan(values["green"])).sum()
    assert result.test == "paired t-test"
    assert (result.decision.outcome, result.decision.variant) == ("promote", "green")


@pytest.mark.parametrize("n, discordance", [(2_000, 0.1), (150, 0.06)], ids=["chi-square", "exact"])
def test_champion_challenger_binary_uses_mcnemar(n, discordance):
    rng = np.random.default_rng(4)
    champion = rng.binomial(1, 0.3, n).astype(float)
    flip = rng.random(n) < discordance
    values = {"control": champion, "green": np.where(flip, 1 - champion, champion)}

    comparison = analyze(make_plan("champion_challenger", "binary", planned=n), cc_data(values)).comparisons[0]

    b = int(((champion == 1) & (values["green"] == 0)).sum())
    c = int(((champion == 0) & (values["green"] == 1)).sum())
    assert comparison.p_value == close(mcnemar([[0, b], [c, 0]], exact=b + c < 25, correction=True).pvalue)
    assert comparison.effect == close((c - b) / n)


def test_the_results_json_has_exactly_the_documented_shape_and_no_nan():
    rng = np.random.default_rng(5)
    values = {"control": rng.binomial(1, 0.1, 500), "green": np.zeros(500)}
    document = analyze(make_plan("ab", "binary", planned=400), ab_data(values)).to_dict()

    assert set(document) == {"test", "variants", "comparisons", "checks", "decision"}
    assert set(document["variants"][0]) == {"key", "units", "mean", "sd"}
    assert set(document["comparisons"][0]) == {
        "variant", "vs", "effect", "relative_effect", "ci_low", "ci_high", "relative_ci_low", "relative_ci_high",
        "p_value", "adjusted_p_value", "significant", "statistic", "df", "not_computable_reason",
    }
    assert set(document["checks"]) == {
        "sample_ratio_p_value", "sample_ratio_ok", "sample_size_reached", "incomplete_pairs", "incomplete_pairs_share",
    }
    assert set(document["decision"]) == {"outcome", "variant", "reason"}
    assert json.loads(json.dumps(document, allow_nan=False)) == document


def test_a_control_without_conversions_leaves_the_relative_effect_empty():
    values = {"control": np.zeros(500), "green": np.r_[np.ones(20), np.zeros(480)]}
    comparison = analyze(make_plan("ab", "binary"), ab_data(values)).to_dict()["comparisons"][0]
    assert comparison["p_value"] is not None and comparison["relative_effect"] is None
    assert comparison["relative_ci_low"] is None and comparison["relative_ci_high"] is None


def assert_not_computable(result, outcome):
    document = result.to_dict()
    json.dumps(document, allow_nan=False)
    for comparison in document["comparisons"]:
        assert comparison["p_value"] is None and comparison["adjusted_p_value"] is None
        assert comparison["effect"] is None and comparison["significant"] is False
        assert comparison["not_computable_reason"]
    assert document["decision"]["outcome"] == outcome and document["decision"]["reason"]


@pytest.mark.parametrize("metric", ["binary", "continuous"])
def test_ab_without_any_observation_is_inconclusive_below_plan_and_invalid_at_plan(metric):
    values = {"control": np.zeros(200), "green": np.zeros(200)}
    assert_not_computable(analyze(make_plan("ab", metric, planned=1_000), ab_data(values)), "inconclusive")
    assert_not_computable(analyze(make_plan("ab", metric, planned=200), ab_data(values)), "invalid")


@pytest.mark.parametrize("metric", ["binary", "continuous"])
def test_ab_without_any_unit_is_inconclusive(metric):
    values = {"control": np.zeros(0), "green": np.zeros(0)}
    result = analyze(make_plan("ab", metric), ab_data(values))
    assert_not_computable(result, "inconclusive")
    assert result.checks.sample_ratio_p_value == 1.0
    assert result.variants[0].mean is None and result.variants[0].sd is None


@pytest.mark.parametrize("metric", ["binary", "continuous"])
def test_ab_with_a_single_variant_holding_units_is_invalid(metric):
    values = {"control": np.r_[np.ones(30), np.zeros(270)], "green": np.zeros(0)}
    result = analyze(make_plan("ab", metric), ab_data(values))
    assert_not_computable(result, "invalid")
    assert not result.checks.sample_ratio_ok


def test_ab_continuous_with_no_variation_in_either_arm_is_not_computable():
    values = {"control": np.full(300, 5.0), "green": np.full(300, 5.0)}
    result = analyze(make_plan("ab", "continuous", planned=300), ab_data(values))
    assert_not_computable(result, "invalid")
    assert "same value" in result.comparisons[0].not_computable_reason


@pytest.mark.parametrize("metric", ["binary", "continuous"])
@pytest.mark.parametrize(
    "shape",
    ["no observations at all", "single variant with data", "all pairs incomplete"],
)
def test_champion_challenger_without_two_complete_pairs_is_invalid(metric, shape):
    n = 100
    some = np.r_[np.ones(40), np.zeros(60)]
    missing = np.full(n, np.nan)
    values = {
        "no observations at all": {"control": np.zeros(0), "green": np.zeros(0)},
        "single variant with data": {"control": some, "green": missing},
        "all pairs incomplete": {"control": np.r_[some[:50], missing[:50]], "green": np.r_[missing[:50], some[50:]]},
    }[shape]
    result = analyze(make_plan("champion_challenger", metric), cc_data(values))
    assert_not_computable(result, "invalid")
    assert "fewer than 2 complete pairs" in result.decision.reason


def test_champion_challenger_binary_without_discordant_pairs_is_not_computable():
    champion = np.r_[np.ones(30), np.zeros(70)]
    values = {"control": champion, "green": champion.copy()}
    result = analyze(make_plan("champion_challenger", "binary", planned=500), cc_data(values))
    assert_not_computable(result, "inconclusive")
    assert "discordant" in result.comparisons[0].not_computable_reason


def test_champion_challenger_with_too_many_incomplete_pairs_is_invalid():
    rng = np.random.default_rng(6)
    champion = rng.normal(10, 3, 1_000)
    green = champion + rng.normal(1, 1, 1_000)
    green[:250] = np.nan
    values = {"control": champion, "green": green}
    result = analyze(make_plan("champion_challenger", "continuous", planned=500), cc_data(values))
    assert result.checks.incomplete_pairs_share == 0.25
    assert result.decision.outcome == "invalid" and "25.0% of the units miss a variant" in result.decision.reason
    relaxed = make_plan("champion_challenger", "continuous", planned=500, max_share=0.3)
    assert analyze(relaxed, cc_data(values)).decision.outcome == "promote"


def test_a_challenger_that_cannot_be_computed_counts_as_p_one_in_holm_and_blocks_promotion():
    rng = np.random.default_rng(7)
    values = {"control": rng.normal(10, 2, 500), "green": rng.normal(12, 2, 500), "red": np.full(1, 3.0)}
    result = analyze(make_plan("ab", "continuous", weights=(1, 1, 1), planned=400),
                     ab_data(values, assigned={"control": 500, "green": 500, "red": 500}))
    green, red = result.comparisons
    assert green.adjusted_p_value == close(holm([green.p_value, 1.0])[0]) and green.significant
    assert red.p_value is None and "at least 2 are needed" in red.not_computable_reason
    assert result.decision.outcome == "inconclusive"


def test_a_significantly_worse_challenger_is_kept_out_with_every_planned_sample():
    rng = np.random.default_rng(8)
    values = {"control": rng.binomial(1, 0.2, 5_000), "green": rng.binomial(1, 0.15, 5_000)}
    result = analyze(make_plan("ab", "binary", planned=5_000), ab_data(values))
    assert result.comparisons[0].significant and result.comparisons[0].effect < 0
    assert (result.decision.outcome, result.decision.variant) == ("keep", None)


def test_sample_size_reached_counts_units_for_ab_and_complete_pairs_for_champion_challenger():
    rng = np.random.default_rng(9)
    ab = analyze(make_plan("ab", "continuous", planned=300),
                 ab_data({"control": rng.normal(size=300), "green": rng.normal(size=299)}))
    assert dict(ab.checks.sample_size_reached) == {"control": True, "green": False}
    champion = rng.normal(size=320)
    green = champion + rng.normal(size=320)
    green[:30] = np.nan
    cc = analyze(make_plan("champion_challenger", "continuous", planned=300), cc_data({"control": champion,
                                                                                      "green": green}))
    assert dict(cc.checks.sample_size_reached) == {"control": False, "green": False}


@pytest.mark.parametrize(
    "variants",
    [
        (VariantPlan("control", 1, True, 10),),
        (VariantPlan("a", 1, True, 10), VariantPlan("b", 1, True, 10)),
        (VariantPlan("a", 1, False, 10), VariantPlan("b", 1, False, 10)),
        (VariantPlan("a", 1, True, 10), VariantPlan("a", 1, False, 10)),
    ],
    ids=["no challenger", "two controls", "no control", "duplicate keys"],
)
def test_a_plan_needs_one_control_one_challenger_and_unique_keys(variants):
    with pytest.raises(AnalysisError):
        AnalysisPlan("ab", "binary", "increase", "two-sided", 0.05, variants)


def test_data_that_do_not_fit_the_plan_are_refused():
    plan = make_plan("ab", "binary")
    with pytest.raises(AnalysisError, match="missing"):
        analyze(plan, AnalysisData(arms={"control": summary([0, 1])}, assigned={"control": 2}))
    cc = make_plan("champion_challenger", "binary")
    with pytest.raises(AnalysisError, match=r"pairs\[green\]"):
        analyze(cc, AnalysisData(arms={"control": summary([0, 1]), "green": summary([1, 1])}))


def test_the_result_is_immutable():
    result = analyze(make_plan("ab", "binary"), ab_data({"control": np.zeros(10), "green": np.ones(10)}))
    with pytest.raises(AttributeError):
        result.decision = None
    with pytest.raises(TypeError):
        result.checks.sample_size_reached["control"] = False
    assert not math.isnan(result.comparisons[0].p_value)


def test_a_result_that_could_not_be_computed_has_the_shape_of_any_result_and_is_invalid():
    plan = AnalysisPlan(design="ab", metric_type="continuous", direction="increase", alternative="two-sided",
                        alpha=0.05, variants=(VariantPlan("control", 1.0, True, 10), VariantPlan("b", 1.0, False, 10)))
    arm = SampleSummary(n=10, total=5.0, total_of_squares=5.0)
    computed = analyze(plan, AnalysisData(arms={"control": arm, "b": arm}, assigned={"control": 10, "b": 10}))

    document = not_computable(plan, "sums beyond a double").to_dict()

    assert document.keys() == computed.to_dict().keys()
    assert document["comparisons"][0].keys() == computed.to_dict()["comparisons"][0].keys()
    assert document["checks"].keys() == computed.to_dict()["checks"].keys()
    assert document["decision"] == {"outcome": "invalid", "variant": None, "reason": "sums beyond a double"}
    assert document["comparisons"][0]["not_computable_reason"] == "sums beyond a double"
