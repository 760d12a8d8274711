"""The endpoints of clients that assign locally: the SDK configuration (with its ETag) and exposures."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import hashing
from experiments.models import Assignment, Experiment
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.factories import ExperimentFactory

CONFIG_URL = "/api/v1/sdk/config/"


def exposures_url(key: str) -> str:
    return f"/api/v1/experiments/{key}/exposures/"


def running(**fields) -> Experiment:
    return experiment_start(experiment=ExperimentFactory(**fields), actor=None)


@pytest.fixture
def ab(db) -> Experiment:
    return running(key="checkout-button", traffic_percent=50, variants=[
        {"key": "control", "weight": 1.0, "is_control": True, "payload": {"color": "blue"}},
        {"key": "green", "weight": 3.0, "payload": {"color": "green"}},
    ])


@pytest.mark.django_db
def test_the_config_lists_every_serving_experiment_and_never_a_draft(service_client, ab):
    ExperimentFactory(key="a-draft")
    stopped = running(key="stopped-one")
    experiment_stop(experiment=stopped, actor=None, reason="bug")
    concluded = running(key="concluded-one")
    winner = concluded.variants.get(is_control=False)
    Experiment.objects.filter(pk=concluded.pk).update(status="concluded", concluded_variant=winner)

    response = service_client.get(CONFIG_URL)

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    documents = {e["key"]: e for e in response.json()["experiments"]}
    assert list(documents) == ["checkout-button", "concluded-one", "stopped-one"]
    assert documents["checkout-button"] == {
        "key": "checkout-button", "design": "ab", "status": "running", "salt": ab.salt, "traffic_percent": 50.0,
        "variants": [{"key": "control", "weight": 1.0, "payload": {"color": "blue"}, "is_control": True},
                     {"key": "green", "weight": 3.0, "payload": {"color": "green"}, "is_control": False}],
        "concluded_variant": None, "ends_at": ab.ends_at.isoformat(),
    }
    assert documents["concluded-one"]["concluded_variant"] == winner.key
    assert documents["stopped-one"]["status"] == "stopped"


@pytest.mark.django_db
def test_the_etag_answers_304_until_the_configuration_changes(service_client, experimenter_client, ab):
    first = service_client.get(CONFIG_URL)
    etag = first["ETag"]

    unchanged = service_client.get(CONFIG_URL, HTTP_IF_NONE_MATCH=etag)
    experimenter_client.patch(f"/api/v1/experiments/{ab.key}/", {"traffic_percent": 60}, format="json")
    changed = service_client.get(CONFIG_URL, HTTP_IF_NONE_MATCH=etag)

    assert etag.startswith('"') and len(etag) == 66
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged["ETag"] == etag
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert changed.json()["experiments"][0]["traffic_percent"] == 60.0


@pytest.mark.django_db
def test_who_may_read_the_config(ab, viewer_client, experimenter_client):
    from rest_framework.test import APIClient

    assert APIClient().get(CONFIG_URL).status_code == 401
    assert viewer_client.get(CONFIG_URL).status_code == 403
    assert experimenter_client.get(CONFIG_URL).status_code == 200


@pytest.mark.django_db
def test_exposures_store_the_hashed_variant_of_included_units_only(service_client, ab):
    units = [f"user-{i}" for i in range(200)]
    included = [u for u in units if hashing.is_included(ab.salt, u, 50)]

    response = service_client.post(exposures_url(ab.key), {"units": units + units[:5]}, format="json")

    assert response.status_code == 201
    assert response.json() == {"stored": len(included), "existing": 0, "not_included": 200 - len(included)}
    stored = dict(Assignment.objects.filter(experiment=ab).values_list("unit", "variant__key"))
    weights = [("control", 1.0), ("green", 3.0)]
    assert stored == {u: hashing.choose_variant(ab.salt, u, weights) for u in included}


@pytest.mark.django_db
def test_exposures_are_idempotent_and_a_stored_row_is_never_changed(service_client, ab):
    unit = next(u for u in (f"user-{i}" for i in range(100)) if hashing.is_included(ab.salt, u, 50))
    hashed = hashing.choose_variant(ab.salt, unit, [("control", 1.0), ("green", 3.0)])
    other = ab.variants.exclude(key=hashed).get()
    Assignment.objects.create(experiment=ab, unit=unit, variant=other)

    again = [service_client.post(exposures_url(ab.key), {"units": [unit]}, format="json").json() for _ in range(2)]

    assert again == [{"stored": 0, "existing": 1, "not_included": 0}] * 2
    assert Assignment.objects.get(experiment=ab, unit=unit).variant == other


@pytest.mark.django_db
def test_after_the_test_period_exposures_store_nothing_new(service_client, ab):
    now = timezone.now()
    Experiment.objects.filter(pk=ab.pk).update(started_at=now - timedelta(days=15), ends_at=now - timedelta(days=1))

    response = service_client.post(exposures_url(ab.key), {"units": ["a", "b"]}, format="json")

    assert response.json() == {"stored": 0, "existing": 0, "not_included": 2}
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_exposures_of_a_draft_are_a_409_and_of_an_unknown_key_a_404(service_client):
    draft = ExperimentFactory()

    assert service_client.post(exposures_url(draft.key), {"units": ["a"]}, format="json").status_code == 409
    assert service_client.post(exposures_url("nope"), {"units": ["a"]}, format="json").status_code == 404
    assert not Assignment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({}, "units"), ({"units": []}, "units"), ({"units": [f"u{i}" for i in range(10_001)]}, "units"),
    ({"units": ["ok", "fine", "also", ""]}, "units[3]"), ({"units": ["ok", {"id": 1}]}, "units[1]"),
])
def test_bad_exposures_are_a_400_naming_the_item_and_nothing_is_stored(service_client, ab, body, field):
    response = service_client.post(exposures_url(ab.key), body, format="json")

    assert response.status_code == 400 and field in response.json()["errors"], response.json()
    assert not Assignment.objects.exists()
