"""CUPED's covariate sums of an A/B experiment's CUPED metrics, per metric and arm: plain aggregates.

Per metric position and variant: the sums of x, x^2 and x*y, x a unit's `Covariate` of that
metric and y its value by the per-unit rule of `experiments.unit_outcomes.read` (binary:
any 1; continuous: the sum of its values, or with `aggregation: mean` their mean). n and the
sums of y and y^2 are the arm's summary that `unit_outcomes.read` already computed: they are
not read twice.

A unit without a covariate has x = 0 and adds nothing. With `sum` every assigned unit is in
the arm, so x and x^2 are summed over the covariates by the arm each one carries
(`Covariate.variant_id`, empty for a unit never assigned); with `mean` only the units with an
observation are, so they are summed over the outcome rows' covariates (`UnitOutcome.covariate`),
as x*y always is (a unit without an observation has y = 0 or is not in the arm: it adds nothing).
Both columns are kept while the test runs (experiments.db.covariate_arms), so this is two plain
aggregates, one over the covariates and one over the outcome rows, with no join: joining every
covariate to its unit's assignment and outcome at analysis time cost 5-8x reading the rows at
10M observations (the formulations tried: bench/probes/cuped_formulations.sql; figures:
bench/README.md, CUPED). `JOINED_SQL` in tests/experiments/db/test_covariate_arms.py keeps that
former query as the reference these sums must equal. The analysis itself reads the outcome rows'
sums in the pass `unit_outcomes.read` already makes over those rows (`ab_summaries` with the CUPED
positions) and combines them with `covariate_arm_sums` (`combined_sums`): the outcome rows are
read once. `covariate_sums` runs both aggregates on its own (tests).
Plain SQL that PostgreSQL and SQLite both run: both engine modules re-export `covariate_sums`.
"""

from django.db import connection

from experiments.choices import Aggregation, MetricType
from experiments.models import Covariate, UnitOutcome

OUTCOMES = UnitOutcome._meta.db_table
COVARIATES = Covariate._meta.db_table


def _value(metric_type: str, aggregation: str) -> str:
    """SQL of a unit's value from its outcome row (its `total` and `count`)."""
    if metric_type == MetricType.BINARY:
        return "CASE WHEN total > 0 THEN 1.0 ELSE 0.0 END"
    if aggregation == Aggregation.MEAN:
        return "total / count"
    return "total"


def _positions(positions: list[int]) -> str:
    return ", ".join(str(int(position)) for position in positions)


def covariate_sums_sql(metrics: dict[int, tuple[str, str]]) -> tuple[str, str]:
    """The two aggregates of the CUPED metrics {position: (metric_type, aggregation)}, each taking the
    experiment id as its one parameter: (x and x^2 per metric and stored arm over the covariates;
    x, x^2 and x*y per metric and variant over the outcome rows)."""
    positions = sorted(metrics)
    value = "CASE metric_position " + " ".join(
        f"WHEN {int(position)} THEN {_value(*metrics[position])}" for position in positions) + " END"
    by_arm = (f"SELECT metric_position, variant_id, SUM(value), SUM(value * value) FROM {COVARIATES} "
              f"WHERE experiment_id = %s AND metric_position IN ({_positions(positions)}) AND variant_id IS NOT NULL "
              "GROUP BY metric_position, variant_id")
    observed = (f"SELECT metric_position, variant_id, SUM(covariate), SUM(covariate * covariate), "
                f"SUM(covariate * ({value})) FROM {OUTCOMES} "
                f"WHERE experiment_id = %s AND metric_position IN ({_positions(positions)}) "
                "GROUP BY metric_position, variant_id")
    return by_arm, observed


def covariate_sums(experiment_id: int, metrics: dict[int, tuple[str, str]]) -> dict[int, dict[int, tuple]]:
    """{position: {variant id: (sum x, sum x^2, sum xy)}} of the CUPED metrics {position: (metric_type,
    aggregation)}, each sum over the units of the arm by the metric's aggregation; an arm without a
    covariate is absent. The analysis reads the outcome rows' part in its own pass instead
    (`experiments.unit_outcomes.read`) and combines it with `covariate_arm_sums`."""
    if not metrics:
        return {}
    _, observed = covariate_sums_sql(metrics)
    with connection.cursor() as cursor:
        cursor.execute(observed, [experiment_id])
        outcomes = {(position, variant_id): tuple(sums) for position, variant_id, *sums in cursor.fetchall()}
    return combined_sums(metrics, covariate_arm_sums(experiment_id, metrics), outcomes)


def covariate_arm_sums(experiment_id: int, metrics: dict[int, tuple[str, str]]) -> list[tuple]:
    """(position, variant id, sum x, sum x^2) over the covariates by their stored arm: the first aggregate."""
    by_arm, _ = covariate_sums_sql(metrics)
    with connection.cursor() as cursor:
        cursor.execute(by_arm, [experiment_id])
        return cursor.fetchall()


def combined_sums(metrics: dict[int, tuple[str, str]], arms: list[tuple],
                  outcomes: dict[tuple[int, int], tuple]) -> dict[int, dict[int, tuple]]:
    """`covariate_sums`' answer from the covariates' sums by arm and the outcome rows' (x, x^2, xy) sums
    by (position, variant id): with `sum` x and x^2 are the arm's, with `mean` the observed units'."""
    sums: dict[int, dict[int, tuple]] = {position: {} for position in metrics}
    for position, variant_id, x, x2 in arms:
        x_observed, x2_observed, xy = outcomes.get((position, variant_id), (None, None, None))
        if metrics[position][1] == Aggregation.MEAN:
            x, x2 = x_observed, x2_observed
        sums[position][variant_id] = (float(x or 0.0), float(x2 or 0.0), float(xy or 0.0))
    return sums
