"""With guardrails, a challenger is promoted only if it wins on the primary and is non-inferior on every guardrail."""

import pytest

from analysis.decision import ChallengerOutcome, GuardrailOutcome, decide
from analysis.errors import AnalysisError

REACHED = {"control": True, "green": True, "red": True}
SHORT = {"control": True, "green": False, "red": True}
LATENCY_HARM = GuardrailOutcome("latency_ms", False, 7.0, 9.1, 5.0, "decrease")
LATENCY_OK = GuardrailOutcome("latency_ms", True, 1.0, 3.2, 5.0, "decrease")
CONVERSION_OK = GuardrailOutcome("conversion", True, 0.001, -0.004, 0.01, "increase")
NOT_COMPUTED = GuardrailOutcome("latency_ms", False, None, None, 5.0, "decrease",
                                "every unit in each arm has the same value, so the t statistic is undefined")


def winner(variant="green", effect=0.011):
    return ChallengerOutcome(variant, effect, True)


def test_a_winner_within_every_guardrail_is_promoted_with_the_usual_reason():
    with_guardrails = decide(direction="increase", failed_checks=[], challengers=[winner()],
                             sample_size_reached=REACHED, guardrails={"green": [LATENCY_OK, CONVERSION_OK]})
    without = decide(direction="increase", failed_checks=[], challengers=[winner()], sample_size_reached=REACHED)
    assert (with_guardrails.outcome, with_guardrails.variant) == ("promote", "green")
    assert with_guardrails == without


def test_a_winner_that_breaks_a_guardrail_is_held_back_and_the_reason_names_the_guardrail():
    decision = decide(direction="increase", failed_checks=[], challengers=[winner()], sample_size_reached=REACHED,
                      guardrails={"green": [CONVERSION_OK, LATENCY_HARM]})
    assert (decision.outcome, decision.variant) == ("keep", None)
    assert decision.reason == (
        "green is significantly better on the primary metric (effect +0.011), but latency_ms was not shown to "
        "stay within +5 (estimate +7.0, bound +9.1). Keep the control because no challenger that stays within "
        "its guardrails is significantly better than the control with every variant at its planned sample size."
    )


def test_a_guardrail_that_could_not_be_computed_holds_the_winner_back():
    decision = decide(direction="increase", failed_checks=[], challengers=[winner()], sample_size_reached=REACHED,
                      guardrails={"green": [NOT_COMPUTED]})
    assert (decision.outcome, decision.variant) == ("keep", None)
    assert "but latency_ms could not be computed (every unit in each arm has the same value" in decision.reason


def test_the_better_challenger_held_back_by_a_guardrail_lets_the_other_winner_be_promoted():
    decision = decide(
        direction="increase", failed_checks=[], challengers=[winner("green", 0.05), winner("red", 0.02)],
        sample_size_reached=REACHED, guardrails={"green": [LATENCY_HARM], "red": [LATENCY_OK]},
    )
    assert (decision.outcome, decision.variant) == ("promote", "red")
    assert decision.reason == (
        "green is significantly better on the primary metric (effect +0.05), but latency_ms was not shown to stay "
        "within +5 (estimate +7.0, bound +9.1). Promote red: it is significantly better than the control with an "
        "effect of +0.02, the largest in the preferred direction (increase) of the challengers within their "
        "guardrails."
    )


def test_a_held_back_winner_with_a_variant_below_its_planned_sample_is_inconclusive():
    decision = decide(direction="decrease", failed_checks=[], challengers=[winner("green", -2.0)],
                      sample_size_reached=SHORT,
                      guardrails={"green": [LATENCY_HARM, GuardrailOutcome("conversion", False, -0.02, -0.03, 0.01,
                                                                           "increase")]})
    assert (decision.outcome, decision.variant) == ("inconclusive", None)
    assert decision.reason.startswith(
        "green is significantly better on the primary metric (effect -2.0), but latency_ms was not shown to stay "
        "within +5 (estimate +7.0, bound +9.1) and conversion was not shown to stay within -0.01 "
        "(estimate -0.02, bound -0.03). The result is inconclusive because no challenger that stays within its "
        "guardrails is significantly better than the control and green is below the planned sample size."
    )


def test_guardrails_do_not_override_a_failed_check_or_a_primary_that_could_not_be_computed():
    failed = decide(direction="increase", failed_checks=["a check failed"], challengers=[winner()],
                    sample_size_reached=REACHED, guardrails={"green": [LATENCY_HARM]})
    assert failed.outcome == "invalid" and "latency_ms" not in failed.reason
    broken = ChallengerOutcome("red", None, False, "no data")
    blocked = decide(direction="increase", failed_checks=[], challengers=[winner(), broken],
                     sample_size_reached=SHORT, guardrails={"green": [LATENCY_OK]})
    assert blocked.outcome == "inconclusive" and "red: no data" in blocked.reason


def test_a_losing_challengers_broken_guardrail_is_not_mentioned():
    decision = decide(direction="increase", failed_checks=[], challengers=[ChallengerOutcome("green", 0.01, False)],
                      sample_size_reached=REACHED, guardrails={"green": [LATENCY_HARM]})
    assert decision.reason == (
        "Keep the control because no challenger is significantly better than the control with every variant at "
        "its planned sample size."
    )


@pytest.mark.parametrize(
    "fields",
    [
        dict(effect=None), dict(bound=None), dict(non_inferior=True, effect=None, bound=None, reason="no data"),
        dict(reason="no data"), dict(margin=0.0), dict(direction="up"),
    ],
    ids=["no effect", "no bound", "non-inferior without numbers", "numbers and a reason", "margin", "direction"],
)
def test_a_guardrail_outcome_is_either_computed_or_has_a_reason(fields):
    values = dict(metric="latency_ms", non_inferior=False, effect=7.0, bound=9.1, margin=5.0, direction="decrease",
                  reason=None) | fields
    reason = values.pop("reason")
    with pytest.raises(AnalysisError):
        GuardrailOutcome(**values, not_computable_reason=reason)
