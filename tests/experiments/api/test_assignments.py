"""Sticky assignment over REST: GET one unit, POST many, and what each kind of unit is served."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from experiments import hashing
from experiments.models import Assignment, Experiment, Variant
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.factories import ExperimentFactory

BATCH_URL = "/api/v1/assignments/"


def one_url(key: str) -> str:
    return f"/api/v1/experiments/{key}/assignment/"


def running(**fields) -> Experiment:
    experiment = ExperimentFactory(**fields)
    return experiment_start(experiment=experiment, actor=None)


def payloads(experiment: Experiment) -> dict[str, dict]:
    return {v.key: v.payload for v in experiment.variants.all()}


def units_outside(experiment: Experiment, count: int) -> list[str]:
    units = (f"user-{i}" for i in range(100_000))
    return [u for u in units if not hashing.is_included(experiment.salt, u, experiment.traffic_percent)][:count]


@pytest.fixture
def ab(db) -> Experiment:
    return running(key="checkout-button", variants=[
        {"key": "control", "weight": 1.0, "is_control": True, "payload": {"color": "blue"}},
        {"key": "green", "weight": 1.0, "payload": {"color": "green"}},
    ])


@pytest.mark.django_db
def test_a_first_assignment_follows_the_published_hash_and_is_stored(service_client, ab):
    response = service_client.get(one_url(ab.key), {"unit": "user-42"})

    assert response.status_code == 200
    expected = hashing.choose_variant(ab.salt, "user-42", [("control", 1.0), ("green", 1.0)])
    assert response.json() == {
        "experiment": "checkout-button", "unit": "user-42", "variant": expected,
        "payload": payloads(ab)[expected], "in_experiment": True, "shadow": [],
    }
    stored = Assignment.objects.get(experiment=ab, unit="user-42")
    assert stored.variant.key == expected


@pytest.mark.django_db
def test_an_assignment_is_sticky_across_calls(service_client, ab):
    answers = {service_client.get(one_url(ab.key), {"unit": "user-7"}).json()["variant"] for _ in range(5)}

    assert len(answers) == 1
    assert Assignment.objects.filter(experiment=ab, unit="user-7").count() == 1


@pytest.mark.django_db
def test_a_stored_assignment_wins_over_the_hash(service_client, ab):
    hashed = hashing.choose_variant(ab.salt, "user-1", [("control", 1.0), ("green", 1.0)])
    other = ab.variants.exclude(key=hashed).get()
    Assignment.objects.create(experiment=ab, unit="user-1", variant=other)

    response = service_client.get(one_url(ab.key), {"unit": "user-1"})

    assert response.json()["variant"] == other.key and response.json()["in_experiment"] is True


@pytest.mark.django_db
def test_units_outside_the_traffic_get_the_control_and_no_row(service_client):
    experiment = running(traffic_percent=10)
    outside = units_outside(experiment, 3)

    answers = [service_client.get(one_url(experiment.key), {"unit": u}).json() for u in outside]

    assert {(a["variant"], a["in_experiment"]) for a in answers} == {("control", False)}
    assert not Assignment.objects.filter(experiment=experiment).exists()


@pytest.mark.django_db
def test_a_ramp_keeps_every_assigned_unit_and_only_adds_units(service_client, experimenter_client):
    experiment = running(traffic_percent=10)
    units = [f"user-{i}" for i in range(400)]
    before = {a["unit"]: a for a in service_client.post(
        BATCH_URL, {"experiment": experiment.key, "units": units}, format="json").json()["assignments"]}

    response = experimenter_client.patch(f"/api/v1/experiments/{experiment.key}/", {"traffic_percent": 50},
                                         format="json")
    after = {a["unit"]: a for a in service_client.post(
        BATCH_URL, {"experiment": experiment.key, "units": units}, format="json").json()["assignments"]}

    assert response.status_code == 200
    included_before = {u for u, a in before.items() if a["in_experiment"]}
    included_after = {u for u, a in after.items() if a["in_experiment"]}
    assert included_before < included_after
    assert all(after[u]["variant"] == before[u]["variant"] for u in included_before)
    assert Assignment.objects.filter(experiment=experiment).count() == len(included_after)


@pytest.mark.django_db
def test_a_draft_answers_409(service_client):
    draft = ExperimentFactory()

    response = service_client.get(one_url(draft.key), {"unit": "u"})

    assert response.status_code == 409
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_an_unknown_experiment_answers_404(service_client):
    assert service_client.get(one_url("nope"), {"unit": "u"}).status_code == 404
    assert service_client.post(BATCH_URL, {"experiment": "nope", "units": ["u"]}, format="json").status_code == 404


@pytest.mark.django_db
def test_every_unit_of_a_stopped_experiment_gets_the_control_out_of_the_experiment(service_client, ab):
    assigned_green = next(u for u in (f"user-{i}" for i in range(100))
                          if hashing.choose_variant(ab.salt, u, [("control", 1), ("green", 1)]) == "green")
    service_client.get(one_url(ab.key), {"unit": assigned_green})
    experiment_stop(experiment=ab, actor=None, reason="bug")

    stored = service_client.get(one_url(ab.key), {"unit": assigned_green}).json()
    new = service_client.get(one_url(ab.key), {"unit": "never-seen"}).json()

    assert (stored["variant"], stored["in_experiment"]) == ("control", False)
    assert (new["variant"], new["in_experiment"]) == ("control", False)
    assert Assignment.objects.filter(experiment=ab).count() == 1


@pytest.mark.django_db
def test_after_the_test_period_new_units_are_not_enrolled_but_assigned_ones_stay(service_client, ab):
    service_client.get(one_url(ab.key), {"unit": "early"})
    early = Assignment.objects.get(unit="early").variant.key
    now = timezone.now()
    Experiment.objects.filter(pk=ab.pk).update(started_at=now - timedelta(days=15), ends_at=now - timedelta(days=1))

    assert service_client.get(one_url(ab.key), {"unit": "early"}).json()["variant"] == early
    late = service_client.get(one_url(ab.key), {"unit": "late"}).json()
    assert (late["variant"], late["in_experiment"]) == ("control", False)
    assert not Assignment.objects.filter(unit="late").exists()


@pytest.mark.django_db
def test_champion_challenger_serves_the_champion_and_lists_the_challengers_to_shadow(service_client):
    experiment = running(
        design="champion_challenger", metric_type="continuous", baseline_mean=None, baseline_sd=5.0, mde=0.5,
        traffic_percent=50,
        variants=[{"key": "model-v1", "is_control": True, "payload": {"model": "v1"}},
                  {"key": "model-v2"}, {"key": "model-v3"}],
    )
    sampled = next(u for u in (f"r-{i}" for i in range(100)) if hashing.is_included(experiment.salt, u, 50))
    skipped = units_outside(experiment, 1)[0]

    inside = service_client.get(one_url(experiment.key), {"unit": sampled}).json()
    outside = service_client.get(one_url(experiment.key), {"unit": skipped}).json()

    assert inside == {"experiment": experiment.key, "unit": sampled, "variant": "model-v1",
                      "payload": {"model": "v1"}, "in_experiment": True, "shadow": ["model-v2", "model-v3"]}
    assert (outside["variant"], outside["in_experiment"], outside["shadow"]) == ("model-v1", False, [])
    assert list(Assignment.objects.values_list("unit", flat=True)) == [sampled]


@pytest.mark.django_db
def test_the_batch_answers_in_request_order_with_duplicates_answered_alike(service_client, ab):
    units = ["b", "a", "c", "a", 17]

    response = service_client.post(BATCH_URL, {"experiment": ab.key, "units": units}, format="json")

    assert response.status_code == 200
    answers = response.json()["assignments"]
    assert [a["unit"] for a in answers] == ["b", "a", "c", "a", "17"]
    assert answers[1] == answers[3]
    for answer in answers:
        assert answer["variant"] == hashing.choose_variant(ab.salt, answer["unit"], [("control", 1), ("green", 1)])
    assert Assignment.objects.filter(experiment=ab).count() == 4


@pytest.mark.django_db
def test_a_batch_with_stored_units_keeps_their_rows_and_stores_the_others(service_client, ab):
    control, green = ab.variants.get(key="control"), ab.variants.get(key="green")
    # Stored against the hash, so that the answer shows which one won; "zz" sorts last.
    for unit in ("a", "zz"):
        hashed = hashing.choose_variant(ab.salt, unit, [("control", 1), ("green", 1)])
        Assignment.objects.create(experiment=ab, unit=unit, variant=green if hashed == "control" else control)
    stored = dict(Assignment.objects.filter(experiment=ab).values_list("unit", "variant__key"))
    units = ["zz", "b", "a", "c"]

    response = service_client.post(BATCH_URL, {"experiment": ab.key, "units": units}, format="json")

    answers = {a["unit"]: a["variant"] for a in response.json()["assignments"]}
    assert answers["a"] == stored["a"] and answers["zz"] == stored["zz"]
    for unit in ("b", "c"):
        assert answers[unit] == hashing.choose_variant(ab.salt, unit, [("control", 1), ("green", 1)])
    assert dict(Assignment.objects.filter(experiment=ab).values_list("unit", "variant__key")) == answers


@pytest.mark.django_db
def test_one_unit_is_assigned_in_every_running_experiment(service_client, ab):
    other = running(key="search-ranking")
    ExperimentFactory(key="a-draft")
    stopped = running(key="stopped-one")
    experiment_stop(experiment=stopped, actor=None, reason="bug")

    response = service_client.post(BATCH_URL, {"unit": "user-5"}, format="json")

    assert response.status_code == 200
    assert [a["experiment"] for a in response.json()["assignments"]] == ["checkout-button", "search-ranking"]
    assert Assignment.objects.filter(unit="user-5").count() == 2
    assert other.assignments.count() == 1


@pytest.mark.django_db
def test_the_experiment_detail_shows_units_per_variant_and_the_live_sample_ratio(service_client, viewer_client, ab):
    service_client.post(BATCH_URL, {"experiment": ab.key, "units": [f"u{i}" for i in range(300)]}, format="json")

    progress = viewer_client.get(f"/api/v1/experiments/{ab.key}/").json()["progress"]

    counts = {v.key: v.n for v in Variant.objects.raw(
        "SELECT v.id, v.key, count(a.id) AS n FROM experiments_variant v LEFT JOIN experiments_assignment a "
        "ON a.variant_id = v.id WHERE v.experiment_id = %s GROUP BY v.id, v.key", [ab.pk])}
    assert progress["units"] == counts and sum(counts.values()) == 300
    from scipy.stats import chisquare

    assert progress["sample_ratio_p_value"] == pytest.approx(
        chisquare([counts["control"], counts["green"]]).pvalue, rel=1e-12)
    assert progress["share_of_plan"] == pytest.approx(300 / (2 * 14745))
    assert set(progress) == {"units", "observations", "sample_ratio_p_value", "share_of_plan"}


BAD_REQUESTS = {
    "missing unit": ({}, "unit"),
    "empty unit": ({"unit": ""}, "unit"),
    "blank unit": ({"unit": "   "}, "unit"),
    "unit too long": ({"unit": "x" * 256}, "unit"),
    "unit not a string": ({"unit": {"id": 1}}, "unit"),
    "unit and units": ({"unit": "a", "units": ["b"], "experiment": "checkout-button"}, "unit"),
    "units without experiment": ({"units": ["a"]}, "experiment"),
    "empty units": ({"units": [], "experiment": "checkout-button"}, "units"),
    "too many units": ({"units": [f"u{i}" for i in range(10_001)], "experiment": "checkout-button"}, "units"),
    "one bad unit in many": ({"units": ["ok", "", "fine"], "experiment": "checkout-button"}, "units[1]"),
    "one long unit in many": ({"units": ["ok", "y" * 300], "experiment": "checkout-button"}, "units[1]"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_batch_is_a_400_naming_the_problem_and_nothing_is_stored(service_client, ab, body, field):
    response = service_client.post(BATCH_URL, body, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert not Assignment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("query, field", [({}, "unit"), ({"unit": ""}, "unit"), ({"unit": "z" * 256}, "unit")])
def test_a_bad_unit_in_the_query_is_a_400(service_client, ab, query, field):
    response = service_client.get(one_url(ab.key), query)

    assert response.status_code == 400 and field in response.json()["errors"]
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_malformed_json_is_a_400(service_client, ab):
    response = service_client.post(BATCH_URL, b'{"units": [', content_type="application/json")

    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


@pytest.mark.django_db
def test_a_unit_of_255_characters_is_fine(service_client, ab):
    assert service_client.get(one_url(ab.key), {"unit": "u" * 255}).status_code == 200


@pytest.mark.django_db
def test_who_may_fetch_assignments(ab, viewer_client, experimenter_client):
    assert APIClient().get(one_url(ab.key), {"unit": "u"}).status_code == 401
    assert viewer_client.get(one_url(ab.key), {"unit": "u"}).status_code == 403
    assert viewer_client.post(BATCH_URL, {"unit": "u"}, format="json").status_code == 403
    assert experimenter_client.get(one_url(ab.key), {"unit": "u"}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_answers_503_in_json(service_key):
    from tests.conftest import bearer_client

    experiment = running()
    client = bearer_client(service_key)
    client.get(one_url(experiment.key), {"unit": "warm-up"})  # authenticates once, caches nothing
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = 1
    try:
        response = client.get(one_url(experiment.key), {"unit": "u"})
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert "database" in response.json()["detail"]
