"""POST /api/v1/experiments/: a valid definition becomes a draft; every bad one is a 400 that writes nothing."""

import copy

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiments.models import AuditEvent, Experiment, Variant
from tests.experiments.api.definitions import URL, valid_body


def rows() -> tuple[int, int, int]:
    return Experiment.objects.count(), Variant.objects.count(), AuditEvent.objects.count()


@pytest.mark.django_db
def test_a_valid_definition_is_stored_as_a_draft_with_a_sample_size_preview(experimenter_client):
    response = experimenter_client.post(URL, valid_body(), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["key"] == "checkout-button"
    assert data["status"] == "draft"
    # DESIGN.md part 2 amends part 1 here: `metric` gains its `key` (slugify of the name by default).
    assert data["metric"] == {"name": "checkout_conversion", "type": "binary", "direction": "increase",
                              "key": "checkout_conversion"}
    assert data["duration"] == "P14D" and data["grace_period"] == "PT0S"
    assert [v["key"] for v in data["variants"]] == ["control", "green"]
    assert data["variants"][0]["payload"] == {"color": "blue"}
    assert len(data["salt"]) == 32
    expected = NormalIndPower().solve_power(
        effect_size=proportion_effectsize(0.11, 0.10), alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided")
    assert data["protocol"]["sample_size_per_variant"] == {"control": 14745, "green": 14745}
    assert 14744 < expected <= 14745
    assert data["protocol"]["test"] == "two-proportion z-test"
    assert data["protocol"]["hash"] is None
    assert data["warnings"] == []
    assert AuditEvent.objects.get().action == "created"


@pytest.mark.django_db
def test_a_duration_under_a_week_is_accepted_with_a_seasonality_warning(experimenter_client):
    response = experimenter_client.post(URL, valid_body(duration="PT30S"), format="json")

    assert response.status_code == 201
    assert response.json()["duration"] == "PT30S"
    assert "7 days" in response.json()["warnings"][0]


@pytest.mark.django_db
def test_a_sample_size_instead_of_an_mde_computes_the_detectable_effect(experimenter_client):
    response = experimenter_client.post(URL, valid_body(mde=None, sample_size_per_variant=14745), format="json")

    assert response.status_code == 201, response.json()
    protocol = response.json()["protocol"]
    assert protocol["sample_size_per_variant"] == {"control": 14745, "green": 14745}
    assert protocol["mde"] == pytest.approx(0.01, abs=2e-5)


def _without(body: dict, *path):
    body = copy.deepcopy(body)
    target = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


def _variants(*specs):
    return {"variants": list(specs)}


CONTROL = {"key": "control", "weight": 1, "is_control": True}
GREEN = {"key": "green", "weight": 1}

BAD_BODIES = {
    "alpha zero": (valid_body(alpha=0), "alpha"),
    "alpha one": (valid_body(alpha=1), "alpha"),
    "power above one": (valid_body(power=1.2), "power"),
    "power zero": (valid_body(power=0), "power"),
    "mde zero": (valid_body(mde=0), "mde"),
    "mde negative": (valid_body(mde=-0.01), "mde"),
    "binary baseline above one": (valid_body(baseline_mean=1.5), "baseline_mean"),
    "binary baseline zero": (valid_body(baseline_mean=0), "baseline_mean"),
    "binary baseline missing": (valid_body(baseline_mean=None), "baseline_mean"),
    "baseline plus mde above one": (valid_body(baseline_mean=0.95, mde=0.1), "mde"),
    "continuous without sd": (
        valid_body(metric={"name": "revenue", "type": "continuous", "direction": "increase"}, baseline_sd=None),
        "baseline_sd"),
    "continuous with zero sd": (
        valid_body(metric={"name": "revenue", "type": "continuous", "direction": "increase"}, baseline_sd=0),
        "baseline_sd"),
    "binary with a negative sd": (valid_body(baseline_sd=-1.0), "baseline_sd"),
    "paired without sd": (valid_body(design="champion_challenger", baseline_sd=None), "baseline_sd"),
    "both mde and sample size": (valid_body(sample_size_per_variant=1000), "mde"),
    "neither mde nor sample size": (valid_body(mde=None), "mde"),
    "weight zero": (valid_body(**_variants(CONTROL, {**GREEN, "weight": 0})), "variants[1].weight"),
    "weight negative": (valid_body(**_variants({**CONTROL, "weight": -1}, GREEN)), "variants[0].weight"),
    "no control": (valid_body(**_variants({**CONTROL, "is_control": False}, GREEN)), "variants"),
    "two controls": (valid_body(**_variants(CONTROL, {**GREEN, "is_control": True})), "variants"),
    "duplicate variant keys": (valid_body(**_variants(CONTROL, GREEN, GREEN)), "variants[2].key"),
    "one variant": (valid_body(**_variants(CONTROL)), "variants"),
    "no variants": (valid_body(**_variants()), "variants"),
    "duration unparseable": (valid_body(duration="two weeks"), "duration"),
    "duration zero": (valid_body(duration="PT0S"), "duration"),
    "duration negative": (valid_body(duration="-P1D"), "duration"),
    "traffic zero": (valid_body(traffic_percent=0), "traffic_percent"),
    "traffic above 100": (valid_body(traffic_percent=100.5), "traffic_percent"),
    "key not a slug": (valid_body(key="not a slug!"), "key"),
    "key missing": (_without(valid_body(), "key"), "key"),
    "unknown design": (valid_body(design="bandit"), "design"),
    "unknown metric type": (valid_body(metric={"name": "m", "type": "count", "direction": "increase"}),
                            "metric.type"),
    "unknown direction": (valid_body(metric={"name": "m", "type": "binary", "direction": "up"}),
                          "metric.direction"),
    "unknown alternative": (valid_body(alternative="greater"), "alternative"),
    "variant key not a slug": (valid_body(**_variants(CONTROL, {**GREEN, "key": "gr een"})), "variants[1].key"),
    "alpha not a number": (valid_body(alpha="often"), "alpha"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_definition_is_refused_naming_the_field_and_nothing_is_written(experimenter_client, body, field):
    before = rows()

    response = experimenter_client.post(URL, body, format="json")

    assert response.status_code == 400, response.json()
    data = response.json()
    assert field in data["errors"], data
    assert field in data["detail"] or data["detail"].startswith("Invalid input")
    assert rows() == before


@pytest.mark.django_db
def test_a_key_already_taken_is_refused_and_the_first_experiment_is_untouched(experimenter_client):
    assert experimenter_client.post(URL, valid_body(), format="json").status_code == 201
    before = rows()

    response = experimenter_client.post(URL, valid_body(name="Another"), format="json")

    assert response.status_code == 400
    assert "key" in response.json()["errors"]
    assert rows() == before
    assert Experiment.objects.get().name == "Checkout button colour"


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [b'{"key": "x",', b"[1, 2", b"not json"])
def test_malformed_json_is_a_400_json_error_and_nothing_is_written(experimenter_client, payload):
    before = rows()

    response = experimenter_client.post(URL, payload, content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert rows() == before


@pytest.mark.django_db
def test_nan_and_infinity_literals_are_malformed_json(experimenter_client):
    response = experimenter_client.post(URL, b'{"alpha": NaN, "power": Infinity}', content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert rows() == (0, 0, 0)


@pytest.mark.django_db
def test_nan_and_infinity_as_strings_are_not_numbers(experimenter_client):
    response = experimenter_client.post(URL, valid_body(alpha="NaN", power="Infinity"), format="json")

    assert response.status_code == 400
    assert {"alpha", "power"} <= set(response.json()["errors"])
    assert rows() == (0, 0, 0)
