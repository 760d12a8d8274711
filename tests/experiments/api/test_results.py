"""The lock over REST: 423 until ends_at + grace, 202 while analysing, 200 with DESIGN.md's result."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import Experiment
from experiments.services.analysis import analysis_run
from experiments.services.assignment import assignments_for_units
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.experiments.api.test_observations import post as post_observations
from tests.factories import ExperimentFactory

OUTCOME_KEYS = {"mean", "sd", "effect", "relative_effect", "ci_low", "ci_high", "p_value", "adjusted_p_value",
                "comparisons", "decision", "significant"}


def keys_in(document) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for value in document.values() for k in keys_in(value)}
    if isinstance(document, list):
        return {k for item in document for k in keys_in(item)}
    return set()


def urls(key: str) -> tuple[str, str, str]:
    base = f"/api/v1/experiments/{key}/"
    return base, base + "analyze/", base + "results/"


@pytest.fixture
def running(db, service_client) -> Experiment:
    experiment = experiment_start(experiment=ExperimentFactory(key="checkout-button",
                                                               grace_period=timedelta(hours=2)), actor=None)
    units = [f"u{i}" for i in range(40)]
    assignments_for_units(experiment_key=experiment.key, units=units)
    post_observations(service_client, experiment, [{"unit": u, "value": i % 2} for i, u in enumerate(units)])
    return experiment


def lift_lock(experiment: Experiment, *, seconds_left: float = -1) -> None:
    """Move the test period into the past so that the lock lifts `seconds_left` from now."""
    unlocks_at = timezone.now() + timedelta(seconds=seconds_left)
    ends_at = unlocks_at - experiment.grace_period
    Experiment.objects.filter(pk=experiment.pk).update(started_at=ends_at - timedelta(days=14), ends_at=ends_at)


@pytest.mark.django_db
def test_results_are_locked_until_the_grace_period_ends(experimenter_client, viewer_client, running):
    detail, analyze, results = urls(running.key)
    lift_lock(running, seconds_left=30)  # the test period is over, the grace period is not

    locked = viewer_client.get(results)
    refused = experimenter_client.post(analyze)

    assert locked.status_code == 423 and refused.status_code == 423
    unlocks_at = Experiment.objects.get(pk=running.pk).unlocks_at
    assert locked.json()["unlocks_at"] == unlocks_at.isoformat()
    assert Experiment.objects.get(pk=running.pk).status == "running"


@pytest.mark.django_db
def test_nothing_in_the_api_shows_an_outcome_while_locked(viewer_client, running):
    detail, _, results = urls(running.key)

    documents = [viewer_client.get(detail).json(), viewer_client.get("/api/v1/experiments/").json(),
                 viewer_client.get(results).json()]

    for document in documents:
        assert not keys_in(document) & OUTCOME_KEYS, document
    assert viewer_client.get(detail).json()["progress"]["observations"] == 40


@pytest.mark.django_db
def test_after_the_lock_the_analysis_is_queued_then_served(experimenter_client, viewer_client, running,
                                                           django_capture_on_commit_callbacks):
    _, analyze, results = urls(running.key)
    lift_lock(running)

    with django_capture_on_commit_callbacks() as queued:
        accepted = experimenter_client.post(analyze)
    in_progress = viewer_client.get(results)
    analysis_run(experiment_id=running.pk)
    done = viewer_client.get(results)

    assert accepted.status_code == 202 and len(queued) == 1
    assert in_progress.status_code == 202
    assert done.status_code == 200
    body = done.json()
    assert {"experiment", "protocol_hash", "test", "analyzed_at", "variants", "comparisons", "checks",
            "decision"} <= set(body)
    assert body["experiment"] == running.key
    assert [v["key"] for v in body["variants"]] == ["control", "treatment"]
    assert set(body["comparisons"][0]) >= {"variant", "vs", "effect", "relative_effect", "ci_low", "ci_high",
                                           "p_value", "adjusted_p_value", "significant"}
    assert set(body["checks"]) >= {"sample_ratio_p_value", "sample_ratio_ok", "sample_size_reached",
                                   "incomplete_pairs"}
    assert set(body["decision"]) == {"outcome", "variant", "reason"}
    assert experimenter_client.post(analyze).status_code == 409


@pytest.mark.django_db
def test_drafts_and_stopped_experiments_have_no_result(experimenter_client, running):
    draft = ExperimentFactory()
    experiment_stop(experiment=running, actor=None, reason="Payment outage")

    assert experimenter_client.get(urls(draft.key)[2]).status_code == 409
    stopped = experimenter_client.get(urls(running.key)[2])
    assert stopped.status_code == 409 and "Payment outage" in stopped.json()["detail"]
    assert experimenter_client.post(urls(running.key)[1]).status_code == 409


@pytest.mark.django_db
def test_viewers_read_results_but_only_experimenters_queue_analyses(viewer_client, service_client, running):
    _, analyze, results = urls(running.key)
    lift_lock(running)

    assert viewer_client.post(analyze).status_code == 403
    assert service_client.post(analyze).status_code == 403
    assert service_client.get(results).status_code == 403
    assert viewer_client.get(results).status_code == 202
