"""What the report's charts draw: effects and means from the stored document, cumulative units from the rows.

Besides the primary's three charts, each guardrail and secondary metric has an effect chart
of its own (`metric_effects_chart`), a guardrail's with its margin drawn on the harmful side.

The units chart counts per day, or per hour or minute for a short test (a test of a few
seconds or hours would otherwise be one point on an axis of days). Days come from
`aggregates.units_per_day`; hours and minutes are counted here the same way, in SQL: A/B
by `Assignment.assigned_at`, champion/challenger by each (unit, variant)'s first observation.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Min
from django.db.models.functions import TruncHour, TruncMinute
from django.utils import timezone

from experiments.choices import Design, MetricRole
from experiments.models import Assignment, Experiment, Observation, Variant
from experiments.reports import charts
from experiments.reports.aggregates import units_per_day
from experiments.reports.tables import effect_bars, mean_bars
from experiments.reports.wording import display_scale, harmful_margin, level_text

# Test periods shorter than these are counted per minute, then per hour; longer ones per day.
MINUTES_BELOW = timedelta(hours=2)
HOURS_BELOW = timedelta(days=2)
STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}
TRUNCATIONS = {"minute": TruncMinute, "hour": TruncHour}


@dataclass(frozen=True)
class UnitsTimeline:
    """Cumulative units per variant key at the start of each step that added some, over the test period."""

    step: str  # "day", "hour" or "minute"
    series: dict[str, list[tuple[date | datetime, int]]]
    period: tuple[date | datetime, date | datetime]


def report_charts(experiment: Experiment, document: dict, variants: list[Variant], *, level: float, scale: float,
                  unit: str, mean_unit: str) -> dict[str, str | None]:
    """The three charts as SVG markup (None for one with nothing to draw), and the units chart's step."""
    protocol = experiment.protocol
    bars = effect_bars(document, scale)
    means = mean_bars(document, protocol, level, scale)
    timeline = units_timeline(experiment, variants)
    level_label = level_text(level)
    return {
        # Each chart is trusted server output (matplotlib from stored numbers, its text escaped);
        # the template marks it safe to inline it.
        "effects": charts.effects_chart(bars, mde_lines=mde_lines(protocol, scale), unit=unit,
                                        level=level_label) if bars else None,
        "means": charts.means_chart(means, unit=mean_unit, level=level_label) if means else None,
        "units": charts.units_chart(
            timeline.series, controls={v.key for v in variants if v.is_control},
            planned={v.key: protocol["sample_size_per_variant"][v.key] for v in variants},
            period=timeline.period, step=timeline.step,
        ) if timeline.series else None,
        "units_step": timeline.step,
    }


def mde_lines(protocol: dict, scale: float) -> list[float]:
    """Where the minimum detectable effect is drawn: both signs for a two-sided test, else the preferred one."""
    mde = protocol.get("mde")
    if not mde:
        return []
    if protocol["alternative"] == "two-sided":
        return [-mde * scale, mde * scale]
    preferred = 1 if protocol["metric"]["direction"] == "increase" else -1
    return [preferred * mde * scale]


def margin_line(metric: dict, scale: float) -> float | None:
    """Where a guardrail's margin is drawn: its null value on the harmful side, in display units (None otherwise)."""
    return harmful_margin(metric) * scale if metric["role"] == MetricRole.GUARDRAIL else None


def metric_effects_chart(metric: dict, *, name: str, unit: str, level: float) -> str | None:
    """The effect chart of one entry of the document's `metrics` (None when no comparison was computable)."""
    scale = display_scale(metric["type"])
    bars = effect_bars(metric, scale)
    if not bars:
        return None
    return charts.effects_chart(bars, mde_lines=[], margin_line=margin_line(metric, scale), unit=unit,
                                level=level_text(level), salt=f"effects-{metric['key']}",
                                title=f"Effect of each challenger on {name} with its interval")


def time_step(duration: timedelta) -> str:
    """The step the units chart counts in for a test period this long."""
    if duration < MINUTES_BELOW:
        return "minute"
    return "hour" if duration < HOURS_BELOW else "day"


def units_timeline(experiment: Experiment, variants: list[Variant]) -> UnitsTimeline:
    """Each variant's cumulative units, per day, hour or minute after the length of the test period."""
    step = time_step(experiment.ends_at - experiment.started_at)
    if step == "day":
        counts = units_per_day(experiment)
        period = (experiment.started_at.date(), experiment.ends_at.date())
    else:
        counts = units_per_step(experiment, step)
        period = (_floor(experiment.started_at, step), _ceil(experiment.ends_at, step))
    series = {}
    for variant in variants:
        running_total, points = 0, []
        for at, units in counts.get(variant.id, []):
            running_total += units
            points.append((at, running_total))
        if points:
            series[variant.key] = points
    return UnitsTimeline(step, series, period)


def units_per_step(experiment: Experiment, step: str) -> dict[int, list[tuple[datetime, int]]]:
    """New units per hour or minute per variant id, in time order: `units_per_day`'s counts, finer."""
    if experiment.design == Design.AB:
        rows = (
            Assignment.objects.filter(experiment=experiment).order_by()
            .annotate(at=TRUNCATIONS[step]("assigned_at")).values("variant_id", "at")
            .annotate(units=Count("id")).values_list("variant_id", "at", "units")
        )
    else:
        rows = _first_observation_steps(experiment, step)
    counts: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for variant_id, at, units in sorted(rows, key=lambda row: (row[1], row[0])):
        counts[variant_id].append((at, units))
    return dict(counts)


def _first_observation_steps(experiment: Experiment, step: str) -> list[tuple[int, datetime, int]]:
    """(variant id, start of the step, units) with each (unit, variant) in the step of its first observation.

    As in `aggregates._first_observation_days`: the per-(unit, variant) query is the ORM's,
    wrapped in one outer GROUP BY on the backend's own truncation in the current time zone.
    """
    firsts = (
        Observation.objects.filter(experiment=experiment).order_by()
        .values("unit", "variant_id").annotate(first_at=Min("observed_at"))
    )
    inner_sql, inner_params = firsts.query.sql_with_params()
    tzname = timezone.get_current_timezone_name()
    at_sql, at_params = connection.ops.datetime_trunc_sql(step, "firsts.first_at", (), tzname)
    sql = (f"SELECT firsts.variant_id, {at_sql} AS at, COUNT(*) FROM ({inner_sql}) firsts "
           f"GROUP BY firsts.variant_id, {at_sql}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*at_params, *inner_params, *at_params])
        rows = cursor.fetchall()
    return [(variant_id, _local(at), units) for variant_id, at, units in rows]


def _local(value: datetime | str) -> datetime:
    # The truncation is a wall-clock time in the current time zone: naive from PostgreSQL, text from SQLite.
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _floor(moment: datetime, step: str) -> datetime:
    local = timezone.localtime(moment).replace(second=0, microsecond=0)
    return local.replace(minute=0) if step == "hour" else local


def _ceil(moment: datetime, step: str) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + STEPS[step]
