"""CUPED's sufficient statistics of one A/B metric, per arm, in one aggregate query (DESIGN.md, CUPED).

Per variant: n and the sums of y, y^2, x, x^2 and x*y, y the unit's value of the metric by the
per-unit rule of `experiments.unit_outcomes.read` (binary: any 1; continuous: the sum of its
values, or with `aggregation: mean` their mean) and x its `Covariate` of that metric, 0 when it
has none (a LEFT JOIN). With `sum` every assigned unit counts, one without observations as
y = 0 (the rows start from the assignments); with `mean` only the units with an observation
(the rows start from the unit outcomes). Plain SQL that PostgreSQL and SQLite both run: both
engine modules re-export `cuped_sums`.
"""

from django.db import connection

from experiments.choices import Aggregation, MetricType
from experiments.models import Assignment, Covariate, UnitOutcome

ASSIGNMENTS = Assignment._meta.db_table
OUTCOMES = UnitOutcome._meta.db_table
COVARIATES = Covariate._meta.db_table


def _value(metric_type: str, aggregation: str) -> str:
    """SQL of a unit's value from its outcome row `o` (NULL columns when it has none: then 0)."""
    if metric_type == MetricType.BINARY:
        return "CASE WHEN o.total > 0 THEN 1.0 ELSE 0.0 END"
    if aggregation == Aggregation.MEAN:
        return "o.total / o.count"
    return "COALESCE(o.total, 0.0)"


def cuped_sums_sql(metric_type: str, aggregation: str) -> str:
    """The aggregate; named parameters `position` and `experiment_id`."""
    value = _value(metric_type, aggregation)
    if aggregation == Aggregation.MEAN:
        rows = (f"FROM {OUTCOMES} o LEFT JOIN {COVARIATES} c ON c.experiment_id = o.experiment_id "
                "AND c.metric_position = o.metric_position AND c.unit = o.unit "
                "WHERE o.experiment_id = %(experiment_id)s AND o.metric_position = %(position)s")
        variant = "o.variant_id"
    else:
        rows = (f"FROM {ASSIGNMENTS} a LEFT JOIN {OUTCOMES} o ON o.experiment_id = a.experiment_id "
                "AND o.metric_position = %(position)s AND o.unit = a.unit AND o.variant_id = a.variant_id "
                f"LEFT JOIN {COVARIATES} c ON c.experiment_id = a.experiment_id "
                "AND c.metric_position = %(position)s AND c.unit = a.unit WHERE a.experiment_id = %(experiment_id)s")
        variant = "a.variant_id"
    return (f"SELECT variant_id, COUNT(*), SUM(y), SUM(y * y), SUM(x), SUM(x * x), SUM(x * y) "
            f"FROM (SELECT {variant} AS variant_id, {value} AS y, COALESCE(c.value, 0.0) AS x {rows}) AS per_unit "
            "GROUP BY variant_id")


def cuped_sums(experiment_id: int, position: int, metric_type: str, aggregation: str) -> dict[int, tuple]:
    """{variant id: (n, sum y, sum y^2, sum x, sum x^2, sum xy)} of one metric; absent variants have no unit."""
    with connection.cursor() as cursor:
        cursor.execute(cuped_sums_sql(metric_type, aggregation), {"position": position, "experiment_id": experiment_id})
        rows = cursor.fetchall()
    return {variant_id: (int(n), *(float(s or 0.0) for s in sums)) for variant_id, n, *sums in rows}
