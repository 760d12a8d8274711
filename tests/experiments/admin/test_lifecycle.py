"""Lifecycle buttons: confirmation pages, the services behind them, messages, and who may press them."""

import pytest
from django.contrib.messages import get_messages

from experiments.models import AuditEvent, Experiment
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.experiments.admin.conftest import logged_in
from tests.experiments.admin.pages import (
    ADD_URL,
    CHANGELIST_URL,
    action_url,
    change_url,
    page_form_data,
    promotable,
)
from tests.experiments.builders import assigned_units, end_test_period, start
from tests.factories import ExperimentFactory

ACTIONS = ("start", "stop", "analyse", "promote")


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]


def buttons_on(page: str, experiment: Experiment) -> set[str]:
    return {action for action in ACTIONS if f'href="{action_url(experiment, action)}"' in page}


@pytest.mark.django_db
def test_an_experimenter_starts_a_draft_after_confirming(experimenter_admin, staff_experimenter):
    experiment = ExperimentFactory()
    assert buttons_on(experimenter_admin.get(change_url(experiment)).content.decode(), experiment) == {"start"}

    confirmation = experimenter_admin.get(action_url(experiment, "start"))
    response = experimenter_admin.post(action_url(experiment, "start"), follow=True)

    assert "frozen and fingerprinted" in confirmation.content.decode()
    assert response.redirect_chain[-1][0] == change_url(experiment)
    experiment.refresh_from_db()
    assert experiment.status == "running"
    assert messages_of(response)[0][0] == "success"
    assert messages_of(response)[0][1].startswith(
        f"Started {experiment.key}: the protocol is frozen (SHA-256 {experiment.protocol_hash[:12]}")
    event = AuditEvent.objects.get(experiment=experiment, action="started")
    assert event.actor == staff_experimenter
    assert buttons_on(response.content.decode(), experiment) == {"stop"}


@pytest.mark.django_db
def test_stopping_needs_a_reason_which_the_audit_trail_keeps(experimenter_admin, staff_experimenter):
    experiment = start()

    refused = experimenter_admin.post(action_url(experiment, "stop"), {"reason": ""})
    response = experimenter_admin.post(action_url(experiment, "stop"), {"reason": "green broke iOS checkout"},
                                       follow=True)

    assert refused.status_code == 200 and refused.context["form"].errors["reason"]
    experiment.refresh_from_db()
    assert (experiment.status, experiment.stop_reason) == ("stopped", "green broke iOS checkout")
    assert messages_of(response) == [
        ("success", f"Stopped {experiment.key} (green broke iOS checkout). It can never be promoted.")]
    event = AuditEvent.objects.get(experiment=experiment, action="stopped")
    assert (event.actor, event.reason) == (staff_experimenter, "green broke iOS checkout")
    page = response.content.decode()
    assert buttons_on(page, experiment) == set()
    assert "green broke iOS checkout" in page


@pytest.mark.django_db
def test_analyse_is_offered_once_the_lock_lifts_and_refused_before(experimenter_admin, staff_experimenter):
    experiment = start()
    assert "analyse" not in buttons_on(experimenter_admin.get(change_url(experiment)).content.decode(), experiment)

    early = experimenter_admin.post(action_url(experiment, "analyse"), follow=True)

    assert messages_of(early)[0][0] == "error" and "locked" in messages_of(early)[0][1]
    assert Experiment.objects.get(pk=experiment.pk).status == "running"

    end_test_period(experiment)
    assert buttons_on(experimenter_admin.get(change_url(experiment)).content.decode(), experiment) == {
        "stop", "analyse"}
    response = experimenter_admin.post(action_url(experiment, "analyse"), follow=True)

    assert Experiment.objects.get(pk=experiment.pk).status == "analyzing"
    assert messages_of(response) == [("success", f"Queued the analysis of {experiment.key}; "
                                                 "its decision appears on this page when it is done.")]
    assert AuditEvent.objects.get(experiment=experiment, action="analysis_queued").actor == staff_experimenter


@pytest.mark.django_db
def test_an_analysed_experiment_shows_its_result_and_is_promoted(experimenter_admin, staff_experimenter):
    experiment = promotable()
    page = experimenter_admin.get(change_url(experiment)).content.decode()
    assert buttons_on(page, experiment) == {"promote"}
    assert "Decision: promote (green)" in page
    assert f'href="/reports/{experiment.key}/"' in page
    assert "serve green to every unit" in experimenter_admin.get(action_url(experiment, "promote")).content.decode()

    response = experimenter_admin.post(action_url(experiment, "promote"), follow=True)

    experiment.refresh_from_db()
    assert (experiment.status, experiment.concluded_variant.key) == ("concluded", "green")
    assert messages_of(response) == [("success", f"Concluded {experiment.key}: every unit is now served green.")]
    assert AuditEvent.objects.get(experiment=experiment, action="promoted").actor == staff_experimenter
    assert buttons_on(response.content.decode(), experiment) == set()


@pytest.mark.django_db
def test_a_refusal_from_a_service_is_shown_as_an_error_message(experimenter_admin):
    running = start()
    stopped = experiment_stop(experiment=start(), actor=None, reason="bug")

    restart = experimenter_admin.post(action_url(running, "start"), follow=True)
    promote = experimenter_admin.post(action_url(stopped, "promote"), follow=True)

    assert messages_of(restart) == [("error", "Only a draft can be started; this experiment is running.")]
    assert messages_of(promote)[0][0] == "error" and "can never be promoted" in messages_of(promote)[0][1]
    assert Experiment.objects.get(pk=stopped.pk).status == "stopped"


@pytest.mark.django_db
def test_a_confirmation_page_says_when_the_action_does_not_apply(experimenter_admin):
    experiment = start()

    page = experimenter_admin.get(action_url(experiment, "promote")).content.decode()

    assert "cannot be promoted now" in page
    assert 'value="Yes, apply the decision"' not in page


@pytest.mark.django_db
@pytest.mark.parametrize("action", ACTIONS)
def test_a_viewer_gets_403_on_every_lifecycle_action(viewer_admin, action):
    draft, running = ExperimentFactory(), start()
    end_test_period(running)

    for experiment in (draft, running):
        assert viewer_admin.get(action_url(experiment, action)).status_code == 403
        assert viewer_admin.post(action_url(experiment, action), {"reason": "x"}).status_code == 403
    assert Experiment.objects.get(pk=draft.pk).status == "draft"
    assert Experiment.objects.get(pk=running.pk).status == "running"


@pytest.mark.django_db
def test_a_viewer_sees_read_only_pages_without_buttons_and_cannot_add_or_save(viewer_admin):
    draft, running, concluded = ExperimentFactory(), start(), promotable()
    another_draft = ExperimentFactory()

    changelist = viewer_admin.get(CHANGELIST_URL).content.decode()
    assert ADD_URL not in changelist
    for experiment in (draft, running, concluded):
        page = viewer_admin.get(change_url(experiment))
        content = page.content.decode()
        assert page.status_code == 200
        assert buttons_on(content, experiment) == set()
        for editable in ('name="name"', 'name="traffic_percent"', 'name="_save"', 'name="_continue"'):
            assert editable not in content
    assert "Decision: promote (green)" in viewer_admin.get(change_url(concluded)).content.decode()
    assert "preview-size" in viewer_admin.get(change_url(draft)).content.decode()
    assert viewer_admin.get(ADD_URL).status_code == 403
    assert viewer_admin.post(ADD_URL, {}).status_code == 403
    assert viewer_admin.post(change_url(another_draft), {"name": "x"}).status_code == 403
    assert viewer_admin.post(change_url(running), {"traffic_percent": "5"}).status_code == 403
    assert Experiment.objects.get(pk=running.pk).traffic_percent == 100.0


@pytest.mark.django_db
def test_an_experimenter_cannot_edit_a_concluded_experiment(experimenter_admin):
    concluded = promotable()
    page = experimenter_admin.get(change_url(concluded))

    assert 'name="_save"' not in page.content.decode()
    assert experimenter_admin.post(change_url(concluded), {"traffic_percent": "5"}).status_code == 403


@pytest.mark.django_db
def test_only_staff_members_enter_the_admin(experimenter):
    client = logged_in(experimenter)  # in the experimenter group, but not staff

    response = client.get(CHANGELIST_URL)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_the_changelist_shows_progress_days_left_and_the_decision(experimenter_admin):
    running = start(key="running-one", mde=None, sample_size_per_variant=100)
    assigned_units(running, 50)
    concluded = promotable()
    ExperimentFactory(key="a-draft", design="champion_challenger", baseline_sd=1.0, baseline_mean=None)

    page = experimenter_admin.get(CHANGELIST_URL).content.decode()
    running_only = experimenter_admin.get(CHANGELIST_URL, {"status__exact": "running"}).content.decode()
    paired_only = experimenter_admin.get(CHANGELIST_URL, {"design__exact": "champion_challenger"}).content.decode()
    searched = experimenter_admin.get(CHANGELIST_URL, {"q": "running-on"}).content.decode()

    assert "25.0%" in page  # 50 of the 2 x 100 planned units
    assert "14.0 days" in page  # just started, for 14 days
    assert "promote (green)" in page
    assert "running-one" in running_only and concluded.key not in running_only
    assert "a-draft" in paired_only and "running-one" not in paired_only
    assert "running-one" in searched and "a-draft" not in searched


@pytest.mark.django_db
def test_the_audit_trail_is_on_the_page_and_read_only(experimenter_admin, staff_experimenter):
    experiment = experiment_start(experiment=ExperimentFactory(), actor=staff_experimenter)
    page = experimenter_admin.get(change_url(experiment))

    trail = next(i for i in page.context["inline_admin_formsets"] if i.formset.prefix == "audit_events")
    assert (trail.has_add_permission, trail.has_change_permission, trail.has_delete_permission) == (
        False, False, False)
    assert "started" in page.content.decode() and staff_experimenter.username in page.content.decode()
    data = page_form_data(page, **{"audit_events-TOTAL_FORMS": "2", "audit_events-1-action": "forged"})
    experimenter_admin.post(change_url(experiment), data)
    assert list(AuditEvent.objects.filter(experiment=experiment).values_list("action", flat=True)) == ["started"]
