"""A report with several metrics: the primary's section, then each guardrail with its verdict, then the secondaries.

The experiment is started over REST from metrics_body(); its stored result is a FIXTURE of the
document's shape (tests/experiments/reports/multi_metric.py), not an analysis of data.
"""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import Experiment
from experiments.reports.chart_data import margin_line
from tests.experiments.metrics.definitions import metrics_body
from tests.experiments.reports.helpers import analysed_ab, read_figures
from tests.experiments.reports.multi_metric import (
    KEY,
    multi_metric_document,
    reported_multi_metric,
    started_multi_metric,
    store_result,
)
from tests.experiments.reports.test_report_content import decision_sentence, report

KEPT = ("The green variant raised checkout conversion by 1.1 points, but page latency was not shown to stay "
        "within +5 ms (estimate +7.0 ms, bound +9.1 ms): keep control.")


def section(html: str, key: str) -> str:
    match = re.search(rf'<section [^>]*data-metric="{key}".*?</section>', html, re.DOTALL)
    assert match, f"no section for {key}"
    return match.group(0)


@pytest.mark.django_db
def test_the_primary_comes_first_then_the_guardrails_then_the_secondary_metric(client, viewer, experimenter_client):
    reported_multi_metric(experimenter_client)

    html = report(client, viewer, KEY)

    positions = [html.index(marker) for marker in ('id="result"', 'data-metric="latency_ms"',
                                                   'data-metric="refunds"', 'data-metric="revenue"', 'id="checks"')]
    assert positions == sorted(positions)
    assert "Guardrail: Page latency</h2>" in html and "Secondary metric: Revenue per user</h2>" in html
    assert "Primary metric: <strong>Checkout conversion</strong>. It alone decides" in html
    # No units chart: the fixture stored a result but wrote no assignment rows for it to count.
    assert read_figures(html).charts == ["effects", "means", "effects-latency_ms", "effects-refunds",
                                         "effects-revenue"]


@pytest.mark.django_db
def test_each_guardrail_shows_its_margin_and_a_plain_verdict_per_challenger(client, viewer, experimenter_client):
    reported_multi_metric(experimenter_client)

    html = report(client, viewer, KEY)

    latency, refunds = section(html, "latency_ms"), section(html, "refunds")
    assert "Must not get worse by more than <strong>+5 ms</strong> (decrease is better)" in latency
    assert ("Not shown: green&#x27;s page latency was not shown to stay within +5 ms "
            "(estimate +7.0 ms, bound +9.1 ms).") in latency
    assert "Must not get worse by more than <strong>+0.5 points</strong>" in refunds
    assert ("Held: green&#x27;s refund rate stayed within +0.5 points (estimate +0.1 points, bound +0.3 points)."
            in refunds)
    figures = read_figures(html).metric_figures
    assert figures[("latency_ms", "green", "non_inferior")]["data-value"] == "false"
    assert figures[("refunds", "green", "non_inferior")]["data-value"] == "true"
    # Only the harmful side's bound is set: the interval is open below.
    assert figures[("latency_ms", "green", "interval")]["data-low"] == ""
    assert float(figures[("latency_ms", "green", "interval")]["data-high"]) == 9.1
    assert int(figures[("latency_ms", "control", "units_without_observations")]["data-value"]) == 120


@pytest.mark.django_db
def test_a_guardrail_that_held_says_held_and_the_promotion_reads_as_in_part_1(client, viewer, experimenter_client):
    reported_multi_metric(experimenter_client, latency_held=True)

    html = report(client, viewer, KEY)

    assert "Held: green&#x27;s page latency stayed within +5 ms (estimate +1.2 ms, bound +3.4 ms)." in html
    sentence = decision_sentence(html)
    assert sentence.startswith("The green variant raised Checkout conversion by 1.1 points (95% interval ")
    assert sentence.endswith(": promote green.") and "but" not in sentence


@pytest.mark.django_db
def test_the_decision_sentence_names_the_guardrail_that_held_the_challenger_back(client, viewer,
                                                                                 experimenter_client):
    reported_multi_metric(experimenter_client)

    assert decision_sentence(report(client, viewer, KEY)) == KEPT


@pytest.mark.django_db
def test_secondary_metrics_show_effect_interval_and_holm_p_and_say_they_do_not_decide(client, viewer,
                                                                                    experimenter_client):
    _, document = reported_multi_metric(experimenter_client)
    revenue = document["metrics"][1]["comparisons"][0]

    html = report(client, viewer, KEY)

    text = section(html, "revenue")
    assert "a secondary metric does not decide" in text and "Holm-adjusted over every secondary metric" in text
    figures = read_figures(html).metric_figures
    for field in ("effect", "relative_effect", "p_value", "adjusted_p_value"):
        assert float(figures[("revenue", "green", field)]["data-value"]) == revenue[field], field
    assert float(figures[("revenue", "green", "interval")]["data-low"]) == revenue["ci_low"]
    assert float(figures[("revenue", "green", "interval")]["data-high"]) == revenue["ci_high"]
    # The primary's table still holds the top-level comparison, in percentage points.
    assert float(figures[(None, "green", "effect")]["data-value"]) == document["comparisons"][0]["effect"]


@pytest.mark.django_db
def test_each_metrics_effect_chart_draws_the_mde_or_the_margin_on_the_harmful_side(client, viewer,
                                                                                   experimenter_client):
    _, document = reported_multi_metric(experimenter_client)
    metrics = {m["key"]: m for m in document["metrics"]}

    html = report(client, viewer, KEY)

    # Decrease is better for both guardrails: harm is an increase, so the margin is drawn at +margin.
    assert margin_line(metrics["latency_ms"], 1.0) == 5.0
    assert margin_line(metrics["refunds"], 100.0) == pytest.approx(0.5)
    assert margin_line({**metrics["refunds"], "direction": "increase"}, 100.0) == pytest.approx(-0.5)
    assert margin_line(metrics["revenue"], 1.0) is None
    charts = dict(re.findall(r'data-chart="([\w-]+)">(<svg\b.*?</svg>)', html, re.DOTALL))
    assert "<!-- minimum detectable effect -->" in charts["effects"]
    for key in ("effects-latency_ms", "effects-refunds"):
        assert "<!-- non-inferiority margin -->" in charts[key]
        assert "minimum detectable effect" not in charts[key]
    assert "margin" not in charts["effects-revenue"] and "minimum detectable" not in charts["effects-revenue"]
    assert "<!-- effect vs control (ms), 95% interval -->" in charts["effects-latency_ms"]
    # The hashed ids (clip paths, markers) differ between the charts: each metric's chart has its own salt.
    hashed = [set(re.findall(r'id="([pm][0-9a-f]{10})"', svg)) for svg in charts.values()]
    assert all(ids for ids in hashed) and len(set().union(*hashed)) == sum(map(len, hashed)), "two charts share an id"


@pytest.mark.django_db
def test_the_csv_has_one_row_per_metric_and_challenger_with_metric_and_role(client, viewer, experimenter_client):
    _, document = reported_multi_metric(experimenter_client)
    client.force_login(viewer)

    response = client.get(f"/reports/{KEY}/result.csv")

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(row["metric"], row["role"], row["variant"]) for row in rows] == [
        ("conversion", "primary", "green"), ("revenue", "secondary", "green"),
        ("latency_ms", "guardrail", "green"), ("refunds", "guardrail", "green")]
    for row, metric in zip(rows, document["metrics"], strict=True):
        comparison, means = metric["comparisons"][0], {v["key"]: v["mean"] for v in metric["variants"]}
        assert float(row["variant_mean"]) == means["green"] and float(row["vs_mean"]) == means["control"]
        assert float(row["effect"]) == comparison["effect"] and float(row["p_value"]) == comparison["p_value"]
        assert row["decision"] == "keep" and row["decided_variant"] == ""
    latency = rows[2]
    assert (latency["ci_low"], float(latency["ci_high"]), float(latency["margin"])) == ("", 9.1, 5.0)
    assert (latency["non_inferior"], rows[3]["non_inferior"]) == ("false", "true")
    assert rows[0]["margin"] == "" and rows[0]["non_inferior"] == ""
    assert list(rows[0])[:18] == ["experiment", "protocol_hash", "variant", "vs", "variant_units", "variant_mean",
                                  "vs_units", "vs_mean", "effect", "relative_effect", "ci_low", "ci_high",
                                  "interval_level", "p_value", "adjusted_p_value", "significant", "decision",
                                  "decided_variant"]


@pytest.mark.django_db
def test_the_json_download_is_the_whole_stored_document_with_every_metric(client, viewer, experimenter_client):
    _, document = reported_multi_metric(experimenter_client)
    client.force_login(viewer)

    downloaded = json.loads(client.get(f"/reports/{KEY}/result.json").content)

    assert downloaded == document
    assert [m["key"] for m in downloaded["metrics"]] == ["conversion", "revenue", "latency_ms", "refunds"]


@pytest.mark.django_db
def test_the_protocol_lists_the_guardrails_and_secondary_metrics_even_while_locked(client, viewer,
                                                                                  experimenter_client):
    experimenter_client.post("/api/v1/experiments/", metrics_body(), format="json")
    experimenter_client.post(f"/api/v1/experiments/{KEY}/start/")

    html = report(client, viewer, KEY)

    assert "Locked until" in html
    assert ("<dt>Guardrail: Page latency</dt><dd>continuous, decrease is better, each unit&#x27;s mean; "
            "margin +5 ms;") in html
    assert "<dt>Secondary metric: Revenue per user</dt>" in html and "Planned sample set by" in html


@pytest.mark.django_db
def test_a_locked_multi_metric_report_shows_no_section_verdict_or_chart(client, viewer, experimenter_client):
    experiment = started_multi_metric(experimenter_client)
    # A result planted while the clock says locked, as a bug that analysed early would leave it.
    store_result(experiment, multi_metric_document(experiment, latency_held=False))
    Experiment.objects.filter(pk=experiment.pk).update(ends_at=timezone.now() + timedelta(days=2))

    html = report(client, viewer, KEY)

    assert "Locked until" in html
    for word in ("data-metric", "Held:", "Not shown", "estimate", "bound", "non_inferior", "<svg", "9.1", "7.0 ms",
                 "keep control", "Primary metric:"):
        assert word not in html, f"{word!r} is on a locked page"
    client.force_login(viewer)
    assert client.get(f"/reports/{KEY}/result.csv").status_code == 423


@pytest.mark.django_db
def test_a_part_1_document_renders_as_before(client, viewer):
    experiment = analysed_ab("promote")

    html = report(client, viewer, experiment.key)

    assert "data-metric" not in html and "Guardrail" not in html and "Primary metric:" not in html
    assert read_figures(html).charts == ["effects", "means", "units"]
    ids = re.findall(r'<h2 id="(\w+)"', html)
    assert ids == ["question", "decision", "protocol", "units", "result", "checks", "downloads", "audit"]
    client.force_login(viewer)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/reports/{experiment.key}/result.csv").content.decode())))
    assert [(row["metric"], row["role"], row["margin"], row["non_inferior"]) for row in rows] == [
        (experiment.metric_key, "primary", "", "")]
