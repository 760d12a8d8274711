"""Importing a CSV file of observations inside PostgreSQL: the fast way for import_observations.

The file's bytes are copied as they are into a temporary table (COPY ... CSV, text columns),
then one statement converts, checks and inserts every row and adds them to the unit sums.
Python never touches a row, which is what brings a million-row backfill near the speed of a
raw COPY (bench/ingest.py).

This path only ever accepts a subset of what the row-by-row path accepts: anything it does
not recognise as plainly valid (a value PostgreSQL cannot parse, a rule broken, a header it
does not expect, a timestamp outside the common ISO 8601 forms) makes it give up, with
nothing written, and `import_observations` then runs the row-by-row path over the file,
which either imports it all the same or names every offending line and field. So the rules
and the messages are those of `experiments.observation_input` and the ingestion service;
the tests check that both paths store the same rows and that every rule break falls through.
"""

import csv
from collections.abc import Callable
from pathlib import Path

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from experiments.models import Assignment, Design, Experiment, MetricType, Observation
from experiments.observation_input import FIELDS, MAX_ID_LENGTH, MAX_UNIT_LENGTH
from experiments.services.ingestion import IngestResult, check_accepting
from experiments.unit_outcomes import add_from_sql, pairings

COPY_BLOCK = 1 << 20

# The ISO 8601 forms whose meaning PostgreSQL and Python's datetime.fromisoformat agree on
# (date, time to the minute, second or microsecond, optional Z or +hh:mm); any other
# timestamp goes the row-by-row way. The ranges keep out what only PostgreSQL accepts
# (hour 24, second 60, more than 6 fraction digits, which it rounds where Python truncates).
ISO_TIMESTAMP = (r"^[12]\d{3}-[01]\d-[0-3]\d[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
                 r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$")


def observations_import_csv(*, experiment: Experiment, path: Path,
                            on_bytes: Callable[[int], None] = lambda n: None) -> IngestResult | None:
    """Import the whole CSV file in the database; None (and nothing written) if it needs the row-by-row path.

    Raises WrongState like the ingestion service when the experiment takes no observations.
    """
    if connection.vendor != "postgresql":
        return None
    columns = _header(path)
    if columns is None:
        return None
    now = timezone.now()
    check_accepting(experiment, now)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            staged = _stage(cursor, path, columns, on_bytes)
            sql, params = _insert_sql(experiment, set(columns), now)
            cursor.execute(sql, params)
            inserted = cursor.fetchone()[0]
            Experiment.objects.filter(pk=experiment.pk).update(observation_count=F("observation_count") + inserted)
    except DatabaseError:
        return None   # rolled back: the row-by-row path imports the file or names its errors
    return IngestResult(accepted=inserted, duplicates=staged - inserted)


def _header(path: Path) -> list[str] | None:
    """The column names, if they are all known observation fields, each once, with unit and value."""
    with path.open(encoding="utf-8", newline="") as handle:
        try:
            names = next(csv.reader(handle), None)
        except (csv.Error, UnicodeDecodeError):
            return None
    if not names or len(set(names)) != len(names) or not set(names) <= FIELDS or not {"unit", "value"} <= set(names):
        return None
    return names


def _stage(cursor, path: Path, columns: list[str], on_bytes: Callable[[int], None]) -> int:
    """COPY the file's bytes into a temporary table of text columns; returns the number of rows."""
    # The names are known field names (checked by _header), never other text from the file.
    cursor.execute("DROP TABLE IF EXISTS staged_observation")
    # `line` keeps the file's order, in which the first of two rows with one id is stored.
    cursor.execute("CREATE TEMP TABLE staged_observation (line bigint GENERATED ALWAYS AS IDENTITY, "
                   f"{', '.join(f'{name} text' for name in columns)}) ON COMMIT DROP")
    with path.open("rb") as handle, cursor.cursor.copy(
            f"COPY staged_observation ({', '.join(columns)}) FROM STDIN "
            "WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')") as copy:
        while block := handle.read(COPY_BLOCK):
            copy.write(block)
            on_bytes(len(block))
    return cursor.cursor.rowcount


def _insert_sql(experiment: Experiment, columns: set[str], now) -> tuple[str, list]:
    """One statement: convert and check every staged row, insert them, add them to the unit sums.

    A row that breaks a rule gets a NULL unit, which the column's NOT NULL constraint turns
    into an error, and a cell PostgreSQL cannot convert fails its cast: either way the
    statement fails and the caller falls back. The row count is what the statement returns.
    """
    def cell(name: str) -> str:
        # CSV: an empty cell is an absent field, as in the row-by-row path.
        return f"NULLIF(staged.{name}, '')" if name in columns else "NULL::text"

    variants = list(experiment.variants.all())
    variant_by_key = " ".join(f"WHEN %s THEN {int(v.id)}" for v in variants)
    named_variant = f"(CASE {cell('variant')} {variant_by_key} END)"
    rules = [
        # unit and id: at most 255 characters, not only spaces (an ASCII letter, digit or sign
        # is required here; units of other characters only go the row-by-row way).
        f"length(raw_unit) <= {MAX_UNIT_LENGTH} AND raw_unit ~ '[!-~]'",
        f"(raw_id IS NULL OR (length(raw_id) <= {MAX_ID_LENGTH} AND raw_id ~ '[!-~]'))",
        # Finite numbers in decimal notation (strtod would also read hexadecimal).
        "value IS NOT NULL AND value <> 'NaN'::float8 AND abs(value) <> 'Infinity'::float8",
        "raw_value NOT LIKE '%%x%%' AND raw_value NOT LIKE '%%X%%'",
        "(latency_ms IS NULL OR (latency_ms >= 0 AND latency_ms <> 'Infinity'::float8 "
        "AND raw_latency NOT LIKE '%%x%%' AND raw_latency NOT LIKE '%%X%%'))",
        "(raw_timestamp IS NULL OR observed_at IS NOT NULL)",
        "(raw_variant IS NULL OR named_variant IS NOT NULL)",
    ]
    if experiment.metric_type == MetricType.BINARY:
        rules.append("value IN (0, 1)")
    join = order = ""
    if experiment.design == Design.CHAMPION_CHALLENGER:
        variant_id = "named_variant"
        rules.append("named_variant IS NOT NULL")
    else:
        # The unit's stored assignment gives the variant; a named one must agree with it.
        join = (f"LEFT JOIN {Assignment._meta.db_table} AS assignment "
                "ON assignment.experiment_id = %s AND assignment.unit = staged.unit")
        # A hash join may put the rows out of the file's order (a plain scan of the
        # staged table keeps it): sort them back, for the first of a repeated id to win.
        order = "ORDER BY line"
        variant_id = "assigned_variant"
        rules.append("assigned_variant IS NOT NULL AND (named_variant IS NULL OR named_variant = assigned_variant)")
    assigned = "assignment.variant_id" if join else "NULL::bigint"
    typed = f"""
        SELECT line, {cell('unit')} AS raw_unit, {cell('value')} AS raw_value, {cell('variant')} AS raw_variant,
               {cell('id')} AS raw_id, {cell('timestamp')} AS raw_timestamp, {cell('latency_ms')} AS raw_latency,
               {cell('value')}::float8 AS value, {cell('latency_ms')}::float8 AS latency_ms,
               CASE WHEN {cell('timestamp')} ~ %s THEN {cell('timestamp')}::timestamptz END AS observed_at,
               {named_variant} AS named_variant, {assigned} AS assigned_variant
        FROM staged_observation AS staged {join} {order}"""
    typed_params = [ISO_TIMESTAMP, *(v.key for v in variants), *([experiment.id] if join else [])]
    checked = f"""
        SELECT CASE WHEN {' AND '.join(rules)} THEN raw_unit END AS unit, {variant_id} AS variant_id,
               value, latency_ms, COALESCE(observed_at, %s) AS observed_at, raw_id AS idempotency_key
        FROM ({typed}) AS typed"""
    table = Observation._meta.db_table
    columns_sql = "variant_id, unit, value, latency_ms, observed_at, idempotency_key"
    sql = f"""
        WITH inserted AS (
            INSERT INTO {table} (experiment_id, received_at, {columns_sql})
            SELECT %s, %s, {columns_sql} FROM ({checked}) AS checked
            ON CONFLICT (experiment_id, idempotency_key) DO NOTHING
            RETURNING unit, variant_id, value
        ), summed AS ({add_from_sql('inserted', pairings(experiment))})
        SELECT COUNT(*) FROM inserted"""
    return sql, [experiment.id, now, now, *typed_params, experiment.id]
