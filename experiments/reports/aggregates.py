"""Figures the report reads from raw rows, aggregated in the database: latency and units per day.

Latency percentiles come from experiments.db: PostgreSQL's `percentile_cont` (linear
interpolation between the closest ranks, the same definition as numpy's default
`percentile`). SQLite has no ordered-set aggregates: there the latencies of one experiment
are loaded and numpy computes the same figures. That is acceptable only for the embedded
setup's small demo data; any real volume runs on PostgreSQL (see docs/reports.md).
"""

from collections import defaultdict
from datetime import date

from django.db import connection
from django.db.models import Count, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from experiments import db
from experiments.choices import Design
from experiments.db.rows import Latency
from experiments.models import Assignment, Experiment, Observation

__all__ = ["Latency", "latency_by_variant", "units_per_day"]


def latency_by_variant(experiment: Experiment) -> dict[int, Latency]:
    """Mean, median and 95th percentile of `Observation.latency_ms` per variant id (see the module's docstring)."""
    return db.latency_by_variant(experiment)


def units_per_day(experiment: Experiment) -> dict[int, list[tuple[date, int]]]:
    """New units per day per variant id, in day order (days without a new unit are left out).

    A/B: assigned units by the day of `Assignment.assigned_at`. Champion/challenger: every
    sampled request is scored by every variant, and a request's assignment row names only
    the champion, so a variant's units are the requests it scored, each counted on the day
    of its first observation for that variant: the same units the result counts.
    """
    if experiment.design == Design.AB:
        rows = (
            Assignment.objects.filter(experiment=experiment).order_by()
            .annotate(day=TruncDate("assigned_at")).values("variant_id", "day")
            .annotate(units=Count("id")).values_list("variant_id", "day", "units")
        )
    else:
        rows = _first_observation_days(experiment)
    days: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for variant_id, day, units in sorted(rows, key=lambda row: (row[1], row[0])):
        days[variant_id].append((day, units))
    return dict(days)


def _first_observation_days(experiment: Experiment) -> list[tuple[int, date, int]]:
    """(variant id, day, units) with each (unit, variant) on the day of its first observation.

    The ORM cannot group an aggregate (the first observation) by a function of itself, so the
    per-(unit, variant) query is built by the ORM and wrapped in one outer GROUP BY; the day is
    cut by the backend's own date cast in the current time zone, exactly as TruncDate would.
    """
    firsts = (
        Observation.objects.filter(experiment=experiment).order_by()
        .values("unit", "variant_id").annotate(first_at=Min("observed_at"))
    )
    inner_sql, inner_params = firsts.query.sql_with_params()
    tzname = timezone.get_current_timezone_name()
    day_sql, day_params = connection.ops.datetime_cast_date_sql("firsts.first_at", (), tzname)
    sql = (f"SELECT firsts.variant_id, {day_sql} AS day, COUNT(*) FROM ({inner_sql}) firsts "
           f"GROUP BY firsts.variant_id, {day_sql}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*day_params, *inner_params, *day_params])
        rows = cursor.fetchall()
    # SQLite returns the day as text; PostgreSQL as a date.
    return [(variant_id, day if isinstance(day, date) else date.fromisoformat(day), units)
            for variant_id, day, units in rows]
