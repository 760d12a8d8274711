"""Reading, editing, starting and stopping experiments over REST."""

import hashlib
import json
from datetime import datetime, timedelta

import pytest
from statsmodels.stats.power import TTestIndPower, TTestPower

from experiments.models import AuditEvent, Experiment
from tests.experiments.api.definitions import URL, valid_body
from tests.factories import ExperimentFactory


def detail(key: str) -> str:
    return f"{URL}{key}/"


@pytest.fixture
def draft(db) -> Experiment:
    return ExperimentFactory(key="checkout-button")


@pytest.mark.django_db
def test_starting_freezes_the_protocol_with_its_sha256_and_dates(experimenter_client, draft):
    response = experimenter_client.post(detail(draft.key) + "start/")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["status"] == "running"
    protocol = data["protocol"]
    draft.refresh_from_db()
    canonical = json.dumps(draft.protocol, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert protocol["hash"] == hashlib.sha256(canonical.encode()).hexdigest() == draft.protocol_hash
    started_at = datetime.fromisoformat(protocol["started_at"].replace("Z", "+00:00"))
    ends_at = datetime.fromisoformat(protocol["ends_at"].replace("Z", "+00:00"))
    assert ends_at - started_at == timedelta(days=14)
    assert protocol["unlocks_at"] == protocol["ends_at"]
    assert protocol["sample_size_per_variant"] == {"control": 14745, "treatment": 14745}
    assert draft.protocol["alpha"] == 0.05 and draft.protocol["test"] == "two-proportion z-test"
    assert [e.action for e in AuditEvent.objects.filter(experiment=draft)] == ["started"]
    assert AuditEvent.objects.get(experiment=draft).actor_label == response.wsgi_request.user.username


@pytest.mark.django_db
def test_the_unlock_time_adds_the_grace_period(experimenter_client):
    experiment = ExperimentFactory(grace_period=timedelta(days=2))

    protocol = experimenter_client.post(detail(experiment.key) + "start/").json()["protocol"]

    unlocks_at = datetime.fromisoformat(protocol["unlocks_at"].replace("Z", "+00:00"))
    ends_at = datetime.fromisoformat(protocol["ends_at"].replace("Z", "+00:00"))
    assert unlocks_at - ends_at == timedelta(days=2)


@pytest.mark.django_db
def test_unequal_weights_and_two_challengers_plan_at_alpha_over_k(experimenter_client):
    body = valid_body(
        key="revenue", metric={"name": "revenue", "type": "continuous", "direction": "increase"},
        baseline_mean=20.0, baseline_sd=10.0, mde=1.0,
        variants=[{"key": "control", "weight": 2, "is_control": True}, {"key": "a", "weight": 1},
                  {"key": "b", "weight": 1}],
    )
    assert experimenter_client.post(URL, body, format="json").status_code == 201

    sizes = experimenter_client.post(detail("revenue") + "start/").json()["protocol"]["sample_size_per_variant"]

    nobs1 = TTestIndPower().solve_power(effect_size=0.1, alpha=0.025, power=0.8, ratio=0.5)
    assert sizes["control"] == int(-(-nobs1 // 1))
    assert sizes["a"] == sizes["b"] == int(-(-(nobs1 * 0.5) // 1))


@pytest.mark.django_db
def test_champion_challenger_plans_pairs_with_the_paired_t_test(experimenter_client):
    body = valid_body(key="ranker", design="champion_challenger",
                      metric={"name": "loss", "type": "continuous", "direction": "decrease"},
                      baseline_mean=None, baseline_sd=5.0, mde=0.5, alternative="one-sided")
    assert experimenter_client.post(URL, body, format="json").status_code == 201

    protocol = experimenter_client.post(detail("ranker") + "start/").json()["protocol"]

    nobs = TTestPower().solve_power(effect_size=0.1, alpha=0.05, power=0.8, alternative="larger")
    assert protocol["sample_size_per_variant"] == {"control": int(-(-nobs // 1)), "green": int(-(-nobs // 1))}
    assert protocol["test"] == "paired t-test"


@pytest.mark.django_db
def test_a_started_experiment_cannot_be_started_again(experimenter_client, draft):
    experimenter_client.post(detail(draft.key) + "start/")
    draft.refresh_from_db()
    frozen_hash = draft.protocol_hash

    response = experimenter_client.post(detail(draft.key) + "start/")

    assert response.status_code == 409
    assert "draft" in response.json()["detail"]
    draft.refresh_from_db()
    assert draft.protocol_hash == frozen_hash


@pytest.mark.django_db
def test_a_draft_can_be_edited_and_the_edit_is_audited(experimenter_client, draft):
    response = experimenter_client.patch(detail(draft.key), {"mde": 0.02, "name": "Renamed"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"
    assert response.json()["protocol"]["sample_size_per_variant"]["control"] < 14745
    event = AuditEvent.objects.get(experiment=draft, action="updated")
    assert event.details["before"] == {"mde": 0.01, "name": draft.name}
    assert event.details["after"] == {"mde": 0.02, "name": "Renamed"}


@pytest.mark.django_db
def test_a_draft_edit_that_breaks_a_rule_is_refused_and_changes_nothing(experimenter_client, draft):
    response = experimenter_client.patch(detail(draft.key), {"baseline_mean": 0.995}, format="json")

    assert response.status_code == 400
    assert "mde" in response.json()["errors"]
    draft.refresh_from_db()
    assert draft.baseline_mean == 0.10
    assert not AuditEvent.objects.filter(experiment=draft).exists()


@pytest.mark.django_db
def test_replacing_the_variants_of_a_draft(experimenter_client, draft):
    variants = [{"key": "control", "is_control": True}, {"key": "red"}, {"key": "blue", "weight": 2}]

    response = experimenter_client.patch(detail(draft.key), {"variants": variants}, format="json")

    assert response.status_code == 200, response.json()
    assert [(v["key"], v["weight"]) for v in response.json()["variants"]] == [
        ("control", 1.0), ("red", 1.0), ("blue", 2.0)]


@pytest.mark.django_db
def test_the_protocol_is_frozen_once_started(experimenter_client, draft):
    experimenter_client.post(detail(draft.key) + "start/")

    response = experimenter_client.patch(detail(draft.key), {"mde": 0.05}, format="json")

    assert response.status_code == 409
    assert "mde" in response.json()["detail"]
    draft.refresh_from_db()
    assert draft.mde == 0.01


@pytest.mark.django_db
def test_traffic_may_be_ramped_while_running(experimenter_client, draft):
    experimenter_client.patch(detail(draft.key), {"traffic_percent": 10}, format="json")   # a ramp goes up
    experimenter_client.post(detail(draft.key) + "start/")
    draft.refresh_from_db()
    frozen_hash = draft.protocol_hash

    response = experimenter_client.patch(detail(draft.key), {"traffic_percent": 50}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["traffic_percent"] == 50
    assert response.json()["protocol"]["hash"] == frozen_hash
    assert AuditEvent.objects.filter(experiment=draft, action="traffic_changed").exists()


@pytest.mark.django_db
def test_lowering_the_traffic_while_running_is_a_409_and_changes_nothing(experimenter_client, draft):
    experimenter_client.patch(detail(draft.key), {"traffic_percent": 50}, format="json")
    experimenter_client.post(detail(draft.key) + "start/")
    events = AuditEvent.objects.filter(experiment=draft).count()

    response = experimenter_client.patch(detail(draft.key), {"traffic_percent": 10}, format="json")
    raised = experimenter_client.patch(detail(draft.key), {"traffic_percent": 60}, format="json")

    assert response.status_code == 409
    assert "may only go up" in response.json()["detail"]
    assert raised.status_code == 200 and raised.json()["traffic_percent"] == 60
    assert AuditEvent.objects.filter(experiment=draft).count() == events + 1


@pytest.mark.django_db
def test_the_key_of_an_experiment_cannot_change(experimenter_client, draft):
    response = experimenter_client.patch(detail(draft.key), {"key": "other"}, format="json")

    assert response.status_code == 400
    assert "key" in response.json()["errors"]


@pytest.mark.django_db
def test_stopping_needs_a_reason_and_records_it(experimenter_client, draft):
    experimenter_client.post(detail(draft.key) + "start/")

    refused = experimenter_client.post(detail(draft.key) + "stop/", {}, format="json")
    stopped = experimenter_client.post(detail(draft.key) + "stop/", {"reason": "Checkout bug"}, format="json")

    assert refused.status_code == 400 and "reason" in refused.json()["errors"]
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped" and stopped.json()["stop_reason"] == "Checkout bug"
    event = AuditEvent.objects.get(experiment=draft, action="stopped")
    assert event.reason == "Checkout bug"


@pytest.mark.django_db
def test_only_a_running_experiment_can_be_stopped(experimenter_client, draft):
    response = experimenter_client.post(detail(draft.key) + "stop/", {"reason": "why not"}, format="json")

    assert response.status_code == 409
    draft.refresh_from_db()
    assert draft.status == "draft"


@pytest.mark.django_db
def test_a_stopped_experiment_cannot_be_restarted_or_edited(experimenter_client, draft):
    experimenter_client.post(detail(draft.key) + "start/")
    experimenter_client.post(detail(draft.key) + "stop/", {"reason": "bug"}, format="json")

    assert experimenter_client.post(detail(draft.key) + "start/").status_code == 409
    assert experimenter_client.patch(detail(draft.key), {"traffic_percent": 10}, format="json").status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize("method, suffix", [("get", ""), ("patch", ""), ("post", "start/"), ("post", "stop/")])
def test_an_unknown_key_is_a_json_404(experimenter_client, method, suffix):
    response = getattr(experimenter_client, method)(detail("nope") + suffix, {}, format="json")

    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


@pytest.mark.django_db
def test_the_list_shows_every_experiment(viewer_client):
    ExperimentFactory(key="first")
    ExperimentFactory(key="second")

    response = viewer_client.get(URL)

    assert response.status_code == 200
    # Paginated since part 2 (README, "REST API"): {count, next, previous, results}.
    assert {e["key"] for e in response.json()["results"]} == {"first", "second"}


@pytest.mark.django_db
def test_the_list_is_paginated_newest_first(viewer_client):
    for index in range(7):
        ExperimentFactory(key=f"e{index}")

    first = viewer_client.get(URL, {"page_size": 3}).json()
    last = viewer_client.get(first["next"].replace("http://testserver", "")).json()
    last = viewer_client.get(last["next"].replace("http://testserver", "")).json()

    assert first["count"] == 7 and first["previous"] is None
    assert [e["key"] for e in first["results"]] == ["e6", "e5", "e4"]
    assert [e["key"] for e in last["results"]] == ["e0"] and last["next"] is None
    assert viewer_client.get(URL, {"page": 9}).status_code == 404


@pytest.mark.django_db
def test_a_patch_that_changes_nothing_writes_no_audit_event(experimenter_client, draft):
    events = AuditEvent.objects.count()
    updated_at = Experiment.objects.get(pk=draft.pk).updated_at

    empty = experimenter_client.patch(detail(draft.key), {}, format="json")
    same = experimenter_client.patch(detail(draft.key), {"name": draft.name}, format="json")

    assert (empty.status_code, same.status_code) == (200, 200)
    assert AuditEvent.objects.count() == events
    assert Experiment.objects.get(pk=draft.pk).updated_at == updated_at
