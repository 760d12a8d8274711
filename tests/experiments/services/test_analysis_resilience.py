"""The analysis never stays stuck: not on data it cannot compute, not on a broker that does not answer."""

import psycopg
import pytest
from django.utils import timezone

from experiments.models import AnalysisResult, Experiment
from experiments.services.analysis import experiment_request_analysis, experiments_queue_due_analyses
from tests.conftest import bearer_client, token_for
from tests.experiments.builders import analysed, assigned_units, ingest, start
from tests.experiments.tasks.test_worker import _database_url, _ended_experiment
from tests.factories import UserFactory

DEAD_BROKER = "redis://127.0.0.1:9/0"


@pytest.mark.django_db
def test_values_whose_squares_overflow_end_the_analysis_as_invalid_with_the_reason(client, viewer):
    experiment = start(metric_type="continuous", baseline_mean=10.0, baseline_sd=5.0, mde=1.0)
    units = list(assigned_units(experiment, 40))
    # Past the ingestion's bounds (a row written before they existed): SUM(v * v) overflows in SQL.
    ingest(experiment, [(unit, 1e200 if index == 0 else 1.0) for index, unit in enumerate(units)])

    document = analysed(experiment)

    assert document["decision"]["outcome"] == "invalid"
    assert "could not be analysed" in document["decision"]["reason"]
    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"
    client.force_login(viewer)
    report = client.get(f"/reports/{experiment.key}/")
    assert report.status_code == 200 and "could not be analysed" in report.content.decode()
    assert client.get(f"/reports/{experiment.key}/result.csv").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_does_not_answer_leaves_the_analysis_recorded_for_the_sweep(settings):
    # A superuser, not a group member: transactional tests flush the groups the migrations made.
    client = bearer_client(token_for(UserFactory(is_superuser=True)))
    experiment = _ended_experiment()
    broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = DEAD_BROKER

    response = client.post(f"/api/v1/experiments/{experiment.key}/analyze/")

    assert response.status_code == 202, response.content
    assert "sweep will queue it" in response.json()["detail"]
    stored = Experiment.objects.get(pk=experiment.pk)
    assert (stored.status, stored.analysis_queued_at) == ("analyzing", None)
    # The broker is back: the next sweep queues it at once, without waiting for any timeout.
    settings.CELERY_BROKER_URL = broker
    assert experiments_queue_due_analyses() == [experiment.pk]
    assert Experiment.objects.get(pk=experiment.pk).analysis_queued_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_sweep_requeues_a_lost_analysis_but_never_one_that_a_worker_is_running(settings):
    settings.ANALYSIS_REQUEUE_SECONDS = 120
    experiment = _ended_experiment()
    experiment_request_analysis(experiment=experiment, actor=None)
    later = timezone.now() + timezone.timedelta(seconds=121)
    assert experiments_queue_due_analyses() == []  # handed to the broker just now: not lost yet

    running = psycopg.connect(_database_url(), autocommit=False)  # a worker inside analysis_run holds the row lock
    try:
        running.execute("SELECT id FROM experiments_experiment WHERE id = %s FOR UPDATE", [experiment.pk])
        assert experiments_queue_due_analyses(now=later) == []
    finally:
        running.close()  # a killed worker's connection closes, and its lock goes with it

    assert experiments_queue_due_analyses(now=later) == [experiment.pk]
    assert not AnalysisResult.objects.exists()
