"""Keeping `UnitOutcome` (each unit's observations summed) in step with the observations.

Every stored observation adds to its metric's rows (`metric_position`), one per pairing: in an A/B test its own variant's row
for the unit; in a champion/challenger test a challenger's value adds to its row for the
unit, and a champion's value to the champion side of every challenger's row for the unit
(so each pair is one row). `pairings` lists, per variant id, which rows its values add to.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection

from experiments import db
from experiments.choices import Design
from experiments.models import Covariate, Experiment, UnitOutcome, Variant, observed_metrics

TABLE = UnitOutcome._meta.db_table
COLUMNS = "experiment_id, metric_position, unit, variant_id, count, total, control_count, control_total"


class Pairing(NamedTuple):
    """Values observed for `source` add to the rows of `target`, on its own side or the champion's."""

    source: int
    target: int
    own: bool


def pairings(design: str, variants: Iterable[Variant]) -> list[Pairing]:
    """Where each variant's values add: A/B, its own rows; champion/challenger, see the module's docstring."""
    variants = list(variants)
    if design != Design.CHAMPION_CHALLENGER:
        return [Pairing(v.id, v.id, True) for v in variants]
    champion = next(v for v in variants if v.is_control)
    challengers = [v for v in variants if not v.is_control]
    return ([Pairing(v.id, v.id, True) for v in challengers]
            + [Pairing(champion.id, v.id, False) for v in challengers])


# An outcome row already stored for the metric, unit and variant is added to, not replaced.
ADD_ON_CONFLICT = f"""
        ON CONFLICT (experiment_id, metric_position, unit, variant_id) DO UPDATE SET
            count = {TABLE}.count + excluded.count, total = {TABLE}.total + excluded.total,
            control_count = {TABLE}.control_count + excluded.control_count,
            control_total = {TABLE}.control_total + excluded.control_total"""

# A row already stored keeps its covariate (ADD_ON_CONFLICT does not touch it).
_ADD_ONE_SQL = (f"INSERT INTO {TABLE} ({COLUMNS}, covariate) VALUES (%(experiment_id)s, %(metric)s, %(unit)s, "
                f"%(target)s, %(count)s, %(total)s, %(control_count)s, %(control_total)s, %(covariate)s) "
                f"{ADD_ON_CONFLICT}")


def _covariates_of(experiment_id: int, units: set[str]) -> dict[tuple[int, str], float]:
    """{(metric position, unit): covariate} of the units, read 500 at a time (SQLite's parameter limit)."""
    units, found = sorted(units), {}
    for start in range(0, len(units), 500):
        found.update(((position, unit), value) for position, unit, value in Covariate.objects.filter(
            experiment_id=experiment_id, unit__in=units[start:start + 500]).values_list(
            "metric_position", "unit", "value"))
    return found


def add_rows(experiment_id: int, pairing: list[Pairing], rows: Iterable[tuple[int, str, int, float]], *,
             covariates: bool = False) -> int:
    """Add the observations stored, (metric position, unit, variant id, value), to the sums, summed in Python.

    Returns the rows written. The same rows as experiments.db.postgresql_sums's `add_from_sql`,
    in the same (unit, metric, variant) order, so that concurrent batches lock shared rows in
    one order and cannot deadlock. `covariates`: a new row takes its unit's covariate of the metric.
    """
    targets = defaultdict(list)
    for p in pairing:
        targets[p.source].append(p)
    sums: dict[tuple[str, int, int], list] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    for metric, unit, variant_id, value in rows:
        for p in targets[variant_id]:
            row = sums[(unit, metric, p.target)]
            if p.own:
                row[0] += 1
                row[1] += value
            else:
                row[2] += 1
                row[3] += value
    if not sums:
        return 0
    found = _covariates_of(experiment_id, {unit for unit, _, _ in sums}) if covariates else {}
    with connection.cursor() as cursor:
        cursor.executemany(_ADD_ONE_SQL, [
            {"experiment_id": experiment_id, "metric": metric, "unit": unit, "target": target, "count": count,
             "total": total, "control_count": control_count, "control_total": control_total,
             "covariate": found.get((metric, unit))}
            for (unit, metric, target), (count, total, control_count, control_total) in sorted(sums.items())
        ])
    return len(sums)


def takes_covariates(experiment: Experiment) -> bool:
    """Whether the experiment has CUPED metrics, so that its unit sums carry covariates."""
    return any(metric.cuped for metric in observed_metrics(experiment).values())


def unit_outcomes_rebuild(experiment: Experiment) -> int:
    """Recompute the experiment's unit outcomes from its stored observations; returns the row count.

    For data loaded around the ingestion service (bench/analysis.py) and as the reference
    the tests compare the incremental sums with.
    """
    return db.rebuild_unit_outcomes(experiment.id, pairings(experiment.design, experiment.variants.all()),
                                    covariates=takes_covariates(experiment))
