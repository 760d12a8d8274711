"""The decision in plain language: units, direction, interval level, one-sided ends, honest non-results."""

import re

import pytest

from experiments.reports.wording import decision_sentence, guardrail_verdict, p_value_text, promote_sentence

EFFECT = re.compile(r"\b(raised|lowered)\b")


def comparison(variant="green", effect=0.0101, low=0.0021, high=0.0181, p=0.0123):
    return {"variant": variant, "vs": "control", "effect": effect, "ci_low": low, "ci_high": high,
            "p_value": p, "adjusted_p_value": p, "significant": p < 0.05}


def document(outcome, comparisons, *, variant=None, reason="Because.", reached=None):
    return {"comparisons": comparisons, "decision": {"outcome": outcome, "variant": variant, "reason": reason},
            "checks": {"sample_size_reached": reached or {"control": True, "green": True}}}


def sentence(outcome, comparisons, *, metric_type="binary", design="ab", **kwargs):
    return decision_sentence(design=design, metric_name="checkout_conversion", metric_type=metric_type,
                             document=document(outcome, comparisons, **kwargs), control="control", alpha=0.05,
                             mde=0.01, level=1 - 0.05 / len(comparisons))


def test_a_binary_promotion_reads_in_percentage_points_at_the_preregistered_level():
    assert sentence("promote", [comparison()], variant="green") == (
        "The green variant raised checkout conversion by 1.0 points (95% interval 0.2 to 1.8), p = 0.012: "
        "promote green.")


def test_a_continuous_promotion_reads_in_the_metrics_units_and_a_negative_effect_lowered_it():
    text = sentence("promote", [comparison(effect=-2.5, low=-4.1, high=-0.9, p=0.002)], variant="green",
                    metric_type="continuous")

    assert text == ("The green variant lowered checkout conversion by 2.5 (95% interval 0.9 to 4.1), p = 0.002: "
                    "promote green.")


def test_two_challengers_use_the_split_interval_level_and_the_holm_adjusted_p():
    winner = comparison(variant="c", effect=0.02, low=0.005, high=0.035, p=0.004)

    text = sentence("promote", [comparison(variant="b", p=0.3), winner], variant="c")

    assert "(97.5% interval 0.5 to 3.5)" in text and "Holm-adjusted p = 0.004" in text


def test_a_one_sided_interval_says_at_least():
    text = promote_sentence(design="champion_challenger", metric_name="log_loss", metric_type="continuous",
                            comparison=comparison(variant="v7", effect=-0.12, low=None, high=-0.05, p=0.0002),
                            level=0.95, challengers=1)

    assert text == ("The v7 model lowered log loss by 0.12 (95% one-sided interval: at least 0.05), p < 0.001: "
                    "promote v7.")


def test_keep_claims_no_effect():
    text = sentence("keep", [comparison(p=0.4, low=-0.01)])

    assert not EFFECT.search(text) and "keep control" in text and "no proof" in text


def test_inconclusive_names_the_variants_below_plan_and_claims_nothing():
    text = sentence("inconclusive", [comparison(p=0.4, low=-0.01)], reached={"control": False, "green": True})

    assert not EFFECT.search(text)
    assert text.startswith("Inconclusive (control stayed below the planned sample size)")
    assert "neither a win nor evidence of no effect" in text


def test_invalid_repeats_the_reason_and_promotes_nothing():
    text = sentence("invalid", [comparison()], reason="The analysis is invalid because of a sample ratio mismatch.")

    assert text.startswith("The analysis is invalid because of a sample ratio mismatch.")
    assert not EFFECT.search(text) and "nothing is promoted" in text


@pytest.mark.parametrize(("p", "text"), [(0.0123, "0.012"), (0.41, "0.41"), (1.0, "1"), (0.00099, "< 0.001"),
                                         (0.001, "0.001"), (None, "–")])
def test_p_values_have_two_significant_digits_and_no_exponent(p, text):
    assert p_value_text(p) == text


# Several metrics: a hand-made FIXTURE of the document's `metrics` (primary first), numbers invented.
def guardrail(key="latency_ms", *, direction="decrease", metric_type="continuous", margin=5.0, **comparison):
    values = {"variant": "green", "vs": "control", "effect": 7.0, "ci_low": None, "ci_high": 9.1, "bound": 9.1,
              "p_value": 0.93, "adjusted_p_value": 0.93, "non_inferior": False, "significant": False,
              "not_computable_reason": None, **comparison}
    return {"key": key, "role": "guardrail", "type": metric_type, "direction": direction, "margin": margin,
            "comparisons": [values]}


def with_metrics(outcome, comparisons, guardrails, **kwargs):
    doc = document(outcome, comparisons, **kwargs)
    doc["metrics"] = [{"key": "conversion", "role": "primary", "type": "binary", "direction": "increase",
                       "comparisons": comparisons}, *guardrails]
    return doc


NAMES = {"latency_ms": "Page latency", "refunds": "Refund rate", "lcp_ms": "LCP"}


def metric_sentence(doc, level=0.95):
    return decision_sentence(design="ab", metric_name="checkout_conversion", metric_type="binary", document=doc,
                             control="control", alpha=0.05, mde=0.01, level=level, metric_names=NAMES)


def test_a_guardrail_that_held_a_challenger_back_is_named_with_its_estimate_and_bound():
    doc = with_metrics("keep", [comparison(effect=0.011, low=0.0015, high=0.0205, p=0.02)], [guardrail()])

    assert metric_sentence(doc) == ("The green variant raised checkout conversion by 1.1 points, but page latency "
                                    "was not shown to stay within +5 ms (estimate +7.0 ms, bound +9.1 ms): keep "
                                    "control.")


def test_every_guardrail_that_failed_is_named_and_an_acronym_keeps_its_capitals():
    refunds = guardrail("refunds", metric_type="binary", margin=0.005, effect=0.006, ci_high=0.009, bound=0.009)
    lcp = guardrail("lcp_ms", margin=100.0, effect=150.0, ci_high=180.0, bound=180.0)
    doc = with_metrics("keep", [comparison(effect=0.011, low=0.0015, high=0.0205, p=0.02)], [refunds, lcp])

    assert metric_sentence(doc).endswith(
        "but refund rate was not shown to stay within +0.5 points (estimate +0.6 points, bound +0.9 points) and LCP "
        "was not shown to stay within +100 ms (estimate +150.0 ms, bound +180.0 ms): keep control.")


def test_a_promotion_keeps_its_part_1_sentence_and_adds_the_challenger_a_guardrail_held_back():
    winner = comparison(variant="blue", effect=0.011, low=0.0015, high=0.0205, p=0.02)
    held = comparison(variant="green", effect=0.02, low=0.01, high=0.03, p=0.001)
    doc = with_metrics("promote", [winner, held], [guardrail()], variant="blue")

    text = metric_sentence(doc, level=0.975)

    promoted = decision_sentence(design="ab", metric_name="checkout_conversion", metric_type="binary",
                                 document=document("promote", [winner, held], variant="blue"), control="control",
                                 alpha=0.05, mde=0.01, level=0.975)
    assert text == (f"{promoted} The green variant raised checkout conversion by 2.0 points, but page latency was "
                    "not shown to stay within +5 ms (estimate +7.0 ms, bound +9.1 ms).")


def test_an_inconclusive_result_held_back_by_a_guardrail_claims_no_harm():
    doc = with_metrics("inconclusive", [comparison(effect=0.011, low=0.0015, high=0.0205, p=0.02)], [guardrail()],
                       reached={"control": True, "green": False})

    text = metric_sentence(doc)

    assert text.startswith("Inconclusive (green stayed below the planned sample size): the green variant raised "
                           "checkout conversion by 1.1 points, but page latency was not shown to stay within +5 ms")
    assert text.endswith("Keep control for now; with too little data this is no evidence of harm either.")


def test_guardrails_that_held_and_a_primary_that_did_not_win_change_nothing_in_the_sentence():
    held = guardrail(effect=1.2, ci_high=3.4, bound=3.4, non_inferior=True, significant=True)
    not_significant = [comparison(p=0.4, low=-0.01)]

    assert metric_sentence(with_metrics("keep", not_significant, [guardrail()])) == sentence("keep", not_significant)
    winner = [comparison()]
    assert (metric_sentence(with_metrics("promote", winner, [held], variant="green"), level=0.95)
            == sentence("promote", winner, variant="green"))


@pytest.mark.parametrize(("metric", "verdict"), [
    (guardrail(effect=1.2, ci_high=3.4, bound=3.4, non_inferior=True),
     "held: green's page latency stayed within +5 ms (estimate +1.2 ms, bound +3.4 ms)"),
    (guardrail(),
     "not shown: green's page latency was not shown to stay within +5 ms (estimate +7.0 ms, bound +9.1 ms)"),
    # Increase is better: the harm is a fall, so the margin and the bound sit below zero.
    (guardrail("refunds", direction="increase", metric_type="binary", margin=0.005, effect=-0.001, ci_low=-0.003,
               ci_high=None, bound=-0.003, non_inferior=True),
     "held: green's refund rate stayed within -0.5 points (estimate -0.1 points, bound -0.3 points)"),
    (guardrail(effect=None, ci_high=None, bound=None, not_computable_reason="no unit has an observation"),
     "not computable: green's page latency could not be assessed (no unit has an observation)"),
])
def test_a_guardrail_verdict_is_held_not_shown_or_not_computable(metric, verdict):
    assert guardrail_verdict(metric, metric["comparisons"][0], name=NAMES[metric["key"]]) == verdict
