"""Management commands: service keys, personal tokens and the demo set-up."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Experiment, ServiceKey, UserToken
from tests.conftest import bearer_client
from tests.factories import UserFactory


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_service_key_prints_the_key_alone_and_stores_only_its_hash():
    output = run("create_service_key", "web-shop")

    key = output.strip()
    assert output == key + "\n" and " " not in key
    stored = ServiceKey.objects.get(name="web-shop")
    assert key.startswith(stored.prefix + ".")
    assert key.split(".", 1)[1] not in stored.hashed_key and stored.hashed_key.startswith("sha512$$")
    # Authenticated as a service: refused by people's endpoints with 403, not 401.
    assert bearer_client(key).get("/api/v1/experiments/").status_code == 403


@pytest.mark.django_db
def test_create_user_token_prints_a_token_that_carries_the_users_permissions(experimenter):
    token = run("create_user_token", experimenter.username).strip()

    assert UserToken.objects.get(user=experimenter).hashed_key != token
    assert bearer_client(token).get("/api/v1/experiments/").status_code == 200


@pytest.mark.django_db
def test_create_user_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="nobody"):
        run("create_user_token", "nobody")


@pytest.mark.django_db
def test_setup_demo_prints_a_working_login_and_loads_a_running_experiment():
    output = run("setup_demo")
    run("setup_demo")  # a second run resets the password but keeps one demo experiment

    assert "password" in output
    assert Experiment.objects.get(key="checkout-button").status == "running"
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username="admin").is_superuser


@pytest.mark.django_db
def test_setup_demo_runs_a_finished_multi_metric_example_whose_guardrail_holds_the_winner_back():
    run("setup_demo")

    example = Experiment.objects.get(key="checkout-redesign")
    assert example.status == "analyzed" and [m.key for m in example.metrics.all()] == ["revenue", "page_latency_ms"]
    document = example.result.document
    assert [m["key"] for m in document["metrics"]] == ["conversion", "revenue", "page_latency_ms"]
    primary = document["comparisons"][0]
    latency = document["metrics"][2]["comparisons"][0]
    assert primary["significant"] and primary["effect"] > 0      # green converts better ...
    assert not latency["non_inferior"]                            # ... but the page got slower than allowed
    decision = document["decision"]
    assert decision["outcome"] == "keep" and "page_latency_ms" in decision["reason"], decision


@pytest.mark.django_db
def test_the_migration_creates_experimenter_and_viewer_groups():
    from django.contrib.auth.models import Group

    def codenames(name):
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    assert codenames("experimenter") >= {"add_experiment", "change_experiment", "view_experiment",
                                         "run_experiment"}
    assert codenames("viewer") == {"view_experiment"}
    assert UserFactory().has_perm("experiments.view_experiment") is False
