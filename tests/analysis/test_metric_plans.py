"""A plan's metrics: the primary from the plan's own fields, secondaries and guardrails validated on construction."""

import pytest

from analysis.errors import AnalysisError
from analysis.types import AnalysisData, AnalysisPlan, MetricPlan, SampleSummary, VariantPlan

VARIANTS = (VariantPlan("control", 1, True, 100), VariantPlan("green", 1, False, 100))
LATENCY = MetricPlan("latency_ms", "guardrail", "continuous", "decrease", "mean", margin=5)
REVENUE = MetricPlan("revenue", "secondary", "continuous", "increase")


def plan(**fields) -> AnalysisPlan:
    return AnalysisPlan("ab", "binary", "increase", "two-sided", 0.05, VARIANTS, **fields)


def test_a_part_one_plan_has_a_primary_summed_metric_and_no_other():
    single = plan()
    assert (single.metric_key, single.aggregation, single.metrics) == ("primary", "sum", ())
    assert single.primary == MetricPlan("primary", "primary", "binary", "increase", "sum")


def test_a_plan_keeps_its_secondary_and_guardrail_metrics_in_order_as_a_tuple():
    several = plan(metric_key="conversion", metrics=[LATENCY, REVENUE])
    assert several.metrics == (LATENCY, REVENUE)
    assert several.primary.key == "conversion" and several.primary.role == "primary"


def test_a_guardrail_needs_a_positive_margin_and_no_other_metric_has_one():
    assert LATENCY.margin == 5.0 and isinstance(LATENCY.margin, float)
    assert REVENUE.margin is None and REVENUE.aggregation == "sum"
    for margin in (None, 0, -1, float("inf"), True):
        with pytest.raises(AnalysisError):
            MetricPlan("latency_ms", "guardrail", "continuous", "decrease", margin=margin)
    with pytest.raises(AnalysisError, match="only a guardrail has a margin"):
        MetricPlan("revenue", "secondary", "continuous", "increase", margin=1.0)


@pytest.mark.parametrize(
    "fields",
    [
        dict(key=""), dict(key=None), dict(role="decision"), dict(metric_type="count"), dict(direction="up"),
        dict(aggregation="median"),
    ],
    ids=["empty key", "no key", "role", "type", "direction", "aggregation"],
)
def test_a_metric_plan_refuses_an_unknown_word_or_an_empty_key(fields):
    values = dict(key="revenue", role="secondary", metric_type="continuous", direction="increase") | fields
    with pytest.raises(AnalysisError):
        MetricPlan(**values)


@pytest.mark.parametrize(
    "fields",
    [
        dict(metrics=(REVENUE, REVENUE)),
        dict(metric_key="revenue", metrics=(REVENUE,)),
        dict(metrics=(MetricPlan("other", "primary", "binary", "increase"),)),
        dict(metrics=("revenue",)),
        dict(metric_key=""),
        dict(aggregation="median"),
    ],
    ids=["duplicate key", "the primary's key", "a second primary", "not a MetricPlan", "empty primary key",
         "primary aggregation"],
)
def test_a_plan_refuses_metrics_that_clash_with_each_other_or_the_primary(fields):
    with pytest.raises(AnalysisError):
        plan(**fields)


def test_analysis_data_counts_units_without_observations_per_variant():
    arm = SampleSummary(3, 6.0, 14.0)
    data = AnalysisData(arms={"control": arm, "green": arm}, without_observations={"control": 2, "green": 0})
    assert dict(data.without_observations) == {"control": 2, "green": 0}
    assert dict(AnalysisData(arms={"control": arm}).without_observations) == {}
    with pytest.raises(TypeError):
        data.without_observations["control"] = 3
    for counts in ({"control": -1}, {"control": 1.5}, [("control", 1)]):
        with pytest.raises(AnalysisError):
            AnalysisData(arms={"control": arm}, without_observations=counts)
