"""CUPED's definition side: `cuped` and `expected_correlation` per metric, refused for champion/challenger,
planned with the effect size divided by sqrt(1 - rho^2), frozen and hashed only when on (DESIGN.md part 2)."""

import copy
import math

import pytest
from django.utils import timezone
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiments.definitions.fields import experiment_definition
from experiments.definitions.protocol import build_protocol, protocol_hash
from experiments.models import AuditEvent, Experiment, Metric, Variant
from tests.experiments.api.definitions import URL, valid_body
from tests.experiments.metrics.definitions import metrics_body


def rows() -> tuple[int, int, int, int]:
    return Experiment.objects.count(), Variant.objects.count(), Metric.objects.count(), AuditEvent.objects.count()


def detail(key: str) -> str:
    return f"{URL}{key}/"


def cuped_body(primary_rho=0.5, latency_rho=0.6) -> dict:
    body = metrics_body()
    body["metrics"][0].update(cuped=True, expected_correlation=primary_rho)
    body["metrics"][2].update(cuped=True, expected_correlation=latency_rho)
    return body


@pytest.mark.django_db
def test_cuped_is_accepted_stored_and_echoed_in_both_shapes(experimenter_client):
    response = experimenter_client.post(URL, cuped_body(), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["cuped"], data["expected_correlation"]) == (True, 0.5)
    entries = {m["key"]: m for m in data["metrics"]}
    assert (entries["conversion"]["cuped"], entries["conversion"]["expected_correlation"]) == (True, 0.5)
    assert (entries["latency_ms"]["cuped"], entries["latency_ms"]["expected_correlation"]) == (True, 0.6)
    assert (entries["refunds"]["cuped"], entries["refunds"]["expected_correlation"]) == (False, None)
    experiment = Experiment.objects.get(key="checkout-button")
    assert (experiment.cuped, experiment.expected_correlation) == (True, 0.5)
    latency = Metric.objects.get(experiment=experiment, key="latency_ms")
    assert (latency.cuped, latency.expected_correlation) == (True, 0.6)
    assert experimenter_client.get(detail("checkout-button")).json()["metrics"] == data["metrics"]


@pytest.mark.django_db
def test_part_1_shape_takes_cuped_as_top_level_fields(experimenter_client):
    response = experimenter_client.post(URL, valid_body(cuped=True, expected_correlation=0.5), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["cuped"], data["expected_correlation"]) == (True, 0.5)
    assert (data["metrics"][0]["cuped"], data["metrics"][0]["expected_correlation"]) == (True, 0.5)
    plain = experimenter_client.post(URL, valid_body(key="plain"), format="json").json()
    assert (plain["cuped"], plain["expected_correlation"]) == (False, None)


@pytest.mark.django_db
def test_planning_divides_the_effect_size_by_sqrt_1_minus_rho_squared(experimenter_client):
    data = experimenter_client.post(URL, cuped_body(), format="json").json()
    power = 1 - 0.2 / 3
    h = proportion_effectsize(0.11, 0.10)
    conversion = NormalIndPower().solve_power(h / math.sqrt(1 - 0.25), nobs1=None, alpha=0.05, power=power,
                                              ratio=1.0, alternative="two-sided")
    latency = TTestIndPower().solve_power(0.125 / math.sqrt(1 - 0.36), nobs1=None, alpha=0.05, power=power,
                                          ratio=1.0, alternative="larger")

    tests = {m["key"]: m for m in data["protocol"]["metrics"]}
    assert tests["conversion"]["sample_size_per_variant"]["control"] == math.ceil(conversion)
    assert tests["latency_ms"]["sample_size_per_variant"]["control"] == math.ceil(latency)
    assert tests["conversion"]["effect_size"] == pytest.approx(h / math.sqrt(0.75), rel=1e-9)
    assert tests["conversion"]["unadjusted_effect_size"] == pytest.approx(h, rel=1e-9)
    assert tests["latency_ms"]["effect_size"] == pytest.approx(0.125 / 0.8, rel=1e-9)
    assert tests["latency_ms"]["unadjusted_effect_size"] == pytest.approx(0.125, rel=1e-9)
    assert "cuped" not in tests["refunds"] and "unadjusted_effect_size" not in tests["refunds"]


@pytest.mark.django_db
def test_cuped_without_a_correlation_plans_as_without_cuped(experimenter_client):
    body = metrics_body()
    body["metrics"][0]["cuped"] = True
    with_cuped = experimenter_client.post(URL, body, format="json").json()
    without = experimenter_client.post(URL, metrics_body(key="plain"), format="json").json()

    assert with_cuped["protocol"]["sample_size_per_variant"] == without["protocol"]["sample_size_per_variant"]
    entry = with_cuped["protocol"]["metrics"][0]
    assert entry["cuped"] is True and "expected_correlation" not in entry and "unadjusted_effect_size" not in entry


@pytest.mark.django_db
def test_start_freezes_cuped_in_the_hashed_protocol(experimenter_client):
    experimenter_client.post(URL, cuped_body(), format="json")
    experimenter_client.post(detail("checkout-button") + "start/")
    experiment = Experiment.objects.get(key="checkout-button")

    metrics = experiment.protocol["metrics"]
    assert (metrics[0]["cuped"], metrics[0]["expected_correlation"]) == (True, 0.5)
    assert (metrics[2]["cuped"], metrics[2]["expected_correlation"]) == (True, 0.6)
    assert "cuped" not in metrics[1] and "cuped" not in metrics[3]
    assert experiment.protocol_hash == protocol_hash(experiment.protocol)
    changed = copy.deepcopy(experiment.protocol)
    changed["metrics"][0]["expected_correlation"] = 0.4
    assert protocol_hash(changed) != experiment.protocol_hash


@pytest.mark.django_db
def test_part_1_cuped_freezes_metrics_and_a_part_1_protocol_without_cuped_is_unchanged(experimenter_client):
    experimenter_client.post(URL, valid_body(key="plain"), format="json")
    experimenter_client.post(URL, valid_body(key="cuped", cuped=True, expected_correlation=0.5), format="json")
    plain, cuped = (Experiment.objects.get(key=key) for key in ("plain", "cuped"))
    now = timezone.now()
    plain_protocol = build_protocol(experiment_definition(plain), started_at=now)

    assert "metrics" not in plain_protocol
    definition = experiment_definition(plain)
    for field in ("cuped", "expected_correlation"):
        definition.pop(field)
    assert protocol_hash(build_protocol(definition, started_at=now)) == protocol_hash(plain_protocol)
    cuped_protocol = build_protocol(experiment_definition(cuped), started_at=now)
    assert cuped_protocol["metrics"][0]["cuped"] is True
    assert cuped_protocol["metrics"][0]["expected_correlation"] == 0.5
    n = math.ceil(NormalIndPower().solve_power(proportion_effectsize(0.11, 0.10) / math.sqrt(0.75), nobs1=None,
                                               alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided"))
    assert cuped_protocol["sample_size_per_variant"] == {"control": n, "green": n}


def _champion_challenger(body: dict) -> dict:
    body["design"] = "champion_challenger"
    body["metrics"][0].update(type="continuous", baseline_sd=1.0, mde=0.1, baseline_mean=None)
    body["metrics"][3].update(type="continuous", baseline_sd=0.1, baseline_mean=None)
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("index", [0, 2])
def test_champion_challenger_refuses_cuped_naming_the_field(experimenter_client, index):
    body = _champion_challenger(metrics_body())
    body["metrics"][index]["cuped"] = True
    before = rows()
    response = experimenter_client.post(URL, body, format="json")

    assert response.status_code == 400, response.json()
    assert f"metrics[{index}].cuped" in response.json()["errors"], response.json()
    assert rows() == before


@pytest.mark.django_db
def test_champion_challenger_refuses_part_1_cuped(experimenter_client):
    body = valid_body(design="champion_challenger", baseline_sd=1.0, cuped=True)
    body["metric"]["type"] = "continuous"
    before = rows()
    response = experimenter_client.post(URL, body, format="json")

    assert response.status_code == 400, response.json()
    assert "cuped" in response.json()["errors"], response.json()
    assert rows() == before


@pytest.mark.django_db
@pytest.mark.parametrize("rho, cuped", [(1.0, True), (-0.1, True), (1.5, True), (0.5, False), ("0.5", True)])
def test_a_bad_expected_correlation_is_a_400_naming_the_field(experimenter_client, rho, cuped):
    body = metrics_body()
    body["metrics"][2].update(cuped=cuped, expected_correlation=rho)
    before = rows()
    response = experimenter_client.post(URL, body, format="json")

    assert response.status_code == 400, response.json()
    assert "metrics[2].expected_correlation" in response.json()["errors"], response.json()
    assert rows() == before


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["NaN", "Infinity"])
def test_a_non_finite_expected_correlation_is_a_400(experimenter_client, raw):
    body = valid_body(cuped=True, expected_correlation=0.5)
    import json

    text = json.dumps(body).replace('"expected_correlation": 0.5', f'"expected_correlation": {raw}')
    before = rows()
    response = experimenter_client.post(URL, text, content_type="application/json")

    assert response.status_code == 400, response.content
    assert rows() == before


@pytest.mark.django_db
def test_part_1_expected_correlation_without_cuped_is_a_400(experimenter_client):
    response = experimenter_client.post(URL, valid_body(expected_correlation=0.5), format="json")

    assert response.status_code == 400, response.json()
    assert "expected_correlation" in response.json()["errors"], response.json()
