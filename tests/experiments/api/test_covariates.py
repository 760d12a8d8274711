"""POST covariates (CUPED): one value per (unit, metric), the first kept, all or nothing, until the end."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from experiments.models import Covariate, Experiment, Metric
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.factories import ExperimentFactory


def url(key: str) -> str:
    return f"/api/v1/experiments/{key}/covariates/"


def with_metrics(experiment: Experiment) -> Experiment:
    """The primary with CUPED, a secondary `revenue` with CUPED and a secondary `clicks` without."""
    Experiment.objects.filter(pk=experiment.pk).update(cuped=True)
    Metric.objects.create(experiment=experiment, position=1, key="revenue", name="revenue",
                          metric_type="continuous", cuped=True)
    Metric.objects.create(experiment=experiment, position=2, key="clicks", name="clicks", metric_type="continuous")
    return Experiment.objects.get(pk=experiment.pk)


@pytest.fixture
def draft(db) -> Experiment:
    return with_metrics(ExperimentFactory(key="checkout-button"))


@pytest.fixture
def running(db) -> Experiment:
    return with_metrics(experiment_start(experiment=ExperimentFactory(key="running-test"), actor=None))


def post(client, experiment, covariates):
    return client.post(url(experiment.key), {"covariates": covariates}, format="json")


def stored() -> dict[tuple[int, str], float]:
    return {(c.metric_position, c.unit): c.value for c in Covariate.objects.all()}


@pytest.mark.django_db
def test_covariates_are_stored_per_metric_without_any_assignment(service_client, draft):
    batch = [{"unit": "u-1", "value": 3.5}, {"unit": "u-2", "value": -1},
             {"unit": "u-1", "value": 120.25, "metric": "revenue"}]

    response = post(service_client, draft, batch)

    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 3, "duplicates": 0}
    assert stored() == {(0, "u-1"): 3.5, (0, "u-2"): -1.0, (1, "u-1"): 120.25}
    assert set(Covariate.objects.values_list("experiment_id", flat=True)) == {draft.id}


@pytest.mark.django_db
def test_the_primary_may_be_named_by_its_key(service_client, draft):
    response = post(service_client, draft, [{"unit": "u-1", "value": 1, "metric": draft.metric_key}])

    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert stored() == {(0, "u-1"): 1.0}


@pytest.mark.django_db
def test_a_repeat_is_a_duplicate_and_the_first_value_stays(service_client, draft):
    first = post(service_client, draft, [{"unit": "u-1", "value": 1}, {"unit": "u-2", "value": 2}])
    again = post(service_client, draft, [{"unit": "u-1", "value": 100}, {"unit": "u-3", "value": 3},
                                         {"unit": "u-3", "value": 300},
                                         {"unit": "u-3", "value": 3, "metric": "revenue"}])

    assert first.json() == {"accepted": 2, "duplicates": 0}
    assert again.status_code == 201
    assert again.json() == {"accepted": 2, "duplicates": 2}
    assert stored() == {(0, "u-1"): 1.0, (0, "u-2"): 2.0, (0, "u-3"): 3.0, (1, "u-3"): 3.0}


@pytest.mark.django_db
def test_a_running_experiment_takes_covariates(service_client, running):
    response = post(service_client, running, [{"unit": "u-1", "value": 7}])

    assert response.status_code == 201, response.json()
    assert stored() == {(0, "u-1"): 7.0}


@pytest.mark.django_db
def test_covariates_after_the_end_are_refused_with_409(service_client, running):
    now = timezone.now()
    Experiment.objects.filter(pk=running.pk).update(started_at=now - timedelta(days=15),
                                                    ends_at=now - timedelta(hours=1), grace_period=timedelta(days=1))

    response = post(service_client, running, [{"unit": "u-1", "value": 7}])

    assert response.status_code == 409, response.json()
    assert response.json()["status"] == "running"
    assert Covariate.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["stopped", "analyzing", "analyzed", "concluded"])
def test_an_ended_experiment_takes_no_covariates(service_client, running, status):
    if status == "stopped":
        experiment_stop(experiment=running, actor=None, reason="bug")
    else:
        Experiment.objects.filter(pk=running.pk).update(status=status)

    response = post(service_client, running, [{"unit": "u-1", "value": 7}])

    assert response.status_code == 409
    assert Covariate.objects.count() == 0


MALFORMED = {
    "not an object": ([1], "covariates[0].item"),
    "missing unit": ([{"value": 1}], "covariates[0].unit"),
    "empty unit": ([{"unit": "", "value": 1}], "covariates[0].unit"),
    "unit too long": ([{"unit": "u" * 256, "value": 1}], "covariates[0].unit"),
    "missing value": ([{"unit": "u-1"}], "covariates[0].value"),
    "value a string": ([{"unit": "u-1", "value": "1"}], "covariates[0].value"),
    "value the string NaN": ([{"unit": "u-1", "value": "NaN"}], "covariates[0].value"),
    "value the string Infinity": ([{"unit": "u-1", "value": "Infinity"}], "covariates[0].value"),
    "value true": ([{"unit": "u-1", "value": True}], "covariates[0].value"),
    "value too large": ([{"unit": "u-1", "value": 1e13}], "covariates[0].value"),
    "metric not a key": ([{"unit": "u-1", "value": 1, "metric": ["revenue"]}], "covariates[0].metric"),
    "unknown field": ([{"unit": "u-1", "value": 1, "variant": "control"}], "covariates[0].variant"),
    "second of three bad": ([{"unit": "u-1", "value": 1}, {"unit": "u-2"}, {"unit": "u-3", "value": 0}],
                            "covariates[1].value"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("batch, field", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_item_is_a_400_naming_the_item_and_field_and_nothing_is_stored(service_client, draft, batch,
                                                                                     field):
    post(service_client, draft, [{"unit": "before", "value": 1}])
    before = stored()

    response = post(service_client, draft, batch)

    assert response.status_code == 400, response.json()
    data = response.json()
    assert field in data["errors"], data
    assert int(field[field.index("[") + 1:field.index("]")]) in data["indexes"]
    assert stored() == before


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [b'{"covariates": [{"unit": "u-1", "value": NaN}]}',
                                     b'{"covariates": [{"unit": "u-1", "value": Infinity}]}',
                                     b'{"covariates": [{"unit": "u-1", "value": 1e999}]}'])
def test_non_finite_json_numbers_are_malformed_as_for_observations(service_client, draft, payload):
    response = service_client.post(url(draft.key), payload, content_type="application/json")

    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]
    assert Covariate.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"covariates": {"unit": "u"}}, {"covariates": []}, {"observations": []}, [1]])
def test_a_body_without_a_list_of_covariates_is_a_400(service_client, draft, body):
    response = service_client.post(url(draft.key), body, format="json")

    assert response.status_code == 400
    assert "covariates" in response.json()["errors"]


@pytest.mark.django_db
def test_more_than_10000_covariates_is_a_400(service_client, draft):
    response = post(service_client, draft, [{"unit": f"u-{i}", "value": 1} for i in range(10_001)])

    assert response.status_code == 400 and "10000" in response.json()["detail"]
    assert Covariate.objects.count() == 0


@pytest.mark.django_db
def test_10000_covariates_are_taken(service_client, draft):
    response = post(service_client, draft, [{"unit": f"u-{i}", "value": i} for i in range(10_000)])

    assert response.json() == {"accepted": 10_000, "duplicates": 0}
    assert Covariate.objects.count() == 10_000


@pytest.mark.django_db
def test_unknown_metrics_and_metrics_without_cuped_are_a_422_listing_every_bad_item(service_client, draft):
    post(service_client, draft, [{"unit": "before", "value": 1}])
    before = stored()
    batch = [
        {"unit": "u-1", "value": 1},                         # fine
        {"unit": "u-2", "value": 1, "metric": "latency"},    # unknown metric
        {"unit": "u-3", "value": 1, "metric": "clicks"},     # no CUPED on this metric
        {"unit": "u-4", "value": 1, "metric": "revenue"},    # fine
    ]

    response = post(service_client, draft, batch)

    assert response.status_code == 422, response.json()
    data = response.json()
    assert data["indexes"] == [1, 2]
    assert set(data["errors"]) == {"covariates[1].metric", "covariates[2].metric"}
    assert "latency" in data["errors"]["covariates[1].metric"][0]
    assert "clicks" in data["errors"]["covariates[2].metric"][0]
    assert stored() == before


@pytest.mark.django_db
def test_a_primary_without_cuped_takes_no_covariate(service_client, draft):
    Experiment.objects.filter(pk=draft.pk).update(cuped=False)

    response = post(service_client, draft, [{"unit": "u-1", "value": 1, "metric": "revenue"},
                                            {"unit": "u-1", "value": 1}])

    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"covariates[1].metric"}
    assert Covariate.objects.count() == 0


@pytest.mark.django_db
def test_who_may_post_covariates(draft, viewer_client, experimenter_client):
    body = [{"unit": "u-1", "value": 1}]

    assert APIClient().post(url(draft.key), {"covariates": body}, format="json").status_code == 401
    assert post(viewer_client, draft, body).status_code == 403
    assert Covariate.objects.count() == 0
    assert post(experimenter_client, draft, body).status_code == 201


@pytest.mark.django_db
def test_an_unknown_experiment_is_a_404(service_client):
    assert service_client.post(url("nope"), {"covariates": [{"unit": "u", "value": 1}]},
                               format="json").status_code == 404


@pytest.mark.django_db
def test_the_schema_documents_the_endpoint(viewer_client):
    response = viewer_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json() if response.get("Content-Type", "").startswith("application/json") else None
    text = response.content.decode()
    assert "/api/v1/experiments/{key}/covariates/" in text and "CovariateBatch" in text
    if schema is not None:
        operation = schema["paths"]["/api/v1/experiments/{key}/covariates/"]["post"]
        assert {"201", "409", "422"} <= set(operation["responses"])
