"""Interim looks over REST: defined and frozen with the protocol, 400s naming the field, and sealed looks say nothing."""

import pytest

from experiments.models import Experiment
from experiments.services.looks import look_run
from tests.experiments.api.definitions import URL, valid_body
from tests.experiments.api.test_results import OUTCOME_KEYS, keys_in
from tests.experiments.services.test_looks import observe, reach_look
from tests.experiments.builders import assigned_units


def create(client, **overrides):
    return client.post(URL, valid_body(**overrides), format="json")


@pytest.mark.django_db
def test_looks_and_spending_are_defined_over_rest_and_frozen_at_start(experimenter_client):
    response = create(experimenter_client, looks=[0.5, 1], spending="pocock")
    assert response.status_code == 201, response.json()
    assert response.json()["looks"] == [0.5, 1.0] and response.json()["spending"] == "pocock"

    started = experimenter_client.post(f"{URL}checkout-button/start/")

    assert started.status_code == 200, started.json()
    protocol = started.json()["protocol"]
    assert [look["index"] for look in protocol["looks"]] == [1, 2]
    assert set(protocol["looks"][0]) == {"index", "fraction", "at", "boundary", "nominal_alpha"}
    assert protocol["spending"] == "pocock" and protocol["inflation_factor"] > 1
    assert protocol["sample_size_per_variant"]["control"] > protocol["fixed_sample_size_per_variant"]["control"]
    frozen = experimenter_client.patch(f"{URL}checkout-button/", {"looks": [0.3, 1]}, format="json")
    assert frozen.status_code == 409


@pytest.mark.django_db
def test_the_default_is_one_look_at_the_end_as_in_part_one(experimenter_client):
    response = create(experimenter_client)
    assert response.json()["looks"] == [1.0] and response.json()["spending"] == "obrien_fleming"


@pytest.mark.parametrize("looks", [
    [0.5, 0.4, 1], [0, 1], [-0.2, 1], [0.5, 1.5], [0.5, 0.9], [0.05 * i for i in range(1, 11)] + [1], [],
    ["half", 1], "0.5,1", [True, 1],
])
@pytest.mark.django_db
def test_bad_looks_are_a_400_naming_the_field_and_nothing_is_stored(experimenter_client, looks):
    response = create(experimenter_client, looks=looks)
    assert response.status_code == 400, response.json()
    assert any(field.startswith("looks") for field in response.json()["errors"])  # looks, or looks[i]
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_an_unknown_spending_function_is_a_400_naming_the_field(experimenter_client):
    response = create(experimenter_client, looks=[0.5, 1], spending="haybittle")
    assert response.status_code == 400
    assert "spending" in response.json()["errors"]


@pytest.mark.django_db
def test_results_of_a_sealed_look_answer_423_with_only_the_looks_progress(experimenter_client):
    create(experimenter_client, looks=[0.3, 0.7, 1], metric={"name": "revenue", "type": "continuous"},
           baseline_mean=10.0, baseline_sd=2.0, mde=0.3)
    experimenter_client.post(f"{URL}checkout-button/start/")
    experiment = Experiment.objects.get(key="checkout-button")
    observe(experiment, assigned_units(experiment, 200), shift=0.0, seed=11)
    locked = experimenter_client.get(f"{URL}checkout-button/results/").json()
    assert locked["look"] == {"done": 0, "of": 3, "next_at": experiment.protocol["looks"][0]["at"]}
    reach_look(experiment, 1)
    assert look_run(experiment_id=experiment.pk, index=1).outcome == "sealed"

    response = experimenter_client.get(f"{URL}checkout-button/results/")

    assert response.status_code == 423
    body = response.json()
    experiment.refresh_from_db()
    assert body["look"] == {"done": 1, "of": 3, "next_at": experiment.protocol["looks"][1]["at"]}
    assert body["detail"].startswith("Look 1 of 3: the test continues; the next look is at ")
    assert not keys_in(body) & OUTCOME_KEYS
    detail = experimenter_client.get(f"{URL}checkout-button/").json()
    assert "statistic_z" not in keys_in(detail) and "statistics" not in keys_in(detail)
