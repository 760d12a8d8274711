"""The preregistered analysis: queued when the lock lifts, run once, stored immutably."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analysis.pipeline import analyze
from analysis.types import AnalysisPlan, VariantPlan
from experiments import db
from experiments.errors import WrongState
from experiments.lock import UNLOCKS_AT, ensure_unlocked, lifted
from experiments.models import AnalysisResult, Experiment, Status
from experiments.services.audit import audit_record
from experiments.services.promotion import experiment_promote
from experiments.unit_outcomes.read import analysis_data

logger = logging.getLogger(__name__)


def _queue(experiment_ids: list[int]) -> None:
    from experiments.tasks import analyze_experiment

    for experiment_id in experiment_ids:
        # Only once the status change is committed, or the worker could find it still running.
        transaction.on_commit(lambda pk=experiment_id: analyze_experiment.delay(pk))


@transaction.atomic
def experiment_request_analysis(*, experiment: Experiment, actor) -> Experiment:
    """Queue the analysis by hand once the lock has lifted (423 before, 409 in a wrong state)."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status not in (Status.RUNNING, Status.ANALYZING):
        raise WrongState(f"Experiment {experiment.key!r} is {experiment.status}: there is nothing to analyse.",
                         status=experiment.status)
    now = timezone.now()
    ensure_unlocked(experiment, now)
    experiment.status = Status.ANALYZING
    experiment.analysis_queued_at = now
    experiment.save(update_fields=["status", "analysis_queued_at", "updated_at"])
    audit_record(experiment=experiment, action="analysis_queued", actor=actor)
    _queue([experiment.pk])
    return experiment


@transaction.atomic
def experiments_queue_due_analyses(*, now: datetime | None = None) -> list[int]:
    """Move every running experiment whose lock has lifted to analyzing and queue its analysis.

    Also re-queues analyses queued longer ago than the task's hard time limit without a
    result (a lost message, a worker that died): the task is idempotent, so this is safe.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    due = list(
        Experiment.objects.select_for_update(skip_locked=True, of=("self",))
        .annotate(lock_lifts_at=UNLOCKS_AT)
        .filter(
            Q(status=Status.RUNNING) & lifted(now)
            | Q(status=Status.ANALYZING, analysis_queued_at__lt=stale_before, result__isnull=True)
        )
    )
    for experiment in due:
        action = "analysis_queued" if experiment.status == Status.RUNNING else "analysis_requeued"
        experiment.status = Status.ANALYZING
        experiment.analysis_queued_at = now
        experiment.save(update_fields=["status", "analysis_queued_at", "updated_at"])
        audit_record(experiment=experiment, action=action, actor=None)
    _queue([experiment.pk for experiment in due])
    return [experiment.pk for experiment in due]


def analysis_plan(experiment: Experiment) -> AnalysisPlan:
    """The frozen protocol as the pure analysis takes it."""
    protocol = experiment.protocol
    sizes = protocol["sample_size_per_variant"]
    return AnalysisPlan(
        design=protocol["design"],
        metric_type=protocol["metric"]["type"],
        direction=protocol["metric"]["direction"],
        alternative=protocol["alternative"],
        alpha=protocol["alpha"],
        variants=tuple(
            VariantPlan(key=v["key"], weight=v["weight"], is_control=v["is_control"],
                        planned_sample_size=sizes[v["key"]])
            for v in protocol["variants"]
        ),
    )


@transaction.atomic
def analysis_run(*, experiment_id: int) -> AnalysisResult:
    """Run the preregistered analysis once and store its result; a second run returns the first.

    The row lock on the experiment serialises concurrent runs (a redelivered task next to a
    slow one), and the one-to-one result makes "exactly one result" a database fact.
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
    existing = AnalysisResult.objects.filter(experiment_id=experiment_id).first()
    if existing is not None:
        return existing
    if experiment.status != Status.ANALYZING:
        raise WrongState(f"Experiment {experiment.key!r} is {experiment.status}, not analyzing.",
                         status=experiment.status)
    analyzed_at = timezone.now()
    ensure_unlocked(experiment, analyzed_at)
    db.tune_analysis_session()
    result = analyze(analysis_plan(experiment), analysis_data(experiment))
    document = {
        "experiment": experiment.key,
        "protocol_hash": experiment.protocol_hash,
        "analyzed_at": analyzed_at.isoformat(),
        **result.to_dict(),
        "observations": experiment.observation_count,
    }
    stored = AnalysisResult.objects.create(
        experiment=experiment, protocol_hash=experiment.protocol_hash, analyzed_at=analyzed_at,
        outcome=result.decision.outcome, winner=result.decision.variant or "", document=document,
    )
    experiment.status = Status.ANALYZED
    experiment.save(update_fields=["status", "updated_at"])
    audit_record(experiment=experiment, action="analyzed", actor=None,
                 details={"outcome": result.decision.outcome, "variant": result.decision.variant})
    logger.info("analysed %s: %s", experiment.key, result.decision.outcome)
    if experiment.auto_promote and result.decision.outcome != "invalid":
        experiment_promote(experiment=experiment, actor=None)
    return stored
