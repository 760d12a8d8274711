"""The report of an analysed experiment: the decision in words, the stored numbers, charts, conclusion, latency."""

import re
from html import unescape

import numpy as np
import pytest

from experiments.models import AnalysisResult
from experiments.services.promotion import experiment_promote
from tests.experiments.reports.helpers import analysed_ab, analysed_champion_challenger, read_figures


def report(client, user, key: str) -> str:
    client.force_login(user)
    response = client.get(f"/reports/{key}/")
    assert response.status_code == 200
    return response.content.decode()


def decision_sentence(html: str) -> str:
    match = re.search(r'data-testid="decision-sentence">(.*?)</p>', html, re.DOTALL)
    assert match, "no decision sentence on the page"
    return unescape(match.group(1)).strip()


@pytest.mark.django_db
def test_an_analysed_ab_report_states_the_decision_with_the_stored_numbers(client, viewer):
    experiment = analysed_ab("promote")
    document = AnalysisResult.objects.get(experiment=experiment).document
    green = document["comparisons"][0]

    html = report(client, viewer, experiment.key)

    # Binary metric: percentage points, one decimal (the interval's half-width is several points).
    p = green["adjusted_p_value"]
    assert 0.001 <= p < 0.05, "the fixture should give a moderate p-value"
    assert decision_sentence(html) == (
        f"The green variant raised checkout conversion by {green['effect'] * 100:.1f} points "
        f"(95% interval {green['ci_low'] * 100:.1f} to {green['ci_high'] * 100:.1f}), p = {p:.2g}: promote green."
    )
    assert experiment.protocol_hash in html
    assert "A green button raises checkout conversion." in html


@pytest.mark.django_db
def test_the_result_table_holds_exactly_the_stored_document(client, viewer):
    experiment = analysed_ab("promote")
    document = AnalysisResult.objects.get(experiment=experiment).document

    figures = read_figures(report(client, viewer, experiment.key)).figures

    means = {v["key"]: v["mean"] for v in document["variants"]}
    for comparison in document["comparisons"]:
        row = comparison["variant"]
        for field in ("effect", "relative_effect", "p_value", "adjusted_p_value"):
            assert float(figures[(row, field)]["data-value"]) == comparison[field], field
        assert float(figures[(row, "interval")]["data-low"]) == comparison["ci_low"]
        assert float(figures[(row, "interval")]["data-high"]) == comparison["ci_high"]
        assert float(figures[(row, "variant_mean")]["data-value"]) == means[row]
        assert float(figures[(row, "vs_mean")]["data-value"]) == means[comparison["vs"]]
    for variant in document["variants"]:
        assert int(figures[(variant["key"], "units")]["data-value"]) == variant["units"]
        assert float(figures[(variant["key"], "mean")]["data-value"]) == variant["mean"]
        assert float(figures[(variant["key"], "sd")]["data-value"]) == variant["sd"]


@pytest.mark.django_db
def test_the_report_inlines_three_server_drawn_svg_charts_and_loads_nothing_from_elsewhere(client, viewer):
    experiment = analysed_ab("promote")

    html = report(client, viewer, experiment.key)

    page = read_figures(html)
    assert page.charts == ["effects", "means", "units"]
    assert page.svgs == 3
    assert "<script" not in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html), "a resource from another host"
    assert "@import" not in html and "@font-face" not in html
    assert '/static/reports/report.css' in html


@pytest.mark.django_db
def test_a_concluded_report_says_what_is_served_and_who_promoted_it(client, viewer, experimenter):
    experiment = analysed_ab("promote")
    experiment_promote(experiment=experiment, actor=experimenter)

    html = report(client, viewer, experiment.key)

    assert "Concluded on" in html
    assert f"by {experimenter.username}" in html
    assert "every unit is now served <strong>green</strong>" in html
    audit = html[html.index('id="audit"'):]
    assert "promoted (concluded)" in audit and experimenter.username in audit
    assert "outcome: promote; variant: green" in audit


@pytest.mark.django_db
def test_a_champion_challenger_report_shows_each_models_latency_from_sql(client, viewer):
    experiment, latencies = analysed_champion_challenger()

    html = report(client, viewer, experiment.key)

    figures = read_figures(html).figures
    for variant, values in latencies.items():
        assert float(figures[(variant, "latency_mean")]["data-value"]) == pytest.approx(np.mean(values), rel=1e-9)
        assert float(figures[(variant, "latency_p50")]["data-value"]) == pytest.approx(np.percentile(values, 50),
                                                                                     rel=1e-9)
        assert float(figures[(variant, "latency_p95")]["data-value"]) == pytest.approx(np.percentile(values, 95),
                                                                                     rel=1e-9)
    sentence = decision_sentence(html)
    assert sentence.startswith("The v7 model lowered log loss by ") and sentence.endswith(": promote v7.")
    assert read_figures(html).svgs == 3


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", ["keep", "inconclusive", "invalid"])
def test_keep_inconclusive_and_invalid_sentences_claim_no_effect(client, viewer, outcome):
    experiment = analysed_ab(outcome)

    sentence = decision_sentence(report(client, viewer, experiment.key))

    assert not re.search(r"\b(raised|lowered|increased|decreased|improved)\b", sentence)
    assert "promote green" not in sentence and "points (" not in sentence
    expected = {"keep": "keep control", "inconclusive": "Inconclusive", "invalid": "nothing is promoted"}[outcome]
    assert expected in sentence


@pytest.mark.django_db
def test_the_index_lists_analysed_concluded_and_stopped_experiments_only(client, viewer):
    from experiments.services.lifecycle import experiment_stop
    from tests.experiments.builders import start

    analysed_experiment = analysed_ab("promote")
    stopped = experiment_stop(experiment=start(), actor=None, reason="The checkout page broke on Safari.")
    running = start()

    client.force_login(viewer)
    html = client.get("/reports/").content.decode()

    assert f"/reports/{analysed_experiment.key}/" in html
    assert f"/reports/{stopped.key}/" in html and "stopped early" in html
    assert f"/reports/{running.key}/" not in html


@pytest.mark.django_db
def test_what_people_typed_is_escaped_and_only_the_charts_are_inlined_as_markup(client, viewer):
    experiment = analysed_ab("promote", hypothesis='<script>alert("x")</script> & more')

    html = report(client, viewer, experiment.key)

    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html


@pytest.mark.django_db
def test_a_report_with_three_charts_renders_in_well_under_two_seconds(client, viewer):
    import time

    experiment = analysed_ab("promote")
    client.force_login(viewer)
    client.get(f"/reports/{experiment.key}/")  # the first render imports matplotlib and loads its font

    started = time.perf_counter()
    assert client.get(f"/reports/{experiment.key}/").status_code == 200
    # About 0.25 s here; the margin is for a loaded CI machine, the bound for a regression
    # such as drawing from raw rows or re-importing matplotlib per request.
    assert time.perf_counter() - started < 2.0
