"""Planned interim looks: taken once at their time, sealed unless a boundary is crossed, then the test ends."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis.sequential import efficacy_boundaries
from experiments.choices import AuditAction, LookOutcome, Status
from experiments.errors import WrongState
from experiments.lock import is_locked, visible_result
from experiments.models import AnalysisResult, AuditEvent, Experiment, InterimLook
from experiments.services.analysis import analysis_run
from experiments.services.looks import experiments_queue_due_looks, interim_look_times, look_run
from tests.experiments.builders import analysed, assigned_units, ingest, start

REL = 1e-9
SALT = "0123456789abcdef0123456789abcdef"
LOOKS = [0.3, 0.7, 1.0]


def looks_experiment(**fields):
    # A fixed salt: the same split every run, so that seeded data always give the same looks.
    defaults = dict(metric_type="continuous", baseline_mean=10.0, baseline_sd=2.0, mde=0.3, looks=LOOKS,
                    spending="obrien_fleming", duration=timedelta(days=10), salt=SALT)
    return start(**{**defaults, **fields})


def look_time(experiment, index):
    return dict(interim_look_times(Experiment.objects.get(pk=experiment.pk)))[index] + timedelta(seconds=1)


def reach_look(experiment, index):
    """Move the test's clock (its dates, frozen ones included) so that look `index` is just due now."""
    delta = look_time(experiment, index) - timezone.now()
    protocol = experiment.protocol
    for look in protocol["looks"]:
        look["at"] = (parse_datetime(look["at"]) - delta).isoformat()
    for field in ("started_at", "ends_at", "unlocks_at"):
        protocol[field] = (parse_datetime(protocol[field]) - delta).isoformat()
    Experiment.objects.filter(pk=experiment.pk).update(
        protocol=protocol, started_at=experiment.started_at - delta, ends_at=experiment.ends_at - delta)
    experiment.refresh_from_db()


def observe(experiment, units, shift, seed, *, start_at=0):
    """One observation per unit: normal(10, 2), plus `shift` for the challenger."""
    rng = np.random.default_rng(seed)
    rows = [(unit, 10.0 + rng.normal(0, 2) + (shift if variant == "treatment" else 0.0))
            for unit, variant in list(units.items())[start_at:]]
    ingest(experiment, rows)
    return rows


@pytest.mark.django_db
def test_the_protocol_freezes_each_looks_time_fraction_and_boundary_and_the_inflated_sample():
    experiment = looks_experiment()
    protocol = experiment.protocol
    boundaries = efficacy_boundaries(LOOKS, "obrien_fleming", 0.025)
    assert [look["fraction"] for look in protocol["looks"]] == LOOKS
    assert [look["boundary"] for look in protocol["looks"]] == pytest.approx(boundaries, rel=1e-12)
    assert [round(look["boundary"], 3) for look in protocol["looks"]] == [3.929, 2.439, 2.000]  # DESIGN.md
    assert parse_datetime(protocol["looks"][0]["at"]) == experiment.started_at + timedelta(days=3)
    assert protocol["looks"][-1]["at"] == protocol["unlocks_at"]
    fixed = protocol["fixed_sample_size_per_variant"]["control"]
    assert protocol["sample_size_per_variant"]["control"] == int(np.ceil(fixed * protocol["inflation_factor"]))
    assert protocol["inflation_factor"] > 1


@pytest.mark.django_db
def test_a_look_that_crosses_no_boundary_is_sealed_and_shows_nothing():
    experiment = looks_experiment()
    units = assigned_units(experiment, 200)
    observe(experiment, units, shift=0.0, seed=1)

    look = look_run(experiment_id=experiment.pk, index=1, now=look_time(experiment, 1))

    experiment.refresh_from_db()
    assert look.outcome == LookOutcome.SEALED
    assert experiment.status == Status.RUNNING and is_locked(experiment)
    assert not AnalysisResult.objects.filter(experiment=experiment).exists()
    entry = look.statistics[0]
    assert entry["id"] == "conversion/treatment" and entry["crossed"] is None
    event = AuditEvent.objects.get(experiment=experiment, action=AuditAction.LOOK_SEALED)
    assert event.reason == "Look 1 of 3: the test continues."
    assert set(event.details) == {"index", "of", "next_at", "outcome"}  # no number computed from outcomes


@pytest.mark.django_db
def test_a_look_runs_once_and_the_sweep_queues_only_looks_not_yet_taken():
    experiment = looks_experiment()
    observe(experiment, assigned_units(experiment, 100), shift=0.0, seed=2)
    now = look_time(experiment, 1)
    assert experiments_queue_due_looks(now=now - timedelta(seconds=2)) == []
    assert experiments_queue_due_looks(now=now) == [(experiment.pk, 1)]

    first = look_run(experiment_id=experiment.pk, index=1, now=now)
    again = look_run(experiment_id=experiment.pk, index=1, now=now + timedelta(minutes=1))

    assert again.pk == first.pk
    assert InterimLook.objects.filter(experiment=experiment).count() == 1
    assert experiments_queue_due_looks(now=now) == []
    assert look_run(experiment_id=experiment.pk, index=2, now=now) is None  # not due yet


@pytest.mark.django_db
def test_a_clear_winner_ends_the_test_at_the_first_look_with_the_boundary_and_repeated_interval():
    experiment = looks_experiment()
    units = assigned_units(experiment, 400)
    rows = observe(experiment, units, shift=2.0, seed=3)
    reach_look(experiment, 1)

    look = look_run(experiment_id=experiment.pk, index=1)

    experiment.refresh_from_db()
    assert look.outcome == LookOutcome.ENDED
    assert experiment.status == Status.ANALYZED and not is_locked(experiment)
    document = visible_result(experiment).document
    assert document["decision"]["outcome"] == "promote" and document["decision"]["variant"] == "treatment"
    assert document["decision"]["reason"].startswith("At look 1 of 3: Promote treatment")
    comparison = document["comparisons"][0]
    values = {v: np.array([value for unit, value in rows if units[unit] == v]) for v in ("control", "treatment")}
    z, p = CompareMeans(DescrStatsW(values["treatment"]), DescrStatsW(values["control"])).ztest_ind(usevar="unequal")
    assert comparison["statistic_z"] == pytest.approx(z, rel=REL)
    assert comparison["nominal_p_value"] == pytest.approx(p, rel=REL)
    fraction = 400 / sum(experiment.protocol["sample_size_per_variant"].values())
    boundary = efficacy_boundaries([fraction], "obrien_fleming", 0.025, final=False)[0]
    assert comparison["information_fraction"] == pytest.approx(fraction, rel=REL)
    assert comparison["boundary"] == pytest.approx(boundary, rel=1e-12)
    se = comparison["effect"] / z
    assert comparison["rci_low"] == pytest.approx(comparison["effect"] - boundary * se, rel=REL)
    assert comparison["rci_high"] == pytest.approx(comparison["effect"] + boundary * se, rel=REL)
    assert comparison["adjusted_p_value"] is None and comparison["significant"] is True
    assert document["look"] == {"index": 1, "of": 3, "information_fraction": comparison["information_fraction"],
                                "boundary": comparison["boundary"], "nominal_alpha": comparison["nominal_alpha"]}
    assert document["checks"]["sample_size_reached"] is None
    with pytest.raises(WrongState):  # observations are refused once a look has ended the test
        ingest(experiment, [(next(iter(units)), 1.0)])


@pytest.mark.django_db
def test_a_look_without_data_is_sealed_with_its_reason_in_the_audit_trail():
    experiment = looks_experiment()

    look = look_run(experiment_id=experiment.pk, index=1, now=look_time(experiment, 1))

    assert look.outcome == LookOutcome.NO_DATA
    event = AuditEvent.objects.get(experiment=experiment, action=AuditAction.LOOK_SEALED)
    assert "could not be assessed" in event.reason or "No comparison" in event.reason


@pytest.mark.django_db
def test_a_missed_look_is_skipped_and_the_last_look_spends_what_is_left_at_the_observed_fractions():
    experiment = looks_experiment()
    units = assigned_units(experiment, 300)
    observe(experiment, units, shift=0.0, seed=4)

    look = look_run(experiment_id=experiment.pk, index=2, now=look_time(experiment, 2))

    assert look.outcome == LookOutcome.SEALED
    skipped = InterimLook.objects.get(experiment=experiment, index=1)
    assert skipped.outcome == LookOutcome.SKIPPED and skipped.statistics == []
    more = assigned_units(experiment, 500)
    observe(experiment, more, shift=0.0, seed=5, start_at=300)
    document = analysed(experiment)

    comparison = document["comparisons"][0]
    fractions = [look.statistics[0]["information_fraction"], comparison["information_fraction"]]
    assert fractions == pytest.approx([300 / sum(experiment.protocol["sample_size_per_variant"].values()),
                                       500 / sum(experiment.protocol["sample_size_per_variant"].values())])
    assert comparison["boundary"] == pytest.approx(
        efficacy_boundaries(fractions, "obrien_fleming", 0.025, final=True)[-1], rel=1e-12)
    assert document["look"]["index"] == 3 and document["look"]["of"] == 3
    assert document["checks"]["sample_size_reached"] == {"control": False, "treatment": False}
    assert document["decision"]["outcome"] == "inconclusive"


@pytest.mark.django_db
def test_a_single_look_experiment_keeps_part_ones_protocol_and_result():
    experiment = start(metric_type="continuous", baseline_mean=10.0, baseline_sd=2.0, mde=0.5)
    assert "looks" not in experiment.protocol
    observe(experiment, assigned_units(experiment, 100), shift=0.0, seed=6)
    document = analysed(experiment)
    assert "look" not in document and "statistic_z" not in document["comparisons"][0]
    assert analysis_run(experiment_id=experiment.pk).document == document
