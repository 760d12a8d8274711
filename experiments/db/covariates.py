"""Storing covariates (CUPED), on either engine: one value per (experiment, metric, unit), the first kept.

The engine split of experiments.db, kept in its own module: `insert_covariates` (a REST batch)
and `import_covariates` (a file, chunk by chunk) choose PostgreSQL's path or the portable one
from `connection.vendor`, as experiments.db.backend() does. Both give the same results:

- PostgreSQL: a batch is one INSERT ... SELECT over two JSON array parameters (one quoted
  string each, as experiments.db.postgresql's assignments) ... ON CONFLICT DO NOTHING
  RETURNING, which counts the rows stored. A file's chunks are COPYed into a temporary
  staging table, numbered in the file's order, then one INSERT ... SELECT DISTINCT ON
  (metric, unit) ... ORDER BY line ... ON CONFLICT DO NOTHING stores the first value of each.
- Portable (SQLite): the stored keys are read first (SQLite runs one writer at a time), then
  the new rows go in through `bulk_create(ignore_conflicts=True)`.

Records are (metric_position, unit, value), already checked by experiments.services.covariates.
"""

from collections.abc import Iterable
from datetime import datetime

import orjson
from django.db import connection

from experiments.models import Covariate

COVARIATES = Covariate._meta.db_table

_INSERT_SQL = (
    f"INSERT INTO {COVARIATES} (experiment_id, metric_position, unit, value, received_at) "
    "SELECT %(experiment_id)s, position::smallint, unit, value::float8, %(now)s FROM ROWS FROM "
    "(json_array_elements_text(%(positions)s::json), json_array_elements_text(%(units)s::json), "
    "json_array_elements_text(%(values)s::json)) WITH ORDINALITY AS new(position, unit, value, line) "
    "ORDER BY line "
    "ON CONFLICT (experiment_id, metric_position, unit) DO NOTHING RETURNING 1"
)

_STAGING_SQL = (
    "CREATE TEMP TABLE staged_covariate (line bigint GENERATED ALWAYS AS IDENTITY, "
    "metric_position smallint NOT NULL, unit varchar(255) NOT NULL, value double precision NOT NULL) "
    "ON COMMIT DROP"
)

_FROM_STAGING_SQL = (
    "WITH inserted AS ("
    f"INSERT INTO {COVARIATES} (experiment_id, metric_position, unit, value, received_at) "
    "SELECT %(experiment_id)s, metric_position, unit, value, %(now)s FROM ("
    "SELECT DISTINCT ON (metric_position, unit) metric_position, unit, value FROM staged_covariate "
    "ORDER BY metric_position, unit, line) AS first_values "
    "ON CONFLICT (experiment_id, metric_position, unit) DO NOTHING RETURNING 1) "
    "SELECT COUNT(*) FROM inserted"
)


def _first_of_each(records: Iterable[tuple[int, str, float]]) -> list[tuple[int, str, float]]:
    """The records without repeats of a (metric, unit), the first of each kept, in order."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for record in records:
        if (record[0], record[1]) not in seen:
            seen.add((record[0], record[1]))
            unique.append(record)
    return unique


def _dumps(values: list) -> str:
    return orjson.dumps(values).decode()


def insert_covariates(experiment_id: int, records: list[tuple[int, str, float]], now: datetime) -> int:
    """Store the records, a (metric, unit) stored before or repeated skipped; returns how many were stored."""
    records = _first_of_each(records)
    if not records:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_SQL, {
                "experiment_id": experiment_id, "now": now,
                "positions": _dumps([position for position, _, _ in records]),
                "units": _dumps([unit for _, unit, _ in records]),
                # repr keeps every digit of a double; the values are finite (checked before).
                "values": _dumps([repr(float(value)) for _, _, value in records]),
            })
            return len(cursor.fetchall())
    return _insert_portable(experiment_id, records, now)


def _insert_portable(experiment_id: int, records: list[tuple[int, str, float]], now: datetime) -> int:
    stored = set()
    for start in range(0, len(records), 500):
        part = records[start:start + 500]
        stored |= set(Covariate.objects.filter(experiment_id=experiment_id, unit__in={u for _, u, _ in part})
                      .values_list("metric_position", "unit"))
    fresh = [Covariate(experiment_id=experiment_id, metric_position=position, unit=unit, value=value,
                       received_at=now)
             for position, unit, value in records if (position, unit) not in stored]
    Covariate.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=500)
    return len(fresh)


def import_covariates(experiment_id: int, chunks: Iterable[list[tuple[int, str, float]]],
                      now: datetime) -> tuple[int, int]:
    """Store a file's records, given chunk by chunk, within the caller's transaction: (accepted, duplicates).

    PostgreSQL: COPY into the staging table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING.
    An exception raised while the chunks are produced (a bad row) leaves the caller to roll back.
    """
    if connection.vendor != "postgresql":
        accepted = total = 0
        for chunk in chunks:
            total += len(chunk)
            accepted += _insert_portable(experiment_id, _first_of_each(chunk), now) if chunk else 0
        return accepted, total - accepted
    total = 0
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS staged_covariate")
        cursor.execute(_STAGING_SQL)
        for chunk in chunks:
            with cursor.cursor.copy("COPY staged_covariate (metric_position, unit, value) FROM STDIN") as copy:
                for record in chunk:
                    copy.write_row(record)
            total += len(chunk)
        cursor.execute(_FROM_STAGING_SQL, {"experiment_id": experiment_id, "now": now})
        accepted = cursor.fetchone()[0]
        cursor.execute("DROP TABLE staged_covariate")
    return accepted, total - accepted
