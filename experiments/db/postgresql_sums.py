"""PostgreSQL SQL summing observations into the per-unit sums (`UnitOutcome`), for the COPY and INSERT paths.

Sums are per metric: every fragment groups by `metric_position` as well. The sums are computed by the database in the statement that stores the observations, so
no row goes through Python (experiments.unit_outcomes.write explains what a row holds).
Every fragment takes one named parameter, `experiment_id`, so they nest with one dict.
"""

from django.db import connection

from experiments.models import Covariate, Observation
from experiments.unit_outcomes.write import ADD_ON_CONFLICT, COLUMNS, TABLE, Pairing

OBSERVATIONS = Observation._meta.db_table
COVARIATES = Covariate._meta.db_table
# The output columns of `summed_select_sql` (and `covariate` after them when it takes covariates).
SUMMED = "experiment, metric, unit, target, n, total, control_n, control_total"
# The observation columns every PostgreSQL path writes (besides experiment_id and received_at).
OBSERVATION_COLUMNS = "variant_id, unit, value, latency_ms, observed_at, idempotency_key, metric_position"


def summed_select_sql(source: str, pairing: list[Pairing], *, covariates: bool = False) -> str:
    """SELECT of the outcome rows of `source` (any relation with metric_position, unit, variant_id and value).

    One named parameter: `experiment_id`. The pairings are inlined as integer literals: a
    VALUES list of parameters would leave PostgreSQL guessing their types. (SQLite cannot name
    a VALUES list's columns: experiments.db.portable sums in Python, unit_outcomes.write.add_rows.)
    `covariates` (an experiment with CUPED metrics): each row also takes its unit's covariate of
    the metric (experiments.db.covariate_arms); without, no lookup at all.
    """
    values = ", ".join(f"({int(p.source)}, {int(p.target)}, {'TRUE' if p.own else 'FALSE'})" for p in pairing)
    summed = f"""
        SELECT %(experiment_id)s, stored.metric_position, stored.unit, pairing.target,
               COUNT(*) FILTER (WHERE pairing.own), COALESCE(SUM(stored.value) FILTER (WHERE pairing.own), 0),
               COUNT(*) FILTER (WHERE NOT pairing.own),
               COALESCE(SUM(stored.value) FILTER (WHERE NOT pairing.own), 0)
        FROM {source} AS stored
        JOIN (VALUES {values}) AS pairing (source, target, own) ON stored.variant_id = pairing.source
        GROUP BY stored.metric_position, stored.unit, pairing.target"""
    if not covariates:
        return summed
    return (f"SELECT summed.*, covariate.value FROM ({summed}) AS summed ({SUMMED}) "
            f"LEFT JOIN {COVARIATES} AS covariate ON covariate.experiment_id = %(experiment_id)s "
            "AND covariate.metric_position = summed.metric AND covariate.unit = summed.unit")


# Rows go in (unit, metric, variant) order, so that concurrent batches lock shared rows in the
# same order and cannot deadlock (unit_outcomes.write.add_rows sorts alike). The unit leads
# because the sort then compares abbreviated keys of the unit's text: led by the small metric
# number it compared whole texts, and the sums of a file over three metrics took twice as
# long (bench/README.md). Byte order (COLLATE "C", also Python's order of str) sorts twice
# as fast as the database's collation.
_ORDER = 'ORDER BY stored.unit COLLATE "C", stored.metric_position, pairing.target'
_ORDER_WITH_COVARIATES = 'ORDER BY summed.unit COLLATE "C", summed.metric, summed.target'


def outcome_columns(covariates: bool) -> str:
    """The `UnitOutcome` columns the rows of `add_from_sql` and `summed_rows_sql` fill, in order."""
    return f"{COLUMNS}, covariate" if covariates else COLUMNS


def add_from_sql(source: str, pairing: list[Pairing], *, covariates: bool = False) -> str:
    """INSERT adding the rows of `source` (e.g. the CTE of the observations just inserted) to the sums.

    One named parameter: `experiment_id`. A row already stored keeps its covariate (set when it
    was first stored, or since by covariate ingestion).
    """
    order = _ORDER_WITH_COVARIATES if covariates else _ORDER
    return (f"INSERT INTO {TABLE} ({outcome_columns(covariates)}) {summed_select_sql(source, pairing, covariates=covariates)} "
            f"{order} {ADD_ON_CONFLICT}")


def summed_rows_sql(source: str, pairing: list[Pairing], *, covariates: bool = False) -> str:
    """The rows `add_from_sql` would insert, typed as the table's columns `outcome_columns(covariates)`
    (for a binary COPY into it)."""
    order = _ORDER_WITH_COVARIATES if covariates else _ORDER
    return (f"SELECT experiment::bigint, metric::smallint, unit, target::bigint, n::integer, total, "
            f"control_n::integer, control_total{', covariate' if covariates else ''} "
            f"FROM ({summed_select_sql(source, pairing, covariates=covariates)} {order}) "
            f"AS summed ({SUMMED}{', covariate' if covariates else ''})")


def rebuild_unit_outcomes(experiment_id: int, pairing: list[Pairing], *, covariates: bool = False) -> int:
    """Recompute the experiment's unit outcomes from its stored observations (and, with `covariates`,
    their units' covariates); returns the row count."""
    params = {"experiment_id": experiment_id}
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE experiment_id = %(experiment_id)s", params)
        source = (f"(SELECT metric_position, unit, variant_id, value FROM {OBSERVATIONS} "
                  "WHERE experiment_id = %(experiment_id)s)")
        cursor.execute(f"INSERT INTO {TABLE} ({outcome_columns(covariates)}) "
                       f"{summed_select_sql(source, pairing, covariates=covariates)}", params)
        return cursor.rowcount
