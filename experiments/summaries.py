"""Sufficient statistics of an experiment, computed in the database (never one row per observation in Python).

A/B: each assigned unit's value first (binary: 1 if any observation is 1; continuous: the
sum of its values; a unit without observations counts as 0), then count, sum and sum of
squares per variant. Champion/challenger: one value per (unit, variant) (binary: any 1;
continuous: the mean, normally of exactly one value), then per variant, and per
challenger over the units that also have a champion value (the complete pairs).
"""

from django.db import connection

from analysis.types import AnalysisData, PairedSummary, SampleSummary
from experiments.models import Assignment, Experiment, MetricType, Observation

ASSIGNMENTS = Assignment._meta.db_table
OBSERVATIONS = Observation._meta.db_table


def _unit_value(metric_type: str, *, paired: bool) -> str:
    if metric_type == MetricType.BINARY:
        return "MAX(value)"
    return "AVG(value)" if paired else "SUM(value)"


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def ab_summaries(experiment: Experiment) -> tuple[dict[int, SampleSummary], dict[int, int]]:
    """Per variant id: the per-unit summary over all assigned units, and the assigned count.

    Two queries instead of a join of assignments with per-unit values (measured in
    bench/analysis.py: 1.7x a bare aggregate at 10M observations, against 18.6x): a unit
    whose value is 0 adds nothing to the sums, so only non-zero observations are grouped per
    unit, and the units come from the assignments. Grouping by (variant, unit) equals the
    join because ingestion stores every A/B observation under the unit's assigned variant.
    """
    assigned = dict(_fetch(
        f"SELECT variant_id, COUNT(*) FROM {ASSIGNMENTS} WHERE experiment_id = %s GROUP BY variant_id",
        [experiment.id],
    ))
    sums = {variant_id: (total, squares) for variant_id, total, squares in _fetch(
        f"""
        SELECT variant_id, SUM(v), SUM(v * v) FROM (
            SELECT variant_id, unit, {_unit_value(experiment.metric_type, paired=False)} AS v
            FROM {OBSERVATIONS} WHERE experiment_id = %s AND value <> 0
            GROUP BY variant_id, unit
        ) AS per_unit
        GROUP BY variant_id
        """,
        [experiment.id],
    )}
    summaries = {
        variant_id: SampleSummary(n=n, total=sums.get(variant_id, (0.0, 0.0))[0],
                                  total_of_squares=sums.get(variant_id, (0.0, 0.0))[1])
        for variant_id, n in assigned.items()
    }
    return summaries, assigned


def paired_summaries(experiment: Experiment, variant_ids: list[int], champion_id: int) -> tuple[
        dict[int, SampleSummary], dict[int, PairedSummary], int]:
    """Per variant: its values; per challenger: the complete pairs with the champion; incomplete units.

    One pass: each unit's value per variant becomes a column (FILTER), then every summary is
    an aggregate over those columns (bench/analysis.py: about 4x faster than one query each).
    """
    value = _unit_value(experiment.metric_type, paired=True)
    columns = ", ".join(f"{value} FILTER (WHERE variant_id = {int(v)}) AS v{int(v)}" for v in variant_ids)
    x = f"v{int(champion_id)}"
    selects = []
    for v in variant_ids:
        selects += [f"COUNT(v{v})", f"SUM(v{v})", f"SUM(v{v} * v{v})"]
    challengers = [v for v in variant_ids if v != champion_id]
    for v in challengers:
        both = f"{x} IS NOT NULL AND v{v} IS NOT NULL"
        selects += [f"COUNT(*) FILTER (WHERE {both})", f"SUM({x}) FILTER (WHERE {both})",
                    f"SUM({x} * {x}) FILTER (WHERE {both})", f"SUM(v{v}) FILTER (WHERE {both})",
                    f"SUM(v{v} * v{v}) FILTER (WHERE {both})", f"SUM({x} * v{v}) FILTER (WHERE {both})"]
    any_missing = " OR ".join(f"v{v} IS NULL" for v in variant_ids)
    selects.append(f"COUNT(*) FILTER (WHERE {any_missing})")
    (row,) = _fetch(
        f"SELECT {', '.join(selects)} FROM (SELECT unit, {columns} FROM {OBSERVATIONS} "
        "WHERE experiment_id = %s GROUP BY unit) AS per_unit",
        [experiment.id],
    )
    values = iter(row)
    arms = {}
    for v in variant_ids:
        n, total, squares = next(values), next(values), next(values)
        arms[v] = SampleSummary(n=n, total=total or 0.0, total_of_squares=squares or 0.0)
    pairs = {}
    for v in challengers:
        n, xs, xss, ys, yss, xys = (next(values) for _ in range(6))
        pairs[v] = PairedSummary(n=n, champion_total=xs or 0.0, champion_total_of_squares=xss or 0.0,
                                 challenger_total=ys or 0.0, challenger_total_of_squares=yss or 0.0,
                                 cross_total=xys or 0.0)
    return arms, pairs, next(values)


def analysis_data(experiment: Experiment) -> AnalysisData:
    """Everything the pure analysis needs, keyed by variant key; empty variants get zero summaries."""
    variants = list(experiment.variants.all())
    empty = SampleSummary(n=0, total=0.0, total_of_squares=0.0)
    if experiment.design == "champion_challenger":
        champion = next(v for v in variants if v.is_control)
        arms, pairs, incomplete = paired_summaries(experiment, [v.id for v in variants], champion.id)
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
