"""Sample sizes and minimum detectable effects match statsmodels' power solvers called directly."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.errors import AnalysisError
from analysis.power import PowerPlan, SampleSizes, minimum_detectable_effect, sample_sizes

# statsmodels solves effect sizes with brentq at xtol = 1e-5 (Cohen's d or h units), so an
# MDE recomputed from a rounded-up n may exceed the planned one by up to that much.
STATSMODELS_EFFECT_XTOL = 1e-5

# One scenario per design and metric: the plan's baseline, the planned mde, alpha, power
# and the control n used for the minimum detectable effect.
SCENARIOS = {
    ("ab", "binary"): dict(baseline_mean=0.10, baseline_sd=None, mde=0.02, alpha=0.05, power=0.8, n=3000),
    ("ab", "continuous"): dict(baseline_mean=50.0, baseline_sd=12.0, mde=1.5, alpha=0.1, power=0.9, n=1500),
    ("champion_challenger", "binary"): dict(
        baseline_mean=0.3, baseline_sd=0.4, mde=0.03, alpha=0.05, power=0.9, n=800
    ),
    ("champion_challenger", "continuous"): dict(
        baseline_mean=None, baseline_sd=2.5, mde=0.2, alpha=0.01, power=0.8, n=400
    ),
}
RATIO_SETS = [(1.0,), (0.5,), (2.0,), (3.0,), (1.0, 2.0), (0.5, 1.0, 3.0)]
CASES = [
    pytest.param(design, metric, alternative, ratios, id=f"{design}-{metric}-{alternative}-{ratios}")
    for (design, metric), alternative, ratios in itertools.product(SCENARIOS, ("two-sided", "one-sided"), RATIO_SETS)
]


def scalar(value) -> float:
    return np.asarray(value).item()


def solved_effect_size(solver, alternative: str, **known) -> float:
    """statsmodels' effect size; two-sided power is symmetric, and its fallback solver can return -d."""
    effect = scalar(solver.solve_power(effect_size=None, alternative=alternative, **known))
    return abs(effect) if alternative == "two-sided" else effect


def make_plan(design: str, metric: str, alternative: str, ratios: tuple[float, ...]) -> PowerPlan:
    scenario = SCENARIOS[(design, metric)]
    return PowerPlan(
        design=design,
        metric_type=metric,
        alpha=scenario["alpha"],
        power=scenario["power"],
        alternative=alternative,
        ratios=ratios,
        baseline_mean=scenario["baseline_mean"],
        baseline_sd=scenario["baseline_sd"],
    )


def statsmodels_alternative(alternative: str) -> str:
    return "larger" if alternative == "one-sided" else "two-sided"


def statsmodels_sample_sizes(design, metric, alternative, ratios) -> SampleSizes:
    """The DESIGN.md rule computed straight from statsmodels: max nobs1, times each ratio, rounded up."""
    s = SCENARIOS[(design, metric)]
    alpha, alt = s["alpha"] / len(ratios), statsmodels_alternative(alternative)
    if design == "champion_challenger":
        pairs = math.ceil(
            scalar(TTestPower().solve_power(effect_size=s["mde"] / s["baseline_sd"], nobs=None, alpha=alpha,
                                            power=s["power"], alternative=alt))
        )
        return SampleSizes(control=pairs, challengers=(pairs,) * len(ratios))
    if metric == "binary":
        solver, effect = NormalIndPower(), proportion_effectsize(s["baseline_mean"] + s["mde"], s["baseline_mean"])
    else:
        solver, effect = TTestIndPower(), s["mde"] / s["baseline_sd"]
    nobs1 = max(
        scalar(solver.solve_power(effect_size=effect, nobs1=None, alpha=alpha, power=s["power"], ratio=r,
                                  alternative=alt))
        for r in ratios
    )
    return SampleSizes(control=math.ceil(nobs1), challengers=tuple(math.ceil(nobs1 * r) for r in ratios))


def statsmodels_mde(design, metric, alternative, ratios) -> float:
    """The worst challenger's detectable effect from statsmodels, converted to the metric's units."""
    s = SCENARIOS[(design, metric)]
    alpha, alt, n = s["alpha"] / len(ratios), statsmodels_alternative(alternative), s["n"]
    if design == "champion_challenger":
        d = solved_effect_size(TTestPower(), alt, nobs=n, alpha=alpha, power=s["power"])
        return d * s["baseline_sd"]
    solver = NormalIndPower() if metric == "binary" else TTestIndPower()
    effect = max(
        solved_effect_size(solver, alt, nobs1=n, alpha=alpha, power=s["power"], ratio=r)
        for r in ratios
    )
    if metric == "continuous":
        return effect * s["baseline_sd"]
    p0 = s["baseline_mean"]
    return math.sin(math.asin(math.sqrt(p0)) + effect / 2) ** 2 - p0


# --- the table: every design x metric x alternative x ratios ---------------------------------


@pytest.mark.parametrize(("design", "metric", "alternative", "ratios"), CASES)
def test_sample_sizes_equal_statsmodels_solve_power_rounded_up(design, metric, alternative, ratios):
    plan = make_plan(design, metric, alternative, ratios)

    assert sample_sizes(plan, SCENARIOS[(design, metric)]["mde"]) == statsmodels_sample_sizes(
        design, metric, alternative, ratios
    )


@pytest.mark.parametrize(("design", "metric", "alternative", "ratios"), CASES)
def test_minimum_detectable_effect_equals_statsmodels_solved_effect_size_converted(
    design, metric, alternative, ratios
):
    plan = make_plan(design, metric, alternative, ratios)

    mde = minimum_detectable_effect(plan, SCENARIOS[(design, metric)]["n"])

    assert mde == pytest.approx(statsmodels_mde(design, metric, alternative, ratios), rel=1e-9)


@pytest.mark.parametrize(("design", "metric", "alternative", "ratios"), CASES)
def test_planned_sample_sizes_detect_the_planned_mde(design, metric, alternative, ratios):
    scenario = SCENARIOS[(design, metric)]
    plan = make_plan(design, metric, alternative, ratios)

    sizes = sample_sizes(plan, scenario["mde"])
    mde_back = minimum_detectable_effect(plan, sizes.control)

    scale = 1.0 if metric == "binary" else scenario["baseline_sd"]
    assert 0 < mde_back <= scenario["mde"] + STATSMODELS_EFFECT_XTOL * scale
    assert len(sizes.challengers) == len(ratios)


@pytest.mark.parametrize(("design", "metric", "alternative", "ratios"), CASES)
def test_every_challenger_reaches_the_planned_power_with_its_rounded_sample_size(design, metric, alternative, ratios):
    scenario = SCENARIOS[(design, metric)]
    plan = make_plan(design, metric, alternative, ratios)
    alpha, alt = plan.per_comparison_alpha, statsmodels_alternative(alternative)

    sizes = sample_sizes(plan, scenario["mde"])

    for challenger_n in sizes.challengers:
        if design == "champion_challenger":
            achieved = TTestPower().power(effect_size=scenario["mde"] / scenario["baseline_sd"], nobs=challenger_n,
                                          alpha=alpha, alternative=alt)
        elif metric == "binary":
            p0 = scenario["baseline_mean"]
            achieved = NormalIndPower().power(effect_size=proportion_effectsize(p0 + scenario["mde"], p0),
                                              nobs1=sizes.control, ratio=challenger_n / sizes.control,
                                              alpha=alpha, alternative=alt)
        else:
            achieved = TTestIndPower().power(effect_size=scenario["mde"] / scenario["baseline_sd"],
                                             nobs1=sizes.control, ratio=challenger_n / sizes.control,
                                             alpha=alpha, alternative=alt)
        assert scalar(achieved) >= plan.power - 1e-9


# --- named specifications ----------------------------------------------------------------------


def binary_ab_plan(**overrides) -> PowerPlan:
    fields = dict(design="ab", metric_type="binary", alpha=0.05, power=0.8, alternative="two-sided",
                  ratios=(1.0,), baseline_mean=0.10)
    return PowerPlan(**{**fields, **overrides})


def test_design_md_checkout_button_example_needs_14745_units_per_variant():
    assert sample_sizes(binary_ab_plan(), 0.01) == SampleSizes(control=14745, challengers=(14745,))


def test_binary_ab_sample_size_matches_statsmodels_normal_ind_power():
    expected = NormalIndPower().solve_power(effect_size=proportion_effectsize(0.13, 0.10), nobs1=None,
                                            alpha=0.05 / 2, power=0.8, ratio=2.0, alternative="larger")

    sizes = sample_sizes(binary_ab_plan(alternative="one-sided", ratios=(2.0, 2.0)), 0.03)

    assert sizes == SampleSizes(control=math.ceil(expected), challengers=(math.ceil(expected * 2),) * 2)


def test_continuous_ab_sample_size_uses_cohens_d_of_mde_over_baseline_sd():
    plan = PowerPlan(design="ab", metric_type="continuous", alpha=0.05, power=0.8, alternative="two-sided",
                     ratios=(1.0,), baseline_sd=4.0)
    expected = math.ceil(TTestIndPower().solve_power(effect_size=0.5, nobs1=None, alpha=0.05, power=0.8))

    assert sample_sizes(plan, 2.0) == SampleSizes(control=expected, challengers=(expected,))


def test_champion_challenger_gives_every_variant_the_same_number_of_pairs_whatever_the_ratios():
    fields = dict(design="champion_challenger", metric_type="continuous", alpha=0.05, power=0.8,
                  alternative="two-sided", baseline_sd=1.0)
    skewed = PowerPlan(ratios=(0.5, 3.0), **fields)
    even = PowerPlan(ratios=(1.0, 1.0), **fields)
    pairs = math.ceil(TTestPower().solve_power(effect_size=0.25, nobs=None, alpha=0.025, power=0.8))

    assert sample_sizes(skewed, 0.25) == sample_sizes(even, 0.25) == SampleSizes(pairs, (pairs, pairs))
    assert minimum_detectable_effect(skewed, 300) == minimum_detectable_effect(even, 300)


def test_each_of_k_challengers_is_tested_at_alpha_over_k():
    three_challengers = binary_ab_plan(ratios=(1.0, 1.0, 1.0))
    single = sample_sizes(binary_ab_plan(alpha=0.05 / 3), 0.01).control

    assert three_challengers.per_comparison_alpha == pytest.approx(0.05 / 3)
    assert sample_sizes(three_challengers, 0.01) == SampleSizes(control=single, challengers=(single,) * 3)


def test_a_one_sided_plan_needs_fewer_units_than_a_two_sided_one():
    one_sided = sample_sizes(binary_ab_plan(alternative="one-sided"), 0.01)
    two_sided = sample_sizes(binary_ab_plan(), 0.01)

    assert one_sided.control < two_sided.control


def test_the_control_gets_the_largest_nobs1_and_each_challenger_that_times_its_ratio():
    plan = binary_ab_plan(ratios=(0.5, 3.0))
    nobs1 = {r: NormalIndPower().solve_power(effect_size=proportion_effectsize(0.11, 0.10), nobs1=None,
                                             alpha=0.025, power=0.8, ratio=r) for r in (0.5, 3.0)}

    sizes = sample_sizes(plan, 0.01)

    assert nobs1[0.5] > nobs1[3.0]
    assert sizes == SampleSizes(control=math.ceil(nobs1[0.5]),
                                challengers=(math.ceil(nobs1[0.5] * 0.5), math.ceil(nobs1[0.5] * 3.0)))


def test_the_worst_challenger_sets_the_minimum_detectable_effect():
    mixed = minimum_detectable_effect(binary_ab_plan(ratios=(0.5, 3.0)), 5000)
    worst_alone = minimum_detectable_effect(binary_ab_plan(ratios=(0.5, 0.5)), 5000)
    best_alone = minimum_detectable_effect(binary_ab_plan(ratios=(3.0, 3.0)), 5000)

    assert mixed == worst_alone > best_alone


def test_binary_mde_is_the_rate_difference_whose_cohens_h_statsmodels_solved():
    h = NormalIndPower().solve_power(effect_size=None, nobs1=14745, alpha=0.05, power=0.8, ratio=1.0)

    mde = minimum_detectable_effect(binary_ab_plan(), 14745)

    assert proportion_effectsize(0.10 + mde, 0.10) == pytest.approx(h, rel=1e-9)
    assert mde == pytest.approx(0.01, abs=1e-5)


def test_two_sided_mde_is_positive_even_when_statsmodels_lands_on_the_negative_root():
    # statsmodels 0.15 returns d = -0.0873 here (its fsolve fallback); power is symmetric in d.
    plan = PowerPlan(design="ab", metric_type="continuous", alpha=0.1, power=0.9, alternative="two-sided",
                     ratios=(3.0,), baseline_sd=2.0)
    raw = scalar(TTestIndPower().solve_power(effect_size=None, nobs1=1500, alpha=0.1, power=0.9, ratio=3.0))

    assert minimum_detectable_effect(plan, 1500) == pytest.approx(abs(raw) * 2.0, rel=1e-9)


def test_power_plan_accepts_a_list_of_ratios_and_stores_a_tuple():
    assert binary_ab_plan(ratios=[1, 2]).ratios == (1.0, 2.0)


def test_plans_and_sample_sizes_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        binary_ab_plan().alpha = 0.1
    with pytest.raises(dataclasses.FrozenInstanceError):
        SampleSizes(10, (10,)).control = 11


def test_analysis_error_is_a_value_error():
    assert issubclass(AnalysisError, ValueError)
    assert AnalysisError.__doc__


# --- invalid inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(alpha=0.0), id="alpha-0"),
        pytest.param(dict(alpha=1.0), id="alpha-1"),
        pytest.param(dict(alpha=-0.05), id="alpha-negative"),
        pytest.param(dict(alpha=float("nan")), id="alpha-nan"),
        pytest.param(dict(alpha="0.05"), id="alpha-string"),
        pytest.param(dict(alpha=True), id="alpha-bool"),
        pytest.param(dict(power=0.0), id="power-0"),
        pytest.param(dict(power=1.0), id="power-1"),
        pytest.param(dict(power=1.5), id="power-above-1"),
        pytest.param(dict(design="bandit"), id="unknown-design"),
        pytest.param(dict(metric_type="count"), id="unknown-metric"),
        pytest.param(dict(alternative="larger"), id="unknown-alternative"),
        pytest.param(dict(ratios=()), id="empty-ratios"),
        pytest.param(dict(ratios=None), id="ratios-none"),
        pytest.param(dict(ratios=(1.0, 0.0)), id="zero-ratio"),
        pytest.param(dict(ratios=(-1.0,)), id="negative-ratio"),
        pytest.param(dict(ratios=(float("inf"),)), id="infinite-ratio"),
        pytest.param(dict(baseline_mean=None), id="ab-binary-without-baseline"),
        pytest.param(dict(baseline_mean=0.0), id="binary-baseline-0"),
        pytest.param(dict(baseline_mean=1.0), id="binary-baseline-1"),
        pytest.param(dict(baseline_mean=1.2), id="binary-baseline-above-1"),
        pytest.param(dict(baseline_sd=0.0), id="baseline-sd-0"),
        pytest.param(dict(metric_type="continuous", baseline_sd=None), id="ab-continuous-without-sd"),
        pytest.param(dict(metric_type="continuous", baseline_sd=-2.0), id="ab-continuous-negative-sd"),
        pytest.param(dict(design="champion_challenger", baseline_sd=None), id="cc-binary-without-sd"),
        pytest.param(dict(design="champion_challenger", metric_type="continuous", baseline_sd=None),
                     id="cc-continuous-without-sd"),
    ],
)
def test_invalid_power_plans_raise_analysis_error(overrides):
    with pytest.raises(AnalysisError):
        binary_ab_plan(**overrides)


@pytest.mark.parametrize(
    ("plan", "mde"),
    [
        pytest.param(binary_ab_plan(), 0.0, id="mde-0"),
        pytest.param(binary_ab_plan(), -0.01, id="mde-negative"),
        pytest.param(binary_ab_plan(), float("nan"), id="mde-nan"),
        pytest.param(binary_ab_plan(), None, id="mde-none"),
        pytest.param(binary_ab_plan(), 0.9, id="baseline-plus-mde-is-1"),
        pytest.param(binary_ab_plan(), 0.95, id="baseline-plus-mde-above-1"),
        pytest.param(PowerPlan(design="champion_challenger", metric_type="continuous", alpha=0.05, power=0.8,
                               alternative="two-sided", ratios=(1.0,), baseline_sd=1.0), 10.0,
                     id="effect-so-large-that-fewer-than-2-pairs-would-do"),
        pytest.param(PowerPlan(design="ab", metric_type="continuous", alpha=0.001, power=0.99,
                               alternative="two-sided", ratios=(1.0,), baseline_sd=1.0), 0.1,
                     id="statsmodels-returns-a-non-root-at-alpha-0.001-power-0.99"),
    ],
)
def test_invalid_or_unplannable_effects_raise_analysis_error(plan, mde):
    with pytest.raises(AnalysisError):
        sample_sizes(plan, mde)


@pytest.mark.parametrize(
    ("plan", "control_sample_size"),
    [
        pytest.param(binary_ab_plan(), 1, id="n-1"),
        pytest.param(binary_ab_plan(), 0, id="n-0"),
        pytest.param(binary_ab_plan(), -5, id="n-negative"),
        pytest.param(binary_ab_plan(), 100.0, id="n-float"),
        pytest.param(binary_ab_plan(), True, id="n-bool"),
        pytest.param(binary_ab_plan(ratios=(1.0, 0.25)), 4, id="a-challenger-below-2-units"),
        pytest.param(binary_ab_plan(baseline_mean=0.99), 10, id="detectable-rate-would-exceed-1"),
    ],
)
def test_invalid_sample_sizes_for_the_mde_raise_analysis_error(plan, control_sample_size):
    with pytest.raises(AnalysisError):
        minimum_detectable_effect(plan, control_sample_size)


@pytest.mark.parametrize(
    ("control", "challengers"),
    [
        pytest.param(1, (10,), id="control-below-2"),
        pytest.param(10, (), id="no-challengers"),
        pytest.param(10, (10, 1), id="challenger-below-2"),
        pytest.param(10.5, (10,), id="control-not-an-integer"),
    ],
)
def test_invalid_sample_sizes_raise_analysis_error(control, challengers):
    with pytest.raises(AnalysisError):
        SampleSizes(control=control, challengers=challengers)


def test_cuped_shrinks_the_detectable_effect_of_a_given_sample_by_sqrt_1_minus_rho_squared():
    """With a given sample and CUPED's rho, the detectable effect is statsmodels' d times sqrt(1 - rho^2);
    planning that effect back with the same rho needs what the unadjusted effect needs without CUPED."""
    plan = PowerPlan(design="ab", metric_type="continuous", alpha=0.05, power=0.8, alternative="two-sided",
                     ratios=(1.0,), baseline_mean=20.0, baseline_sd=10.0)
    d = TTestIndPower().solve_power(effect_size=None, nobs1=1000, alpha=0.05, power=0.8, ratio=1.0,
                                    alternative="two-sided")

    assert minimum_detectable_effect(plan, 1000) == pytest.approx(d * 10.0, rel=1e-9)
    with_cuped = minimum_detectable_effect(plan, 1000, expected_correlation=0.6)
    assert with_cuped == pytest.approx(d * 10.0 * 0.8, rel=1e-9)
    round_trip = sample_sizes(plan, with_cuped, expected_correlation=0.6).control
    assert round_trip == sample_sizes(plan, with_cuped / 0.8).control
    assert round_trip in (1000, 1001)  # 1000, give or take the float rounding of the round trip
