"""The decision follows DESIGN.md's order: invalid, promote, inconclusive, keep."""

import pytest

from analysis.decision import ChallengerOutcome, decide
from analysis.errors import AnalysisError

REACHED = {"control": True, "green": True, "red": True}
SHORT = {"control": True, "green": False, "red": True}


def outcome(variant, effect, significant):
    return ChallengerOutcome(variant, effect, significant)


def not_computed(variant):
    return ChallengerOutcome(variant, None, False, "every unit in both arms has the value 0")


def test_a_failed_check_makes_the_decision_invalid_even_with_a_significant_winner():
    decision = decide(
        direction="increase",
        failed_checks=["the assigned units do not match the planned weights"],
        challengers=[outcome("green", 0.02, True)],
        sample_size_reached=REACHED,
    )
    assert (decision.outcome, decision.variant) == ("invalid", None)
    assert "do not match the planned weights" in decision.reason


def test_the_significant_challenger_with_the_largest_increase_is_promoted():
    decision = decide(
        direction="increase",
        failed_checks=[],
        challengers=[outcome("green", 0.01, True), outcome("red", 0.03, True), outcome("blue", 0.05, False)],
        sample_size_reached=SHORT,
    )
    assert (decision.outcome, decision.variant) == ("promote", "red")
    assert decision.reason.startswith("Promote red")


def test_for_a_decrease_the_most_negative_significant_effect_is_promoted():
    decision = decide(
        direction="decrease",
        failed_checks=[],
        challengers=[outcome("green", -0.2, True), outcome("red", -0.5, True), outcome("blue", 0.9, True)],
        sample_size_reached=REACHED,
    )
    assert (decision.outcome, decision.variant) == ("promote", "red")


def test_a_challenger_significant_in_the_wrong_direction_is_never_promoted():
    decision = decide(
        direction="increase",
        failed_checks=[],
        challengers=[outcome("green", -0.03, True)],
        sample_size_reached=REACHED,
    )
    assert (decision.outcome, decision.variant) == ("keep", None)
    assert "green is significantly worse" in decision.reason


def test_without_a_winner_a_variant_below_its_planned_sample_size_makes_it_inconclusive():
    decision = decide(
        direction="increase",
        failed_checks=[],
        challengers=[outcome("green", 0.01, False), outcome("red", -0.01, False)],
        sample_size_reached=SHORT,
    )
    assert (decision.outcome, decision.variant) == ("inconclusive", None)
    assert "green is below the planned sample size" in decision.reason


def test_without_a_winner_and_with_every_planned_sample_the_control_is_kept():
    decision = decide(
        direction="increase",
        failed_checks=[],
        challengers=[outcome("green", 0.01, False)],
        sample_size_reached=REACHED,
    )
    assert (decision.outcome, decision.variant) == ("keep", None)
    assert decision.reason.startswith("Keep the control")


def test_a_comparison_that_could_not_be_computed_blocks_promotion_and_is_inconclusive_while_short():
    decision = decide(
        direction="increase",
        failed_checks=[],
        challengers=[not_computed("green"), outcome("red", 0.05, True)],
        sample_size_reached=SHORT,
    )
    assert (decision.outcome, decision.variant) == ("inconclusive", None)
    assert "green: every unit in both arms has the value 0" in decision.reason


def test_a_comparison_that_could_not_be_computed_with_every_planned_sample_is_invalid():
    decision = decide(
        direction="increase",
        failed_checks=[],
        challengers=[not_computed("green")],
        sample_size_reached=REACHED,
    )
    assert (decision.outcome, decision.variant) == ("invalid", None)


def test_every_reason_is_one_sentence():
    cases = [
        dict(failed_checks=["a check failed"], challengers=[outcome("green", 0.1, True)], sample_size_reached=REACHED),
        dict(failed_checks=[], challengers=[outcome("green", 0.1, True)], sample_size_reached=REACHED),
        dict(failed_checks=[], challengers=[outcome("green", 0.1, False)], sample_size_reached=SHORT),
        dict(failed_checks=[], challengers=[outcome("green", 0.1, False)], sample_size_reached=REACHED),
        dict(failed_checks=[], challengers=[not_computed("green")], sample_size_reached=REACHED),
    ]
    for case in cases:
        reason = decide(direction="increase", **case).reason
        assert reason[0].isupper() and reason.endswith(".") and ". " not in reason[:-1]


def test_decide_refuses_an_unknown_direction_and_inconsistent_outcomes():
    with pytest.raises(AnalysisError):
        decide(direction="up", failed_checks=[], challengers=[], sample_size_reached=REACHED)
    with pytest.raises(AnalysisError):
        ChallengerOutcome("green", None, True, "no data")
    with pytest.raises(AnalysisError):
        ChallengerOutcome("green", 0.1, False, "no data")
