"""Sufficient statistics of an experiment, computed in the database (never one row per observation in Python).

They are aggregates over `UnitOutcome`, where ingestion keeps each unit's observations of
each metric summed (one row per metric and unit, or per metric, unit and challenger), in one
pass over the experiment's rows for every metric at once. A/B: each unit's value (binary: 1
if any observation is 1; continuous: the sum of its values, or with `aggregation: mean`
their mean), then count, sum and sum of squares per metric and variant; with `sum` a unit
without observations counts as 0 (the counts come from the assignments), with `mean` it is
left out and counted. Champion/challenger: the value per (unit, variant) (binary: any 1;
continuous: the mean, normally of exactly one value), then per variant, and per challenger
over the units that also have a champion value (the complete pairs).
"""

from dataclasses import dataclass

from django.db import connection

from analysis.types import AnalysisData, PairedSummary, SampleSummary
from experiments.choices import Aggregation, Design, MetricType
from experiments.models import Assignment, Experiment, UnitOutcome

ASSIGNMENTS = Assignment._meta.db_table
OUTCOMES = UnitOutcome._meta.db_table
EMPTY = SampleSummary(n=0, total=0.0, total_of_squares=0.0)
# CUPED's sums over the outcome rows' covariates: {(position, variant id): (sum x, sum x^2, sum x*y)}.
CovariateSums = dict[tuple[int, int], tuple]
NO_PAIRS = PairedSummary(n=0, champion_total=0.0, champion_total_of_squares=0.0, challenger_total=0.0,
                         challenger_total_of_squares=0.0, cross_total=0.0)


@dataclass(frozen=True)
class MetricSource:
    """Where a metric's rows are (`metric_position`: 0 the primary) and how a unit's value is taken."""

    position: int
    metric_type: str
    aggregation: str = Aggregation.SUM


def metric_sources(experiment: Experiment) -> list[MetricSource]:
    """The primary (position 0) and every secondary metric and guardrail, in order."""
    return [MetricSource(0, experiment.metric_type, experiment.metric_aggregation),
            *(MetricSource(m.position, m.metric_type, m.aggregation) for m in experiment.metrics.all())]


def _positions(metrics: list[MetricSource], keep) -> str:
    """An SQL list of the positions `keep` selects (integers inlined: they come from our own rows)."""
    return ", ".join(str(int(m.position)) for m in metrics if keep(m)) or "-1"


def _unit_value(metrics: list[MetricSource], total: str, count: str, *, paired: bool) -> str:
    """SQL of one unit's value of its row's metric, from the sum and count of its values."""
    binary = _positions(metrics, lambda m: m.metric_type == MetricType.BINARY)
    mean = _positions(metrics, lambda m: paired or m.aggregation == Aggregation.MEAN)
    return (f"CASE WHEN metric_position IN ({binary}) THEN CASE WHEN {total} > 0 THEN 1 ELSE 0 END "
            f"WHEN metric_position IN ({mean}) THEN {total} / {count} ELSE {total} END")


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def ab_summaries(
    experiment: Experiment, metrics: list[MetricSource], cuped: frozenset[int] = frozenset()
) -> tuple[dict[int, dict[int, SampleSummary]], dict[int, int], dict[int, dict[int, int]], CovariateSums]:
    """Per metric position and variant id: the per-unit summary; the assigned count per variant;
    per `mean` metric and variant, the assigned units without an observation of it; and, for the
    CUPED positions `cuped`, {(position, variant id): (sum x, sum x^2, sum x*y)} over the outcome rows'
    covariates, in the same pass (`experiments.db.cuped_statistics.combined_sums` takes them)."""
    assigned = dict(_fetch(
        f"SELECT variant_id, COUNT(*) FROM {ASSIGNMENTS} WHERE experiment_id = %s GROUP BY variant_id",
        [experiment.id],
    ))
    value = _unit_value(metrics, "total", "count", paired=False)
    sums: dict[int, dict[int, tuple]] = {m.position: {} for m in metrics}
    # CUPED's x sums ride along in this one pass over the outcome rows: reading them in a second pass
    # cost about 2 s at 10M observations (bench/README.md, CUPED). Without CUPED the query is as before.
    covariate_sums = ", SUM(x), SUM(x * x), SUM(x * v)" if cuped else ""
    covariate = ", covariate AS x" if cuped else ""
    observed: CovariateSums = {}
    for position, variant_id, units, total, squares, *x_sums in _fetch(
        f"SELECT metric_position, variant_id, COUNT(*), SUM(v), SUM(v * v){covariate_sums} FROM (SELECT "
        f"metric_position, variant_id, {value} AS v{covariate} FROM {OUTCOMES} WHERE experiment_id = %s) AS per_unit "
        "GROUP BY metric_position, variant_id",
        [experiment.id],
    ):
        if position in sums:
            sums[position][variant_id] = (units, float(total), float(squares))
        if position in cuped:
            observed[(position, variant_id)] = tuple(x_sums)
    summaries, missing = {}, {}
    for metric in metrics:
        rows = sums[metric.position]
        if metric.aggregation == Aggregation.MEAN:
            summaries[metric.position] = {v: SampleSummary(*rows.get(v, (0, 0.0, 0.0))) for v in assigned}
            missing[metric.position] = {v: n - rows.get(v, (0,))[0] for v, n in assigned.items()}
        else:
            summaries[metric.position] = {v: SampleSummary(n, *rows.get(v, (0, 0.0, 0.0))[1:])
                                          for v, n in assigned.items()}
    return summaries, assigned, missing, observed


def paired_summaries(experiment: Experiment, metrics: list[MetricSource], champion_id: int,
                     challenger_ids: list[int]) -> tuple[dict[int, dict[int, SampleSummary]],
                                                         dict[int, dict[int, PairedSummary]], int]:
    """Per metric and variant: its values; per metric and challenger: the complete pairs; the
    primary's incomplete units.

    One pass over the pair rows grouped by metric and challenger (y: the challenger's unit
    value, x: the champion's; NULL where the unit has none). Every unit with a champion
    value has a row for every challenger, so any challenger's rows give the champion's arm.
    With one challenger each unit is one row, so that pass also counts the incomplete units;
    with several, a unit may be incomplete in some rows only and they are counted once by unit.
    """
    y = _unit_value(metrics, "total", "count", paired=True)
    x = _unit_value(metrics, "control_total", "control_count", paired=True)
    both = "FILTER (WHERE x IS NOT NULL AND y IS NOT NULL)"
    rows = _fetch(
        f"""
        SELECT metric_position, variant_id, COUNT(y), SUM(y), SUM(y * y), COUNT(x), SUM(x), SUM(x * x),
               COUNT(*) {both}, SUM(x) {both}, SUM(x * x) {both}, SUM(y) {both}, SUM(y * y) {both},
               SUM(x * y) {both}, COUNT(*) FILTER (WHERE x IS NULL OR y IS NULL)
        FROM (SELECT metric_position, variant_id, CASE WHEN count > 0 THEN {y} END AS y,
                     CASE WHEN control_count > 0 THEN {x} END AS x
              FROM {OUTCOMES} WHERE experiment_id = %s) AS pairs
        GROUP BY metric_position, variant_id
        """,
        [experiment.id],
    )
    arms = {m.position: {v: EMPTY for v in [champion_id, *challenger_ids]} for m in metrics}
    pairs = {m.position: {v: NO_PAIRS for v in challenger_ids} for m in metrics}
    incomplete_rows = 0
    for position, variant_id, *sums in rows:
        if position not in arms:
            continue
        ny, ys, yss, nx, xs, xss, n, pxs, pxss, pys, pyss, xys, incomplete_rows_here = (s or 0 for s in sums)
        if position == 0:
            incomplete_rows += incomplete_rows_here
        arms[position][variant_id] = SampleSummary(n=ny, total=float(ys), total_of_squares=float(yss))
        if variant_id == challenger_ids[0]:
            arms[position][champion_id] = SampleSummary(n=nx, total=float(xs), total_of_squares=float(xss))
        pairs[position][variant_id] = PairedSummary(
            n=n, champion_total=float(pxs), champion_total_of_squares=float(pxss), challenger_total=float(pys),
            challenger_total_of_squares=float(pyss), cross_total=float(xys),
        )
    incomplete = incomplete_rows
    if len(challenger_ids) > 1 and incomplete_rows:
        (incomplete,) = _fetch(
            f"SELECT COUNT(*) FROM (SELECT unit FROM {OUTCOMES} WHERE experiment_id = %s AND metric_position = 0 "
            "AND (count = 0 OR control_count = 0) GROUP BY unit) AS units",
            [experiment.id],
        )[0]
    return arms, pairs, incomplete


def analysis_data_by_metric(experiment: Experiment) -> dict[int, AnalysisData]:
    """Everything the pure analysis needs, per metric position (0: the primary), keyed by variant key.

    The incomplete pairs (a check, so the primary's) are counted for position 0 only.
    """
    return analysis_data_and_covariate_sums(experiment)[0]


def analysis_data_and_covariate_sums(experiment: Experiment, cuped: frozenset[int] = frozenset()) -> tuple[
        dict[int, AnalysisData], CovariateSums]:
    """`analysis_data_by_metric`, and the outcome rows' CUPED sums of the positions `cuped` (ab only)."""
    variants = list(experiment.variants.all())
    metrics = metric_sources(experiment)
    if experiment.design == Design.CHAMPION_CHALLENGER:
        champion = next(v for v in variants if v.is_control)
        challengers = [v.id for v in variants if not v.is_control]
        arms, pairs, incomplete = paired_summaries(experiment, metrics, champion.id, challengers)
        return {m.position: AnalysisData(
            arms={v.key: arms[m.position][v.id] for v in variants},
            pairs={v.key: pairs[m.position][v.id] for v in variants if not v.is_control},
            incomplete_pairs=incomplete if m.position == 0 else 0,
        ) for m in metrics}, {}
    arms, assigned, missing, observed = ab_summaries(experiment, metrics, cuped)
    return {m.position: AnalysisData(
        arms={v.key: arms[m.position].get(v.id, EMPTY) for v in variants},
        assigned={v.key: assigned.get(v.id, 0) for v in variants},
        without_observations={v.key: missing[m.position].get(v.id, 0) for v in variants} if m.position in missing
        else {},
    ) for m in metrics}, observed


def analysis_data(experiment: Experiment) -> AnalysisData:
    """The primary's sufficient statistics (what part 1's analysis reads)."""
    return analysis_data_by_metric(experiment)[0]
