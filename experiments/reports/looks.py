"""The report's planned looks: a timeline shown at any time, and, once the test has ended, each look's statistic.

The timeline says when each look is due, at which information fraction and boundary, and
whether it was taken: all of that is protocol or schedule, never an outcome, so a locked
report shows it. The statistics of sealed looks (`InterimLook.statistics`) are read only
by `looks_chart`, which the report calls once the result is visible.
"""

from django.utils.dateparse import parse_datetime

from experiments.choices import LookOutcome
from experiments.models import Experiment
from experiments.reports import charts

STATUS = {
    LookOutcome.SEALED: "taken: the test continued",
    LookOutcome.ENDED: "taken: ended the test",
    LookOutcome.NO_DATA: "taken: nothing to assess",
    LookOutcome.SKIPPED: "skipped (a later look was due)",
}


def look_timeline(experiment: Experiment, *, result_visible: bool) -> list[dict] | None:
    """One row per planned look (index, fraction, at, boundary, nominal alpha, status); None without looks."""
    protocol = experiment.protocol or {}
    if not protocol.get("looks"):
        return None
    taken = {look.index: look for look in experiment.interim_looks.all()}
    of = len(protocol["looks"])
    rows = []
    for look in protocol["looks"]:
        stored = taken.get(look["index"])
        if stored is not None:
            status = STATUS[stored.outcome]
        elif look["index"] == of and result_visible and not experiment.ended_early_at:
            status = "the final analysis"
        elif experiment.ended_early_at:
            status = "not needed: the test had ended"
        else:
            status = "due"
        rows.append({**look, "at": parse_datetime(look["at"]), "status": status,
                     "reason": stored.reason if stored else ""})
    return rows


def looks_chart(experiment: Experiment, document: dict) -> str | None:
    """Z of each challenger's primary at every look it was assessed at, against its boundary (visible results only)."""
    protocol = experiment.protocol or {}
    if not protocol.get("looks") or "look" not in document:
        return None
    series = []
    for comparison in document["comparisons"]:
        points = [(entry["information_fraction"], entry["statistic_z"], entry["boundary"])
                  for look in experiment.interim_looks.order_by("index")
                  for entry in look.statistics
                  if entry["variant"] == comparison["variant"] and entry["metric"] == _primary_key(experiment)]
        # The last look is the analysis itself; a look that ended the test early is stored with the others.
        if comparison.get("statistic_z") is not None and not experiment.ended_early_at:
            points.append((comparison["information_fraction"], comparison["statistic_z"], comparison["boundary"]))
        if points:
            series.append(charts.LookSeries(comparison["variant"], sorted(points)))
    if not series:
        return None
    return charts.looks_chart(series, two_sided=protocol["alternative"] == "two-sided")


def _primary_key(experiment: Experiment) -> str:
    metrics = (experiment.protocol or {}).get("metrics")
    return metrics[0]["key"] if metrics else experiment.metric_key
