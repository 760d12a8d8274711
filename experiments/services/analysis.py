"""The preregistered analysis: queued when the lock lifts, run once, stored immutably.

Queueing survives a broker outage and a dead worker without anyone acting. The status
change is committed first; handing the task to the broker comes after, and when the broker
does not answer the experiment keeps `analysis_queued_at` empty, which the beat sweep reads
as "queue me". A running analysis holds its experiment's row lock for its whole transaction:
that lock is the lease. The sweep skips locked rows and re-queues an analysis that is
neither running (its row is free) nor stored `ANALYSIS_REQUEUE_SECONDS` after it was queued,
so a worker killed mid-analysis (its connection, and so the lock, dies with it) is replaced
within a sweep or two instead of the broker's redelivery timeout. Running twice is harmless:
the row lock serialises runs and the one-to-one result is stored once.
"""

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DataError, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from analysis.errors import AnalysisError
from analysis.looks import LookSpec, analyze_look, fractions_by_comparison
from analysis.pipeline import analyze, not_computable
from analysis.cuped import CovariateSummary
from analysis.types import AnalysisData, AnalysisPlan, MetricPlan, VariantPlan
from config.celery_app import app as celery_app
from experiments import db
from experiments.choices import AuditAction, Design, Outcome, Status
from experiments.errors import WrongState
from experiments.lock import UNLOCKS_AT, ensure_unlocked, lifted
from experiments.models import AnalysisResult, Experiment, InterimLook
from experiments.services.audit import audit_record
from experiments.services.covariates import covariate_arms_resolve
from experiments.services.promotion import experiment_promote
from experiments.db.cuped_statistics import combined_sums, covariate_arm_sums
from experiments.unit_outcomes.read import analysis_data_and_covariate_sums

logger = logging.getLogger(__name__)


# What kombu raises when the broker does not answer (refused, reset, timed out).
BROKER_ERRORS = (KombuOperationalError, ConnectionError, OSError)


def _hand_to_broker(experiment_ids: list[int]) -> None:
    """Publish each analysis task; on a broker error, mark the experiment for the sweep to queue again."""
    from experiments.tasks import analyze_experiment

    unsent = list(experiment_ids)
    try:
        # A short connect timeout and no publishing retries: a person (or the sweep) should
        # not wait long on a dead broker. The URL is read on each call so a test can cut it.
        with celery_app.connection_for_write(
                settings.CELERY_BROKER_URL, connect_timeout=settings.BROKER_PUBLISH_TIMEOUT_SECONDS) as broker:
            while unsent:
                analyze_experiment.apply_async((unsent[0],), retry=False, connection=broker)
                unsent.pop(0)
    except BROKER_ERRORS as error:  # an outage, not a bug: one line, no traceback
        logger.warning("broker unreachable (%s): analysis of experiments %s left for the sweep", error, unsent)
    if unsent:
        Experiment.objects.filter(pk__in=unsent, status=Status.ANALYZING).update(analysis_queued_at=None)


def _queue(experiment_ids: list[int]) -> None:
    # Only once the status change is committed, or the worker could find it still running.
    if experiment_ids:
        transaction.on_commit(lambda: _hand_to_broker(experiment_ids))


@transaction.atomic
def experiment_request_analysis(*, experiment: Experiment, actor) -> Experiment:
    """Queue the analysis by hand once the lock has lifted (423 before, 409 in a wrong state).

    When the broker does not answer, the experiment is analyzing with `analysis_queued_at`
    None (re-read it): the sweep queues it as soon as the broker is back.
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status not in (Status.RUNNING, Status.ANALYZING):
        raise WrongState(f"Experiment {experiment.key!r} is {experiment.status}: there is nothing to analyse.",
                         status=experiment.status)
    now = timezone.now()
    ensure_unlocked(experiment, now)
    experiment.status = Status.ANALYZING
    experiment.analysis_queued_at = now
    experiment.save(update_fields=["status", "analysis_queued_at", "updated_at"])
    audit_record(experiment=experiment, action=AuditAction.ANALYSIS_QUEUED, actor=actor)
    _queue([experiment.pk])
    return experiment


@transaction.atomic
def experiments_queue_due_analyses(*, now: datetime | None = None) -> list[int]:
    """Move every running experiment whose lock has lifted to analyzing and queue its analysis.

    Also queues again every analysis without a result that is not running (its row is not
    locked) and was never handed to the broker, or was handed over more than
    `ANALYSIS_REQUEUE_SECONDS` ago (a lost message, a worker that died).
    """
    now = now or timezone.now()
    requeue_before = now - timedelta(seconds=settings.ANALYSIS_REQUEUE_SECONDS)
    lost = Q(analysis_queued_at__isnull=True) | Q(analysis_queued_at__lt=requeue_before)
    due = list(
        # skip_locked: a running analysis holds its row lock (the lease); it is not lost.
        Experiment.objects.select_for_update(skip_locked=True, of=("self",))
        .annotate(lock_lifts_at=UNLOCKS_AT)
        .filter((Q(status=Status.RUNNING) & lifted(now)) | (Q(status=Status.ANALYZING, result__isnull=True) & lost))
    )
    for experiment in due:
        action = AuditAction.ANALYSIS_QUEUED if experiment.status == Status.RUNNING else AuditAction.ANALYSIS_REQUEUED
        experiment.status = Status.ANALYZING
        experiment.analysis_queued_at = now
        experiment.save(update_fields=["status", "analysis_queued_at", "updated_at"])
        audit_record(experiment=experiment, action=action, actor=None)
    _queue([experiment.pk for experiment in due])
    return [experiment.pk for experiment in due]


def cuped_positions(experiment: Experiment) -> frozenset[int]:
    """The metric positions (0 the primary) that use CUPED: `Experiment.cuped` and each `Metric.cuped`.

    The one place that decides it; the fields are read-only once running, so they equal the
    frozen protocol's. A/B only (champion/challenger refuses CUPED at definition).
    """
    if experiment.design != Design.AB:
        return frozenset()
    return frozenset(([0] if experiment.cuped else []) + [m.position for m in experiment.metrics.all() if m.cuped])


def analysis_plan(experiment: Experiment) -> AnalysisPlan:
    """The experiment's frozen protocol as the pure analysis takes it (`protocol_analysis_plan`)."""
    return protocol_analysis_plan(experiment.protocol, metric_key=experiment.metric_key,
                                  cuped=cuped_positions(experiment))


def protocol_analysis_plan(protocol: dict, *, metric_key: str, cuped: frozenset[int] = frozenset()) -> AnalysisPlan:
    """A frozen protocol (the stored JSON dict) as the pure analysis takes it; no database.

    `protocol.metrics` (present only with more than part 1's one metric) lists the primary
    first, then the others at positions 1, 2, ... (what their observations carry). A part-1
    protocol has none: its one metric is the primary, keyed `metric_key` (the experiment's).
    `bench/calibration.py` builds its simulated experiments' plans through this function.
    `cuped`: the positions whose metric uses CUPED (`cuped_positions`).
    """
    sizes = protocol["sample_size_per_variant"]
    primary, *others = protocol.get("metrics") or [{"key": metric_key, "aggregation": "sum"}]
    return AnalysisPlan(
        metric_key=primary["key"],
        aggregation=primary["aggregation"],
        metrics=tuple(
            MetricPlan(key=m["key"], role=m["role"], metric_type=m["type"], direction=m["direction"],
                       aggregation=m["aggregation"], margin=m["margin"], cuped=position in cuped)
            for position, m in enumerate(others, start=1)
        ),
        cuped=0 in cuped,
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
    stored = result_store(experiment, _computed(experiment), analyzed_at=analyzed_at)
    experiment.status = Status.ANALYZED
    experiment.save(update_fields=["status", "updated_at"])
    audit_record(experiment=experiment, action=AuditAction.ANALYZED, actor=None,
                 details={"outcome": stored.outcome, "variant": stored.winner or None})
    logger.info("analysed %s: %s", experiment.key, stored.outcome)
    promote_if_asked(experiment, stored)
    return stored


def result_store(experiment: Experiment, computed: dict, *, analyzed_at: datetime) -> AnalysisResult:
    """Store the one result: the document of DESIGN.md around the statistics' part (`computed`)."""
    document = {
        "experiment": experiment.key,
        "protocol_hash": experiment.protocol_hash,
        "analyzed_at": analyzed_at.isoformat(),
        **computed,
        "observations": experiment.observation_count,
    }
    decision = document["decision"]
    return AnalysisResult.objects.create(
        experiment=experiment, protocol_hash=experiment.protocol_hash, analyzed_at=analyzed_at,
        outcome=decision["outcome"], winner=decision["variant"] or "", document=document,
    )


def promote_if_asked(experiment: Experiment, result: AnalysisResult) -> None:
    """Auto-promote: apply a decision that is not invalid, when the experiment asks for it."""
    if experiment.auto_promote and result.outcome != Outcome.INVALID:
        experiment_promote(experiment=experiment, actor=None)


def _computed(experiment: Experiment) -> dict:
    """The statistics' part of the document; `invalid`, with the reason, when the data cannot be analysed.

    Data that break the arithmetic (a sum of squares beyond a double, in SQL or in Python)
    would otherwise fail the task on every retry and leave the experiment analyzing for ever.
    Transient errors (a lost connection) are not caught: the task retries them. A design with
    interim looks analyses this as its last look (`analysis.looks`): the last boundary spends
    the alpha the earlier looks left.
    """
    plan = analysis_plan(experiment)
    try:
        data, others = analysis_inputs(experiment, plan)
        if not has_looks(experiment):
            return analyze(plan, data, others).to_dict()
        of = len(experiment.protocol["looks"])
        return analyze_look(plan, data, others, look_spec(experiment, index=of, last=True)).analysis.to_dict()
    except (DataError, AnalysisError, ArithmeticError) as error:
        logger.warning("analysis of %s not computable: %s", experiment.key, error)
        return not_computable(plan, f"The data could not be analysed ({_first_line(error)}).").to_dict()


def analysis_inputs(experiment: Experiment, plan: AnalysisPlan) -> tuple[AnalysisData, dict[str, AnalysisData]]:
    """The primary's data and every other metric's by key, as `analyze` takes them, read in the database."""
    metrics = {position: (metric.metric_type, metric.aggregation)
               for position, metric in enumerate((plan.primary, *plan.metrics)) if metric.cuped}
    with transaction.atomic():  # a savepoint: a failed aggregate leaves the transaction usable
        if metrics:  # the arms of the units assigned since beat's last run, from its watermark
            covariate_arms_resolve(experiment_id=experiment.id)
        by_position, observed = analysis_data_and_covariate_sums(experiment, frozenset(metrics))
        by_position = _with_covariates(experiment, metrics, by_position, observed)
    others = {metric.key: by_position[position] for position, metric in enumerate(plan.metrics, start=1)}
    return by_position[0], others


def has_looks(experiment: Experiment) -> bool:
    """Whether the frozen protocol plans interim looks (only then does it hold `looks`)."""
    return bool(experiment.protocol and experiment.protocol.get("looks"))


def look_spec(experiment: Experiment, *, index: int, last: bool) -> LookSpec:
    """Look `index` of the frozen protocol, with the information fractions its earlier looks assessed."""
    stored = InterimLook.objects.filter(experiment=experiment, index__lt=index).order_by("index")
    return LookSpec(index=index, of=len(experiment.protocol["looks"]), spending=experiment.protocol["spending"],
                    last=last, earlier=fractions_by_comparison([look.statistics for look in stored]))


def _with_covariates(experiment: Experiment, metrics: dict[int, tuple[str, str]],
                     by_position: dict[int, AnalysisData],
                     observed: dict[tuple[int, int], tuple]) -> dict[int, AnalysisData]:
    """Each CUPED metric's data {position: (metric_type, aggregation)} with its arms as CovariateSummary:
    n and the y sums are the arm's summary; the x sums are the covariates' by arm
    (`covariate_arm_sums`) and the outcome rows' (`observed`, read in the summary's own pass)."""
    if not metrics:
        return by_position
    sums = combined_sums(metrics, covariate_arm_sums(experiment.id, metrics), observed)
    variants = list(experiment.variants.all())
    result = dict(by_position)
    for position, by_variant in sums.items():
        data = by_position[position]
        covariates = {}
        for variant in variants:
            arm = data.arms[variant.key]
            x, x2, xy = by_variant.get(variant.id, (0.0, 0.0, 0.0))
            covariates[variant.key] = CovariateSummary(arm.n, arm.total, arm.total_of_squares, x, x2, xy)
        result[position] = replace(data, covariates=covariates)
    return result


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

