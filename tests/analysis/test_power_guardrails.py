"""Guardrail planning: Spotify's beta correction and non-inferiority sample sizes equal to statsmodels' solve_power."""

import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower

from analysis.errors import AnalysisError
from analysis.power import (
    PowerPlan,
    SampleSizes,
    corrected_power,
    guardrail_effect_size,
    guardrail_sample_sizes,
    sample_sizes,
)

# One guardrail per design and metric type: its baselines and margin.
GUARDRAILS = {
    ("ab", "binary"): dict(baseline_mean=0.3, baseline_sd=None, margin=0.01),
    ("ab", "continuous"): dict(baseline_mean=250.0, baseline_sd=80.0, margin=5.0),
    ("champion_challenger", "binary"): dict(baseline_mean=0.2, baseline_sd=0.35, margin=0.01),
    ("champion_challenger", "continuous"): dict(baseline_mean=None, baseline_sd=2.5, margin=0.1),
}
RATIO_SETS = [(1.0,), (2.0,), (0.5, 1.0, 3.0)]


def guardrail_plan(design, metric, ratios, *, alternative="two-sided", power=0.8, alpha=0.05) -> PowerPlan:
    g = GUARDRAILS[(design, metric)]
    return PowerPlan(design=design, metric_type=metric, alpha=alpha, power=power, alternative=alternative,
                     ratios=ratios, baseline_mean=g["baseline_mean"], baseline_sd=g["baseline_sd"])


def statsmodels_guardrail(design, metric, ratios, power, alpha) -> tuple[float, SampleSizes]:
    """DESIGN.md's guardrail planning straight from statsmodels: one-sided "larger", true effect 0."""
    g = GUARDRAILS[(design, metric)]
    alpha = alpha / len(ratios)
    if metric == "binary" and design == "ab":
        d = g["margin"] / math.sqrt(g["baseline_mean"] * (1 - g["baseline_mean"]))
    else:
        d = g["margin"] / g["baseline_sd"]
    if design == "champion_challenger":
        pairs = math.ceil(np.asarray(TTestPower().solve_power(
            effect_size=d, nobs=None, alpha=alpha, power=power, alternative="larger")).item())
        return d, SampleSizes(pairs, (pairs,) * len(ratios))
    solver = NormalIndPower() if metric == "binary" else TTestIndPower()
    nobs1 = max(
        np.asarray(solver.solve_power(effect_size=d, nobs1=None, alpha=alpha, power=power, ratio=r,
                                      alternative="larger")).item()
        for r in ratios
    )
    return d, SampleSizes(math.ceil(nobs1), tuple(math.ceil(nobs1 * r) for r in ratios))


@pytest.mark.parametrize("ratios", RATIO_SETS, ids=str)
@pytest.mark.parametrize("design, metric", list(GUARDRAILS), ids="-".join)
def test_guardrail_sample_sizes_equal_statsmodels_one_sided_solve_power_rounded_up(design, metric, ratios):
    power = corrected_power(0.8, 2)
    plan = guardrail_plan(design, metric, ratios, power=power)
    d, expected = statsmodels_guardrail(design, metric, ratios, power, 0.05)
    margin = GUARDRAILS[(design, metric)]["margin"]

    assert guardrail_effect_size(plan, margin) == pytest.approx(d, rel=1e-12)
    assert guardrail_sample_sizes(plan, margin) == expected


@pytest.mark.parametrize("design, metric", list(GUARDRAILS), ids="-".join)
def test_a_guardrail_is_planned_one_sided_whatever_the_plans_alternative(design, metric):
    margin = GUARDRAILS[(design, metric)]["margin"]
    one_sided = guardrail_sample_sizes(guardrail_plan(design, metric, (1.0,), alternative="one-sided"), margin)
    assert guardrail_sample_sizes(guardrail_plan(design, metric, (1.0,)), margin) == one_sided


def test_a_guardrail_with_a_continuous_ab_metric_needs_what_a_one_sided_mde_of_the_margin_needs():
    plan = guardrail_plan("ab", "continuous", (1.0, 2.0), alternative="one-sided")
    assert guardrail_sample_sizes(plan, 5.0) == sample_sizes(plan, 5.0)


@pytest.mark.parametrize("power, guardrails, expected", [(0.8, 0, 0.8), (0.8, 1, 0.9), (0.8, 4, 0.96),
                                                         (0.9, 9, 0.99)])
def test_corrected_power_splits_beta_over_the_primary_and_the_guardrails(power, guardrails, expected):
    assert corrected_power(power, guardrails) == pytest.approx(expected, rel=1e-12)


def test_more_guardrails_need_more_units_per_guardrail():
    sizes = [guardrail_sample_sizes(guardrail_plan("ab", "binary", (1.0,), power=corrected_power(0.8, g)), 0.01)
             for g in range(4)]
    assert [s.control for s in sizes] == sorted(s.control for s in sizes) and sizes[0].control < sizes[3].control


@pytest.mark.parametrize("power, guardrails", [(1.0, 1), (0.0, 1), (0.8, -1), (0.8, 1.5), (0.8, True)])
def test_corrected_power_refuses_a_power_outside_zero_one_or_a_guardrail_count_that_is_not_a_count(
    power, guardrails
):
    with pytest.raises(AnalysisError):
        corrected_power(power, guardrails)


@pytest.mark.parametrize("margin", [0.0, -5.0, float("nan")])
def test_a_guardrail_margin_must_be_positive(margin):
    with pytest.raises(AnalysisError):
        guardrail_sample_sizes(guardrail_plan("ab", "continuous", (1.0,)), margin)
