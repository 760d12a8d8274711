"""The report's charts: text escaped in the SVG, and the units chart's step after the length of the test."""

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import Assignment, Experiment, Observation
from experiments.reports import charts
from experiments.reports.chart_data import time_step, units_timeline
from tests.experiments.reports.helpers import analysed_ab, analysed_champion_challenger

TYPED = 'g<b>&"x'
SVG = "{http://www.w3.org/2000/svg}"
CLOCK_TICK = re.compile(r"<!-- (?:\d\d \w{3} )?\d\d:\d\d -->")
DATE_TICK = re.compile(r"<!-- \d{4}-\d\d-\d\d -->")


def units_svg(client, viewer, key: str) -> str:
    client.force_login(viewer)
    html = client.get(f"/reports/{key}/").content.decode()
    match = re.search(r'data-chart="units">(<svg\b.*?</svg>)', html, re.DOTALL)
    assert match, "no units chart on the page"
    return match.group(1)


def assert_escaped(svg: str) -> None:
    ET.fromstring(svg)  # well-formed: every text in it is escaped
    assert "g<b>" not in svg
    assert "g&lt;b&gt;&amp;" in svg


def test_a_variant_label_with_markup_characters_is_escaped_in_every_chart():
    effects = charts.effects_chart([charts.EffectBar(TYPED, 0.5, 0.1, 0.9, True)], mde_lines=[0.2], unit="",
                                   level="95%")
    means = charts.means_chart([charts.MeanBar("control", 1.0, 0.8, 1.2, True), charts.MeanBar(TYPED, 1.5, 1.2, 1.8,
                                                                                                 False)],
                               unit="", level="95%")
    today = timezone.localdate()
    units = charts.units_chart({"control": [(today, 3)], TYPED: [(today, 4)]}, controls={"control"},
                               planned={"control": 5, TYPED: 5}, period=(today - timedelta(days=3), today))
    for svg in (effects, means, units):
        assert_escaped(svg)


def test_the_title_is_escaped_with_django_in_the_aria_label_and_the_title_element():
    figure = charts._figure(2.0)

    svg = charts._svg(figure, salt="test", title=f"Units of {TYPED}")

    assert 'aria-label="Units of g&lt;b&gt;&amp;&quot;x"' in svg
    root = ET.fromstring(svg)
    assert root.get("aria-label") == f"Units of {TYPED}"
    assert root.find(f"{SVG}title").text == f"Units of {TYPED}"


@pytest.mark.parametrize(("duration", "step"), [
    (timedelta(seconds=40), "minute"), (timedelta(minutes=119), "minute"), (timedelta(hours=2), "hour"),
    (timedelta(hours=47), "hour"), (timedelta(days=2), "day"), (timedelta(days=14), "day"),
])
def test_the_units_chart_counts_per_minute_hour_or_day_after_the_length_of_the_test(duration, step):
    assert time_step(duration) == step


@pytest.mark.django_db
def test_a_40_second_ab_test_is_drawn_per_minute_on_a_clock_axis_with_more_than_one_point(client, viewer):
    experiment = analysed_ab("promote")
    start = timezone.now().replace(second=30, microsecond=0) - timedelta(hours=1)
    Experiment.objects.filter(pk=experiment.pk).update(started_at=start, ends_at=start + timedelta(seconds=40))
    for index, pk in enumerate(Assignment.objects.filter(experiment=experiment).values_list("pk", flat=True)):
        Assignment.objects.filter(pk=pk).update(assigned_at=start + timedelta(seconds=index % 40))
    experiment = Experiment.objects.get(pk=experiment.pk)

    timeline = units_timeline(experiment, list(experiment.variants.all()))
    svg = units_svg(client, viewer, experiment.key)

    assert timeline.step == "minute"
    assert {key: len(points) for key, points in timeline.series.items()} == {"control": 2, "green": 2}
    assert {key: points[-1][1] for key, points in timeline.series.items()} == {"control": 200, "green": 200}
    assert len(CLOCK_TICK.findall(svg)) >= 2
    assert not DATE_TICK.search(svg)
    assert "units counted per minute" in svg and "Cumulative units per minute per variant" in svg


@pytest.mark.django_db
def test_a_five_hour_champion_challenger_test_counts_each_request_once_per_hour_of_its_first_score():
    experiment, _ = analysed_champion_challenger(requests=120)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    Experiment.objects.filter(pk=experiment.pk).update(started_at=start, ends_at=start + timedelta(hours=5))
    for index, unit in enumerate(sorted(set(Observation.objects.filter(experiment=experiment)
                                            .values_list("unit", flat=True)))):
        first = start + timedelta(hours=index % 5, minutes=10)
        rows = Observation.objects.filter(experiment=experiment, unit=unit)
        rows.update(observed_at=first)
        # A later score of the same request by the same model does not count it again.
        Observation.objects.create(**{**rows.values("experiment_id", "variant_id", "unit", "value").first(),
                                      "observed_at": first + timedelta(hours=3)})
    experiment = Experiment.objects.get(pk=experiment.pk)

    timeline = units_timeline(experiment, list(experiment.variants.all()))

    assert timeline.step == "hour"
    for points in timeline.series.values():
        assert [at for at, _ in points] == [start + timedelta(hours=h) for h in range(5)]
        assert [total for _, total in points] == [24, 48, 72, 96, 120]
    assert timeline.period == (start, start + timedelta(hours=5))


@pytest.mark.django_db
def test_a_14_day_test_is_still_drawn_per_day(client, viewer):
    experiment = analysed_ab("promote")  # a test period of 14 days, ended a day ago

    timeline = units_timeline(experiment, list(experiment.variants.all()))
    svg = units_svg(client, viewer, experiment.key)

    assert timeline.step == "day"
    assert DATE_TICK.search(svg)
    assert not CLOCK_TICK.search(svg)
    assert "units counted per" not in svg and "Cumulative units per day per variant" in svg
