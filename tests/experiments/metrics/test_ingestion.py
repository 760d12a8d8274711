"""Observations of several metrics: `metric` names one (the primary when absent), ids are unique per metric,
unknown metrics are 422s with nothing written, and the unit sums are kept per metric."""

import random

import pytest
from django.utils import timezone

from experiments.db import portable, postgresql
from experiments.models import Experiment, Observation, UnitOutcome
from experiments.observation_input import ObservationRow
from experiments.services.assignment import assignments_for_units
from experiments.services.ingestion import observations_ingest
from experiments.unit_outcomes.write import pairings, unit_outcomes_rebuild
from tests.experiments.api.definitions import URL
from tests.experiments.db import on_postgresql
from tests.experiments.metrics.definitions import POSITIONS, metrics_body, started_with_metrics

UNITS = [f"user-{i}" for i in range(20)]


@pytest.fixture
def checkout(experimenter_client) -> Experiment:
    """metrics_body()'s A/B test, started, with UNITS assigned."""
    assert experimenter_client.post(URL, metrics_body(), format="json").status_code == 201
    assert experimenter_client.post(f"{URL}checkout-button/start/").status_code == 200
    assignments_for_units(experiment_key="checkout-button", units=UNITS)
    return Experiment.objects.get(key="checkout-button")


def post(client, observations):
    return client.post(f"{URL}checkout-button/observations/", {"observations": observations}, format="json")


def stored() -> list[tuple]:
    return sorted(Observation.objects.values_list("metric_position", "unit", "value", "idempotency_key"))


def counts() -> tuple[int, int, int]:
    return Observation.objects.count(), UnitOutcome.objects.count(), Experiment.objects.get().observation_count


@pytest.mark.django_db
def test_each_observation_is_stored_under_its_metric_and_the_primary_when_none_is_named(service_client, checkout):
    batch = [{"unit": "user-1", "value": 1},
             {"unit": "user-1", "value": 1, "metric": "conversion"},
             {"unit": "user-1", "value": 12.5, "metric": "revenue"},
             {"unit": "user-2", "value": 230.0, "metric": "latency_ms"},
             {"unit": "user-2", "value": 0, "metric": "refunds"}]

    response = post(service_client, batch)

    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 5, "duplicates": 0}
    assert stored() == sorted([(0, "user-1", 1.0, None), (0, "user-1", 1.0, None), (1, "user-1", 12.5, None),
                               (2, "user-2", 230.0, None), (3, "user-2", 0.0, None)])


@pytest.mark.django_db
def test_an_unknown_metric_is_a_422_naming_the_item_and_nothing_is_written(service_client, checkout):
    post(service_client, [{"unit": u, "value": 1, "metric": "revenue"} for u in UNITS[:3]])
    before = counts()

    response = post(service_client, [{"unit": "user-4", "value": 1, "metric": "revenue"},
                                     {"unit": "user-5", "value": 1, "metric": "clicks"}])

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == ["observations[1].metric"]
    assert "'clicks'" in errors["observations[1].metric"][0] and "revenue" in errors["observations[1].metric"][0]
    assert counts() == before and before[1] > 0


@pytest.mark.django_db
@pytest.mark.parametrize("metric", ["", 5.5, "x" * 101])
def test_a_metric_that_is_not_a_key_is_malformed(service_client, checkout, metric):
    response = post(service_client, [{"unit": "user-1", "value": 1, "metric": metric}])

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["observations[0].metric"]
    assert not Observation.objects.exists()


@pytest.mark.django_db
def test_an_id_is_unique_per_metric_the_same_id_under_two_metrics_is_two_observations(service_client, checkout):
    first = post(service_client, [{"unit": "user-1", "value": 1, "id": "order-7"},
                                  {"unit": "user-1", "value": 19.9, "id": "order-7", "metric": "revenue"},
                                  {"unit": "user-1", "value": 25.0, "id": "order-7", "metric": "revenue"}])
    retry = post(service_client, [{"unit": "user-1", "value": 19.9, "id": "order-7", "metric": "revenue"},
                                  {"unit": "user-1", "value": 0, "id": "order-7", "metric": "refunds"}])

    assert first.json() == {"accepted": 2, "duplicates": 1}
    assert retry.json() == {"accepted": 1, "duplicates": 1}
    assert stored() == [(0, "user-1", 1.0, "order-7"), (1, "user-1", 19.9, "order-7"), (3, "user-1", 0.0, "order-7")]
    assert Experiment.objects.get().observation_count == 3


@pytest.mark.django_db
@pytest.mark.parametrize("metric, value, accepted", [
    (None, 0.5, False),            # the primary, conversion, is binary
    ("refunds", 0.5, False),       # a binary guardrail
    ("refunds", 1, True),
    ("revenue", 0.5, True),        # continuous
    ("latency_ms", 180.25, True),
])
def test_the_binary_check_follows_the_named_metrics_type(service_client, checkout, metric, value, accepted):
    item = {"unit": "user-1", "value": value} | ({"metric": metric} if metric else {})

    response = post(service_client, [{"unit": "user-2", "value": 1}, item])

    if accepted:
        assert response.status_code == 201, response.json()
        assert (POSITIONS[metric], value) in Observation.objects.values_list("metric_position", "value")
    else:
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["observations[1].value"]
        assert not Observation.objects.exists()


@pytest.mark.django_db
def test_a_batch_mixing_metrics_sums_each_metric_per_unit(service_client, checkout):
    batch = [{"unit": "user-1", "value": 1}, {"unit": "user-1", "value": 0},
             {"unit": "user-1", "value": 10.0, "metric": "revenue"}, {"unit": "user-1", "value": 2.5, "metric": "revenue"},
             {"unit": "user-2", "value": 100.0, "metric": "latency_ms"}]

    assert post(service_client, batch).status_code == 201

    sums = {(o.metric_position, o.unit): (o.count, o.total) for o in UnitOutcome.objects.all()}
    assert sums == {(0, "user-1"): (2, 1.0), (1, "user-1"): (2, 12.5), (2, "user-2"): (1, 100.0)}


def outcomes(experiment) -> dict[tuple, tuple]:
    return {(o.metric_position, o.unit, o.variant_id): (o.count, o.total, o.control_count, o.control_total)
            for o in UnitOutcome.objects.filter(experiment=experiment)}


@pytest.mark.django_db
@pytest.mark.parametrize("design", ["ab", "champion_challenger"])
def test_the_per_metric_unit_sums_equal_a_recount_after_random_mixed_batches(design):
    experiment = started_with_metrics(
        ("revenue", "continuous"), ("refunds", "binary"), design=design, metric_type="continuous",
        baseline_mean=None, baseline_sd=1.0, mde=0.2,
        variants=[{"key": "control", "is_control": True}, {"key": "b"}, {"key": "c"}])
    units = [f"u{i}" for i in range(30)]
    if design == "ab":
        assignments_for_units(experiment_key=experiment.key, units=units)
    rng = random.Random(11)
    for _ in range(6):
        rows = []
        for index in range(rng.randint(1, 60)):
            metric = rng.choice([None, "conversion", "revenue", "refunds"])
            # Quarters add up exactly in any order, so the comparison can be exact.
            value = rng.randint(0, 1) if metric == "refunds" else rng.randint(-20, 40) / 4
            variant = rng.choice(["control", "b", "c"]) if design == "champion_challenger" else None
            key = rng.choice([None, f"id-{rng.randint(0, 40)}"])
            rows.append(ObservationRow(index, rng.choice(units), float(value), variant, key, None, None, metric))
        observations_ingest(experiment=Experiment.objects.get(pk=experiment.pk), rows=rows)

    incremental = outcomes(experiment)
    unit_outcomes_rebuild(experiment)

    assert incremental == outcomes(experiment)
    assert {metric for metric, _, _ in incremental} == {0, 1, 2}
    for position in (0, 1, 2):
        own = sum(t for (m, _, _), (_, t, _, _) in incremental.items() if m == position)
        stored_values = Observation.objects.filter(experiment=experiment, metric_position=position)
        if design == "ab":
            assert own == sum(o.value for o in stored_values)
        else:   # each challenger's own values; the champion's sit on every challenger's row
            assert own == sum(o.value for o in stored_values if o.variant.key != "control")


@pytest.mark.django_db
@pytest.mark.parametrize("insert", [pytest.param(postgresql.insert_observations, marks=on_postgresql),
                                    portable.insert_observations], ids=["copy", "portable"])
def test_both_storage_paths_keep_ids_and_sums_per_metric(insert):
    experiment = started_with_metrics(("revenue", "continuous"))
    control = experiment.variants.get(is_control=True).id
    pairing = pairings(experiment.design, experiment.variants.all())
    now = timezone.now()

    def record(unit, value, key, metric):
        return (control, unit, value, None, now, key, metric)

    first = insert(experiment.id, pairing, [record("u1", 1.0, "a", 0), record("u1", 5.0, "a", 1),
                                            record("u1", 7.0, "a", 1), record("u2", 2.0, None, 1)], now)
    second = insert(experiment.id, pairing, [record("u1", 9.0, "a", 1), record("u1", 3.0, "b", 1)], now)

    assert (first, second) == (3, 1)
    assert outcomes(experiment) == {(0, "u1", control): (1, 1.0, 0, 0.0), (1, "u1", control): (2, 8.0, 0, 0.0),
                                    (1, "u2", control): (1, 2.0, 0, 0.0)}
