"""POST observations: bulk, idempotent, all or nothing, and only while the test takes data."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from experiments.models import Assignment, Experiment, Observation
from experiments.services.assignment import assignments_for_units
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.factories import ExperimentFactory

UNITS = [f"user-{i}" for i in range(20)]


def url(key: str) -> str:
    return f"/api/v1/experiments/{key}/observations/"


@pytest.fixture
def ab(db) -> Experiment:
    experiment = experiment_start(experiment=ExperimentFactory(key="checkout-button"), actor=None)
    assignments_for_units(experiment_key=experiment.key, units=UNITS)
    return experiment


@pytest.fixture
def cc(db) -> Experiment:
    experiment = ExperimentFactory(
        key="ranker", design="champion_challenger", metric_type="continuous", baseline_mean=None,
        baseline_sd=5.0, mde=0.5,
        variants=[{"key": "champion", "is_control": True}, {"key": "challenger"}],
    )
    return experiment_start(experiment=experiment, actor=None)


def assigned(experiment: Experiment, unit: str) -> str:
    return Assignment.objects.get(experiment=experiment, unit=unit).variant.key


def post(client, experiment, observations):
    return client.post(url(experiment.key), {"observations": observations}, format="json")


@pytest.mark.django_db
def test_observations_of_assigned_units_are_stored_under_their_variant(service_client, ab, viewer_client):
    batch = [{"unit": u, "value": i % 2, "id": f"o-{i}"} for i, u in enumerate(UNITS)]

    response = post(service_client, ab, batch)

    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 20, "duplicates": 0}
    stored = {o.unit: (o.variant.key, o.value) for o in Observation.objects.select_related("variant")}
    assert stored == {u: (assigned(ab, u), float(i % 2)) for i, u in enumerate(UNITS)}
    assert viewer_client.get(f"/api/v1/experiments/{ab.key}/").json()["progress"]["observations"] == 20


@pytest.mark.django_db
def test_a_retry_with_the_same_ids_is_stored_once(service_client, ab):
    batch = [{"unit": u, "value": 1, "id": f"o-{u}"} for u in UNITS[:5]]

    first = post(service_client, ab, batch)
    retry = post(service_client, ab, batch)

    assert first.json() == {"accepted": 5, "duplicates": 0}
    assert retry.json() == {"accepted": 0, "duplicates": 5}
    assert Observation.objects.count() == 5
    ab.refresh_from_db()
    assert ab.observation_count == 5


@pytest.mark.django_db
def test_a_repeated_id_within_one_batch_counts_once(service_client, ab):
    batch = [{"unit": UNITS[0], "value": 1, "id": "same"}, {"unit": UNITS[0], "value": 1, "id": "same"},
             {"unit": UNITS[1], "value": 0}]

    assert post(service_client, ab, batch).json() == {"accepted": 2, "duplicates": 1}


@pytest.mark.django_db
def test_the_timestamp_and_latency_are_kept(service_client, cc):
    batch = [{"unit": "r-1", "variant": "challenger", "value": 0.25, "latency_ms": 12.5,
              "timestamp": "2026-11-20T10:00:00Z"}]

    assert post(service_client, cc, batch).status_code == 201

    observation = Observation.objects.get()
    assert observation.observed_at == datetime(2026, 11, 20, 10, tzinfo=dt_timezone.utc)
    assert observation.latency_ms == 12.5 and observation.variant.key == "challenger"


@pytest.mark.django_db
def test_observations_are_taken_during_the_grace_period(service_client, ab):
    now = timezone.now()
    Experiment.objects.filter(pk=ab.pk).update(started_at=now - timedelta(days=15), ends_at=now - timedelta(hours=1),
                                               grace_period=timedelta(days=1))

    response = post(service_client, ab, [{"unit": UNITS[0], "value": 1}])

    assert response.status_code == 201


@pytest.mark.django_db
def test_observations_after_the_grace_period_are_refused_with_409(service_client, ab):
    now = timezone.now()
    Experiment.objects.filter(pk=ab.pk).update(started_at=now - timedelta(days=15), ends_at=now - timedelta(days=1),
                                               grace_period=timedelta(hours=1))

    response = post(service_client, ab, [{"unit": UNITS[0], "value": 1}])

    assert response.status_code == 409
    assert "grace period" in response.json()["detail"]
    assert not Observation.objects.exists()


@pytest.mark.django_db
def test_drafts_and_stopped_experiments_take_no_observations(service_client, ab):
    draft = ExperimentFactory()
    experiment_stop(experiment=ab, actor=None, reason="bug")

    assert post(service_client, draft, [{"unit": "u", "value": 1}]).status_code == 409
    assert post(service_client, ab, [{"unit": UNITS[0], "value": 1}]).status_code == 409
    assert not Observation.objects.exists()


MALFORMED = {
    "not an object": ([1], "observations[0].item"),
    "missing unit": ([{"value": 1}], "observations[0].unit"),
    "empty unit": ([{"unit": "", "value": 1}], "observations[0].unit"),
    "missing value": ([{"unit": UNITS[0]}], "observations[0].value"),
    "value a string": ([{"unit": UNITS[0], "value": "1"}], "observations[0].value"),
    "value true": ([{"unit": UNITS[0], "value": True}], "observations[0].value"),
    "timestamp unparseable": ([{"unit": UNITS[0], "value": 1, "timestamp": "yesterday"}],
                              "observations[0].timestamp"),
    "negative latency": ([{"unit": UNITS[0], "value": 1, "latency_ms": -1}], "observations[0].latency_ms"),
    "unknown field": ([{"unit": UNITS[0], "value": 1, "colour": "red"}], "observations[0].colour"),
    "second of three bad": ([{"unit": UNITS[0], "value": 1}, {"unit": UNITS[1]}, {"unit": UNITS[2], "value": 0}],
                            "observations[1].value"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("batch, field", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_item_is_a_400_naming_the_item_and_field_and_nothing_is_stored(service_client, ab, batch, field):
    response = post(service_client, ab, batch)

    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert Observation.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"observations": {"unit": "u"}}, {"observations": []}, {"obs": []}, [1, 2]])
def test_a_body_without_a_list_of_observations_is_a_400(service_client, ab, body):
    response = service_client.post(url(ab.key), body, format="json")

    assert response.status_code == 400
    assert "observations" in response.json()["errors"]


@pytest.mark.django_db
def test_more_than_10000_observations_is_a_400(service_client, ab):
    response = post(service_client, ab, [{"unit": UNITS[0], "value": 1}] * 10_001)

    assert response.status_code == 400 and "10000" in response.json()["detail"]
    assert Observation.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [b'{"observations": [{"unit": "user-1", "value": NaN}]}',
                                     b'{"observations": [{"unit": "user-1", "value": Infinity}]}',
                                     b'{"observations": [{"unit": "user-1", "value": 1e999}]}',
                                     b'{"observations": [', b"nope"])
def test_nan_infinity_and_broken_json_are_malformed(service_client, ab, payload):
    response = service_client.post(url(ab.key), payload, content_type="application/json")

    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]
    assert Observation.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_mixing_good_and_rule_breaking_items_is_a_422_listing_every_bad_item(service_client, ab):
    green_unit = next(u for u in UNITS if assigned(ab, u) != "control")
    batch = [
        {"unit": UNITS[0], "value": 1},                          # fine
        {"unit": UNITS[1], "value": 0.5},                        # binary must be 0 or 1
        {"unit": "never-assigned", "value": 1},                  # unassigned ab unit
        {"unit": UNITS[2], "value": 1, "variant": "purple"},     # unknown variant
        {"unit": green_unit, "value": 1, "variant": "control"},  # contradicts the assignment
        {"unit": UNITS[3], "value": 0},                          # fine
    ]

    response = post(service_client, ab, batch)

    assert response.status_code == 422, response.json()
    data = response.json()
    assert data["indexes"] == [1, 2, 3, 4]
    assert set(data["errors"]) == {"observations[1].value", "observations[2].unit", "observations[3].variant",
                                   "observations[4].variant"}
    assert Observation.objects.count() == 0
    ab.refresh_from_db()
    assert ab.observation_count == 0


@pytest.mark.django_db
def test_champion_challenger_observations_must_name_a_known_variant(service_client, cc):
    batch = [{"unit": "r-1", "value": 0.3, "variant": "champion"}, {"unit": "r-1", "value": 0.2},
             {"unit": "r-2", "value": 0.2, "variant": "model-x"}]

    response = post(service_client, cc, batch)

    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"observations[1].variant", "observations[2].variant"}
    assert Observation.objects.count() == 0


@pytest.mark.django_db
def test_champion_challenger_takes_each_models_value_per_request(service_client, cc):
    batch = [{"unit": "r-1", "value": 0.3, "variant": "champion"}, {"unit": "r-1", "value": 0.2,
                                                                    "variant": "challenger"}]

    assert post(service_client, cc, batch).json() == {"accepted": 2, "duplicates": 0}


@pytest.mark.django_db
def test_who_may_post_observations(ab, viewer_client, experimenter_client):
    body = [{"unit": UNITS[0], "value": 1}]

    assert APIClient().post(url(ab.key), {"observations": body}, format="json").status_code == 401
    assert post(viewer_client, ab, body).status_code == 403
    assert post(experimenter_client, ab, body).status_code == 201


@pytest.mark.django_db
def test_an_unknown_experiment_is_a_404(service_client):
    assert service_client.post(url("nope"), {"observations": [{"unit": "u", "value": 1}]},
                               format="json").status_code == 404
