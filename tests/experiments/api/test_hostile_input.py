"""Hostile input at the API's boundary: always a JSON answer, never a 500 or an HTML page.

Each test is one finding of the outside test (against gunicorn, PostgreSQL and Redis).
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from experiments.api.renderers import RequestTooLarge
from experiments.api.renderers import read_limited
from experiments.limits import MAX_BODY_BYTES, MAX_BULK_BODY_BYTES, MAX_JSON_DEPTH
from experiments.models import Experiment, Observation
from tests.experiments.api.definitions import URL, valid_body
from tests.experiments.builders import start

BASE_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture
def running(db):
    return start(key="running-test")


def observations_url(key: str = "running-test") -> str:
    return f"/api/v1/experiments/{key}/observations/"


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def first_error_field(response) -> str:
    return next(iter(json.loads(response.content)["errors"]))


# --- 1. one boundary: JSON for every error under /api/, HTML elsewhere --------------------------

def test_a_key_that_is_not_a_slug_is_a_json_404(viewer_client):
    assert_json_error(viewer_client.get("/api/v1/experiments/%C3%A9t%C3%A9/"), 404)
    assert_json_error(viewer_client.get("/api/v1/no-such-endpoint/"), 404)


def test_outside_the_api_a_404_stays_django_s_html_page(db):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_an_unexpected_exception_is_a_json_500(viewer_client, monkeypatch):
    from experiments.api import experiments as views

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.ExperimentListCreateApi, "get", broken)
    viewer_client.raise_request_exception = False
    body = assert_json_error(viewer_client.get(URL), 500)
    assert "boom" not in body["detail"]


def test_django_s_upload_limit_no_longer_answers_an_html_400(experimenter_client):
    body = json.dumps(valid_body(hypothesis="x" * (MAX_BODY_BYTES + 10)))
    response = experimenter_client.generic("POST", URL, body, content_type="application/json")
    assert assert_json_error(response, 413)["limit_bytes"] == MAX_BODY_BYTES


# --- 2. bodies: a size limit before reading, a depth limit ---------------------------------------

def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(service_client, running):
    # The declared length alone decides: the body is never read (the worker's memory stays flat).
    response = service_client.generic("POST", observations_url(), b"{}", content_type="application/json",
                                      CONTENT_LENGTH=str(MAX_BULK_BODY_BYTES + 1))
    assert assert_json_error(response, 413)["limit_bytes"] == MAX_BULK_BODY_BYTES


def test_the_bulk_limit_fits_10000_observations_with_long_ids(service_client, running):
    items = [{"unit": "u" * 255, "id": "i" * 255, "value": 1.5, "latency_ms": 12.25} for _ in range(10_000)]
    body = json.dumps({"observations": items})
    assert MAX_BODY_BYTES < len(body) < MAX_BULK_BODY_BYTES / 2
    response = service_client.generic("POST", observations_url(), body, content_type="application/json")
    assert response.status_code in (201, 422), response.content[:200]  # parsed; units are not assigned


def test_a_body_without_a_declared_length_is_refused_once_reading_passes_the_limit():
    class Request:
        max_body_bytes = 10

    assert read_limited(io.BytesIO(b"0123456789"), {"request": Request()}) == b"0123456789"
    with pytest.raises(RequestTooLarge):
        read_limited(io.BytesIO(b"0123456789A"), {"request": Request()})


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 10_000])
def test_json_nested_deeper_than_the_limit_is_a_400_naming_it(experimenter_client, service_client, running, depth):
    deep = "[" * depth + "]" * depth
    for client, url in ((experimenter_client, URL), (service_client, observations_url()),
                        (service_client, "/api/v1/assignments/")):
        body = '{"observations": %s, "payload": %s}' % (deep, deep)
        response = client.generic("POST", url, body, content_type="application/json")
        assert str(MAX_JSON_DEPTH) in assert_json_error(response, 400)["detail"]


def test_json_at_the_depth_limit_is_parsed(experimenter_client):
    payload = {}
    for _ in range(MAX_JSON_DEPTH - 4):  # body, variants list, variant object, payload: 64 levels
        payload = {"a": payload}
    body = valid_body(variants=[{"key": "control", "is_control": True, "payload": payload}, {"key": "green"}])
    assert experimenter_client.post(URL, body, format="json").status_code == 201


# --- 3. text: NUL, unpaired surrogates, invalid UTF-8 -------------------------------------------

@pytest.mark.parametrize("field, item", [
    ("unit", {"unit": "a\x00b", "value": 1}),
    ("id", {"unit": "u1", "value": 1, "id": "x\x00"}),
    ("variant", {"unit": "u1", "value": 1, "variant": "v\x00"}),
])
def test_nul_in_an_observation_is_a_400_naming_the_item_and_field(service_client, running, field, item):
    items = [{"unit": f"u{i}", "value": 1} for i in range(3)] + [item]
    response = service_client.post(observations_url(), {"observations": items}, format="json")
    assert_json_error(response, 400)
    assert first_error_field(response) == f"observations[3].{field}"
    assert "NUL" in json.loads(response.content)["errors"][f"observations[3].{field}"][0]
    assert not Observation.objects.exists()


def test_a_lone_surrogate_in_an_observation_is_a_400(service_client, running):
    body = '{"observations": [{"unit": "a\\ud800", "value": 1}]}'
    response = service_client.generic("POST", observations_url(), body, content_type="application/json")
    assert_json_error(response, 400)


@pytest.mark.parametrize("query", ["unit=a%00b", "unit=%FF", "unit=%ED%A0%80"])
def test_a_unit_query_with_nul_or_invalid_utf8_is_a_400_naming_unit(service_client, running, query):
    response = service_client.get(f"/api/v1/experiments/running-test/assignment/?{query}")
    body = assert_json_error(response, 400)
    assert list(body["errors"]) == ["unit"]


def test_a_real_replacement_character_in_a_unit_is_a_unit(service_client, running):
    response = service_client.get("/api/v1/experiments/running-test/assignment/?unit=%EF%BF%BD")
    assert response.status_code == 200 and response.json()["unit"] == "\ufffd"


def test_nul_in_the_batch_assignment_unit_is_a_400(service_client, running):
    response = service_client.post("/api/v1/assignments/", {"units": ["ok", "a\x00"], "experiment": "running-test"},
                                   format="json")
    assert first_error_field(response) == "units[1]" and response.status_code == 400


@pytest.mark.parametrize("overrides, field", [
    ({"name": "a\x00"}, "name"),
    ({"hypothesis": "a\x00"}, "hypothesis"),
    ({"metric": {"name": "a\x00", "type": "binary"}}, "metric.name"),
    ({"variants": [{"key": "control", "is_control": True, "payload": {"color": "a\x00"}}, {"key": "green"}]},
     "variants[0].payload"),
    ({"variants": [{"key": "control", "is_control": True, "payload": {"k\x00": 1}}, {"key": "green"}]},
     "variants[0].payload"),
])
def test_nul_in_a_definition_text_is_a_400_naming_the_field(experimenter_client, overrides, field):
    response = experimenter_client.post(URL, valid_body(**overrides), format="json")
    assert_json_error(response, 400)
    assert field in json.loads(response.content)["errors"]
    assert not Experiment.objects.exists()


def test_a_lone_surrogate_in_a_payload_is_a_400(experimenter_client):
    body = json.dumps(valid_body()).replace('"blue"', '"\\udc00"')
    response = experimenter_client.generic("POST", URL, body, content_type="application/json")
    assert "variants[0].payload" in assert_json_error(response, 400)["errors"]


def test_nul_in_a_stop_reason_is_a_400(experimenter_client, running):
    response = experimenter_client.post("/api/v1/experiments/running-test/stop/", {"reason": "a\x00"}, format="json")
    assert first_error_field(response) == "reason" and response.status_code == 400


# --- 3. numbers: documented bounds, strict types -------------------------------------------------

@pytest.mark.parametrize("overrides, field", [
    ({"variants": [{"key": "control", "is_control": True, "weight": 2e6}, {"key": "green"}]}, "variants[0].weight"),
    ({"traffic_percent": 100.5}, "traffic_percent"),
    ({"duration": "P1000000000D"}, "duration"),
    ({"duration": "P99999999D"}, "duration"),
    ({"duration": "P1831D"}, "duration"),
    ({"grace_period": "P99999999D"}, "grace_period"),
    ({"mde": None, "sample_size_per_variant": 2**63}, "sample_size_per_variant"),
    ({"mde": None, "sample_size_per_variant": 10**400}, "sample_size_per_variant"),
    ({"mde": None, "sample_size_per_variant": 1_000_000_001}, "sample_size_per_variant"),
    ({"design": "champion_challenger", "metric": {"name": "m", "type": "continuous"}, "baseline_mean": 1e13,
      "baseline_sd": 1.0, "mde": 0.1}, "baseline_mean"),
    ({"design": "champion_challenger", "metric": {"name": "m", "type": "continuous"}, "baseline_mean": 1.0,
      "baseline_sd": 1e13, "mde": 0.1}, "baseline_sd"),
    ({"mde": 1e200}, "mde"),
    ({"alpha": "0.05"}, "alpha"),
    ({"power": True}, "power"),
    ({"traffic_percent": "100"}, "traffic_percent"),
    ({"mde": None, "sample_size_per_variant": "1000"}, "sample_size_per_variant"),
    ({"variants": [{"key": "control", "is_control": True, "weight": "1"}, {"key": "green"}]}, "variants[0].weight"),
])
def test_a_number_out_of_its_bounds_or_given_as_a_string_is_a_400_naming_the_field(
        experimenter_client, overrides, field):
    # A raw body: json.dumps writes 10**400 as an integer literal, exactly what a client may send.
    response = experimenter_client.generic("POST", URL, json.dumps(valid_body(**overrides)),
                                           content_type="application/json")
    body = assert_json_error(response, 400)
    assert field in body["errors"], body


def test_the_bounds_themselves_are_accepted(experimenter_client):
    body = valid_body(duration="P1830D", grace_period="P1830D", traffic_percent=100,
                      variants=[{"key": "control", "is_control": True, "weight": 1e6}, {"key": "green", "weight": 1}])
    assert experimenter_client.post(URL, body, format="json").status_code == 201


def test_patch_refuses_numbers_given_as_strings(experimenter_client):
    assert experimenter_client.post(URL, valid_body(), format="json").status_code == 201
    response = experimenter_client.patch(f"{URL}checkout-button/", {"alpha": "0.01"}, format="json")
    assert first_error_field(response) == "alpha" and response.status_code == 400


@pytest.mark.parametrize("item, field", [
    ({"unit": "u1", "value": 1e200}, "value"),
    ({"unit": "u1", "value": -1.5e12}, "value"),
    ({"unit": "u1", "value": 1, "latency_ms": 2e9}, "latency_ms"),
    ({"unit": "u1", "value": 1, "latency_ms": -1}, "latency_ms"),
])
def test_an_observation_number_out_of_its_bounds_is_a_400(service_client, running, item, field):
    response = service_client.post(observations_url(), {"observations": [item]}, format="json")
    assert first_error_field(response) == f"observations[0].{field}" and response.status_code == 400


# --- 5. an unsupported method is a 405 with Allow, not a 403 ------------------------------------

@pytest.mark.parametrize("method", ["DELETE", "PUT"])
def test_an_unsupported_method_with_a_person_s_token_is_a_405(experimenter_client, running, method):
    response = experimenter_client.generic(method, "/api/v1/experiments/running-test/", "{}",
                                           content_type="application/json")
    assert_json_error(response, 405)
    assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "PATCH"}


def test_an_unsupported_method_with_a_service_key_is_a_405(service_client, running):
    response = service_client.delete("/api/v1/experiments/running-test/observations/")
    assert_json_error(response, 405)
    assert "POST" in response["Allow"]


# --- 6. throttling per key ----------------------------------------------------------------------

def test_a_key_over_its_rate_gets_a_429_with_retry_after(settings, service_key, running):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"serving": "3/minute", "people": "1000/minute"}}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    url = "/api/v1/experiments/running-test/assignment/?unit=u1"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(url)
    assert_json_error(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another key has its own count.
    from experiments.models import ServiceKey

    _, other = ServiceKey.objects.create_key(name="other")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert client.get(url).status_code == 200


# --- 7. check --deploy with the README's production environment ---------------------------------

def test_check_deploy_reports_nothing_in_production(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "SECURE_", "DEBUG", "PYTEST"))}
    env.update(DEBUG="false", SECURE_PROXY="true", SECRET_KEY="k" * 20 + "-production-secret-" + "x9Q" * 12,
               ALLOWED_HOSTS="experiments.example.com", DJANGO_SETTINGS_MODULE="config.settings",
               VAR_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
