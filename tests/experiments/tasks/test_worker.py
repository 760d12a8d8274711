"""Real Celery workers on the real broker: ended experiments get analysed, and a killed worker loses nothing."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.celery_app import app as celery_app
from experiments.models import AnalysisResult, Experiment
from experiments.services.analysis import experiment_request_analysis
from experiments.services.assignment import assignments_for_units
from experiments.services.lifecycle import experiment_start
from experiments.tasks import analyze_experiment, queue_due_analyses, queue_due_looks, run_interim_look
from tests.factories import ExperimentFactory

PROJECT = Path(__file__).resolve().parents[3]


def test_task_names_are_pinned_and_the_sweep_is_scheduled():
    assert analyze_experiment.name == "experiments.analyze_experiment"
    assert queue_due_analyses.name == "experiments.queue_due_analyses"
    schedule = settings.CELERY_BEAT_SCHEDULE["queue-due-analyses"]
    assert schedule["task"] == "experiments.queue_due_analyses"
    assert analyze_experiment.acks_late and analyze_experiment.reject_on_worker_lost


def test_the_interim_look_tasks_are_pinned_and_their_sweep_is_scheduled():
    assert run_interim_look.name == "experiments.run_interim_look"
    assert queue_due_looks.name == "experiments.queue_due_looks"
    assert settings.CELERY_BEAT_SCHEDULE["queue-due-looks"]["task"] == "experiments.queue_due_looks"
    assert run_interim_look.acks_late and run_interim_look.reject_on_worker_lost


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(tmp_path: Path, *, beat: bool, extra_env: dict | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),  # the test database, where this test committed its data
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "VAR_DIR": str(tmp_path),
        "ANALYSIS_SWEEP_SECONDS": "1",
        "LOOK_SWEEP_SECONDS": "1",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
               f"--hostname=test-{os.getpid()}-{time.monotonic_ns()}@%h"] + (["--beat"] if beat else [])
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "w")
    return subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(worker: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _ended_experiment() -> Experiment:
    experiment = experiment_start(experiment=ExperimentFactory(), actor=None)
    assignments_for_units(experiment_key=experiment.key, units=[f"u{i}" for i in range(30)])
    now = timezone.now()
    Experiment.objects.filter(pk=experiment.pk).update(started_at=now - timedelta(days=15),
                                                       ends_at=now - timedelta(seconds=1))
    return Experiment.objects.get(pk=experiment.pk)


@pytest.fixture
def clean_queue():
    celery_app.control.purge()
    yield
    celery_app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_analyses_an_ended_experiment_without_any_manual_step(tmp_path, clean_queue):
    experiment = _ended_experiment()
    worker = _start_worker(tmp_path, beat=True)
    try:
        result = _wait_for(lambda: AnalysisResult.objects.filter(experiment=experiment).first(), 90,
                           "the beat sweep and the worker to analyse the experiment")
    finally:
        _stop(worker)

    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"
    assert result.document["experiment"] == experiment.key


def _someone_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_analysis_is_replaced_and_exactly_one_result_is_stored(tmp_path, clean_queue):
    experiment = _ended_experiment()
    experiment_request_analysis(experiment=experiment, actor=None)  # queues the task on commit
    # Another transaction holds the experiment's row lock, so the first worker is caught
    # inside the analysis (it has begun, and waits), where it is killed.
    blocker = psycopg.connect(_database_url(), autocommit=False)
    blocker.execute("SELECT id FROM experiments_experiment WHERE id = %s FOR UPDATE", [experiment.pk])
    short_redelivery = {"CELERY_VISIBILITY_TIMEOUT": "3", "CELERY_UNACKED_RESTORE_INTERVAL": "1",
                        "CELERY_UNACKED_RESTORE_THROTTLE": "1"}
    first = _start_worker(tmp_path, beat=False, extra_env=short_redelivery)
    second = None
    try:
        _wait_for(_someone_waits_on_a_lock, 60, "the first worker to start the analysis")
        _stop(first, signal.SIGKILL)
        blocker.rollback()
        assert not AnalysisResult.objects.exists()

        second = _start_worker(tmp_path, beat=False, extra_env=short_redelivery)
        _wait_for(lambda: AnalysisResult.objects.filter(experiment=experiment).exists(), 90,
                  "the redelivered task to finish on the second worker")
        time.sleep(1)  # a duplicate run, if any, would have stored a second result by now
    finally:
        blocker.close()
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)

    assert AnalysisResult.objects.filter(experiment=experiment).count() == 1
    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"


@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_analysis_resumes_through_the_sweep_long_before_the_broker_would_redeliver(
        tmp_path, clean_queue):
    # The broker's redelivery stays at its default (an hour): only the sweep can bring the analysis back.
    experiment = _ended_experiment()
    experiment_request_analysis(experiment=experiment, actor=None)
    blocker = psycopg.connect(_database_url(), autocommit=False)
    blocker.execute("SELECT id FROM experiments_experiment WHERE id = %s FOR UPDATE", [experiment.pk])
    first = _start_worker(tmp_path, beat=False)
    second = None
    try:
        _wait_for(_someone_waits_on_a_lock, 60, "the first worker to start the analysis")
        _stop(first, signal.SIGKILL)
        blocker.rollback()
        killed_at = time.monotonic()

        second = _start_worker(tmp_path, beat=True, extra_env={"ANALYSIS_REQUEUE_SECONDS": "2"})
        _wait_for(lambda: AnalysisResult.objects.filter(experiment=experiment).exists(), 120,
                  "the sweep to queue the lost analysis again and the second worker to run it")
        resumed_after = time.monotonic() - killed_at
        time.sleep(1)
    finally:
        blocker.close()
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)

    print(f"analysis resumed {resumed_after:.1f} s after the worker was killed")
    assert AnalysisResult.objects.filter(experiment=experiment).count() == 1
    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"


@pytest.mark.django_db(transaction=True)
def test_an_analysis_asked_for_while_the_broker_was_down_runs_once_it_is_back(tmp_path, clean_queue, settings):
    experiment = _ended_experiment()
    broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    experiment_request_analysis(experiment=experiment, actor=None)
    assert Experiment.objects.get(pk=experiment.pk).analysis_queued_at is None
    settings.CELERY_BROKER_URL = broker

    worker = _start_worker(tmp_path, beat=True)  # nobody acts: beat's sweep finds it
    try:
        _wait_for(lambda: AnalysisResult.objects.filter(experiment=experiment).exists(), 90,
                  "the sweep to queue the analysis once the broker answers")
    finally:
        _stop(worker)
    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_a_due_interim_look_and_a_crossing_ends_the_test(tmp_path, clean_queue):
    from tests.experiments.builders import assigned_units
    from tests.experiments.services.test_looks import looks_experiment, observe, reach_look

    experiment = looks_experiment()
    observe(experiment, assigned_units(experiment, 400), shift=2.0, seed=41)
    reach_look(experiment, 1)
    worker = _start_worker(tmp_path, beat=True)
    try:
        result = _wait_for(lambda: AnalysisResult.objects.filter(experiment=experiment).first(), 90,
                           "beat to queue the interim look and the worker to take it")
    finally:
        _stop(worker)

    experiment.refresh_from_db()
    assert experiment.status == "analyzed" and experiment.ended_early_at is not None
    assert result.document["look"]["index"] == 1 and result.document["decision"]["outcome"] == "promote"
    assert experiment.interim_looks.get().outcome == "ended"
