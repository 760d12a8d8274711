"""CUPED's covariate sums of an A/B experiment's CUPED metrics, per metric and arm, in one query (DESIGN.md, CUPED).

Per metric position and variant: the sums of x, x^2 and x*y, x a unit's `Covariate` of that
metric and y its value by the per-unit rule of `experiments.unit_outcomes.read` (binary:
any 1; continuous: the sum of its values, or with `aggregation: mean` their mean). n and the
sums of y and y^2 are the arm's summary that `unit_outcomes.read` already computed: they are
not read twice.

A unit without a covariate has x = 0, so it adds nothing to these sums and the query starts
from the covariates, not from the assignments: it reads each covariate row once, joined to
its unit's assignment (its arm) and, where the unit has one, its outcome of the same metric.
With `sum` every assigned unit is in the arm, so x and x^2 are summed over every assigned
unit with a covariate; with `mean` only the units with an observation are (`sum_x_observed`,
`sum_x2_observed`). A unit with a covariate and no observation has y = 0 (`sum`) or is not in
the arm (`mean`): either way it adds nothing to x*y, which SQL's NULL product gives.

One query for every CUPED metric: no slower than one query per metric (the formulations tried,
and their times at 10M observations, are bench/probes/cuped_formulations.sql and bench/README.md),
and the arm's n and y sums are not computed twice. Either way the cost is the join of each covariate
to its unit's arm and outcome (hash tables of the assignments and outcomes): covariates arrive
before their units are assigned, so they cannot carry the arm, and the join is inherent to
adjusting at analysis time (bench/README.md, CUPED).
Plain SQL that PostgreSQL and SQLite both run: both engine modules re-export `covariate_sums`.
"""

from django.db import connection

from experiments.choices import Aggregation, MetricType
from experiments.models import Assignment, Covariate, UnitOutcome

ASSIGNMENTS = Assignment._meta.db_table
OUTCOMES = UnitOutcome._meta.db_table
COVARIATES = Covariate._meta.db_table


def _value(metric_type: str, aggregation: str) -> str:
    """SQL of a unit's value from its outcome row `o` (NULL when it has none)."""
    if metric_type == MetricType.BINARY:
        return "CASE WHEN o.total > 0 THEN 1.0 ELSE 0.0 END"
    if aggregation == Aggregation.MEAN:
        return "o.total / o.count"
    return "o.total"


def covariate_sums_sql(metrics: dict[int, tuple[str, str]]) -> tuple[str, list]:
    """The aggregate of the CUPED metrics {position: (metric_type, aggregation)} and its parameters
    (after the experiment id, which comes first)."""
    positions = sorted(metrics)
    value = "CASE o.metric_position " + " ".join(
        f"WHEN {position} THEN {_value(*metrics[position])}" for position in positions) + " END"
    sql = (
        "SELECT c.metric_position, a.variant_id, SUM(c.value), SUM(c.value * c.value), "
        "SUM(CASE WHEN o.unit IS NOT NULL THEN c.value END), "
        "SUM(CASE WHEN o.unit IS NOT NULL THEN c.value * c.value END), "
        f"SUM(c.value * ({value})) "
        f"FROM {COVARIATES} c "
        f"JOIN {ASSIGNMENTS} a ON a.experiment_id = c.experiment_id AND a.unit = c.unit "
        f"LEFT JOIN {OUTCOMES} o ON o.experiment_id = c.experiment_id AND o.metric_position = c.metric_position "
        "AND o.unit = c.unit AND o.variant_id = a.variant_id "
        f"WHERE c.experiment_id = %s AND c.metric_position IN ({', '.join(['%s'] * len(positions))}) "
        "GROUP BY c.metric_position, a.variant_id"
    )
    return sql, positions


def covariate_sums(experiment_id: int, metrics: dict[int, tuple[str, str]]) -> dict[int, dict[int, tuple]]:
    """{position: {variant id: (sum x, sum x^2, sum xy)}} of the CUPED metrics {position: (metric_type,
    aggregation)}, each sum over the units of the arm by the metric's aggregation; an arm without a
    covariate is absent."""
    if not metrics:
        return {}
    sql, positions = covariate_sums_sql(metrics)
    with connection.cursor() as cursor:
        cursor.execute(sql, [experiment_id, *positions])
        rows = cursor.fetchall()
    sums: dict[int, dict[int, tuple]] = {position: {} for position in positions}
    for position, variant_id, x, x2, x_observed, x2_observed, xy in rows:
        if metrics[position][1] == Aggregation.MEAN:
            x, x2 = x_observed, x2_observed
        sums[position][variant_id] = (float(x or 0.0), float(x2 or 0.0), float(xy or 0.0))
    return sums
