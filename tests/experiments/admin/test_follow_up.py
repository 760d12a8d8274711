"""The admin creates follow-ups as the API does: the definition services resolve `from` for both."""

import pytest

from experiments.errors import InvalidDefinition
from experiments.models import Experiment
from experiments.services.definition import experiment_create
from tests.experiments.admin.pages import ADD_URL, add_form_data, promotable
from tests.experiments.api.definitions import valid_body


@pytest.mark.django_db
def test_an_experimenter_creates_a_follow_up_in_the_admin_with_the_winner_as_control(experimenter_admin):
    previous = promotable()
    experimenter_admin.post(f"/admin/experiments/experiment/{previous.pk}/promote/")
    assert Experiment.objects.get(pk=previous.pk).concluded_variant.key == "green"
    body = valid_body(key="checkout-button-2", variants=[{"key": "purple", "payload": {"color": "purple"}}])

    response = experimenter_admin.post(ADD_URL, {**add_form_data(body), "follows": previous.key})

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    follow_up = Experiment.objects.get(key="checkout-button-2")
    assert follow_up.previous == previous
    assert [(v.key, v.is_control) for v in follow_up.variants.all()] == [("green", True), ("purple", False)]


@pytest.mark.django_db
def test_the_admin_names_the_follow_up_field_when_the_previous_experiment_lists_a_control(experimenter_admin):
    previous = promotable()
    experimenter_admin.post(f"/admin/experiments/experiment/{previous.pk}/promote/")
    body = valid_body(key="checkout-button-2", variants=[{"key": "blue", "is_control": True}, {"key": "purple"}])

    response = experimenter_admin.post(ADD_URL, {**add_form_data(body), "follows": previous.key})

    assert response.status_code == 200
    assert "list only the challengers" in " ".join(response.context["adminform"].form.non_field_errors())
    assert not Experiment.objects.filter(key="checkout-button-2").exists()


@pytest.mark.django_db
def test_the_create_service_itself_checks_every_rule_and_writes_nothing_when_one_breaks(experimenter):
    # Serializers and forms only parse: a caller that skips them still meets every rule.
    from tests.experiments.admin.pages import api_definition

    definition = api_definition(valid_body(alpha=1.5, variants=[{"key": "a", "is_control": True}]))

    with pytest.raises(InvalidDefinition) as raised:
        experiment_create(actor=experimenter, definition=definition)

    assert {"alpha", "variants"} <= set(raised.value.errors)
    assert not Experiment.objects.exists()
    experiment_create(actor=experimenter, definition=api_definition(valid_body()))
    with pytest.raises(InvalidDefinition) as duplicate:
        experiment_create(actor=experimenter, definition=api_definition(valid_body()))
    assert "already exists" in duplicate.value.errors["key"][0]
