"""Importing a CSV file of observations inside PostgreSQL: the fast way for import_observations.

The file's bytes are copied as they are into a temporary table (COPY ... CSV, text columns),
then SQL converts and checks every row, stores it and adds it to the unit sums: for an
experiment without observations, a second connection converts and checks while this one
COPYs the rows in (_import_fresh); otherwise one INSERT ... ON CONFLICT statement. Python
never touches a row, which is what brings a million-row backfill towards the speed of a
raw COPY (bench/ingest.py, figures in bench/README.md).

An optional `metric` column names each row's metric by key (empty: the primary); SQL turns
it into `metric_position`, and an unknown key is a broken rule like any other.

The second connection sees only committed data: an A/B file's units must have been
assigned, and their assignments committed, before the import starts (as they are when
assigned through the API).

This path only ever accepts a subset of what the row-by-row path accepts: anything it does
not recognise as plainly valid (a value PostgreSQL cannot parse, a rule broken, a timestamp
outside the common ISO 8601 forms) fails a statement, and the caller
(experiments.services.csv_import) rolls back and gives up, so that `import_observations`
runs the row-by-row path over the file, which either imports it all the same or names every
offending line and field. So the rules and the messages are those of
`experiments.observation_input` and the ingestion service; the tests check that both paths
store the same rows and that every rule break falls through.

Every SQL fragment here takes its parameters by name from one dict (`_params`), so any
fragment can be run, or nested in another, with the same dict.
"""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from psycopg.errors import UniqueViolation

from experiments.choices import Design
from experiments.db.covariate_arms import lock_for_observations
from experiments.db.postgresql_sums import OBSERVATION_COLUMNS, add_from_sql, outcome_columns, summed_rows_sql
from experiments.limits import MAX_ABS_VALUE, MAX_ID_LENGTH, MAX_LATENCY_MS, MAX_UNIT_LENGTH
from experiments.models import observed_metrics
from experiments.models import Assignment, Experiment, Observation, UnitOutcome
from experiments.unit_outcomes.write import pairings, takes_covariates

COPY_BLOCK = 1 << 20
PIPE_BLOCK = 1 << 17   # psycopg splits larger writes into blocks of this size anyway

# Python's str.strip() removes these ASCII characters (and more outside ASCII).
ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
# PostgreSQL work_mem for the statement: the per-unit sums of a million rows hash and sort in memory.
WORK_MEM = "256MB"


class CheckedSql(NamedTuple):
    """The staged rows as two SELECTs, both taking their parameters from `params`.

    `typed`: metric_position, unit, variant_id and value converted. `checked`: the observation's
    columns, with a NULL unit where a rule is broken.
    """

    typed: str
    checked: str
    params: dict[str, Any]


def import_csv(*, experiment: Experiment, path: Path, columns: list[str], now: datetime, fresh: bool,
               on_bytes: Callable[[int], None]) -> tuple[int, int]:
    """Import the whole file within the caller's transaction: (accepted, duplicates).

    `columns` are the file's header, already checked to be known observation fields. A row
    this path does not take raises DatabaseError: the caller rolls back and gives up.
    `fresh`: the experiment has no observations yet, so no id and no unit can be repeated
    from before, and rows and sums can be COPYed, without the ON CONFLICT that costs a good
    part of a COPY per row (see bench/README.md).
    """
    joined = experiment.design == Design.AB
    # CUPED metrics: each new unit sum takes its unit's covariate, under the lock that keeps a
    # covariate batch from committing beside it (experiments.db.covariate_arms). Taken first, so
    # that the second connection's snapshot of the covariates comes after it.
    covariates = takes_covariates(experiment)
    if covariates:
        lock_for_observations(experiment.id)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        counts = (_import_fresh(cursor, experiment, path, columns, now, joined, covariates, on_bytes)
                  if fresh else None)
        if counts is None:   # (the progress bar has seen the file once already if fresh)
            staged = stage_csv(cursor.cursor, path, columns, numbered=joined,
                            on_bytes=(lambda n: None) if fresh else on_bytes)
            cursor.execute(*_insert_sql(experiment, set(columns), now, joined=joined, covariates=covariates))
            inserted = cursor.fetchone()[0]
            counts = (inserted, staged - inserted)
    return counts


def _import_fresh(cursor, experiment: Experiment, path: Path, columns: list[str], now, joined: bool,
                  covariates: bool, on_bytes: Callable[[int], None]) -> tuple[int, int] | None:
    """Import into an experiment without observations, on two database backends at once.

    A second connection stages the file, converts and checks the rows and streams them, then
    their unit sums, as binary COPY data; this connection COPYs them into the tables within
    its transaction. Checking (one backend) and storing (the other) overlap on two cores, and
    COPY stores rows for less than INSERT. Together faster than one statement (bench/ingest.py,
    figures in bench/README.md). Without ON CONFLICT, an id stored twice (in the file, or meanwhile
    by the endpoint) fails on the unique index: then None, with this part rolled back, and
    the caller runs the one statement with ON CONFLICT. A rule break fails the COPY
    (NOT NULL unit, see _checked_sql) and the whole import falls back to row by row.
    """
    reader = connection.get_new_connection(connection.get_connection_params())
    try:
        with reader.cursor() as source:
            source.execute("SET TIME ZONE 'UTC'")   # as Django's connections: timestamps without offset are UTC
            source.execute(f"SET work_mem = '{WORK_MEM}'")
            # Any repeated id fails this path, so the file's order (which decides which of two
            # rows with one id is kept) does not matter here.
            staged = stage_csv(source, path, columns, numbered=False, on_bytes=on_bytes)
            sql = _checked_sql(experiment, set(columns), now, joined=joined, ordered=False)
            # Typed as the columns of OBSERVATION_COLUMNS, in its order, for the binary COPY.
            rows = source.mogrify(
                "SELECT %(experiment_id)s::bigint, %(now)s::timestamptz, variant_id::bigint, unit, value, latency_ms, "
                f"observed_at, idempotency_key, metric_position::smallint FROM ({sql.checked}) AS checked", sql.params)
            pairing = pairings(experiment.design, experiment.variants.all())
            sums = source.mogrify(summed_rows_sql(f"({sql.typed})", pairing, covariates=covariates), sql.params)
            try:
                with transaction.atomic(), connection.wrap_database_errors:
                    pipe_copy(source, rows, cursor.cursor, f"COPY {Observation._meta.db_table} (experiment_id, "
                          f"received_at, {OBSERVATION_COLUMNS})")
                    pipe_copy(source, sums, cursor.cursor,
                              f"COPY {UnitOutcome._meta.db_table} ({outcome_columns(covariates)})")
            except IntegrityError as error:
                if isinstance(error.__cause__, UniqueViolation):
                    return None
                raise
        return staged, 0
    finally:
        reader.close()


def pipe_copy(source, query: str, target, copy_into: str) -> None:
    """Stream the rows of `query` (on the source cursor) into the target cursor's COPY, in binary.

    COPY TO sends a message per row; psycopg would also send each write as it comes, so
    they are gathered into blocks of PIPE_BLOCK bytes (a write per row cost the Python side
    more than the rest of its work per row, see bench/README.md).
    """
    with source.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as rows, \
            target.copy(f"{copy_into} FROM STDIN (FORMAT binary)") as into:
        pending = bytearray()
        for row in rows:
            pending += row
            if len(pending) >= PIPE_BLOCK:
                into.write(bytes(pending))
                pending.clear()
        if pending:
            into.write(bytes(pending))


def stage_csv(cursor, path: Path, columns: list[str], *, numbered: bool, on_bytes: Callable[[int], None],
           table: str = "staged_observation") -> int:
    """COPY the file's bytes into a temporary table of text columns; returns the number of rows.

    `numbered` adds the line order, for when the rows must be joined (a plain scan of the
    table keeps the file's order by itself, in which the first of two rows with one id wins).
    """
    # The names are known field names (checked by csv_import.csv_header), never other text from the file.
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    line = "line bigint GENERATED ALWAYS AS IDENTITY, " if numbered else ""
    cursor.execute(f"CREATE TEMP TABLE {table} ({line}{', '.join(f'{name} text' for name in columns)}) "
                   "ON COMMIT DROP")
    with path.open("rb") as handle, cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN "
            "WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')") as copy:
        while block := handle.read(COPY_BLOCK):
            copy.write(block)
            on_bytes(len(block))
    return cursor.rowcount


def identifier_rule(column: str, max_length: int) -> str:
    """At most max_length characters and not only whitespace, as observation_input's _identifier.

    Ordered from cheap to exact: a text of at most max_length bytes is short enough, one that
    starts with an ASCII letter, digit or sign is not blank. Otherwise an ASCII text is
    checked exactly (Python strips ASCII_WHITESPACE), and one with other characters must
    contain an ASCII letter, digit or sign, since Python also strips Unicode spaces (a text
    of other characters only goes the row-by-row way).
    """
    whitespace = ASCII_WHITESPACE.encode("unicode_escape").decode()
    return (f"(octet_length({column}) <= {max_length} OR length({column}) <= {max_length}) AND "
            f"CASE WHEN substr({column}, 1, 1) COLLATE \"C\" BETWEEN '!' AND '~' THEN TRUE "
            f"WHEN octet_length({column}) = length({column}) THEN btrim({column}, E'{whitespace}') <> '' "
            f"ELSE {column} ~ '[!-~]' END")


def _timestamp_rule(column: str) -> str:
    """The ISO 8601 forms PostgreSQL and Python's fromisoformat read alike.

    YYYY-MM-DD, T or a space, HH:MM:SS, then only a fraction of at most 6 digits (PostgreSQL
    rounds more, Python truncates) and Z or an offset (PostgreSQL also takes zone names,
    Python does not); hour and second not 24 and 60 (PostgreSQL takes 24:00:00 and a 60th
    second, Python does not). Only the tail goes through a regular expression: over the
    whole text one costs several microseconds per row (bench/ingest.py). Anything else
    goes row by row.
    """
    return (f"({column} IS NULL OR ({column} LIKE '____-__-_____:__:__%%' AND substr({column}, 11, 1) IN ('T', ' ') "
            f"AND substr({column}, 12, 2) <> '24' AND substr({column}, 18, 2) <> '60' "
            f"AND (length({column}) = 19 "
            f"OR substr({column}, 20) ~ '^(\\.[0-9]{{1,6}})?(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)?$')))")


def _params(experiment: Experiment, variants: list, metrics: dict, now) -> dict[str, Any]:
    """The one dict of named parameters every fragment below takes.

    Variant keys as `variant_<i>`, metric keys as `metric_<position>` (`metric_0`: the primary).
    """
    return {"experiment_id": experiment.id, "now": now,
            **{f"variant_{index}": variant.key for index, variant in enumerate(variants)},
            **{f"metric_{metric.position}": key for key, metric in metrics.items()}}


def _metric_sql(metrics: dict, columns: set[str], cell: Callable[[str], str]) -> tuple[str, list[str]]:
    """The row's metric position as SQL (NULL for an unknown metric), and the rules that follow from it.

    Without a `metric` column every row is the primary's: the position is the constant 0 and
    the binary rule the primary's, exactly as for a single-metric experiment.
    """
    if "metric" in columns:
        # An empty cell is the primary's, as an absent field is in the row-by-row path.
        whens = " ".join(f"WHEN %(metric_{m.position})s THEN {int(m.position)}" for m in metrics.values())
        position = f"(CASE COALESCE({cell('metric')}, %(metric_0)s) {whens} END)"
        known, rules = list(metrics.values()), ["metric_position IS NOT NULL"]
    else:
        position, known, rules = "0", [m for m in metrics.values() if m.position == 0], []
    binary = [m.position for m in known if m.binary]
    if len(binary) == len(known):
        rules.append("value IN (0, 1)")
    elif binary:
        rules.append(f"(value IN (0, 1) OR metric_position NOT IN ({', '.join(str(int(p)) for p in binary)}))")
    return position, rules


def _checked_sql(experiment: Experiment, columns: set[str], now, *, joined: bool, ordered: bool) -> CheckedSql:
    """Two SELECTs over the staged rows, `typed` and `checked` (see CheckedSql), and their parameters.

    A NULL unit fails the column's NOT NULL constraint and a cell PostgreSQL cannot convert
    fails its cast: either way storing fails and the import falls back. Numbers go through
    numeric, which reads only decimal notation (float8's strtod would also read hexadecimal,
    Python does not). `ordered`: in the file's order (needs the staged `line`).
    """
    def cell(name: str) -> str:
        # CSV: an empty cell is an absent field, as in the row-by-row path.
        return f"NULLIF(staged.{name}, '')" if name in columns else "NULL::text"

    variants = list(experiment.variants.all())
    metrics = observed_metrics(experiment)
    metric_position, metric_rules = _metric_sql(metrics, columns, cell)
    named_variant = (f"(CASE {cell('variant')} "
                     f"{' '.join(f'WHEN %(variant_{i})s THEN {int(v.id)}' for i, v in enumerate(variants))} END)")
    rules = [
        identifier_rule("raw_unit", MAX_UNIT_LENGTH),
        f"(raw_id IS NULL OR ({identifier_rule('raw_id', MAX_ID_LENGTH)}))",
        # The bounds of experiments.limits, as the row-by-row path checks them. PostgreSQL orders
        # NaN above every number (and Infinity above every finite one), so `<=` refuses both.
        f"value IS NOT NULL AND abs(value) <= {float(MAX_ABS_VALUE)!r}::float8",
        f"(latency_ms IS NULL OR (latency_ms >= 0 AND latency_ms <= {float(MAX_LATENCY_MS)!r}::float8))",
        _timestamp_rule("raw_timestamp"),
        "(raw_variant IS NULL OR named_variant IS NOT NULL)",
        *metric_rules,
    ]
    if joined:
        # A/B: the unit's stored assignment gives the variant; a named one must agree with it.
        # A hash join may reorder the rows: ORDER BY line puts them back in the file's order.
        source = (f"staged_observation AS staged LEFT JOIN {Assignment._meta.db_table} AS assignment "
                  "ON assignment.experiment_id = %(experiment_id)s AND assignment.unit = staged.unit"
                  + (" ORDER BY staged.line" if ordered else ""))
        assigned, variant_id = "assignment.variant_id", "assigned_variant"
        rules.append("assigned_variant IS NOT NULL AND (named_variant IS NULL OR named_variant = assigned_variant)")
    else:
        source = "staged_observation AS staged"
        assigned, variant_id = "NULL::bigint", "named_variant"
        rules.append("named_variant IS NOT NULL")
    converted = f"""
        SELECT {cell('unit')} AS raw_unit, {cell('variant')} AS raw_variant, {cell('id')} AS raw_id,
               {cell('timestamp')} AS raw_timestamp,
               {cell('value')}::numeric::float8 AS value, {cell('latency_ms')}::numeric::float8 AS latency_ms,
               {cell('timestamp')}::timestamptz AS observed_at,
               {named_variant} AS named_variant, {assigned} AS assigned_variant, {metric_position} AS metric_position
        FROM {source}"""
    typed = (f"SELECT metric_position, raw_unit AS unit, {variant_id} AS variant_id, value "
             f"FROM ({converted}) AS converted")
    checked = f"""
        SELECT CASE WHEN {' AND '.join(rules)} THEN raw_unit END AS unit, {variant_id} AS variant_id,
               value, latency_ms, COALESCE(observed_at, %(now)s) AS observed_at, raw_id AS idempotency_key,
               metric_position
        FROM ({converted}) AS converted"""
    return CheckedSql(typed, checked, _params(experiment, variants, metrics, now))


def _insert_sql(experiment: Experiment, columns: set[str], now, *, joined: bool,
                covariates: bool = False) -> tuple[str, dict[str, Any]]:
    """One statement: insert the checked rows, skipping ids stored before, and add them to the unit sums."""
    checked = _checked_sql(experiment, columns, now, joined=joined, ordered=joined)
    sql = f"""
        WITH inserted AS (
            INSERT INTO {Observation._meta.db_table} (experiment_id, received_at, {OBSERVATION_COLUMNS})
            SELECT %(experiment_id)s, %(now)s, {OBSERVATION_COLUMNS} FROM ({checked.checked}) AS checked
            ON CONFLICT (experiment_id, metric_position, idempotency_key) DO NOTHING
            RETURNING metric_position, unit, variant_id, value
        ), summed AS ({add_from_sql('inserted', pairings(experiment.design, experiment.variants.all()),
                                    covariates=covariates)})
        SELECT COUNT(*) FROM inserted"""
    return sql, checked.params
