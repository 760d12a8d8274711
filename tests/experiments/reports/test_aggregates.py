"""Latency percentiles and units per day are aggregated in the database and agree with numpy."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from experiments.models import Assignment, Observation
from experiments.reports.aggregates import latency_by_variant, units_per_day
from tests.experiments.builders import assigned_units, start
from tests.experiments.reports.helpers import analysed_champion_challenger


@pytest.mark.django_db
def test_latency_mean_p50_and_p95_match_numpy_on_the_same_latencies():
    experiment, latencies = analysed_champion_challenger(requests=257, seed=11)
    ids = {v.key: v.id for v in experiment.variants.all()}

    result = latency_by_variant(experiment)

    for key, values in latencies.items():
        latency = result[ids[key]]
        assert latency.count == len(values)
        assert latency.mean == pytest.approx(np.mean(values), rel=1e-12)
        assert latency.p50 == pytest.approx(np.percentile(values, 50), rel=1e-12)
        assert latency.p95 == pytest.approx(np.percentile(values, 95), rel=1e-12)


@pytest.mark.django_db
def test_ab_units_per_day_count_assignments_by_the_day_they_were_made():
    experiment = start()
    assigned_units(experiment, 60)
    today = timezone.now()
    rows = list(Assignment.objects.filter(experiment=experiment).order_by("id"))
    for index, row in enumerate(rows):
        Assignment.objects.filter(pk=row.pk).update(assigned_at=today - timedelta(days=index % 3))

    per_day = units_per_day(experiment)

    expected = {}
    for index, row in enumerate(rows):
        day = (today - timedelta(days=index % 3)).date()
        expected.setdefault(row.variant_id, {}).setdefault(day, 0)
        expected[row.variant_id][day] += 1
    assert {variant: dict(days) for variant, days in per_day.items()} == expected
    assert all([day for day, _ in days] == sorted(day for day, _ in days) for days in per_day.values())


@pytest.mark.django_db
def test_champion_challenger_units_count_once_on_the_day_of_their_first_observation():
    experiment, _ = analysed_champion_challenger(requests=40)
    yesterday = timezone.now() - timedelta(days=1)
    # Half the requests were scored yesterday; a late second score must not count them again today.
    Observation.objects.filter(experiment=experiment, unit__in=[f"r{i}" for i in range(20)]).update(
        observed_at=yesterday)
    v7 = experiment.variants.get(key="v7")
    Observation.objects.create(experiment=experiment, variant=v7, unit="r0", value=0.5, observed_at=timezone.now())

    per_day = units_per_day(experiment)

    for variant in experiment.variants.all():
        assert per_day[variant.id] == [(yesterday.date(), 20), (timezone.now().date(), 20)]


@pytest.mark.django_db
def test_the_python_fallback_for_sqlite_gives_the_same_latencies_as_percentile_cont():
    from experiments.db import portable

    experiment, _ = analysed_champion_challenger(requests=101, seed=5)
    in_sql = latency_by_variant(experiment)

    # Take the path SQLite takes (no ordered-set aggregates) on the same rows.
    in_python = portable.latency_by_variant(experiment)

    assert in_python.keys() == in_sql.keys()
    for variant_id, latency in in_sql.items():
        assert in_python[variant_id].count == latency.count
        for field in ("mean", "p50", "p95"):
            assert getattr(in_python[variant_id], field) == pytest.approx(getattr(latency, field), rel=1e-12)
