"""PostgreSQL SQL adding observations to the per-unit sums (`UnitOutcome`), for COPY and INSERT paths.

experiments.unit_outcomes.write has the SELECT both engines run; these wrap it in what only
PostgreSQL takes (COLLATE "C", typed casts for a binary COPY).
"""

from experiments.unit_outcomes.write import ADD_ON_CONFLICT, COLUMNS, TABLE, Pairing, summed_select_sql

# Rows go in (unit, variant) order, so that concurrent batches lock shared units in the same
# order and cannot deadlock; byte order (COLLATE "C", also Python's order of str) sorts twice
# as fast as the database's collation.
_ORDER = 'ORDER BY stored.unit COLLATE "C", pairing.target'


def add_from_sql(source: str, pairing: list[Pairing]) -> str:
    """INSERT adding the rows of `source` (e.g. the CTE of the observations just inserted) to the sums.

    One named parameter: `experiment_id`.
    """
    return f"INSERT INTO {TABLE} ({COLUMNS}) {summed_select_sql(source, pairing)} {_ORDER} {ADD_ON_CONFLICT}"


def summed_rows_sql(source: str, pairing: list[Pairing]) -> str:
    """The rows `add_from_sql` would insert, typed as the table's columns (for a binary COPY into it)."""
    return (f"SELECT experiment::bigint, unit, target::bigint, n::integer, total, control_n::integer, control_total "
            f"FROM ({summed_select_sql(source, pairing)} {_ORDER}) "
            "AS summed (experiment, unit, target, n, total, control_n, control_total)")
