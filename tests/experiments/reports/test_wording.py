"""The decision in plain language: units, direction, interval level, one-sided ends, honest non-results."""

import re

import pytest

from experiments.reports.wording import decision_sentence, p_value_text, promote_sentence

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
