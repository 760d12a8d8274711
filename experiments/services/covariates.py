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

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from experiments.choices import Status
from experiments.db.covariates import import_covariates, insert_covariates
from experiments.errors import MalformedItems, RuleViolation, WrongState
from experiments.limits import MAX_ABS_VALUE, MAX_KEY_LENGTH, MAX_OBSERVATIONS_PER_REQUEST, MAX_UNIT_LENGTH
from experiments.models import Experiment
from experiments.observation_input import ItemErrors, _identifier, _identifier_message
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


def _finite(value: Any) -> float | None:
    # bool is an int in Python, but true/false is not a measurement; a string ("NaN") is not a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= MAX_ABS_VALUE else None


def parse_covariate_items(items: list[Any], errors: ItemErrors, *, first_index: int = 0) -> list[CovariateRow]:
    """Typed rows for the items that parse; every problem goes to `errors`."""
    rows = []
    for offset, item in enumerate(items):
        index = first_index + offset
        if not isinstance(item, dict):
            errors.add(index, "item", "Each covariate must be a JSON object.")
            continue
        ok = True
        unknown = item.keys() - FIELDS
        if unknown:
            errors.add(index, sorted(unknown)[0], f"Unknown field; allowed: {', '.join(sorted(FIELDS))}.")
            ok = False
        unit = _identifier(item.get("unit"), MAX_UNIT_LENGTH)
        if unit is None:
            errors.add(index, "unit", _identifier_message(
                item.get("unit"), f"Required: a non-empty string of at most {MAX_UNIT_LENGTH} characters."))
            ok = False
        value = _finite(item.get("value"))
        if value is None:
            errors.add(index, "value", f"Required: a finite number with |value| <= {MAX_ABS_VALUE:g}.")
            ok = False
        metric = item.get("metric")
        if metric is not None and _identifier(metric, MAX_KEY_LENGTH) is None:
            errors.add(index, "metric", _identifier_message(metric, "Must be a metric key."))
            ok = False
        if ok:
            rows.append(CovariateRow(index, unit, value, metric and str(metric)))
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


def cuped_positions(experiment: Experiment) -> dict[str, tuple[int, bool]]:
    """{metric key: (metric_position, takes covariates)}, the primary (position 0) first."""
    metrics = {experiment.metric_key: (0, bool(experiment.cuped))}
    for metric in experiment.metrics.all():
        metrics[metric.key] = (metric.position, bool(metric.cuped))
    return metrics


def resolve(experiment: Experiment, rows: Iterable[CovariateRow], errors: ItemErrors,
            metrics: dict[str, tuple[int, bool]] | None = None) -> list[tuple[int, str, float]]:
    """Each row as (metric_position, unit, value); an unknown metric or one without CUPED goes to `errors`."""
    metrics = metrics if metrics is not None else cuped_positions(experiment)
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
    metrics = cuped_positions(experiment)

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
