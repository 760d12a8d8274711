"""Promotion: which decisions conclude with what, who may, the audit trail, and serving afterwards."""

import pytest

from experiments.models import Assignment, AuditEvent, Experiment
from experiments.services.analysis import analysis_run, experiments_queue_due_analyses
from experiments.services.lifecycle import experiment_stop
from tests.experiments.builders import analysed, assigned_units, end_test_period, ingest, start

API = "/api/v1/experiments/"


def promote_url(key: str) -> str:
    return f"{API}{key}/promote/"


def with_outcome(outcome: str, **fields) -> Experiment:
    """An analysed binary A/B experiment whose data make the decision `outcome`."""
    if outcome == "keep":  # a small plan (p0 = 0.5, mde = 0.3) that 200 units per variant reach
        fields.update(baseline_mean=0.5, mde=0.3)
    experiment = start(variants=[{"key": "control", "is_control": True, "payload": {"color": "blue"}},
                                 {"key": "green", "payload": {"color": "green"}}], **fields)
    if outcome == "invalid":  # a sample ratio mismatch: 300 against 100 on equal weights
        control, green = experiment.variants.order_by("position")
        Assignment.objects.bulk_create(
            [Assignment(experiment=experiment, unit=f"c{i}", variant=control) for i in range(300)]
            + [Assignment(experiment=experiment, unit=f"g{i}", variant=green) for i in range(100)])
    else:
        units = assigned_units(experiment, 400)
        rates = {"promote": {"control": 0.1, "green": 0.6}}.get(outcome, {"control": 0.5, "green": 0.5})
        observations, seen = [], {"control": 0, "green": 0}
        for unit, variant in units.items():
            seen[variant] += 1
            # Deterministic conversions at the given rate within each variant.
            converted = int((seen[variant] * rates[variant]) % 1 < rates[variant])
            observations.append((unit, converted))
        ingest(experiment, observations)
    document = analysed(experiment)
    assert document["decision"]["outcome"] == outcome, document["decision"]
    return Experiment.objects.get(pk=experiment.pk)


@pytest.mark.django_db
def test_promote_concludes_with_the_winner_and_serves_it_to_everyone(experimenter_client, service_client,
                                                                      experimenter):
    experiment = with_outcome("promote")
    rows_before = Assignment.objects.filter(experiment=experiment).count()

    response = experimenter_client.post(promote_url(experiment.key))

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "concluded" and response.json()["concluded_variant"] == "green"
    event = AuditEvent.objects.get(experiment=experiment, action="promoted")
    assert event.actor == experimenter and event.details["outcome"] == "promote"
    assert event.details["variant"] == "green" and event.at is not None
    for unit in ("u1", "u2", "never-seen"):
        answer = service_client.get(f"{API}{experiment.key}/assignment/", {"unit": unit}).json()
        assert (answer["variant"], answer["payload"], answer["in_experiment"]) == ("green", {"color": "green"}, False)
    assert Assignment.objects.filter(experiment=experiment).count() == rows_before


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", ["keep", "inconclusive"])
def test_keep_and_inconclusive_conclude_with_the_control(experimenter_client, service_client, outcome):
    experiment = with_outcome(outcome)

    response = experimenter_client.post(promote_url(experiment.key))

    assert response.status_code == 200
    assert response.json()["concluded_variant"] == "control"
    answer = service_client.get(f"{API}{experiment.key}/assignment/", {"unit": "u3"}).json()
    assert (answer["variant"], answer["in_experiment"]) == ("control", False)
    assert AuditEvent.objects.get(experiment=experiment, action="promoted").details["outcome"] == outcome


@pytest.mark.django_db
def test_an_invalid_result_cannot_be_promoted(experimenter_client):
    experiment = with_outcome("invalid")

    response = experimenter_client.post(promote_url(experiment.key))

    assert response.status_code == 409
    assert "invalid" in response.json()["detail"] and response.json()["outcome"] == "invalid"
    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"


@pytest.mark.django_db
def test_stopped_unanalysed_and_concluded_experiments_cannot_be_promoted(experimenter_client):
    running = start()
    stopped = start()
    experiment_stop(experiment=stopped, actor=None, reason="Payment outage")
    concluded = with_outcome("promote")
    assert experimenter_client.post(promote_url(concluded.key)).status_code == 200

    assert experimenter_client.post(promote_url(running.key)).status_code == 409
    refused = experimenter_client.post(promote_url(stopped.key))
    assert refused.status_code == 409 and "stopped early" in refused.json()["detail"]
    assert experimenter_client.post(promote_url(concluded.key)).status_code == 409
    assert AuditEvent.objects.filter(action="promoted").count() == 1


@pytest.mark.django_db
def test_auto_promote_concludes_right_after_the_analysis():
    experiment = with_outcome("promote", auto_promote=True)

    assert experiment.status == "concluded" and experiment.concluded_variant.key == "green"
    assert AuditEvent.objects.get(experiment=experiment, action="promoted").actor_label == "system"


@pytest.mark.django_db
def test_auto_promote_leaves_an_invalid_result_analysed():
    experiment = with_outcome("invalid", auto_promote=True)

    assert experiment.status == "analyzed"


@pytest.mark.django_db
def test_only_experimenters_promote(viewer_client, service_client):
    experiment = with_outcome("promote")

    assert viewer_client.post(promote_url(experiment.key)).status_code == 403
    assert service_client.post(promote_url(experiment.key)).status_code == 403
    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"


def cc_body(key: str, **overrides) -> dict:
    body = {
        "key": key, "name": key, "design": "champion_challenger",
        "metric": {"name": "loss", "type": "continuous", "direction": "decrease"},
        "baseline_sd": 1.0, "mde": 0.2, "duration": "P14D",
        "variants": [{"key": "model-v1", "is_control": True, "payload": {"model": "v1"}},
                     {"key": "model-v2", "payload": {"model": "v2"}}],
    }
    body.update(overrides)
    return body


@pytest.mark.django_db
def test_a_concluded_challenger_becomes_the_champion_of_a_follow_up(experimenter_client):
    assert experimenter_client.post(API, cc_body("ranker-1"), format="json").status_code == 201
    experimenter_client.post(f"{API}ranker-1/start/")
    first = Experiment.objects.get(key="ranker-1")
    ingest(first, [(f"r{i}", v, variant) for i in range(300)
                   for variant, v in (("model-v1", 1.0 + (i % 7) / 10), ("model-v2", 0.5 + (i % 5) / 10))])
    end_test_period(first)
    experiments_queue_due_analyses()
    assert analysis_run(experiment_id=first.pk).outcome == "promote"
    experimenter_client.post(promote_url("ranker-1"))

    response = experimenter_client.post(API, cc_body("ranker-2", **{
        "from": "ranker-1", "variants": [{"key": "model-v3", "payload": {"model": "v3"}}]}), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["from"] == "ranker-1"
    assert data["variants"][0] == {"key": "model-v2", "weight": 1.0, "is_control": True, "payload": {"model": "v2"}}
    assert [(c["experiment"], c["champion"]) for c in data["champions"]] == [
        ("ranker-2", "model-v2"), ("ranker-1", "model-v1")]


@pytest.mark.django_db
def test_a_follow_up_needs_a_concluded_experiment_and_brings_its_own_champion(experimenter_client):
    experimenter_client.post(API, cc_body("ranker-1"), format="json")

    not_concluded = experimenter_client.post(API, cc_body("ranker-2", **{"from": "ranker-1"}), format="json")
    unknown = experimenter_client.post(API, cc_body("ranker-3", **{"from": "nope"}), format="json")

    assert not_concluded.status_code == 400 and "from" in not_concluded.json()["errors"]
    assert unknown.status_code == 400 and "from" in unknown.json()["errors"]
    assert Experiment.objects.count() == 1
