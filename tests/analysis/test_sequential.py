"""Group-sequential boundaries match the published designs and scipy's multivariate normal integration."""

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from analysis.errors import AnalysisError
from analysis.sequential import (
    SequentialDesign,
    crossing_probabilities,
    efficacy_boundaries,
    inflation_factor,
    nominal_alphas,
    spent_alpha,
    validate_looks,
)

FIVE_EQUAL = (0.2, 0.4, 0.6, 0.8, 1.0)
DESIGNS = [(1 / 3, 2 / 3, 1.0), FIVE_EQUAL, (0.3, 0.7, 1.0), (0.2, 0.5, 0.6, 1.0)]
SPENDINGS = ["obrien_fleming", "pocock"]
# One-sided alpha 0.05 on its side, and a two-sided 0.05 design's side at 0.025.
LEVELS = [0.05, 0.025]


def canonical_covariance(fractions) -> np.ndarray:
    """corr(Z_a, Z_b) = sqrt(t_a / t_b) for t_a <= t_b (Jennison & Turnbull's canonical form)."""
    t = np.asarray(fractions, dtype=float)
    return np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))


def first_crossing_by_scipy(fractions, boundaries, drift: float, abseps: float) -> list[float]:
    """P(Z_1 < b_1, ..., Z_{i-1} < b_{i-1}, Z_i >= b_i) for each look, by scipy's Genz integration.

    Each term is a rectangle (the last coordinate's lower limit is b_i), which scipy integrates to an
    absolute error near abseps quickly because the probability is small; 1 - P(all Z_j < b_j) instead
    would need the error of a probability near 1 and takes seconds per design at 1e-7.
    """
    covariance = canonical_covariance(fractions)
    means = drift * np.sqrt(np.asarray(fractions, dtype=float))
    probabilities = []
    for i in range(1, len(fractions) + 1):
        upper = np.append(np.asarray(boundaries[: i - 1], dtype=float), np.inf)
        lower = np.append(np.full(i - 1, -np.inf), boundaries[i - 1])
        distribution = multivariate_normal(means[:i], covariance[:i, :i], abseps=abseps, releps=0)
        probabilities.append(float(distribution.cdf(upper, lower_limit=lower, rng=np.random.default_rng(0))))
    return probabilities


# Two-sided alpha 0.05 (0.025 a side), as published by rpact / gsDesign to three decimals.
@pytest.mark.parametrize(
    ("fractions", "spending", "expected"),
    [
        (FIVE_EQUAL, "obrien_fleming", (4.877, 3.357, 2.680, 2.290, 2.031)),
        (FIVE_EQUAL, "pocock", (2.438, 2.427, 2.410, 2.397, 2.386)),
        ((0.3, 0.7, 1.0), "obrien_fleming", (3.929, 2.439, 2.000)),
    ],
)
def test_boundaries_match_the_design_of_record(fractions, spending, expected):
    assert efficacy_boundaries(fractions, spending, 0.025) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(("spending", "expected"), [("obrien_fleming", 1.025), ("pocock", 1.213)])
def test_inflation_factors_match_the_design_of_record(spending, expected):
    assert inflation_factor(FIVE_EQUAL, spending, 0.025, 0.8) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("a", LEVELS)
@pytest.mark.parametrize("spending", SPENDINGS)
@pytest.mark.parametrize("fractions", DESIGNS, ids=str)
def test_alpha_spent_by_each_look_equals_the_spending_function_by_multivariate_normal(fractions, spending, a):
    boundaries = efficacy_boundaries(fractions, spending, a)
    # scipy at abseps 1e-8 agrees with the recursion to within 1e-8 (measured); 1e-6 is the requirement.
    spent_by_scipy = np.cumsum(first_crossing_by_scipy(fractions, boundaries, drift=0.0, abseps=1e-8))
    expected = [spent_alpha(spending, a, t) for t in fractions]
    assert spent_by_scipy == pytest.approx(expected, abs=1e-6)
    assert crossing_probabilities(fractions, boundaries) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("spending", SPENDINGS)
@pytest.mark.parametrize("fractions", [FIVE_EQUAL, (0.2, 0.5, 0.6, 1.0)], ids=str)
def test_the_inflated_information_gives_the_planned_power(fractions, spending):
    a, power = 0.025, 0.8
    factor = inflation_factor(fractions, spending, a, power)
    # The drift of the maximum information: the fixed design's z_{1-a} + z_{1-beta}, scaled by sqrt(factor).
    drift = math.sqrt(factor) * (norm.isf(a) + norm.isf(1 - power))
    boundaries = efficacy_boundaries(fractions, spending, a)
    power_by_scipy = sum(first_crossing_by_scipy(fractions, boundaries, drift=drift, abseps=1e-6))
    assert power_by_scipy == pytest.approx(power, abs=1e-4)
    assert crossing_probabilities(fractions, boundaries, drift)[-1] == pytest.approx(power, abs=1e-8)


def test_a_sequential_design_needs_more_information_than_a_fixed_one_and_one_look_none():
    pocock = inflation_factor(FIVE_EQUAL, "pocock", 0.025, 0.8)
    assert pocock > inflation_factor(FIVE_EQUAL, "obrien_fleming", 0.025, 0.8) > 1
    assert inflation_factor((1.0,), "pocock", 0.05, 0.9) == pytest.approx(1.0, abs=1e-9)


def test_a_single_look_is_the_fixed_design():
    assert efficacy_boundaries((1.0,), "obrien_fleming", 0.025) == pytest.approx((norm.isf(0.025),), abs=1e-12)
    assert nominal_alphas(efficacy_boundaries((1.0,), "pocock", 0.05)) == pytest.approx((0.05,), abs=1e-12)


def test_nominal_alphas_are_the_upper_tail_beyond_each_boundary():
    boundaries = efficacy_boundaries(FIVE_EQUAL, "obrien_fleming", 0.025)
    assert nominal_alphas(boundaries) == pytest.approx(tuple(norm.sf(b) for b in boundaries), rel=1e-12)
    assert nominal_alphas(boundaries)[-1] < 0.025


@pytest.mark.parametrize("spending", SPENDINGS)
def test_both_spending_functions_spend_nothing_at_zero_and_everything_at_one(spending):
    assert spent_alpha(spending, 0.025, 1.0) == pytest.approx(0.025, abs=1e-15)
    assert spent_alpha(spending, 0.025, 1e-9) < 1e-6
    spent = [spent_alpha(spending, 0.025, t) for t in np.linspace(0.05, 1, 20)]
    assert all(later > earlier for earlier, later in zip(spent, spent[1:]))


def test_the_spending_functions_follow_lan_and_demets():
    obrien_fleming = 2 - 2 * norm.cdf(norm.isf(0.0125) / math.sqrt(0.5))
    assert spent_alpha("obrien_fleming", 0.025, 0.5) == pytest.approx(obrien_fleming)
    assert spent_alpha("pocock", 0.025, 0.5) == pytest.approx(0.025 * math.log(1 + (math.e - 1) * 0.5))


@pytest.mark.parametrize("spending", SPENDINGS)
def test_at_observed_fractions_the_last_look_spends_what_is_left(spending):
    observed = (0.25, 0.55, 0.8)
    boundaries = efficacy_boundaries(observed, spending, 0.025)
    spent = crossing_probabilities(observed, boundaries)
    assert spent[:2] == pytest.approx([spent_alpha(spending, 0.025, t) for t in observed[:2]], abs=1e-8)
    assert spent[-1] == pytest.approx(0.025, abs=1e-8)
    # Without `final` the last look spends only up to a(t_k), as if more looks were to come.
    interim = efficacy_boundaries(observed, spending, 0.025, final=False)
    assert interim[:2] == pytest.approx(boundaries[:2], abs=1e-10)
    assert interim[-1] > boundaries[-1]
    assert crossing_probabilities(observed, interim)[-1] == pytest.approx(spent_alpha(spending, 0.025, 0.8), abs=1e-8)


def test_boundaries_are_recomputed_when_looks_come_off_plan():
    planned = efficacy_boundaries(FIVE_EQUAL, "obrien_fleming", 0.025)
    observed = efficacy_boundaries((0.23, 0.41, 0.6, 0.8, 1.0), "obrien_fleming", 0.025)
    assert observed[0] < planned[0] and observed[1] != pytest.approx(planned[1], abs=1e-3)


def test_a_look_that_can_spend_nothing_cannot_reject():
    # O'Brien-Fleming at t = 1e-4 releases 2 Phi(-224), which is 0 in floating point.
    boundaries = efficacy_boundaries((1e-4, 1.0), "obrien_fleming", 0.025)
    assert boundaries[0] == math.inf
    assert boundaries[1] == pytest.approx(norm.isf(0.025), abs=1e-6)
    assert nominal_alphas(boundaries)[0] == 0.0


def test_the_design_holds_validated_fractions():
    design = SequentialDesign([0.5, 1], "pocock", 0.025)
    assert design.fractions == (0.5, 1.0)
    assert design.cumulative_alphas() == pytest.approx((spent_alpha("pocock", 0.025, 0.5), 0.025))


@pytest.mark.parametrize(
    "fractions",
    [
        (0.5, 0.5, 1.0),
        (0.6, 0.4, 1.0),
        (0.0, 0.5, 1.0),
        (-0.2, 1.0),
        (0.5, 1.2),
        (0.5, float("nan"), 1.0),
        (),
        tuple(i / 11 for i in range(1, 12)),
        ("0.5", 1.0),
        (True,),
        None,
    ],
    ids=str,
)
def test_bad_looks_are_refused(fractions):
    with pytest.raises(AnalysisError):
        validate_looks(fractions)
    with pytest.raises(AnalysisError):
        efficacy_boundaries(fractions, "pocock", 0.025)


def test_ten_looks_are_allowed_and_a_plan_must_end_at_one():
    assert len(validate_looks(tuple(i / 10 for i in range(1, 11)))) == 10
    with pytest.raises(AnalysisError, match="fraction 1"):
        validate_looks((0.5, 0.9))
    assert validate_looks((0.5, 0.9), ends_at_one=False) == (0.5, 0.9)
    with pytest.raises(AnalysisError, match="fraction 1"):
        inflation_factor((0.5, 0.9), "pocock", 0.025, 0.8)


def test_an_unknown_spending_function_is_refused_by_name():
    with pytest.raises(AnalysisError, match="haybittle_peto"):
        efficacy_boundaries(FIVE_EQUAL, "haybittle_peto", 0.025)
    with pytest.raises(AnalysisError, match="haybittle_peto"):
        spent_alpha("haybittle_peto", 0.025, 0.5)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, float("nan")])
def test_an_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(AnalysisError):
        efficacy_boundaries(FIVE_EQUAL, "pocock", alpha)


def test_bad_crossing_inputs_and_powers_are_refused():
    with pytest.raises(AnalysisError):
        crossing_probabilities(FIVE_EQUAL, (2.0, 2.0))
    with pytest.raises(AnalysisError):
        crossing_probabilities((0.5, 1.0), (2.0, float("nan")))
    with pytest.raises(AnalysisError):
        crossing_probabilities((0.5, 1.0), (2.0, 2.0), drift=math.inf)
    with pytest.raises(AnalysisError):
        inflation_factor(FIVE_EQUAL, "pocock", 0.025, 0.02)
    with pytest.raises(AnalysisError):
        inflation_factor(FIVE_EQUAL, "pocock", 0.025, 1.0)
