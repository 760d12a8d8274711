"""One look of a group-sequential design: Z against the recomputed boundary, and when a look ends the test."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis.cuped import CovariateSummary
from analysis.looks import LookSpec, analyze_look, fractions_by_comparison
from analysis.sequential import efficacy_boundaries
from analysis.types import AnalysisData, AnalysisPlan, MetricPlan, VariantPlan
from tests.analysis.summaries import ab_data, cc_data, close

PLANNED = 1000


def plan(*, challengers=("b",), alternative="two-sided", design="ab", metric_type="continuous", metrics=(),
         cuped=False, direction="increase"):
    variants = (VariantPlan("a", 1.0, True, PLANNED), *(VariantPlan(c, 1.0, False, PLANNED) for c in challengers))
    return AnalysisPlan(design=design, metric_type=metric_type, direction=direction, alternative=alternative,
                        alpha=0.05, variants=variants, metrics=tuple(metrics), cuped=cuped)


def first_look(**fields):
    return LookSpec(index=1, of=3, spending=fields.pop("spending", "obrien_fleming"), last=False, **fields)


def normal(seed, n, shift=0.0, sd=1.0):
    return np.random.default_rng(seed).normal(10 + shift, sd, n)


def test_the_welch_z_and_the_repeated_interval_at_an_interim_look():
    a, b = normal(1, 300), normal(2, 300, shift=0.5)
    result = analyze_look(plan(), ab_data({"a": a, "b": b}), None, first_look())

    comparison = result.analysis.comparisons[0].to_dict()
    z, p = CompareMeans(DescrStatsW(b), DescrStatsW(a)).ztest_ind(usevar="unequal")
    boundary = efficacy_boundaries([0.3], "obrien_fleming", 0.025, final=False)[0]
    se = comparison["effect"] / z
    assert comparison["statistic_z"] == close(z) and comparison["nominal_p_value"] == close(p)
    assert comparison["boundary"] == close(boundary) and comparison["information_fraction"] == close(0.3)
    assert comparison["nominal_alpha"] == close(2 * stats.norm.sf(boundary))
    assert (comparison["rci_low"], comparison["rci_high"]) == (close(comparison["effect"] - boundary * se),
                                                              close(comparison["effect"] + boundary * se))
    assert comparison["crossed"] == "preferred" and result.ends
    assert result.analysis.decision.outcome == "promote"


def test_an_unpooled_wald_z_for_a_binary_ab_metric():
    rng = np.random.default_rng(3)
    a, b = (rng.random(400) < 0.2).astype(float), (rng.random(400) < 0.25).astype(float)
    result = analyze_look(plan(metric_type="binary"), ab_data({"a": a, "b": b}), None, first_look())

    wald = proportion.test_proportions_2indep(b.sum(), 400, a.sum(), 400, method="wald", compare="diff")
    assert result.analysis.comparisons[0].to_dict()["statistic_z"] == close(wald.statistic)


def test_a_paired_z_for_champion_challenger():
    champion, challenger = normal(4, 250), normal(5, 250, shift=0.05)
    result = analyze_look(plan(design="champion_challenger"), cc_data({"a": champion, "b": challenger}), None,
                          first_look())

    comparison = result.analysis.comparisons[0].to_dict()
    z, p = DescrStatsW(challenger - champion).ztest_mean()
    assert comparison["statistic_z"] == close(z) and comparison["nominal_p_value"] == close(p)
    assert comparison["information_fraction"] == close(250 / PLANNED)


def test_the_cuped_z_at_a_look_uses_the_adjusted_values():
    rng = np.random.default_rng(6)
    x = {arm: rng.normal(20, 10, 300) for arm in ("a", "b")}
    y = {arm: 0.8 * x[arm] + rng.normal(0, 6, 300) + (1.5 if arm == "b" else 0.0) for arm in ("a", "b")}
    summaries = {arm: CovariateSummary(300, y[arm].sum(), (y[arm] ** 2).sum(), x[arm].sum(), (x[arm] ** 2).sum(),
                                       (x[arm] * y[arm]).sum()) for arm in ("a", "b")}
    data = AnalysisData(arms=ab_data(y).arms, assigned={"a": 300, "b": 300}, covariates=summaries)
    result = analyze_look(plan(cuped=True), data, None, first_look())

    xs, ys = np.concatenate([x["a"], x["b"]]), np.concatenate([y["a"], y["b"]])
    theta = np.polyfit(xs, ys, 1)[0]
    adjusted = {arm: y[arm] - theta * (x[arm] - xs.mean()) for arm in ("a", "b")}
    z, _ = CompareMeans(DescrStatsW(adjusted["b"]), DescrStatsW(adjusted["a"])).ztest_ind(usevar="unequal")
    assert result.analysis.comparisons[0].to_dict()["statistic_z"] == close(z)


def test_one_sided_looks_spend_alpha_over_k_on_the_preferred_side_only():
    a, b, c = normal(7, 300), normal(8, 300, shift=-0.6), normal(9, 300)
    result = analyze_look(plan(challengers=("b", "c"), alternative="one-sided"),
                          ab_data({"a": a, "b": b, "c": c}), None, first_look(spending="pocock"))

    comparison = result.analysis.comparisons[0].to_dict()
    assert comparison["boundary"] == close(efficacy_boundaries([0.3], "pocock", 0.025, final=False)[0])
    assert comparison["rci_high"] is None and comparison["rci_low"] is not None
    assert comparison["crossed"] is None  # far on the harmful side, which a one-sided design does not test
    assert not result.ends


def test_two_sided_with_k_challengers_tests_each_side_at_alpha_over_2k():
    values = {"a": normal(10, 300), "b": normal(11, 300), "c": normal(12, 300)}
    result = analyze_look(plan(challengers=("b", "c")), ab_data(values), None, first_look())

    expected = efficacy_boundaries([0.3], "obrien_fleming", 0.0125, final=False)[0]
    assert [c.to_dict()["boundary"] for c in result.analysis.comparisons] == [close(expected)] * 2


def test_every_challenger_crossing_on_the_harmful_side_ends_the_test_with_keep():
    result = analyze_look(plan(), ab_data({"a": normal(13, 300), "b": normal(14, 300, shift=-0.6)}), None,
                          first_look())

    assert result.ends and result.analysis.decision.outcome == "keep"
    assert result.analysis.decision.reason.startswith("At look 1 of 3: Keep the control")


def test_a_winner_whose_guardrail_has_not_crossed_its_boundary_does_not_end_the_test():
    guardrail = MetricPlan("latency", "guardrail", "continuous", "decrease", margin=0.05)
    data = ab_data({"a": normal(15, 300), "b": normal(16, 300, shift=0.6)})
    latency = ab_data({"a": normal(17, 300, sd=2), "b": normal(18, 300, sd=2)})

    sealed = analyze_look(plan(metrics=[guardrail]), data, {"latency": latency}, first_look())

    assert not sealed.ends
    entry = next(e for e in sealed.statistics if e["metric"] == "latency")
    assert entry["crossed"] is None
    assert entry["boundary"] == close(efficacy_boundaries([0.3], "obrien_fleming", 0.05, final=False)[0])

    wide = MetricPlan("latency", "guardrail", "continuous", "decrease", margin=3.0)
    ended = analyze_look(plan(metrics=[wide]), data, {"latency": latency}, first_look())
    assert ended.ends and ended.analysis.decision.outcome == "promote"
    held = ended.analysis.metrics[1].comparisons[0]
    se = (3.0 - held.effect) / held.sequential["statistic_z"]  # decrease: Z = (margin - effect) / SE
    assert held.non_inferior and held.bound == close(held.effect + held.sequential["boundary"] * se)
    assert held.sequential["rci_high"] == held.bound and held.sequential["rci_low"] is None


def test_a_failed_check_never_ends_the_test_early():
    values = {"a": normal(19, 200), "b": normal(20, 300, shift=1.0)}  # 200 against 300 units: a ratio mismatch
    result = analyze_look(plan(), ab_data(values), None, first_look())

    assert not result.ends and result.analysis.decision.reason == "Look 1 of 3: the test continues."


def test_a_look_without_new_units_assesses_nothing_and_the_last_look_spends_what_is_left():
    values = ab_data({"a": normal(21, 300), "b": normal(22, 300)})
    earlier = {"primary/b": (0.3,)}

    again = analyze_look(plan(), values, None, LookSpec(2, 3, "obrien_fleming", False, earlier))
    last = analyze_look(plan(), values, None, LookSpec(3, 3, "obrien_fleming", True, earlier))

    assert again.statistics == () and again.analysis.comparisons[0].sequential["look_note"]
    assert last.statistics[0]["information_fraction"] == close(0.31)
    expected = efficacy_boundaries([0.3, 0.31], "obrien_fleming", 0.025, final=True)[-1]
    assert last.statistics[0]["boundary"] == close(expected)


def test_the_earlier_looks_fractions_come_from_their_stored_statistics():
    looks = [[{"id": "primary/b", "information_fraction": 0.3}], [],
             [{"id": "primary/b", "information_fraction": 0.62}, {"id": "latency/b", "information_fraction": 0.6}]]
    assert fractions_by_comparison(looks) == {"primary/b": (0.3, 0.62), "latency/b": (0.6,)}
