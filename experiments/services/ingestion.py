"""Storing observations: every rule checked first, then all rows or none, retries harmless.

On PostgreSQL the rows go through COPY into a temporary table and one statement that
inserts them (INSERT ... SELECT ... ON CONFLICT DO NOTHING, so an `id` seen before is
skipped and counted) and adds the ones inserted to the per-unit sums (`UnitOutcome`) the
analysis reads: no row goes through the ORM (bench/ingest.py).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from experiments.errors import RuleViolation
from experiments.lock import ensure_taking_observations
from experiments.models import Design, Experiment, MetricType, Observation, Variant
from experiments.observation_input import ItemErrors, ObservationRow
from experiments.selectors import stored_assignments
from experiments.unit_outcomes.write import Pairing, add_from_sql, add_rows, pairings


@dataclass(frozen=True)
class IngestResult:
    """How many observations were stored, and how many repeated an `id` already stored."""

    accepted: int
    duplicates: int


def _resolve(experiment: Experiment, variants: list[Variant], rows: list[ObservationRow],
             errors: ItemErrors) -> list[tuple]:
    """Each row's variant id, checked against the design's rules; problems go to `errors`."""
    variant_ids = {v.key: v.id for v in variants}
    binary = experiment.metric_type == MetricType.BINARY
    paired = experiment.design == Design.CHAMPION_CHALLENGER
    assigned: dict[str, int] = {}
    if not paired:
        assigned = stored_assignments(experiment.id, {row.unit for row in rows})
    keys_by_id = {variant_id: key for key, variant_id in variant_ids.items()}
    resolved = []
    for row in rows:
        if binary and row.value not in (0.0, 1.0):
            errors.add(row.index, "value", "A binary metric takes 0 or 1.")
        if row.variant is not None and row.variant not in variant_ids:
            errors.add(row.index, "variant", f"Unknown variant {row.variant!r}.")
            continue
        if paired:
            if row.variant is None:
                errors.add(row.index, "variant", "Required for champion/challenger: which model scored it.")
                continue
            variant_id = variant_ids[row.variant]
        else:
            variant_id = assigned.get(row.unit)
            if variant_id is None:
                errors.add(row.index, "unit", "This unit was never assigned to the experiment (or was outside "
                                              "its traffic).")
                continue
            if row.variant is not None and variant_ids[row.variant] != variant_id:
                errors.add(row.index, "variant", f"The unit was assigned {keys_by_id[variant_id]!r}, "
                                                 f"not {row.variant!r}.")
                continue
        resolved.append((variant_id, row))
    return resolved


@transaction.atomic
def observations_ingest(*, experiment: Experiment, rows: list[ObservationRow]) -> IngestResult:
    """Check every rule for every row, then store them all (RuleViolation and nothing stored if any fails)."""
    now = timezone.now()
    ensure_taking_observations(experiment, now)
    errors = ItemErrors()
    variants = list(experiment.variants.all())
    resolved = _resolve(experiment, variants, rows, errors)
    if errors:
        raise RuleViolation(
            f"{len(errors.indexes)} observation(s) break a rule; nothing was stored.",
            errors=errors.by_path, indexes=sorted(errors.indexes),
        )
    records = [
        (variant_id, row.unit, row.value, row.latency_ms, row.timestamp or now, row.id)
        for variant_id, row in resolved
    ]
    inserted = _insert(experiment.id, pairings(experiment.design, variants), records, now)
    Experiment.objects.filter(pk=experiment.pk).update(observation_count=F("observation_count") + inserted)
    return IngestResult(accepted=inserted, duplicates=len(records) - inserted)


_COLUMNS = "variant_id, unit, value, latency_ms, observed_at, idempotency_key"


def _insert(experiment_id: int, pairing: list[Pairing], records: list[tuple], now: datetime) -> int:
    """Insert the records, skipping ids already stored, and add them to the unit outcomes.

    Returns how many were inserted.
    """
    if not records:
        return 0
    if connection.vendor == "postgresql":
        return _insert_with_copy(experiment_id, pairing, records, now)
    return _insert_portably(experiment_id, pairing, records, now)


def _insert_with_copy(experiment_id: int, pairing: list[Pairing], records: list[tuple], now: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_observation ("
            " variant_id bigint, unit varchar(255), value double precision, latency_ms double precision,"
            " observed_at timestamptz, idempotency_key varchar(255)) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE incoming_observation")
        with cursor.cursor.copy(f"COPY incoming_observation ({_COLUMNS}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)
        cursor.execute(
            f"WITH inserted AS (INSERT INTO {Observation._meta.db_table} (experiment_id, received_at, {_COLUMNS}) "
            f"SELECT %s, %s, {_COLUMNS} FROM incoming_observation "
            "ON CONFLICT (experiment_id, idempotency_key) DO NOTHING RETURNING unit, variant_id, value), "
            f"summed AS ({add_from_sql('inserted', pairing)}) "
            "SELECT COUNT(*) FROM inserted",
            [experiment_id, now, experiment_id],
        )
        return cursor.fetchone()[0]


def _insert_portably(experiment_id: int, pairing: list[Pairing], records: list[tuple], now: datetime) -> int:
    """SQLite (the embedded default): skip ids already stored or repeated within the batch."""
    ids = [record[5] for record in records if record[5] is not None]
    seen = set(
        Observation.objects.filter(experiment_id=experiment_id, idempotency_key__in=ids)
        .values_list("idempotency_key", flat=True)
    ) if ids else set()
    fresh = []
    for variant_id, unit, value, latency_ms, observed_at, key in records:
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        fresh.append(Observation(
            experiment_id=experiment_id, variant_id=variant_id, unit=unit, value=value, latency_ms=latency_ms,
            observed_at=observed_at, received_at=now, idempotency_key=key,
        ))
    Observation.objects.bulk_create(fresh, batch_size=1000)
    add_rows(experiment_id, pairing, ((o.unit, o.variant_id, o.value) for o in fresh))
    return len(fresh)
