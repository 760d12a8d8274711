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

Every path also keeps CUPED's precomputed columns (experiments.db.covariate_arms): a new
covariate takes its unit's arm where the unit is assigned, the unit's outcome rows of that
metric take the covariate, and each runs under the experiment's exclusive advisory lock, so
that no observation batch commits beside it.

Records are (metric_position, unit, value), already checked by experiments.services.covariates.

`import_covariates_csv` is PostgreSQL's fast path for a CSV file: its bytes are COPYed into a
staging table of text columns and one INSERT ... SELECT converts, checks and stores them, so
Python never touches a row. Like the observations' (experiments.db.postgresql_csv, whose
`identifier_rule` it shares) it only accepts a subset of what the row-by-row path accepts:
a cell it cannot convert or a rule broken fails the statement (a NULL unit or metric position
fails its NOT NULL column), the caller rolls back and the file goes row by row, which imports
it all the same or names every offending line and field.
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

import orjson
from django.db import IntegrityError, connection, transaction
from psycopg.errors import UniqueViolation

from experiments.db.covariate_arms import covariate_of_outcomes_sql, lock_for_covariates
from experiments.db.postgresql_csv import identifier_rule, pipe_copy, stage_csv
from experiments.limits import MAX_ABS_VALUE, MAX_UNIT_LENGTH
from experiments.models import Assignment, Covariate, UnitOutcome

ASSIGNMENTS = Assignment._meta.db_table
COVARIATES = Covariate._meta.db_table
OUTCOMES = UnitOutcome._meta.db_table
# The temporary table a CSV file is COPYed into as it is (text columns, numbered in the file's order).
STAGED = "staged_covariate_csv"

# The unit's arm where it is assigned (`{rows}`: the relation of the new rows), and the covariate
# on the unit's outcome rows already stored (experiments.db.covariate_arms), from the CTE
# `inserted` of the rows a statement stored.
_ARM_JOIN = (f"LEFT JOIN {ASSIGNMENTS} AS assignment ON assignment.experiment_id = %(experiment_id)s "
             "AND assignment.unit = {rows}.unit")
_COLUMNS = "experiment_id, metric_position, unit, value, received_at, variant_id"
_RETURNING = "RETURNING metric_position, unit, value"
_OUTCOMES_CTE = f"outcomes AS ({covariate_of_outcomes_sql('inserted')})"

_INSERT_SQL = (
    f"WITH inserted AS (INSERT INTO {COVARIATES} ({_COLUMNS}) "
    "SELECT %(experiment_id)s, new.position::smallint, new.unit, new.value::float8, %(now)s, assignment.variant_id "
    "FROM ROWS FROM "
    "(json_array_elements_text(%(positions)s::json), json_array_elements_text(%(units)s::json), "
    "json_array_elements_text(%(values)s::json)) WITH ORDINALITY AS new(position, unit, value, line) "
    f"{_ARM_JOIN.format(rows='new')} ORDER BY new.line "
    f"ON CONFLICT (experiment_id, metric_position, unit) DO NOTHING {_RETURNING}), {_OUTCOMES_CTE} "
    "SELECT COUNT(*) FROM inserted"
)

_STAGING_SQL = (
    "CREATE TEMP TABLE staged_covariate (line bigint GENERATED ALWAYS AS IDENTITY, "
    "metric_position smallint NOT NULL, unit varchar(255) NOT NULL, value double precision NOT NULL) "
    "ON COMMIT DROP"
)

_FROM_STAGING_SQL = (
    "WITH inserted AS ("
    f"INSERT INTO {COVARIATES} ({_COLUMNS}) "
    "SELECT %(experiment_id)s, first_values.metric_position, first_values.unit, first_values.value, %(now)s, "
    "assignment.variant_id FROM ("
    "SELECT DISTINCT ON (metric_position, unit) metric_position, unit, value FROM staged_covariate "
    f"ORDER BY metric_position, unit, line) AS first_values {_ARM_JOIN.format(rows='first_values')} "
    f"ON CONFLICT (experiment_id, metric_position, unit) DO NOTHING {_RETURNING}), {_OUTCOMES_CTE} "
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
    lock_for_covariates(experiment_id)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_SQL, {
                "experiment_id": experiment_id, "now": now,
                "positions": _dumps([position for position, _, _ in records]),
                "units": _dumps([unit for _, unit, _ in records]),
                # repr keeps every digit of a double; the values are finite (checked before).
                "values": _dumps([repr(float(value)) for _, _, value in records]),
            })
            return cursor.fetchone()[0]
    return _insert_portable(experiment_id, records, now)


def _insert_portable(experiment_id: int, records: list[tuple[int, str, float]], now: datetime) -> int:
    """As the PostgreSQL statement: the first value of each, with its unit's arm, and on its outcome rows."""
    stored, arms = set(), {}
    for start in range(0, len(records), 500):
        units = {u for _, u, _ in records[start:start + 500]}
        stored |= set(Covariate.objects.filter(experiment_id=experiment_id, unit__in=units)
                      .values_list("metric_position", "unit"))
        arms.update(Assignment.objects.filter(experiment_id=experiment_id, unit__in=units)
                    .values_list("unit", "variant_id"))
    fresh = [Covariate(experiment_id=experiment_id, metric_position=position, unit=unit, value=value,
                       received_at=now, variant_id=arms.get(unit))
             for position, unit, value in records if (position, unit) not in stored]
    Covariate.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=500)
    for covariate in fresh:
        UnitOutcome.objects.filter(experiment_id=experiment_id, metric_position=covariate.metric_position,
                                   unit=covariate.unit).update(covariate=covariate.value)
    return len(fresh)


def import_covariates(experiment_id: int, chunks: Iterable[list[tuple[int, str, float]]],
                      now: datetime) -> tuple[int, int]:
    """Store a file's records, given chunk by chunk, within the caller's transaction: (accepted, duplicates).

    PostgreSQL: COPY into the staging table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING.
    An exception raised while the chunks are produced (a bad row) leaves the caller to roll back.
    """
    lock_for_covariates(experiment_id)
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


def _covariates_on_stored_outcomes(cursor, experiment_id: int) -> None:
    """After a fresh import (every covariate of the experiment is new): the covariate on the outcome
    rows already stored. Usually there are none (covariates are loaded in draft): then no join."""
    params = {"experiment_id": experiment_id}
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {OUTCOMES} WHERE experiment_id = %(experiment_id)s)", params)
    if cursor.fetchone()[0]:
        source = (f"(SELECT metric_position, unit, value FROM {COVARIATES} "
                  "WHERE experiment_id = %(experiment_id)s)")
        cursor.execute(covariate_of_outcomes_sql(source), params)


def _checked_sql(columns: list[str], metrics: dict[str, int]) -> tuple[str, dict]:
    """The staged rows converted and checked: metric_position, unit (NULL where a rule is broken),
    value and line; its parameters. `metrics`: {key: position} of the metrics that take covariates."""
    def cell(name: str) -> str:
        # An empty cell is an absent field, as in the row-by-row path (no metric: the primary).
        return f"NULLIF(staged.{name}, '')" if name in columns else "NULL::text"

    primary = next((key for key, position in metrics.items() if position == 0), None)
    whens = " ".join(f"WHEN %(metric_{position})s THEN {int(position)}" for position in metrics.values())
    # NULL for an unknown metric, one without CUPED, or the primary without it: the NOT NULL column refuses it.
    position = f"(CASE COALESCE({cell('metric')}, %(primary)s) {whens} END)" if metrics else "NULL"
    rules = [identifier_rule("raw_unit", MAX_UNIT_LENGTH),
             # PostgreSQL orders NaN and Infinity above every finite number, so `<=` refuses both.
             f"value IS NOT NULL AND abs(value) <= {float(MAX_ABS_VALUE)!r}::float8"]
    sql = f"""
        SELECT metric_position, CASE WHEN {' AND '.join(rules)} THEN raw_unit END AS unit, value, line
        FROM (SELECT {cell('unit')} AS raw_unit, {cell('value')}::numeric::float8 AS value,
                     {position}::smallint AS metric_position, staged.line
              FROM {STAGED} AS staged) AS converted"""
    return sql, {"primary": primary, **{f"metric_{position}": key for key, position in metrics.items()}}


def _import_fresh(cursor, experiment_id: int, path: Path, columns: list[str], metrics: dict[str, int],
                  now: datetime, on_bytes: Callable[[int], None]) -> int | None:
    """Nothing stored yet: a second connection stages, converts and checks the rows and streams them
    as binary COPY data into this connection's COPY, within its transaction (as the observations'
    fresh import: converting on one backend and storing on the other overlap on two cores, and
    COPY stores a row for less than INSERT). The rows stored, or None with this part rolled back
    when a (metric, unit) repeats in the file or was stored meanwhile (the primary key refuses it).
    """
    reader = connection.get_new_connection(connection.get_connection_params())
    try:
        with reader.cursor() as source:
            source.execute("SET work_mem = '256MB'")
            staged = stage_csv(source, path, columns, numbered=True, on_bytes=on_bytes, table=STAGED)
            sql, names = _checked_sql(columns, metrics)
            # The reader's snapshot is taken after this transaction's lock (lock_for_covariates): it sees
            # every assignment the resolver may have passed (experiments.db.covariate_arms).
            rows = source.mogrify(
                f"SELECT %(experiment_id)s::bigint, checked.metric_position, checked.unit, checked.value, "
                f"%(now)s::timestamptz, assignment.variant_id FROM ({sql}) AS checked "
                f"{_ARM_JOIN.format(rows='checked')}", {"experiment_id": experiment_id, "now": now, **names})
            try:
                with transaction.atomic(), connection.wrap_database_errors:
                    pipe_copy(source, rows, cursor.cursor, f"COPY {COVARIATES} ({_COLUMNS})")
                    _covariates_on_stored_outcomes(cursor, experiment_id)
            except IntegrityError as error:
                if isinstance(error.__cause__, UniqueViolation):
                    return None
                raise   # a rule broken (a NULL unit or metric): the caller goes row by row
        return staged
    finally:
        reader.close()


def import_covariates_csv(*, experiment_id: int, path: Path, columns: list[str], metrics: dict[str, int],
                          now: datetime, on_bytes: Callable[[int], None]) -> tuple[int, int] | None:
    """PostgreSQL: import a CSV file with the header `columns` (known fields, each once) inside the
    database, within the caller's transaction: (accepted, duplicates). DatabaseError when a row is
    not plainly valid: the caller rolls back and goes row by row. None on other engines.

    Into an experiment without covariates, `_import_fresh`; otherwise (or when that meets a
    repeat) the first value of each (metric, unit) in the file's order, ON CONFLICT DO NOTHING.
    """
    if connection.vendor != "postgresql":
        return None
    params = {"experiment_id": experiment_id, "now": now}
    lock_for_covariates(experiment_id)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {COVARIATES} WHERE experiment_id = %(experiment_id)s)",
                       params)
        if cursor.fetchone()[0]:
            stored = _import_fresh(cursor, experiment_id, path, columns, metrics, now, on_bytes)
            if stored is not None:
                return stored, 0
            on_bytes = lambda n: None  # noqa: E731 (the progress bar has seen the file once already)
        cursor.execute("SET LOCAL work_mem = '256MB'")   # the DISTINCT ON of a million rows sorts in memory
        staged = stage_csv(cursor.cursor, path, columns, numbered=True, on_bytes=on_bytes, table=STAGED)
        sql, names = _checked_sql(columns, metrics)
        cursor.execute(f"""
            WITH inserted AS (
                INSERT INTO {COVARIATES} ({_COLUMNS})
                SELECT %(experiment_id)s, first_values.metric_position, first_values.unit, first_values.value,
                       %(now)s, assignment.variant_id FROM (
                    SELECT DISTINCT ON (metric_position, unit) metric_position, unit, value FROM ({sql}) AS checked
                    ORDER BY metric_position, unit, line) AS first_values {_ARM_JOIN.format(rows='first_values')}
                ON CONFLICT (experiment_id, metric_position, unit) DO NOTHING {_RETURNING}), {_OUTCOMES_CTE}
            SELECT COUNT(*) FROM inserted""", {**params, **names})
        accepted = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {STAGED}")
    return accepted, staged - accepted
