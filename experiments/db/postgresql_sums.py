"""PostgreSQL SQL summing observations into the per-unit sums (`UnitOutcome`), for the COPY and INSERT paths.

Sums are per metric: every fragment groups by `metric_position` as well. The sums are computed by the database in the statement that stores the observations, so
no row goes through Python (experiments.unit_outcomes.write explains what a row holds).
Every fragment takes one named parameter, `experiment_id`, so they nest with one dict.
"""

from django.db import connection

from experiments.models import Observation
from experiments.unit_outcomes.write import ADD_ON_CONFLICT, COLUMNS, TABLE, Pairing

OBSERVATIONS = Observation._meta.db_table
# The observation columns every PostgreSQL path writes (besides experiment_id and received_at).
OBSERVATION_COLUMNS = "variant_id, unit, value, latency_ms, observed_at, idempotency_key, metric_position"


def summed_select_sql(source: str, pairing: list[Pairing]) -> str:
    """SELECT of the outcome rows of `source` (any relation with metric_position, unit, variant_id and value).

    One named parameter: `experiment_id`. The pairings are inlined as integer literals: a
    VALUES list of parameters would leave PostgreSQL guessing their types. (SQLite cannot name
    a VALUES list's columns: experiments.db.portable sums in Python, unit_outcomes.write.add_rows.)
    """
    values = ", ".join(f"({int(p.source)}, {int(p.target)}, {'TRUE' if p.own else 'FALSE'})" for p in pairing)
    return f"""
        SELECT %(experiment_id)s, stored.metric_position, stored.unit, pairing.target,
               COUNT(*) FILTER (WHERE pairing.own), COALESCE(SUM(stored.value) FILTER (WHERE pairing.own), 0),
               COUNT(*) FILTER (WHERE NOT pairing.own),
               COALESCE(SUM(stored.value) FILTER (WHERE NOT pairing.own), 0)
        FROM {source} AS stored
        JOIN (VALUES {values}) AS pairing (source, target, own) ON stored.variant_id = pairing.source
        GROUP BY stored.metric_position, stored.unit, pairing.target"""


# Rows go in (unit, metric, variant) order, so that concurrent batches lock shared rows in the
# same order and cannot deadlock (unit_outcomes.write.add_rows sorts alike). The unit leads
# because the sort then compares abbreviated keys of the unit's text: led by the small metric
# number it compared whole texts, and the sums of a file over three metrics took twice as
# long (bench/README.md). Byte order (COLLATE "C", also Python's order of str) sorts twice
# as fast as the database's collation.
_ORDER = 'ORDER BY stored.unit COLLATE "C", stored.metric_position, pairing.target'


def add_from_sql(source: str, pairing: list[Pairing]) -> str:
    """INSERT adding the rows of `source` (e.g. the CTE of the observations just inserted) to the sums.

    One named parameter: `experiment_id`.
    """
    return f"INSERT INTO {TABLE} ({COLUMNS}) {summed_select_sql(source, pairing)} {_ORDER} {ADD_ON_CONFLICT}"


def summed_rows_sql(source: str, pairing: list[Pairing]) -> str:
    """The rows `add_from_sql` would insert, typed as the table's columns (for a binary COPY into it)."""
    return (f"SELECT experiment::bigint, metric::smallint, unit, target::bigint, n::integer, total, "
            f"control_n::integer, control_total FROM ({summed_select_sql(source, pairing)} {_ORDER}) "
            "AS summed (experiment, metric, unit, target, n, total, control_n, control_total)")


def rebuild_unit_outcomes(experiment_id: int, pairing: list[Pairing]) -> int:
    """Recompute the experiment's unit outcomes from its stored observations; returns the row count."""
    params = {"experiment_id": experiment_id}
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE experiment_id = %(experiment_id)s", params)
        source = (f"(SELECT metric_position, unit, variant_id, value FROM {OBSERVATIONS} "
                  "WHERE experiment_id = %(experiment_id)s)")
        cursor.execute(f"INSERT INTO {TABLE} ({COLUMNS}) {summed_select_sql(source, pairing)}", params)
        return cursor.rowcount
