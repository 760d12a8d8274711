"""Interim looks (DESIGN.md part 2): run by beat at their planned times, sealed unless one ends the test.

Look i of a protocol with several is due at `protocol.looks[i].at`; the last one is the
final analysis (`services.analysis`), due when the lock lifts. The beat sweep queues each due
interim look that is not stored yet; the task takes the experiment's row lock (the lease, as
the final analysis does), and a look is stored once (unique (experiment, index)), so a
redelivered or re-queued task finds it and returns. A look that does not end the test is
stored sealed: its statistics (fractions, Z, boundaries) are kept for the later looks'
boundaries and shown to nobody until the test has ended; every surface says only "look i of
n: the test continues" with the next look's time. A look that ends the test publishes the
result at once: the lock lifts (`Experiment.ended_early_at`) and observations are refused.
When the sweep finds a look due while a later one is also due (beat was down), the earlier
is stored as skipped: it spends no alpha, and only the latest is taken.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.db import DataError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analysis.errors import AnalysisError
from analysis.looks import analyze_look, primary_information_reached
from config.celery_app import app as celery_app
from experiments import db
from experiments.choices import AuditAction, LookOutcome, Status
from experiments.lock import CONTINUES, is_locked
from experiments.models import Experiment, InterimLook
from experiments.services.analysis import (
    BROKER_ERRORS,
    analysis_inputs,
    analysis_plan,
    has_looks,
    look_spec,
    promote_if_asked,
    result_store,
)
from experiments.services.audit import audit_record

logger = logging.getLogger(__name__)


def interim_look_times(experiment: Experiment) -> list[tuple[int, datetime]]:
    """(index, due time) of each planned interim look (all but the last), from the frozen protocol."""
    if not has_looks(experiment):
        return []
    return [(look["index"], parse_datetime(look["at"])) for look in experiment.protocol["looks"][:-1]]


@transaction.atomic
def experiments_queue_due_looks(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """Queue every running experiment's latest due interim look that is not stored: [(experiment id, index)].

    Safe to run at any time: a look queued twice is taken once (`look_run`).
    """
    now = now or timezone.now()
    due = []
    for experiment in Experiment.objects.filter(status=Status.RUNNING, protocol__has_key="looks"):
        if not is_locked(experiment, now):
            continue  # the final analysis takes over
        done = set(experiment.interim_looks.values_list("index", flat=True))
        ready = [index for index, at in interim_look_times(experiment) if at <= now and index not in done]
        if ready and max(ready) > max(done, default=0):
            due.append((experiment.pk, max(ready)))
    if due:
        transaction.on_commit(lambda: _hand_to_broker(due))
    return due


def _hand_to_broker(due: list[tuple[int, int]]) -> None:
    """Publish each look's task; on a broker error the next sweep finds the look still due."""
    from experiments.tasks import run_interim_look

    try:
        with celery_app.connection_for_write(
                settings.CELERY_BROKER_URL, connect_timeout=settings.BROKER_PUBLISH_TIMEOUT_SECONDS) as broker:
            for experiment_id, index in due:
                run_interim_look.apply_async((experiment_id, index), retry=False, connection=broker)
    except BROKER_ERRORS as error:  # an outage, not a bug: the look stays due
        logger.warning("broker unreachable (%s): interim looks %s left for the next sweep", error, due)


@transaction.atomic
def look_run(*, experiment_id: int, index: int, now: datetime | None = None) -> InterimLook | None:
    """Take interim look `index` once: sealed, or ending the test with its result. None when not due.

    Not due: the experiment no longer runs, the look's time has not come, or the lock has lifted
    (the final analysis decides then). Earlier looks never taken are stored as skipped first.
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
    existing = InterimLook.objects.filter(experiment=experiment, index=index).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    times = dict(interim_look_times(experiment))
    if experiment.status != Status.RUNNING or index not in times or times[index] > now or not is_locked(experiment, now):
        return None
    taken = set(experiment.interim_looks.values_list("index", flat=True))
    if taken and max(taken) > index:
        return None  # a later look was taken already; this one was skipped
    for skipped in sorted(set(range(1, index)) - taken):
        _store(experiment, skipped, now, LookOutcome.SKIPPED,
               reason=f"Look {skipped} was not taken in time: look {index} was already due; it spends no alpha.")
    db.tune_analysis_session()
    plan = analysis_plan(experiment)
    try:
        data, others = analysis_inputs(experiment, plan)
        last = primary_information_reached(plan, data)
        result = analyze_look(plan, data, others, look_spec(experiment, index=index, last=last))
    except (DataError, AnalysisError, ArithmeticError) as error:
        # The error's words may quote sums of the data: the log has them, the audit trail (shown while
        # locked) only that the look assessed nothing.
        logger.warning("look %s of %s not assessable: %s", index, experiment.key, error)
        return _store(experiment, index, now, LookOutcome.NO_DATA,
                      reason="The data could not be assessed at this look; it spends no alpha.")
    if not result.statistics:
        return _store(experiment, index, now, LookOutcome.NO_DATA,
                      reason="No comparison could be assessed at this look (no data, or no new units since the "
                             "previous look); it spends no alpha.")
    if not result.ends:
        return _store(experiment, index, now, LookOutcome.SEALED, statistics=result.statistics)
    return _end_test(experiment, index, now, result)


def _store(experiment: Experiment, index: int, now: datetime, outcome: LookOutcome, *, reason: str = "",
           statistics=()) -> InterimLook:
    look = InterimLook.objects.create(experiment=experiment, index=index, taken_at=now, outcome=outcome,
                                      reason=reason, statistics=[dict(entry) for entry in statistics])
    of = len(experiment.protocol["looks"])
    details = {"index": index, "of": of, "next_at": experiment.protocol["looks"][index]["at"] if index < of else None}
    if outcome != LookOutcome.ENDED:
        # Only what the lock allows: the look happened, and when the next one is.
        audit_record(experiment=experiment, action=AuditAction.LOOK_SEALED, actor=None,
                     reason=reason or CONTINUES.format(index=index, of=of), details={**details, "outcome": outcome})
    logger.info("look %s of %s of %s: %s", index, of, experiment.key, outcome)
    return look


def _end_test(experiment: Experiment, index: int, now: datetime, result) -> InterimLook:
    """Publish the look's result: the lock lifts now and the experiment is analysed."""
    look = _store(experiment, index, now, LookOutcome.ENDED, statistics=result.statistics)
    stored = result_store(experiment, result.analysis.to_dict(), analyzed_at=now)
    experiment.status = Status.ANALYZED
    experiment.ended_early_at = now
    experiment.save(update_fields=["status", "ended_early_at", "updated_at"])
    decision = stored.document["decision"]
    audit_record(experiment=experiment, action=AuditAction.LOOK_ENDED, actor=None, reason=decision["reason"],
                 details={"index": index, "of": len(experiment.protocol["looks"]), "outcome": decision["outcome"],
                          "variant": decision["variant"]})
    logger.info("look %s of %s ended the test: %s", index, experiment.key, decision["outcome"])
    promote_if_asked(experiment, stored)
    return look
