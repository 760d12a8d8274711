"""Storing covariates (CUPED, DESIGN.md part 2): a unit's value of a metric before the test.

One value per (experiment, metric, unit): a repeat, stored before or within the same batch,
is a duplicate and the first value stays. No assignment is needed (a covariate may arrive
before the unit is ever assigned). Taken while the experiment is a draft or runs, until its
`ends_at`; after that (or once stopped, analysed or concluded) WrongState (409).

The same checks and error shapes as observations: a malformed item is MalformedItems (400),
a broken rule (an unknown metric, a metric that takes no covariate) RuleViolation (422), each
keyed `covariates[i].field` with the offending `indexes`; all or nothing either way. The REST
endpoint (experiments.api.covariates) and `manage.py import_covariates` both come here.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datetime import datetime

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from experiments.choices import Design, Status
from experiments.db.covariate_arms import resolve_arms
from experiments.db.covariates import import_covariates, import_covariates_csv, insert_covariates
from experiments.errors import MalformedItems, RuleViolation, WrongState
from experiments.limits import MAX_OBSERVATIONS_PER_REQUEST
from experiments.models import Experiment
from experiments.observation_input import ItemErrors, parse_shared_fields
from experiments.services.csv_import import csv_header
from experiments.services.ingestion import IngestResult

FIELDS = frozenset({"unit", "value", "metric"})
# A batch of covariates is as large as one of observations.
MAX_COVARIATES_PER_REQUEST = MAX_OBSERVATIONS_PER_REQUEST
TAKING = (Status.DRAFT, Status.RUNNING)


@dataclass(frozen=True, slots=True)
class CovariateRow:
    """One parsed covariate; `metric` is the metric's key as sent (None: the primary)."""

    index: int
    unit: str
    value: float
    metric: str | None


def parse_covariate_items(items: list[Any], errors: ItemErrors, *, first_index: int = 0) -> list[CovariateRow]:
    """Typed rows for the items that parse; every problem goes to `errors`."""
    rows = []
    for offset, item in enumerate(items):
        index = first_index + offset
        if not isinstance(item, dict):
            errors.add(index, "item", "Each covariate must be a JSON object.")
            continue
        ok, unit, value, metric = parse_shared_fields(item, index, errors, FIELDS)
        if ok:
            rows.append(CovariateRow(index, unit, value, metric))
    return rows


def parse_covariate_batch(data: Any) -> list[CovariateRow]:
    """The typed rows of `{"covariates": [...]}`, or MalformedItems (400) naming every bad item."""
    items = data.get("covariates") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise MalformedItems('Send {"covariates": [...]} with at least one covariate.',
                             errors={"covariates": ["Required: a non-empty list."]}, indexes=[])
    if len(items) > MAX_COVARIATES_PER_REQUEST:
        raise MalformedItems(
            f"At most {MAX_COVARIATES_PER_REQUEST} covariates per request; got {len(items)}.",
            errors={"covariates": [f"At most {MAX_COVARIATES_PER_REQUEST} items."]}, indexes=[],
        )
    errors = ItemErrors(prefix="covariates")
    rows = parse_covariate_items(items, errors)
    if errors:
        raise MalformedItems(f"{len(errors.indexes)} covariate(s) are malformed; nothing was stored.",
                             errors=errors.by_path, indexes=sorted(errors.indexes))
    return rows


def ensure_taking_covariates(experiment: Experiment, now=None) -> None:
    """WrongState (409) unless the experiment is a draft, or runs and its `ends_at` has not passed."""
    now = now or timezone.now()
    if experiment.status not in TAKING or (experiment.ends_at is not None and now >= experiment.ends_at):
        when = f" (its test period ended at {experiment.ends_at.isoformat()})" if experiment.ends_at else ""
        raise WrongState(
            f"Experiment {experiment.key!r} is {experiment.status}{when}: covariates are taken only "
            "while it is a draft or runs, before its end.",
            status=experiment.status,
        )


def covariate_metrics(experiment: Experiment) -> dict[str, tuple[int, bool]]:
    """{metric key: (metric_position, takes covariates)}, the primary (position 0) first."""
    metrics = {experiment.metric_key: (0, bool(experiment.cuped))}
    for metric in experiment.metrics.all():
        metrics[metric.key] = (metric.position, bool(metric.cuped))
    return metrics


def resolve(experiment: Experiment, rows: Iterable[CovariateRow], errors: ItemErrors,
            metrics: dict[str, tuple[int, bool]] | None = None) -> list[tuple[int, str, float]]:
    """Each row as (metric_position, unit, value); an unknown metric or one without CUPED goes to `errors`."""
    metrics = metrics if metrics is not None else covariate_metrics(experiment)
    records = []
    for row in rows:
        key = experiment.metric_key if row.metric is None else row.metric
        found = metrics.get(key)
        if found is None:
            errors.add(row.index, "metric", f"Unknown metric {row.metric!r}; this experiment's metrics: "
                                            f"{', '.join(metrics)}.")
            continue
        position, cuped = found
        if not cuped:
            errors.add(row.index, "metric", f"The metric {key!r} takes no covariate (its `cuped` is false).")
            continue
        records.append((position, row.unit, row.value))
    return records


def _rule_violation(errors: ItemErrors) -> RuleViolation:
    return RuleViolation(f"{len(errors.indexes)} covariate(s) break a rule; nothing was stored.",
                         errors=errors.by_path, indexes=sorted(errors.indexes))


@transaction.atomic
def covariates_ingest(*, experiment: Experiment, rows: list[CovariateRow]) -> IngestResult:
    """Check every rule for every row, then store them all (RuleViolation and nothing stored if any fails)."""
    now = timezone.now()
    ensure_taking_covariates(experiment, now)
    errors = ItemErrors(prefix="covariates")
    records = resolve(experiment, rows, errors)
    if errors:
        raise _rule_violation(errors)
    inserted = insert_covariates(experiment.id, records, now)
    return IngestResult(accepted=inserted, duplicates=len(records) - inserted)


def covariates_import(*, experiment: Experiment,
                      chunks: Iterable[tuple[list[CovariateRow], ItemErrors]]) -> IngestResult:
    """Store a file's rows, given as parsed chunks, in one transaction: all of them or, at a bad chunk, none.

    A chunk with malformed rows raises MalformedItems, one breaking a rule RuleViolation, both
    keyed as the chunk's errors are (`row[i].field`, i counting from the file's first row).
    """
    now = timezone.now()
    ensure_taking_covariates(experiment, now)
    metrics = covariate_metrics(experiment)

    def checked() -> Iterator[list[tuple[int, str, float]]]:
        for rows, errors in chunks:
            if errors:
                raise MalformedItems(f"{len(errors.indexes)} row(s) are malformed; nothing was stored.",
                                     errors=errors.by_path, indexes=sorted(errors.indexes))
            records = resolve(experiment, rows, errors, metrics)
            if errors:
                raise _rule_violation(errors)
            yield records

    with transaction.atomic():
        accepted, duplicates = import_covariates(experiment.id, checked(), now)
    return IngestResult(accepted=accepted, duplicates=duplicates)


def covariates_import_csv(*, experiment: Experiment, path: Path,
                          on_bytes: Callable[[int], None] = lambda n: None) -> IngestResult | None:
    """Import a whole CSV file inside the database (PostgreSQL); None, with nothing written, where
    it needs the row-by-row path (`covariates_import`), which imports it or names every bad line.

    Raises WrongState (409) like `covariates_import` when the experiment takes no covariates.
    """
    columns = csv_header(path, FIELDS)
    if columns is None:
        return None
    now = timezone.now()
    ensure_taking_covariates(experiment, now)
    metrics = {key: position for key, (position, takes) in covariate_metrics(experiment).items() if takes}
    try:
        with transaction.atomic():
            counts = import_covariates_csv(experiment_id=experiment.id, path=path, columns=columns,
                                           metrics=metrics, now=now, on_bytes=on_bytes)
    except DatabaseError:
        return None   # rolled back: the row-by-row path imports the file or names its errors
    return None if counts is None else IngestResult(accepted=counts[0], duplicates=counts[1])


@transaction.atomic
def covariate_arms_resolve(*, experiment_id: int, now: datetime | None = None) -> int:
    """Give their arm to the covariates of the units assigned since the experiment's watermark, and move
    it (experiments.db.covariate_arms); returns how many covariates got their arm. Safe to repeat.

    Run by beat for every running CUPED experiment, and by the analysis for the remainder.
    """
    experiment = Experiment.objects.filter(pk=experiment_id).only("covariate_arms_through", "metric_key",
                                                                  "cuped").first()
    if experiment is None:
        return 0
    # Every metric's position, not only those with `cuped` now: a draft's flag may have been turned
    # off and on again since its covariates were stored.
    positions = [position for position, _ in covariate_metrics(experiment).values()]
    resolved, through = resolve_arms(experiment_id, positions, experiment.covariate_arms_through,
                                     now or timezone.now())
    # Conditional: a concurrent run (the analysis, the beat) may have moved it further already.
    Experiment.objects.filter(pk=experiment_id, covariate_arms_through__lt=through).update(
        covariate_arms_through=through)
    return resolved


def covariate_arms_resolve_running(*, now: datetime | None = None) -> int:
    """Beat: `covariate_arms_resolve` for every running A/B experiment with a CUPED metric, each in its
    own transaction; returns how many covariates got their arm."""
    running = (Experiment.objects.filter(status=Status.RUNNING, design=Design.AB)
               .filter(Q(cuped=True) | Q(metrics__cuped=True)).values_list("pk", flat=True).distinct())
    return sum(covariate_arms_resolve(experiment_id=pk, now=now) for pk in list(running))
