"""Keeping `UnitOutcome` (each unit's observations summed) in step with the observations.

Every stored observation adds to one row per pairing: in an A/B test its own variant's row
for the unit; in a champion/challenger test a challenger's value adds to its row for the
unit, and a champion's value to the champion side of every challenger's row for the unit
(so each pair is one row). `pairings` lists, per variant id, which rows its values add to.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection

from experiments.models import Design, Experiment, Observation, UnitOutcome, Variant

TABLE = UnitOutcome._meta.db_table
OBSERVATIONS = Observation._meta.db_table
COLUMNS = "experiment_id, unit, variant_id, count, total, control_count, control_total"


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


def _summed_select(source: str, pairing: list[Pairing]) -> str:
    """SELECT of the outcome rows of `source` (any relation with unit, variant_id and value).

    The pairings are inlined as integer literals: a VALUES list of parameters would leave
    PostgreSQL guessing their types.
    """
    values = ", ".join(f"({int(p.source)}, {int(p.target)}, {'TRUE' if p.own else 'FALSE'})" for p in pairing)
    return f"""
        SELECT %s, stored.unit, pairing.target,
               COUNT(*) FILTER (WHERE pairing.own), COALESCE(SUM(stored.value) FILTER (WHERE pairing.own), 0),
               COUNT(*) FILTER (WHERE NOT pairing.own),
               COALESCE(SUM(stored.value) FILTER (WHERE NOT pairing.own), 0)
        FROM {source} AS stored
        JOIN (VALUES {values}) AS pairing (source, target, own) ON stored.variant_id = pairing.source
        GROUP BY stored.unit, pairing.target"""


# Rows go in (unit, variant) order, so that concurrent batches lock shared units in the same
# order and cannot deadlock; byte order (COLLATE "C", also Python's order of str) sorts twice
# as fast as the database's collation.
_ORDER = 'ORDER BY stored.unit COLLATE "C", pairing.target'

_ADD_ON_CONFLICT = f"""
        ON CONFLICT (experiment_id, unit, variant_id) DO UPDATE SET
            count = {TABLE}.count + excluded.count, total = {TABLE}.total + excluded.total,
            control_count = {TABLE}.control_count + excluded.control_count,
            control_total = {TABLE}.control_total + excluded.control_total"""


def add_from_sql(source: str, pairing: list[Pairing]) -> str:
    """INSERT adding the rows of `source` (e.g. the CTE of the observations just inserted) to the sums.

    One parameter: the experiment id.
    """
    return f"INSERT INTO {TABLE} ({COLUMNS}) {_summed_select(source, pairing)} {_ORDER} {_ADD_ON_CONFLICT}"


def summed_rows_sql(source: str, pairing: list[Pairing]) -> str:
    """The rows `add_from_sql` would insert, typed as the table's columns (for a binary COPY into it)."""
    return (f"SELECT experiment::bigint, unit, target::bigint, n::integer, total, control_n::integer, control_total "
            f"FROM ({_summed_select(source, pairing)} {_ORDER}) "
            "AS summed (experiment, unit, target, n, total, control_n, control_total)")


def add_rows(experiment_id: int, pairing: list[Pairing], rows: Iterable[tuple[str, int, float]]) -> None:
    """The same as `add_from_sql`, summed in Python: (unit, variant id, value) of the observations stored."""
    targets = defaultdict(list)
    for p in pairing:
        targets[p.source].append(p)
    sums: dict[tuple[str, int], list] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    for unit, variant_id, value in rows:
        for p in targets[variant_id]:
            row = sums[(unit, p.target)]
            if p.own:
                row[0] += 1
                row[1] += value
            else:
                row[2] += 1
                row[3] += value
    if not sums:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) {_ADD_ON_CONFLICT}",
            [(experiment_id, unit, target, *row) for (unit, target), row in sorted(sums.items())],
        )


def unit_outcomes_rebuild(experiment: Experiment) -> int:
    """Recompute the experiment's unit outcomes from its stored observations; returns the row count.

    For data loaded around the ingestion service (bench/analysis.py) and as the reference
    the tests compare the incremental sums with.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE experiment_id = %s", [experiment.id])
        source = f"(SELECT unit, variant_id, value FROM {OBSERVATIONS} WHERE experiment_id = %s)"
        pairing = pairings(experiment.design, experiment.variants.all())
        cursor.execute(f"INSERT INTO {TABLE} ({COLUMNS}) {_summed_select(source, pairing)}",
                       [experiment.id, experiment.id])
        return cursor.rowcount
