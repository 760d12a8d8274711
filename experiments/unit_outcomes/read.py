"""Sufficient statistics of an experiment, computed in the database (never one row per observation in Python).

They are aggregates over `UnitOutcome`, where ingestion keeps each unit's observations
summed (one row per unit, or per unit and challenger). A/B: each assigned unit's value
(binary: 1 if any observation is 1; continuous: the sum of its values; a unit without
observations counts as 0), then count, sum and sum of squares per variant.
Champion/challenger: the value per (unit, variant) (binary: any 1; continuous: the mean,
normally of exactly one value), then per variant, and per challenger over the units that
also have a champion value (the complete pairs).
"""

from django.db import connection

from analysis.types import AnalysisData, PairedSummary, SampleSummary
from experiments.choices import MetricType
from experiments.models import Assignment, Experiment, UnitOutcome

ASSIGNMENTS = Assignment._meta.db_table
OUTCOMES = UnitOutcome._meta.db_table


def _unit_value(metric_type: str, total: str, count: str, *, paired: bool) -> str:
    """SQL of one unit's metric from the sum and count of its values (binary values are 0 or 1)."""
    if metric_type == MetricType.BINARY:
        return f"CASE WHEN {total} > 0 THEN 1 ELSE 0 END"
    return f"{total} / {count}" if paired else total


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def ab_summaries(experiment: Experiment) -> tuple[dict[int, SampleSummary], dict[int, int]]:
    """Per variant id: the per-unit summary over all assigned units, and the assigned count.

    A unit without observations adds 0 to the sums, so they come from the units with
    outcomes and the counts from the assignments.
    """
    assigned = dict(_fetch(
        f"SELECT variant_id, COUNT(*) FROM {ASSIGNMENTS} WHERE experiment_id = %s GROUP BY variant_id",
        [experiment.id],
    ))
    value = _unit_value(experiment.metric_type, "total", "count", paired=False)
    sums = {variant_id: (float(total), float(squares)) for variant_id, total, squares in _fetch(
        f"SELECT variant_id, SUM(v), SUM(v * v) FROM (SELECT variant_id, {value} AS v FROM {OUTCOMES} "
        "WHERE experiment_id = %s) AS per_unit GROUP BY variant_id",
        [experiment.id],
    )}
    summaries = {
        variant_id: SampleSummary(n=n, total=sums.get(variant_id, (0.0, 0.0))[0],
                                  total_of_squares=sums.get(variant_id, (0.0, 0.0))[1])
        for variant_id, n in assigned.items()
    }
    return summaries, assigned


def paired_summaries(experiment: Experiment, champion_id: int, challenger_ids: list[int]) -> tuple[
        dict[int, SampleSummary], dict[int, PairedSummary], int]:
    """Per variant: its values; per challenger: the complete pairs with the champion; incomplete units.

    One pass over the pair rows grouped by challenger (y: the challenger's unit value, x:
    the champion's; NULL where the unit has none). Every unit with a champion value has a
    row for every challenger, so any challenger's rows give the champion's arm. With one
    challenger each unit is one row, so that pass also counts the incomplete units; with
    several, a unit may be incomplete in some rows only and they are counted once by unit.
    """
    y = _unit_value(experiment.metric_type, "total", "count", paired=True)
    x = _unit_value(experiment.metric_type, "control_total", "control_count", paired=True)
    both = "FILTER (WHERE x IS NOT NULL AND y IS NOT NULL)"
    rows = _fetch(
        f"""
        SELECT variant_id, COUNT(y), SUM(y), SUM(y * y), COUNT(x), SUM(x), SUM(x * x),
               COUNT(*) {both}, SUM(x) {both}, SUM(x * x) {both}, SUM(y) {both}, SUM(y * y) {both},
               SUM(x * y) {both}, COUNT(*) FILTER (WHERE x IS NULL OR y IS NULL)
        FROM (SELECT variant_id, CASE WHEN count > 0 THEN {y} END AS y,
                     CASE WHEN control_count > 0 THEN {x} END AS x
              FROM {OUTCOMES} WHERE experiment_id = %s) AS pairs
        GROUP BY variant_id
        """,
        [experiment.id],
    )
    empty = SampleSummary(n=0, total=0.0, total_of_squares=0.0)
    arms = {v: empty for v in [champion_id, *challenger_ids]}
    pairs = {v: PairedSummary(n=0, champion_total=0.0, champion_total_of_squares=0.0, challenger_total=0.0,
                              challenger_total_of_squares=0.0, cross_total=0.0) for v in challenger_ids}
    incomplete_rows = 0
    for variant_id, *sums in rows:
        ny, ys, yss, nx, xs, xss, n, pxs, pxss, pys, pyss, xys, incomplete_rows_here = (s or 0 for s in sums)
        incomplete_rows += incomplete_rows_here
        arms[variant_id] = SampleSummary(n=ny, total=float(ys), total_of_squares=float(yss))
        if variant_id == challenger_ids[0]:
            arms[champion_id] = SampleSummary(n=nx, total=float(xs), total_of_squares=float(xss))
        pairs[variant_id] = PairedSummary(
            n=n, champion_total=float(pxs), champion_total_of_squares=float(pxss), challenger_total=float(pys),
            challenger_total_of_squares=float(pyss), cross_total=float(xys),
        )
    incomplete = incomplete_rows
    if len(challenger_ids) > 1 and incomplete_rows:
        (incomplete,) = _fetch(
            f"SELECT COUNT(*) FROM (SELECT unit FROM {OUTCOMES} "
            "WHERE experiment_id = %s AND (count = 0 OR control_count = 0) GROUP BY unit) AS units",
            [experiment.id],
        )[0]
    return arms, pairs, incomplete


def analysis_data(experiment: Experiment) -> AnalysisData:
    """Everything the pure analysis needs, keyed by variant key; empty variants get zero summaries."""
    variants = list(experiment.variants.all())
    empty = SampleSummary(n=0, total=0.0, total_of_squares=0.0)
    if experiment.design == "champion_challenger":
        champion = next(v for v in variants if v.is_control)
        challengers = [v.id for v in variants if not v.is_control]
        arms, pairs, incomplete = paired_summaries(experiment, champion.id, challengers)
        return AnalysisData(
            arms={v.key: arms[v.id] for v in variants},
            pairs={v.key: pairs[v.id] for v in variants if not v.is_control},
            incomplete_pairs=incomplete,
        )
    arms, assigned = ab_summaries(experiment)
    return AnalysisData(
        arms={v.key: arms.get(v.id, empty) for v in variants},
        assigned={v.key: assigned.get(v.id, 0) for v in variants},
    )
