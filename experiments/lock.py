"""The lock, the product's central promise, decided here and nowhere else.

Nothing computed from outcomes (a mean, an effect, an interval, a p-value, a decision, a
latency, a chart) is shown to anyone before `ends_at + grace_period` has passed, and
observations are taken only until then. Every surface asks this module: the REST API
(detail, results, analyze), ingestion (REST and the CSV import), the analysis service
and its task, the admin (pages, buttons, inlines), the reports and their downloads.
`tests/experiments/test_lock_everywhere.py` requests every URL the project routes for a
locked experiment and finds none of its values.
"""

from datetime import datetime
from enum import StrEnum

from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

from experiments.choices import Status
from experiments.errors import Locked, WrongState
from experiments.models import AnalysisResult, Experiment, InterimLook

# All that is said of a sealed interim look (DESIGN.md part 2).
CONTINUES = "Look {index} of {of}: the test continues."


class ResultState(StrEnum):
    """How much of an experiment's result may be seen right now."""

    NOT_STARTED = "not_started"   # a draft: no protocol dates, nothing to show
    STOPPED = "stopped"           # stopped early: never a result
    LOCKED = "locked"             # before ends_at + grace period: the protocol and unlock time only
    PENDING = "pending"           # unlocked, the analysis queued or running
    READY = "ready"               # unlocked and analysed: everything


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def is_locked(experiment: Experiment, now: datetime | None = None) -> bool:
    """True until the test period and its grace period are over (always for a draft)."""
    return experiment.unlocks_at is None or _now(now) < experiment.unlocks_at


# The same instant as `Experiment.unlocks_at`, for queries over many experiments.
UNLOCKS_AT = ExpressionWrapper(F("ends_at") + F("grace_period"), output_field=DateTimeField())


def lifted(now: datetime) -> Q:
    """Experiments whose lock has lifted by `now`, in a queryset annotated with `lock_lifts_at=UNLOCKS_AT`."""
    return Q(lock_lifts_at__lte=now)


def locked_error(experiment: Experiment) -> Locked:
    """The 423 answer: what is locked and until when; with interim looks, `look: {done, of, next_at}`."""
    detail = f"Results of {experiment.key!r} are locked until the test period and its grace period are over."
    progress = look_progress(experiment)
    extra = {}
    if progress is not None:
        detail = f"{look_progress_sentence(progress)} {detail[:-1]}, or until a look ends the test."
        extra["look"] = progress
    return Locked(detail, unlocks_at=experiment.unlocks_at.isoformat() if experiment.unlocks_at else None, **extra)


def look_progress(experiment: Experiment) -> dict | None:
    """What may be said of the interim looks while locked: {"done", "of", "next_at"} (None without looks).

    `done` counts the interim looks taken (sealed, skipped or without data); `next_at` is the
    next look's time (the last look's is when the lock lifts). Nothing computed from outcomes.
    """
    if not (experiment.protocol and experiment.protocol.get("looks")):
        return None
    done = InterimLook.objects.filter(experiment=experiment).count()
    looks = experiment.protocol["looks"]
    return {"done": done, "of": len(looks), "next_at": looks[done]["at"] if done < len(looks) else None}


def look_progress_sentence(progress: dict) -> str:
    """"Look 2 of 5: the test continues; the next look is at ..." (before the first: when it is)."""
    if progress["done"] == 0:
        return f"No look yet of {progress['of']}; the first is at {progress['next_at']}."
    sentence = CONTINUES.format(index=progress["done"], of=progress["of"])[:-1]
    return f"{sentence}; the next look is at {progress['next_at']}."


def ensure_unlocked(experiment: Experiment, now: datetime | None = None) -> None:
    """Locked (423) while the lock holds: before an analysis is queued or run."""
    if is_locked(experiment, now):
        raise locked_error(experiment)


def ensure_taking_observations(experiment: Experiment, now: datetime | None = None) -> None:
    """WrongState (409) unless the experiment runs, or is within its grace period after `ends_at`."""
    if experiment.status != Status.RUNNING or not is_locked(experiment, now):
        when = f" (its grace period ended at {experiment.unlocks_at.isoformat()})" if experiment.unlocks_at else ""
        raise WrongState(
            f"Experiment {experiment.key!r} is {experiment.status}{when}: observations are taken only "
            "while it runs and during its grace period.",
            status=experiment.status,
        )


def stored_result(experiment: Experiment) -> AnalysisResult | None:
    """The stored result whether or not it may be shown: for code that decides, never for display."""
    try:
        return experiment.result
    except AnalysisResult.DoesNotExist:
        return None


def result_state(experiment: Experiment, now: datetime | None = None) -> ResultState:
    """The one place that decides how much of a result may be seen right now."""
    if experiment.status == Status.STOPPED:
        return ResultState.STOPPED
    if experiment.unlocks_at is None:
        return ResultState.NOT_STARTED
    if is_locked(experiment, now):
        return ResultState.LOCKED
    return ResultState.PENDING if stored_result(experiment) is None else ResultState.READY


def visible_result(experiment: Experiment, now: datetime | None = None) -> AnalysisResult | None:
    """The stored result when it may be shown (unlocked and analysed); None otherwise, whatever happened.

    The analysis refuses to run while locked, so a locked result should not exist; checking
    the lock here as well keeps every surface from showing one if it ever did.
    """
    return stored_result(experiment) if result_state(experiment, now) == ResultState.READY else None
