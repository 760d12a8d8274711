"""Part 2's `metrics` in the REST API: stored, planned with the beta correction, frozen and hashed; bad lists are 400s."""

import copy
import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiments.definitions.protocol import build_protocol, protocol_hash
from experiments.models import AuditEvent, Experiment, Metric, Variant
from tests.experiments.api.definitions import URL, valid_body
from tests.experiments.metrics.definitions import metrics_body


def rows() -> tuple[int, int, int, int]:
    return Experiment.objects.count(), Variant.objects.count(), Metric.objects.count(), AuditEvent.objects.count()


def detail(key: str) -> str:
    return f"{URL}{key}/"


@pytest.mark.django_db
def test_metrics_are_stored_and_answered_in_both_shapes(experimenter_client):
    response = experimenter_client.post(URL, metrics_body(), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["metric"] == {"name": "Checkout conversion", "type": "binary", "direction": "increase",
                              "key": "conversion"}
    assert (data["baseline_mean"], data["baseline_sd"], data["mde"]) == (0.10, None, 0.01)
    assert [(m["key"], m["role"]) for m in data["metrics"]] == [
        ("conversion", "primary"), ("revenue", "secondary"), ("latency_ms", "guardrail"), ("refunds", "guardrail")]
    latency = data["metrics"][2]
    assert (latency["aggregation"], latency["margin"], latency["baseline_sd"], latency["mde"]) == ("mean", 5.0, 40.0, None)
    assert list(Metric.objects.values_list("key", "position")) == [("revenue", 1), ("latency_ms", 2), ("refunds", 3)]


@pytest.mark.django_db
def test_every_test_is_planned_at_the_corrected_power_and_the_largest_need_sets_the_sample(experimenter_client):
    data = experimenter_client.post(URL, metrics_body(), format="json").json()
    power = 1 - 0.2 / 3  # two guardrails: beta / (G + 1)
    conversion = math.ceil(NormalIndPower().solve_power(
        proportion_effectsize(0.11, 0.10), nobs1=None, alpha=0.05, power=power, ratio=1.0, alternative="two-sided"))
    latency = math.ceil(TTestIndPower().solve_power(
        5.0 / 40.0, nobs1=None, alpha=0.05, power=power, ratio=1.0, alternative="larger"))
    refunds = math.ceil(NormalIndPower().solve_power(
        0.005 / math.sqrt(0.02 * 0.98), nobs1=None, alpha=0.05, power=power, ratio=1.0, alternative="larger"))

    tests = {m["key"]: m for m in data["protocol"]["metrics"]}
    assert tests["conversion"]["sample_size_per_variant"] == {"control": conversion, "green": conversion}
    assert tests["latency_ms"]["sample_size_per_variant"] == {"control": latency, "green": latency}
    assert tests["refunds"]["sample_size_per_variant"] == {"control": refunds, "green": refunds}
    assert tests["revenue"]["sample_size_per_variant"] is None and tests["revenue"]["power"] is None
    assert all(tests[key]["power"] == pytest.approx(power, rel=1e-12) for key in ("conversion", "latency_ms", "refunds"))
    largest = max(conversion, latency, refunds)
    assert data["protocol"]["sample_size_per_variant"] == {"control": largest, "green": largest}
    setter = [key for key, test in tests.items() if test["sets_sample"]]
    assert setter == [max(("conversion", conversion), ("latency_ms", latency), ("refunds", refunds),
                          key=lambda pair: pair[1])[0]]
    assert tests["latency_ms"]["effect_size"] == pytest.approx(0.125, rel=1e-12)
    assert tests["latency_ms"]["test"] != tests["revenue"]["test"]


@pytest.mark.django_db
def test_start_freezes_every_metric_in_the_hashed_protocol(experimenter_client):
    experimenter_client.post(URL, metrics_body(), format="json")
    started = experimenter_client.post(detail("checkout-button") + "start/").json()
    experiment = Experiment.objects.get(key="checkout-button")

    assert [m["key"] for m in experiment.protocol["metrics"]] == ["conversion", "revenue", "latency_ms", "refunds"]
    assert experiment.protocol["metrics"][2]["margin"] == 5.0
    assert experiment.protocol_hash == protocol_hash(experiment.protocol)
    assert started["protocol"]["metrics"] == experiment.protocol["metrics"]
    changed = copy.deepcopy(experiment.protocol)
    changed["metrics"][2]["margin"] = 6.0
    assert protocol_hash(changed) != experiment.protocol_hash
    frozen = experimenter_client.patch(detail("checkout-button"), {"metrics": metrics_body()["metrics"][:1]},
                                       format="json")
    assert frozen.status_code == 409


@pytest.mark.django_db
def test_a_part_1_definition_freezes_without_metrics_so_its_hash_is_part_1s(experimenter_client):
    experimenter_client.post(URL, valid_body(), format="json")
    experimenter_client.post(detail("checkout-button") + "start/")
    experiment = Experiment.objects.get(key="checkout-button")

    assert "metrics" not in experiment.protocol
    assert set(experiment.protocol) == {
        "design", "metric", "baseline_mean", "baseline_sd", "mde", "alpha", "power", "alternative", "variants",
        "sample_size_per_variant", "test", "duration", "grace_period", "started_at", "ends_at", "unlocks_at"}
    answer = experimenter_client.get(detail("checkout-button")).json()["protocol"]["metrics"]
    assert [(m["key"], m["role"], m["sets_sample"]) for m in answer] == [("checkout_conversion", "primary", True)]
    assert answer[0]["sample_size_per_variant"] == experiment.protocol["sample_size_per_variant"]


@pytest.mark.django_db
def test_a_one_metric_part_2_body_plans_and_hashes_like_its_part_1_twin(experimenter_client):
    body = metrics_body(key="twin-2")
    body["metrics"] = [{"name": "checkout_conversion", "type": "binary", "direction": "increase", "role": "primary",
                        "baseline_mean": 0.10, "mde": 0.01}]
    experimenter_client.post(URL, body, format="json")
    experimenter_client.post(URL, valid_body(key="twin-1"), format="json")
    first, second = (Experiment.objects.get(key=key) for key in ("twin-1", "twin-2"))
    from experiments.definitions.fields import experiment_definition
    from django.utils import timezone

    now = timezone.now()
    one, two = (build_protocol(experiment_definition(e), started_at=now) for e in (first, second))
    assert one == two and "metrics" not in one


@pytest.mark.django_db
def test_patch_of_metrics_replaces_the_list_and_part_1_fields_edit_the_primary(experimenter_client):
    experimenter_client.post(URL, metrics_body(), format="json")
    replaced = experimenter_client.patch(detail("checkout-button"), {"metrics": metrics_body()["metrics"][:2]},
                                         format="json")
    assert replaced.status_code == 200, replaced.json()
    assert [m["key"] for m in replaced.json()["metrics"]] == ["conversion", "revenue"]

    edited = experimenter_client.patch(detail("checkout-button"), {"mde": 0.02}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["metrics"][0]["mde"] == 0.02
    assert Metric.objects.filter(experiment__key="checkout-button").count() == 1


def _with(metrics_change) -> dict:
    body = metrics_body()
    metrics_change(body["metrics"])
    return body


BAD = {
    "two primaries": (_with(lambda m: m[1].update(role="primary")), "metrics"),
    "no primary": (_with(lambda m: m[0].update(role="secondary")), "metrics"),
    "duplicate key": (_with(lambda m: m[2].update(key="revenue")), "metrics[2].key"),
    "duplicate of the primary's key": (_with(lambda m: m[3].update(key="conversion")), "metrics[3].key"),
    "guardrail without margin": (_with(lambda m: m[2].pop("margin")), "metrics[2].margin"),
    "guardrail with margin 0": (_with(lambda m: m[2].update(margin=0)), "metrics[2].margin"),
    "negative margin": (_with(lambda m: m[3].update(margin=-0.01)), "metrics[3].margin"),
    "binary guardrail pushed out of (0, 1)": (_with(lambda m: m[3].update(margin=0.98)), "metrics[3].margin"),
    "binary guardrail pushed below 0": (
        _with(lambda m: m[3].update(direction="increase", margin=0.03)), "metrics[3].margin"),
    "guardrail without baseline": (_with(lambda m: m[2].pop("baseline_sd")), "metrics[2].baseline_sd"),
    "margin on a secondary metric": (_with(lambda m: m[1].update(margin=1.0)), "metrics[1].margin"),
    "mde on a guardrail": (_with(lambda m: m[2].update(mde=1.0)), "metrics[2].mde"),
    "more than 20 metrics": (_with(lambda m: m.extend(
        {"key": f"extra-{i}", "name": f"extra {i}", "type": "continuous", "role": "secondary"} for i in range(17))),
        "metrics"),
    "mean of a binary metric": (_with(lambda m: m[3].update(aggregation="mean")), "metrics[3].aggregation"),
    "unknown role": (_with(lambda m: m[1].update(role="tertiary")), "metrics[1].role"),
    "primary without baseline": (_with(lambda m: m[0].pop("baseline_mean")), "metrics[0].baseline_mean"),
    "primary's error named by its item": (_with(lambda m: (m.insert(0, m.pop(1)), m[1].update(mde=-1))),
                                          "metrics[1].mde"),
    "part 1 and part 2 mixed": ({**metrics_body(), "mde": 0.01}, "mde"),
    "part 1 metric beside metrics": ({**metrics_body(), "metric": valid_body()["metric"]}, "metric"),
    "empty metrics": (metrics_body(metrics=[]), "metrics"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", BAD.values(), ids=BAD.keys())
def test_a_bad_metrics_list_is_a_400_naming_the_item_and_writes_nothing(experimenter_client, body, field):
    before = rows()
    response = experimenter_client.post(URL, body, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert rows() == before
