"""The portable paths (SQLite, the embedded default): the ORM and Python where PostgreSQL has SQL.

Each function here has a namesake in experiments.db.postgresql that gives the same results,
which the tests check on the same rows. These are written for the embedded setup's small
demo data, not for speed: any real volume runs on PostgreSQL (see docs/reports.md and
bench/README.md).
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from experiments.db import shared
from experiments.db.cuped_statistics import covariate_sums
from experiments.db.rows import Latency
from experiments.db.shared import store_assignment
from experiments.models import Assignment, Experiment, Observation, UnitOutcome
from experiments.unit_outcomes.write import Pairing, add_rows

__all__ = ["CSV_IMPORT", "covariate_sums", "experiment_state_row", "import_csv", "insert_new_assignments",
           "insert_observations", "latency_by_variant", "rebuild_unit_outcomes", "store_assignment",
           "store_assignments", "stored_assignments", "tune_analysis_session"]

# No in-database CSV import: import_observations takes the row-by-row path.
CSV_IMPORT = False


def stored_assignments(experiment_id: int, units) -> dict[str, int]:
    """{unit: variant id} of the stored assignments among `units` (up to 10,000 per call)."""
    units = list(units)
    if not units:
        return {}
    return dict(
        Assignment.objects.filter(experiment_id=experiment_id, unit__in=units).values_list("unit", "variant_id")
    )


def insert_new_assignments(experiment_id: int, rows: list[tuple[str, int]], now: datetime) -> bool:
    """Store first assignments of units none of which is stored: True, or False and nothing stored."""
    try:
        with transaction.atomic():
            Assignment.objects.bulk_create(
                [Assignment(experiment_id=experiment_id, unit=unit, variant_id=variant_id)
                 for unit, variant_id in rows],
                batch_size=5000,
            )
    except IntegrityError:
        return False
    return True


def store_assignments(experiment_id: int, rows: list[tuple[str, int]], now: datetime) -> set[str]:
    """Store first assignments, (unit, variant id) in the order given; existing rows win.

    Returns the units this call stored: those without a row when it looked (SQLite runs one
    writer at a time). `now` is not needed: `assigned_at` is set on creation (auto_now_add).
    """
    existing = stored_assignments(experiment_id, [unit for unit, _ in rows])
    fresh = [(unit, variant_id) for unit, variant_id in rows if unit not in existing]
    Assignment.objects.bulk_create(
        [Assignment(experiment_id=experiment_id, unit=unit, variant_id=variant_id) for unit, variant_id in fresh],
        ignore_conflicts=True,
        batch_size=5000,
    )
    return {unit for unit, _ in fresh}


def experiment_state_row(key: str, unit: str | None) -> dict[str, Any] | None:
    """As experiments.db.shared's, with `ends_at` an aware datetime (SQLite hands back text or naive UTC)."""
    row = shared.experiment_state_row(key, unit)
    if row is None:
        return None
    ends_at = row["ends_at"]
    if isinstance(ends_at, str):
        ends_at = parse_datetime(ends_at)
    if ends_at is not None and ends_at.tzinfo is None:
        ends_at = ends_at.replace(tzinfo=UTC)
    row["ends_at"] = ends_at
    return row


def insert_observations(experiment_id: int, pairing: list[Pairing], records: list[tuple], now: datetime, *,
                        covariates: bool = False) -> int:
    """Insert the records, skipping ids already stored or repeated, and add them to the unit sums.

    `records` are (variant_id, unit, value, latency_ms, observed_at, idempotency_key,
    metric_position), of any metrics; an id is unique per metric. Returns how many were inserted.
    """
    ids = [record[5] for record in records if record[5] is not None]
    seen = set(
        Observation.objects.filter(experiment_id=experiment_id, idempotency_key__in=ids)
        .values_list("metric_position", "idempotency_key")
    ) if ids else set()
    fresh = []
    for variant_id, unit, value, latency_ms, observed_at, key, metric in records:
        if key is not None:
            if (metric, key) in seen:
                continue
            seen.add((metric, key))
        fresh.append(Observation(
            experiment_id=experiment_id, variant_id=variant_id, unit=unit, value=value, latency_ms=latency_ms,
            observed_at=observed_at, received_at=now, idempotency_key=key, metric_position=metric,
        ))
    Observation.objects.bulk_create(fresh, batch_size=1000)
    add_rows(experiment_id, pairing, ((o.metric_position, o.unit, o.variant_id, o.value) for o in fresh),
             covariates=covariates)
    return len(fresh)


def rebuild_unit_outcomes(experiment_id: int, pairing: list[Pairing], *, covariates: bool = False) -> int:
    """Recompute the experiment's unit outcomes from its stored observations; returns the row count.

    Summed in Python (SQLite cannot name the columns of the pairings' VALUES list).
    """
    UnitOutcome.objects.filter(experiment_id=experiment_id).delete()
    observations = (Observation.objects.filter(experiment_id=experiment_id).order_by()
                    .values_list("metric_position", "unit", "variant_id", "value").iterator())
    return add_rows(experiment_id, pairing, observations, covariates=covariates)


def tune_analysis_session() -> None:
    """Nothing to tune: SQLite has no per-transaction memory or JIT settings."""


def latency_by_variant(experiment: Experiment) -> dict[int, Latency]:
    """Mean, median and 95th percentile of `Observation.latency_ms` per variant id, computed by numpy.

    SQLite has no ordered-set aggregates, so the experiment's latencies are loaded; numpy's
    default percentile interpolates linearly as PostgreSQL's percentile_cont does.
    """
    rows = Observation.objects.filter(experiment=experiment, latency_ms__isnull=False).order_by()
    by_variant: dict[int, list[float]] = defaultdict(list)
    for variant_id, latency in rows.values_list("variant_id", "latency_ms").iterator():
        by_variant[variant_id].append(latency)
    result = {}
    for variant_id, latencies in by_variant.items():
        values = np.asarray(latencies)
        p50, p95 = np.percentile(values, [50, 95])
        result[variant_id] = Latency(variant_id, len(values), float(values.mean()), float(p50), float(p95))
    return result


def import_csv(*, experiment: Experiment, path: Path, columns: list[str], now: datetime, fresh: bool,
               on_bytes: Callable[[int], None]) -> tuple[int, int] | None:
    """None: there is no in-database import here, the caller takes the row-by-row path."""
    return None
