"""Nothing measured leaks before the lock lifts; a stopped experiment makes no claim; a draft has no report."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import AnalysisResult, Experiment
from experiments.services.lifecycle import experiment_stop
from tests.experiments.builders import assigned_units, ingest, start
from tests.experiments.reports.helpers import AB_VARIANTS, analysed_ab, read_figures
from tests.factories import ExperimentFactory

# Words that only a result shows; the locked page must contain none of them.
OUTCOME_WORDS = ("p-value", "p =", "interval of the mean", "Effect", "Relative", "Significant", "Decision:",
                 "promote green", "data-value", "data-chart", "<svg", "Latency", "Units per variant", "result.json",
                 "result.csv", "outcome:")


def page(client, user, key: str):
    client.force_login(user)
    return client.get(f"/reports/{key}/")


def assert_nothing_measured(html: str, *numbers: str) -> None:
    for word in OUTCOME_WORDS:
        assert word not in html, f"{word!r} is on a locked page"
    for figure in numbers:
        assert figure not in html, f"the result's figure {figure} is on a locked page"
    assert read_figures(html).svgs == 0


def assert_download_locked(client, key: str, unlocks_at) -> None:
    for suffix in ("result.json", "result.csv"):
        response = client.get(f"/reports/{key}/{suffix}")
        assert response.status_code == 423
        assert response["Content-Type"] == "application/json"
        body = json.loads(response.content)
        assert body["detail"] and body["unlocks_at"] == unlocks_at.isoformat()


@pytest.mark.django_db
def test_a_running_experiments_report_shows_the_protocol_and_when_it_unlocks_and_nothing_measured(client, viewer):
    experiment = start(variants=AB_VARIANTS, hypothesis="A green button raises checkout conversion.")
    units = assigned_units(experiment, 200)
    # Every green unit converts, no control unit does: a mean of 1.0 against 0.0 if it leaked.
    ingest(experiment, [(unit, 1 if variant == "green" else 0) for unit, variant in units.items()])
    experiment = Experiment.objects.get(pk=experiment.pk)

    response = page(client, viewer, experiment.key)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Locked until" in html and experiment.unlocks_at.strftime("%Y-%m-%d %H:%M") in html
    assert experiment.protocol_hash in html and "A green button raises checkout conversion." in html
    assert_nothing_measured(html, "100.0%", "100.00", ">200<", ">1.0<")
    assert_download_locked(client, experiment.key, experiment.unlocks_at)


@pytest.mark.django_db
def test_a_stored_result_stays_hidden_while_the_clock_says_locked(client, viewer):
    experiment = analysed_ab("promote")
    document = AnalysisResult.objects.get(experiment=experiment).document
    # The lock is a matter of time, not of whether a result exists: move the end back into the future.
    Experiment.objects.filter(pk=experiment.pk).update(ends_at=timezone.now() + timedelta(days=2))
    experiment = Experiment.objects.get(pk=experiment.pk)
    green = document["comparisons"][0]
    figures = [f"{green['effect'] * 100:.1f}", f"{green['ci_low'] * 100:.1f}", f"{green['p_value']:.2g}",
               repr(green["effect"]), repr(green["p_value"])]

    html = page(client, viewer, experiment.key).content.decode()

    assert "Locked until" in html
    assert_nothing_measured(html, *figures)
    audit = html[html.index('id="audit"'):]
    assert "analysed" in audit and "promote" not in audit, "the audit trail must not name the outcome"
    assert_download_locked(client, experiment.key, experiment.unlocks_at)


@pytest.mark.django_db
def test_after_the_lock_lifts_and_before_the_analysis_the_page_says_it_is_being_analysed(client, viewer):
    experiment = start()
    Experiment.objects.filter(pk=experiment.pk).update(
        started_at=timezone.now() - timedelta(days=15), ends_at=timezone.now() - timedelta(minutes=1),
        status="analyzing")

    html = page(client, viewer, experiment.key).content.decode()

    assert "Being analysed" in html
    assert_nothing_measured(html)
    assert client.get(f"/reports/{experiment.key}/result.json").status_code == 423


@pytest.mark.django_db
def test_a_stopped_experiment_says_it_was_stopped_early_and_why_and_claims_nothing(client, viewer):
    experiment = start(variants=AB_VARIANTS)
    units = assigned_units(experiment, 100)
    ingest(experiment, [(unit, 1 if variant == "green" else 0) for unit, variant in units.items()])
    stopped = experiment_stop(experiment=experiment, actor=viewer, reason="The green button broke checkout on Safari.")

    html = page(client, viewer, stopped.key).content.decode()

    assert "Stopped early" in html
    assert "The green button broke checkout on Safari." in html
    assert "no result" in html and "supports no conclusion" in html
    assert_nothing_measured(html, "100.0%")
    response = client.get(f"/reports/{stopped.key}/result.json")
    assert response.status_code == 409 and "stopped early" in response.json()["detail"]


@pytest.mark.django_db
def test_a_draft_has_no_report(client, viewer):
    draft = ExperimentFactory()

    assert page(client, viewer, draft.key).status_code == 404
    assert client.get(f"/reports/{draft.key}/result.json").status_code == 404
    assert client.get("/reports/no-such-experiment/").status_code == 404
