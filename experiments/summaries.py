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
    """Per variant id: the per-unit summary over all assigned units, and the assigned count."""
    rows = _fetch(
        f"""
        WITH per_unit AS (
            SELECT unit, {_unit_value(experiment.metric_type, paired=False)} AS v
            FROM {OBSERVATIONS} WHERE experiment_id = %s GROUP BY unit
        )
        SELECT a.variant_id, COUNT(*), COALESCE(SUM(p.v), 0), COALESCE(SUM(p.v * p.v), 0)
        FROM {ASSIGNMENTS} a LEFT JOIN per_unit p ON p.unit = a.unit
        WHERE a.experiment_id = %s
        GROUP BY a.variant_id
        """,
        [experiment.id, experiment.id],
    )
    summaries = {variant_id: SampleSummary(n=n, total=total, total_of_squares=squares)
                 for variant_id, n, total, squares in rows}
    return summaries, {variant_id: summary.n for variant_id, summary in summaries.items()}


def paired_summaries(experiment: Experiment, champion_id: int) -> tuple[
        dict[int, SampleSummary], dict[int, PairedSummary], int]:
    """Per variant: its values; per challenger: the complete pairs with the champion; incomplete units."""
    per_unit_variant = f"""
        SELECT unit, variant_id, {_unit_value(experiment.metric_type, paired=True)} AS v
        FROM {OBSERVATIONS} WHERE experiment_id = %s GROUP BY unit, variant_id
    """
    arms = _fetch(
        f"WITH p AS ({per_unit_variant}) SELECT variant_id, COUNT(*), SUM(v), SUM(v * v) FROM p GROUP BY variant_id",
        [experiment.id],
    )
    pairs = _fetch(
        f"""
        WITH p AS ({per_unit_variant})
        SELECT y.variant_id, COUNT(*), SUM(x.v), SUM(x.v * x.v), SUM(y.v), SUM(y.v * y.v), SUM(x.v * y.v)
        FROM p y JOIN p x ON x.unit = y.unit AND x.variant_id = %s
        WHERE y.variant_id <> %s
        GROUP BY y.variant_id
        """,
        [experiment.id, champion_id, champion_id],
    )
    variant_count = experiment.variants.count()
    (incomplete,), = _fetch(
        f"""
        WITH p AS ({per_unit_variant})
        SELECT COUNT(*) FROM (SELECT unit FROM p GROUP BY unit HAVING COUNT(*) < %s) AS missing_some
        """,
        [experiment.id, variant_count],
    )
    return (
        {variant_id: SampleSummary(n=n, total=total, total_of_squares=squares) for variant_id, n, total, squares in arms},
        {variant_id: PairedSummary(n=n, champion_total=xs, champion_total_of_squares=xss, challenger_total=ys,
                                   challenger_total_of_squares=yss, cross_total=xys)
         for variant_id, n, xs, xss, ys, yss, xys in pairs},
        incomplete,
    )


def analysis_data(experiment: Experiment) -> AnalysisData:
    """Everything the pure analysis needs, keyed by variant key; empty variants get zero summaries."""
    variants = list(experiment.variants.all())
    empty = SampleSummary(n=0, total=0.0, total_of_squares=0.0)
    if experiment.design == "champion_challenger":
        champion = next(v for v in variants if v.is_control)
        arms, pairs, incomplete = paired_summaries(experiment, champion.id)
        no_pairs = PairedSummary(n=0, champion_total=0.0, champion_total_of_squares=0.0, challenger_total=0.0,
                                 challenger_total_of_squares=0.0, cross_total=0.0)
        return AnalysisData(
            arms={v.key: arms.get(v.id, empty) for v in variants},
            pairs={v.key: pairs.get(v.id, no_pairs) for v in variants if not v.is_control},
            incomplete_pairs=incomplete,
        )
    arms, assigned = ab_summaries(experiment)
    return AnalysisData(
        arms={v.key: arms.get(v.id, empty) for v in variants},
        assigned={v.key: assigned.get(v.id, 0) for v in variants},
    )
