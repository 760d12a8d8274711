"""The PostgreSQL paths: array parameters, COPY, ordered-set aggregates and session settings.

Each function here has a namesake in experiments.db.portable that gives the same results;
experiments.db chooses one module for the configured engine. Why each path is fast:

- Units travel as one JSON text parameter (`json_array_elements_text(%(units)s::json)`):
  an IN list or a VALUES list of 10,000 literals costs several times more to quote, parse
  and plan than the lookup or the insert itself, and even an array parameter is quoted
  element by element on the client; one JSON string is quoted once (bench/assignment.py).
- Observations go through COPY into a temporary table and one statement inserts them
  (INSERT ... SELECT ... ON CONFLICT DO NOTHING, so an `id` seen before is skipped and
  counted) and adds the ones inserted to the per-unit sums: no row goes through the ORM
  (bench/ingest.py).
- A batch of first assignments is a binary COPY when none of its units is stored
  (insert_new_assignments): INSERT ... ON CONFLICT DO NOTHING's speculative insertion probes
  the unique index once more and logs one more WAL record per row, and COPY writes the table's
  rows in pages rather than one by one, with no JSON to parse.
- A single first assignment commits without waiting for its WAL flush (store_assignment):
  the row records what the hash already decided, so it need not be durable the moment the
  answer leaves (bench/assignment.py).
- Latency percentiles are `percentile_cont` in the database: no latency leaves it.
- The analysis session gets room for its hash tables and no JIT (bench/analysis.py).
- A CSV file is imported inside the database (experiments.db.postgresql_csv).

See bench/README.md for the measurements.
"""

from datetime import datetime

import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Aggregate, Avg, Count, FloatField

from experiments.db.postgresql_csv import import_csv
from experiments.db.covariate_arms import lock_for_observations
from experiments.db.cuped_statistics import covariate_sums
from experiments.db.postgresql_sums import OBSERVATION_COLUMNS, add_from_sql, rebuild_unit_outcomes
from experiments.db.rows import Latency
from experiments.db import shared
from experiments.db.shared import experiment_state_row
from experiments.models import Assignment, Experiment, Observation
from experiments.unit_outcomes.write import Pairing

__all__ = ["CSV_IMPORT", "covariate_sums", "experiment_state_row", "import_csv", "insert_new_assignments",
           "insert_observations", "latency_by_variant", "rebuild_unit_outcomes", "store_assignment",
           "store_assignments", "stored_assignments", "tune_analysis_session"]

# A CSV file can be imported inside the database (experiments.db.postgresql_csv).
CSV_IMPORT = True

ASSIGNMENTS = Assignment._meta.db_table
OBSERVATIONS = Observation._meta.db_table

_STORED_SQL = (f"SELECT unit, variant_id FROM {ASSIGNMENTS} WHERE experiment_id = %(experiment_id)s "
               "AND unit IN (SELECT json_array_elements_text(%(units)s::json))")

_STORE_MANY_SQL = (
    f"INSERT INTO {ASSIGNMENTS} (experiment_id, unit, variant_id, assigned_at) "
    "SELECT %(experiment_id)s, unit, variant_id::bigint, %(now)s FROM ROWS FROM "
    "(json_array_elements_text(%(units)s::json), json_array_elements_text(%(variant_ids)s::json)) AS new(unit, variant_id) "
    "ON CONFLICT (experiment_id, unit) DO NOTHING RETURNING unit"
)

_COPY_MANY_SQL = f"COPY {ASSIGNMENTS} (experiment_id, unit, variant_id, assigned_at) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ["int8", "varchar", "int8", "timestamptz"]

# `set_config(..., true)` is SET LOCAL inside the statement: it lasts until the end of the
# statement's own transaction (autocommit), whose commit is the one it makes asynchronous.
# The one-time WHERE evaluates it once, before the row is inserted.
_STORE_ONE_ASYNC_SQL = (
    f"INSERT INTO {ASSIGNMENTS} (experiment_id, unit, variant_id, assigned_at) "
    "SELECT %(experiment_id)s, %(unit)s, %(variant_id)s, %(now)s "
    "WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL "
    "ON CONFLICT (experiment_id, unit) DO NOTHING RETURNING variant_id"
)

_INCOMING_TABLE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming_observation ("
    " variant_id bigint, unit varchar(255), value double precision, latency_ms double precision,"
    " observed_at timestamptz, idempotency_key varchar(255), metric_position smallint) ON COMMIT DELETE ROWS"
)


def _json(values: list) -> str:
    return orjson.dumps(values).decode()


def stored_assignments(experiment_id: int, units) -> dict[str, int]:
    """{unit: variant id} of the stored assignments among `units` (up to 10,000 per call)."""
    units = list(units)
    if not units:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_STORED_SQL, {"experiment_id": experiment_id, "units": _json(units)})
        return dict(cursor.fetchall())


def insert_new_assignments(experiment_id: int, rows: list[tuple[str, int]], now: datetime) -> bool:
    """Store first assignments of units none of which is stored: True, or False and nothing stored.

    A binary COPY, in a savepoint: the unique index's own check at each row replaces ON
    CONFLICT's separate probe and confirmation record, and COPY inserts the rows in batches
    (bench/README.md). A unit already stored, or being stored by a concurrent request, fails
    the COPY at its row (rows in sorted order: at the first such unit); the caller then looks
    the stored rows up and takes store_assignments.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(_COPY_MANY_SQL) as copy:
                copy.set_types(_COPY_TYPES)
                for unit, variant_id in rows:
                    copy.write_row((experiment_id, unit, variant_id, now))
    except psycopg.errors.UniqueViolation:   # COPY's errors are psycopg's own, not Django's wrappers
        return False
    return True


def store_assignments(experiment_id: int, rows: list[tuple[str, int]], now: datetime) -> set[str]:
    """Store first assignments, (unit, variant id) in the order given; existing rows win.

    Returns the units this call stored (RETURNING), so that the caller reads back only the
    few another request stored meanwhile. Two array parameters instead of three placeholders
    per row: 10,000 units cost one short statement to send and plan.
    """
    with connection.cursor() as cursor:
        cursor.execute(_STORE_MANY_SQL, {"experiment_id": experiment_id, "now": now,
                                         "units": _json([unit for unit, _ in rows]),
                                         "variant_ids": _json([variant_id for _, variant_id in rows])})
        return {unit for (unit,) in cursor.fetchall()}


def store_assignment(experiment_id: int, unit: str, variant_id: int, now: datetime) -> int | None:
    """Store one first assignment in one statement: its variant id, or None if a stored row won.

    Outside a transaction the statement commits with `synchronous_commit = off`: it returns
    once the row is committed in memory, without waiting for the WAL to reach the disk (a
    third of a first-time request, and a sync worker idle meanwhile: bench/assignment.py).
    Why that is safe for this row, and only this one:

    - The row is a record, not the source of truth: with the weights frozen once started and
      the traffic only rising while running, the hash gives the unit the same variant on any
      later request, and that request stores the row again.
    - Only a PostgreSQL or machine crash loses anything (never the application's, nor a clean
      shutdown): the rows committed in the last few hundred milliseconds (3 x wal_writer_delay,
      600 ms by default). Nothing is corrupted; the database is consistent, merely earlier.
    - Any later synchronous commit flushes the WAL up to itself, so an observation accepted
      for the unit (or any other write after it) makes its assignment durable too: an accepted
      observation never outlives its assignment row.
    - A client that assigns locally stores its rows through the exposures endpoint, in batches
      committed synchronously (store_assignments).

    Inside a transaction (a caller's `atomic`) the caller's commit decides, so the plain
    statement is used: SET LOCAL would make every write of that transaction asynchronous.
    """
    if connection.in_atomic_block:
        return shared.store_assignment(experiment_id, unit, variant_id, now)
    with connection.cursor() as cursor:
        cursor.execute(_STORE_ONE_ASYNC_SQL, {"experiment_id": experiment_id, "unit": unit,
                                              "variant_id": variant_id, "now": now})
        inserted = cursor.fetchone()
    return inserted[0] if inserted else None


def insert_observations(experiment_id: int, pairing: list[Pairing], records: list[tuple], now: datetime, *,
                        covariates: bool = False) -> int:
    """Insert the records, skipping ids already stored or repeated, and add them to the unit sums.

    `records` are (variant_id, unit, value, latency_ms, observed_at, idempotency_key,
    metric_position), of any metrics; returns how many were inserted. An id is skipped when
    stored before under the same metric, and each metric's values add to its own unit sums.
    `covariates` (CUPED metrics): a new unit sum takes its unit's covariate, under the lock that
    keeps a covariate batch from committing beside it (experiments.db.covariate_arms).
    """
    if covariates:
        lock_for_observations(experiment_id)
    with connection.cursor() as cursor:
        cursor.execute(_INCOMING_TABLE_SQL)
        cursor.execute("TRUNCATE incoming_observation")
        with cursor.cursor.copy(f"COPY incoming_observation ({OBSERVATION_COLUMNS}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)
        cursor.execute(
            f"WITH inserted AS (INSERT INTO {OBSERVATIONS} (experiment_id, received_at, {OBSERVATION_COLUMNS}) "
            f"SELECT %(experiment_id)s, %(now)s, {OBSERVATION_COLUMNS} FROM incoming_observation "
            "ON CONFLICT (experiment_id, metric_position, idempotency_key) DO NOTHING "
            "RETURNING metric_position, unit, variant_id, value), "
            f"summed AS ({add_from_sql('inserted', pairing, covariates=covariates)}) "
            "SELECT COUNT(*) FROM inserted",
            {"experiment_id": experiment_id, "now": now},
        )
        return cursor.fetchone()[0]


def tune_analysis_session() -> None:
    """Settings for the rest of the analysis transaction (SET LOCAL: they end with it)."""
    with connection.cursor() as cursor:
        # Room for the aggregates' hash tables (the incomplete units' GROUP BY).
        cursor.execute("SET LOCAL work_mem = %(work_mem)s", {"work_mem": settings.ANALYSIS_WORK_MEM})
        # JIT compilation of the paired summary's dozen aggregates took longer than running
        # them at 10M observations (bench/analysis.py).
        cursor.execute("SET LOCAL jit = off")


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile: percentile_cont(fraction) WITHIN GROUP (ORDER BY expression).

    Linear interpolation between the closest ranks, the same definition as numpy's default
    `percentile` (which experiments.db.portable uses).
    """

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        fraction = float(fraction)
        # The fraction is formatted into the SQL, so it must be a plain number in [0, 1].
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"a percentile fraction is in [0, 1], got {fraction}")
        super().__init__(expression, fraction=repr(fraction), **extra)


def latency_by_variant(experiment: Experiment) -> dict[int, Latency]:
    """Mean, median and 95th percentile of `Observation.latency_ms` per variant id, aggregated in the database."""
    aggregated = (
        Observation.objects.filter(experiment=experiment, latency_ms__isnull=False).order_by()
        .values("variant_id").annotate(
            count=Count("latency_ms"), mean=Avg("latency_ms"),
            p50=PercentileCont("latency_ms", 0.5), p95=PercentileCont("latency_ms", 0.95),
        )
    )
    return {row["variant_id"]: Latency(**row) for row in aggregated}
