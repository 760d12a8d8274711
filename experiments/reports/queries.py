"""Which experiments have a report, and the experiment behind one."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from experiments.choices import Outcome, Status
from experiments.lock import visible_result
from experiments.models import Experiment

LISTED_STATUSES = (Status.ANALYZED, Status.CONCLUDED, Status.STOPPED)


@dataclass(frozen=True)
class ListedReport:
    """One line of the report index."""

    experiment: Experiment
    outcome: str | None
    outcome_label: str | None


def report_list(*, now: datetime | None = None) -> list[ListedReport]:
    """Analysed, concluded and stopped experiments, newest first, with the decision where unlocked."""
    now = now or timezone.now()
    experiments = (
        Experiment.objects.filter(status__in=LISTED_STATUSES)
        .select_related("result", "concluded_variant").order_by("-updated_at", "-id")
    )
    listed = []
    for experiment in experiments:
        result = visible_result(experiment, now)
        if result is not None:
            listed.append(ListedReport(experiment, result.outcome, Outcome(result.outcome).label))
        else:
            listed.append(ListedReport(experiment, None, None))
    return listed


def report_experiment_get(key: str) -> Experiment:
    """The experiment behind a report, or Experiment.DoesNotExist (a draft has no report)."""
    return (
        Experiment.objects.exclude(status=Status.DRAFT).with_variants()
        .select_related("concluded_variant", "previous").get(key=key)
    )
