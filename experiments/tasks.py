"""Celery tasks: thin, idempotent wrappers over the analysis services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from experiments.services.analysis import analysis_run, experiments_queue_due_analyses
from experiments.services.looks import experiments_queue_due_looks, look_run

TRANSIENT_ERRORS = (OperationalError, InterfaceError, BrokerError)


@shared_task(
    name="experiments.analyze_experiment",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=8,
)
def analyze_experiment(experiment_id: int) -> str:
    """Run one experiment's analysis; a second run finds the stored result and returns its outcome."""
    return analysis_run(experiment_id=experiment_id).outcome


@shared_task(
    name="experiments.queue_due_analyses",
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=50,
    time_limit=55,
)
def queue_due_analyses() -> list[int]:
    """Beat job: queue the analysis of every experiment whose lock has lifted."""
    return experiments_queue_due_analyses()


@shared_task(
    name="experiments.run_interim_look",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=8,
)
def run_interim_look(experiment_id: int, index: int) -> str | None:
    """Take one planned interim look; a second run finds the stored look and returns its outcome."""
    look = look_run(experiment_id=experiment_id, index=index)
    return look.outcome if look else None


@shared_task(
    name="experiments.queue_due_looks",
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=50,
    time_limit=55,
)
def queue_due_looks() -> list[list[int]]:
    """Beat job: queue every running experiment's interim look whose time has come."""
    return [list(pair) for pair in experiments_queue_due_looks()]


@shared_task(
    name="experiments.resolve_covariate_arms",
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=50,
    time_limit=55,
)
def resolve_covariate_arms() -> int:
    """Beat job: give their arm to the covariates of the units assigned since the last run (CUPED)."""
    from experiments.services.covariates import covariate_arms_resolve_running

    return covariate_arms_resolve_running()
