"""Defining experiments in the admin: the API's rules and words, saved through the services."""

import html
import math
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry

from experiments.definitions.planning import planned_sample
from experiments.definitions.rules import definition_errors
from experiments.models import AuditEvent, Experiment, Variant
from experiments.services.lifecycle import experiment_start
from tests.experiments.admin.pages import (
    ADD_URL,
    PREVIEW_URL,
    add_form_data,
    api_definition,
    change_url,
    page_form_data,
    preview_url,
)
from tests.experiments.api.definitions import URL as API_URL
from tests.experiments.api.definitions import valid_body
from tests.factories import ExperimentFactory

CONTROL = {"key": "control", "weight": 1, "is_control": True}
GREEN = {"key": "green", "weight": 1}


def rows() -> tuple[int, int, int]:
    return Experiment.objects.count(), Variant.objects.count(), AuditEvent.objects.count()


@pytest.mark.django_db
def test_an_experimenter_adds_a_draft_through_the_service_and_it_is_audited(experimenter_admin, staff_experimenter):
    response = experimenter_admin.post(ADD_URL, add_form_data(valid_body()))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    experiment = Experiment.objects.get(key="checkout-button")
    assert response["Location"].endswith(change_url(experiment)) or response["Location"].endswith("/experiment/")
    assert experiment.status == "draft"
    assert experiment.created_by == staff_experimenter
    assert experiment.duration == timedelta(days=14) and experiment.metric_type == "binary"
    assert [(v.key, v.is_control, v.payload, v.position) for v in experiment.variants.all()] == [
        ("control", True, {"color": "blue"}, 0), ("green", False, {"color": "green"}, 1)]
    event = AuditEvent.objects.get(experiment=experiment)
    assert (event.action, event.actor) == ("created", staff_experimenter)
    assert LogEntry.objects.filter(object_id=str(experiment.pk)).exists()


# Definitions that parse but break a protocol rule: the API answers 400 with these errors.
RULE_BREAKERS = {
    "two controls": valid_body(variants=[CONTROL, {**GREEN, "is_control": True}]),
    "one variant": valid_body(variants=[CONTROL]),
    "no control": valid_body(variants=[{**CONTROL, "is_control": False}, GREEN]),
    "weight zero on the second variant": valid_body(variants=[CONTROL, {**GREEN, "weight": 0}]),
    "duplicate variant keys": valid_body(variants=[CONTROL, GREEN, GREEN]),
    "binary baseline above one": valid_body(baseline_mean=1.5),
    "both mde and sample size": valid_body(sample_size_per_variant=1000),
    "continuous without sd": valid_body(metric={"name": "revenue", "type": "continuous", "direction": "increase"}),
    "alpha one and traffic zero": valid_body(alpha=1, traffic_percent=0),
    "duration zero": valid_body(duration="PT0S"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body", RULE_BREAKERS.values(), ids=RULE_BREAKERS.keys())
def test_the_admin_refuses_what_the_api_refuses_with_the_same_messages_in_the_right_places(
        experimenter_admin, experimenter_client, body):
    expected = definition_errors(api_definition(body))
    assert expected
    assert experimenter_client.post(API_URL, body, format="json").json()["errors"] == expected
    before = rows()

    response = experimenter_admin.post(ADD_URL, add_form_data(body))

    assert response.status_code == 200
    assert rows() == before
    form = response.context["adminform"].form
    variant_forms = response.context["inline_admin_formsets"][0].formset.forms
    for path, messages in expected.items():
        for message in messages:
            if path == "variants":
                shown = form.non_field_errors()
            elif path.startswith("variants["):
                index, field = path[len("variants["):].split("].")
                shown = variant_forms[int(index)].errors[field]
            else:
                shown = form.errors[path.replace("metric.", "metric_")]
            assert message in shown, (path, shown)
            assert html.escape(message) in response.content.decode()


@pytest.mark.django_db
def test_a_value_that_does_not_parse_is_reported_once_not_also_as_a_rule(experimenter_admin):
    data = add_form_data(valid_body(variants=[CONTROL, GREEN]))
    data["variants-1-weight"] = "heavy"

    response = experimenter_admin.post(ADD_URL, data)

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.forms[1].errors["weight"] == ["Enter a number."]
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_a_key_already_taken_is_refused_in_the_api_s_words(experimenter_admin):
    ExperimentFactory(key="checkout-button")

    response = experimenter_admin.post(ADD_URL, add_form_data(valid_body()))

    assert response.context["adminform"].form.errors["key"] == [
        "An experiment with key 'checkout-button' already exists."]
    assert Experiment.objects.count() == 1


@pytest.mark.django_db
def test_editing_a_draft_goes_through_experiment_update_variants_included(experimenter_admin, staff_experimenter):
    experiment = ExperimentFactory()
    page = experimenter_admin.get(change_url(experiment))
    data = page_form_data(page, name="Renamed", **{"variants-1-key": "blue", "variants-1-weight": "3"})

    response = experimenter_admin.post(change_url(experiment), data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    experiment.refresh_from_db()
    assert experiment.name == "Renamed"
    assert [(v.key, v.weight) for v in experiment.variants.all()] == [("control", 1.0), ("blue", 3.0)]
    event = AuditEvent.objects.get(experiment=experiment)
    assert (event.action, event.actor) == ("updated", staff_experimenter)
    assert event.details["after"]["name"] == "Renamed"


@pytest.mark.django_db
def test_saving_an_unchanged_draft_writes_no_audit_event(experimenter_admin):
    experiment = ExperimentFactory()
    page = experimenter_admin.get(change_url(experiment))

    response = experimenter_admin.post(change_url(experiment), page_form_data(page))

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(experiment=experiment).exists()


@pytest.mark.django_db
def test_a_running_experiment_is_read_only_except_its_traffic(experimenter_admin, staff_experimenter):
    experiment = experiment_start(experiment=ExperimentFactory(traffic_percent=10), actor=None)
    page = experimenter_admin.get(change_url(experiment))
    content = page.content.decode()
    assert 'name="traffic_percent"' in content
    for frozen in ("name", "mde", "alpha", "duration", "variants-0-weight"):
        assert f'name="{frozen}"' not in content
    data = page_form_data(page, traffic_percent="50", name="Tampered", mde="0.5")

    response = experimenter_admin.post(change_url(experiment), data)

    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.traffic_percent, experiment.mde) == (50.0, 0.01)
    assert experiment.name != "Tampered"
    event = AuditEvent.objects.filter(experiment=experiment).latest("id")
    assert (event.action, event.actor, event.details["after"]) == (
        "traffic_changed", staff_experimenter, {"traffic_percent": 50.0})


@pytest.mark.django_db
def test_lowering_the_traffic_of_a_running_experiment_is_refused_with_the_reason(experimenter_admin):
    experiment = experiment_start(experiment=ExperimentFactory(traffic_percent=50), actor=None)
    page = experimenter_admin.get(change_url(experiment))
    events = AuditEvent.objects.count()

    response = experimenter_admin.post(change_url(experiment), page_form_data(page, traffic_percent="10"),
                                       follow=True)

    assert "may only go up" in html.unescape(response.content.decode())
    assert Experiment.objects.get(pk=experiment.pk).traffic_percent == 50.0
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_traffic_is_checked_by_the_same_rules_while_running(experimenter_admin):
    experiment = experiment_start(experiment=ExperimentFactory(), actor=None)
    page = experimenter_admin.get(change_url(experiment))

    response = experimenter_admin.post(change_url(experiment), page_form_data(page, traffic_percent="150"))

    assert response.context["adminform"].form.errors["traffic_percent"] == [
        "Must be greater than 0 and at most 100."]
    assert Experiment.objects.get(pk=experiment.pk).traffic_percent == 100.0


@pytest.mark.django_db
def test_the_preview_gives_the_sample_size_and_the_days_the_traffic_needs(experimenter_admin):
    body = valid_body(traffic_percent=50, variants=[CONTROL, {**GREEN, "weight": 3}])
    sizes = planned_sample(api_definition(body))[1]

    preview = experimenter_admin.get(PREVIEW_URL, add_form_data(body, expected_daily_units=2000)).json()

    assert preview["sample_size_per_variant"] == sizes
    assert preview["total_units"] == sum(sizes.values())
    # Each variant gets daily units x traffic share x its weight share; the slowest one decides.
    expected_days = max(sizes["control"] / (2000 * 0.5 * 1 / 4), sizes["green"] / (2000 * 0.5 * 3 / 4))
    assert preview["days_needed"] == pytest.approx(expected_days)
    assert any(f"about {math.ceil(expected_days * 10) / 10:g} days" in w for w in preview["warnings"])
    assert str(sizes["green"]) in preview["html"]


@pytest.mark.django_db
def test_the_preview_warns_below_a_week_and_says_what_is_missing(experimenter_admin):
    short = experimenter_admin.get(PREVIEW_URL, add_form_data(valid_body(duration="PT1H"))).json()
    broken = experimenter_admin.get(PREVIEW_URL, add_form_data(valid_body(variants=[CONTROL]))).json()

    assert short["sample_size_per_variant"] == {"control": 14745, "green": 14745}
    assert short["days_needed"] is None
    assert any("shorter than 7 days" in warning for warning in short["warnings"])
    assert broken["sample_size_per_variant"] is None
    assert broken["errors"] == {"variants": ["Give at least two variants."]}
    assert "Give at least two variants." in broken["html"]


@pytest.mark.django_db
def test_a_draft_page_shows_the_preview_without_javascript(experimenter_admin):
    experiment = ExperimentFactory()

    page = experimenter_admin.get(change_url(experiment), {"expected_daily_units": 1000}).content.decode()

    assert page.count('<td class="preview-size">14745</td>') == 2
    assert "29.5</span> days" in page  # 29,490 units at 1,000 a day
    assert "it would end underpowered" in page  # the test runs 14 days


@pytest.mark.django_db
def test_save_and_continue_keeps_the_expected_daily_units(experimenter_admin):
    data = {**add_form_data(valid_body(), expected_daily_units=5000), "_continue": "1"}

    response = experimenter_admin.post(ADD_URL, data)

    assert response.status_code == 302
    assert "expected_daily_units=5000" in response["Location"]
    page = experimenter_admin.get(response["Location"]).content.decode()
    assert 'name="expected_daily_units" value="5000"' in page
    assert "5.9</span> days" in page


@pytest.mark.django_db
def test_a_started_experiment_previews_its_frozen_sample(experimenter_admin):
    experiment = experiment_start(experiment=ExperimentFactory(), actor=None)

    preview = experimenter_admin.get(preview_url(experiment), {"expected_daily_units": 29490}).json()

    assert preview["sample_size_per_variant"] == experiment.protocol["sample_size_per_variant"]
    assert preview["days_needed"] == pytest.approx(1.0)
