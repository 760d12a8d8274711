"""Secondary metrics and guardrails in the admin: the API's rules on the metric rows, stored by the services, planned."""

import copy
import html

import pytest

from experiments.definitions.fields import METRIC_FIELDS, experiment_definition
from experiments.definitions.planning import sample_plan
from experiments.limits import MAX_METRICS
from experiments.models import AuditEvent, Experiment, Metric, Variant
from experiments.services.lifecycle import experiment_start
from tests.experiments.admin.pages import (
    ADD_URL,
    PREVIEW_URL,
    add_form_data,
    change_url,
    metric_rows,
    page_form_data,
    preview_url,
)
from tests.experiments.api.definitions import URL as API_URL
from tests.experiments.api.definitions import valid_body
from tests.experiments.metrics.definitions import metrics_body

SETS_THE_SAMPLE = "&#9664; sets the sample"
# The API's fields of the primary (metrics[0] in metrics_body) -> the experiment form's fields.
PRIMARY_FORM_FIELDS = {"key": "metric_key", "name": "metric_name", "type": "metric_type",
                       "direction": "metric_direction", "aggregation": "metric_aggregation",
                       "baseline_mean": "baseline_mean", "baseline_sd": "baseline_sd", "mde": "mde"}


def rows() -> tuple[int, int, int, int]:
    return Experiment.objects.count(), Variant.objects.count(), Metric.objects.count(), AuditEvent.objects.count()


def stored_metrics(experiment: Experiment) -> tuple:
    """Everything the experiment stores about its metrics: the primary's fields and each Metric row."""
    primary = (experiment.metric_key, experiment.metric_name, experiment.metric_type, experiment.metric_direction,
               experiment.metric_aggregation, experiment.baseline_mean, experiment.baseline_sd, experiment.mde)
    others = [(m.position, *(getattr(m, field) for field in METRIC_FIELDS)) for m in experiment.metrics.all()]
    return primary, others


def api_created(experimenter_client, body: dict) -> Experiment:
    response = experimenter_client.post(API_URL, body, format="json")
    assert response.status_code == 201, response.json()
    return Experiment.objects.get(key=body["key"])


def metric_forms(response):
    return next(inline.formset.forms for inline in response.context["inline_admin_formsets"]
                if inline.formset.prefix == "metrics")


def with_metric(body: dict, metric_key: str, **changes) -> dict:
    """The body with one metrics item (found by its key) changed."""
    body = copy.deepcopy(body)
    next(m for m in body["metrics"] if m["key"] == metric_key).update(changes)
    return body


@pytest.mark.django_db
def test_an_experimenter_adds_a_draft_with_metrics_stored_as_the_api_stores_them(
        experimenter_admin, experimenter_client, staff_experimenter):
    response = experimenter_admin.post(ADD_URL, add_form_data(metrics_body()))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    experiment = Experiment.objects.get(key="checkout-button")
    twin = api_created(experimenter_client, metrics_body(key="checkout-button-api"))
    assert stored_metrics(experiment) == stored_metrics(twin)
    assert [(key, role) for _, key, _, role, *_ in stored_metrics(experiment)[1]] == [
        ("revenue", "secondary"), ("latency_ms", "guardrail"), ("refunds", "guardrail")]
    event = AuditEvent.objects.get(experiment=experiment)
    assert (event.action, event.actor) == ("created", staff_experimenter)
    assert [m["key"] for m in event.details["metrics"]] == ["revenue", "latency_ms", "refunds"]


@pytest.mark.django_db
def test_keys_left_empty_are_made_from_the_names_as_the_api_makes_them(experimenter_admin, experimenter_client):
    body = metrics_body()
    for metric in body["metrics"]:
        del metric["key"]

    response = experimenter_admin.post(ADD_URL, add_form_data(body))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    experiment = Experiment.objects.get(key="checkout-button")
    assert stored_metrics(experiment) == stored_metrics(api_created(experimenter_client, {**body, "key": "api"}))
    assert experiment.metric_key == "checkout-conversion"


@pytest.mark.django_db
def test_an_untouched_empty_metric_row_on_the_add_page_adds_no_metric(experimenter_admin):
    page = experimenter_admin.get(ADD_URL)
    assert len(metric_forms(page)) == 1  # one empty row is offered on the add page
    data = {**add_form_data(valid_body()), **metric_rows([{"role": "secondary"}])}

    response = experimenter_admin.post(ADD_URL, data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert not Metric.objects.exists()


@pytest.mark.django_db
def test_a_guardrail_without_margin_is_refused_on_its_row_and_nothing_is_written(experimenter_admin):
    before = rows()

    response = experimenter_admin.post(ADD_URL, add_form_data(with_metric(metrics_body(), "latency_ms", margin=None)))

    assert response.status_code == 200
    assert rows() == before
    latency = metric_forms(response)[1]
    assert latency.errors["margin"] == [
        "A guardrail needs a positive margin: the largest harm accepted, in the per-unit value's units."]
    assert all(not form.errors for index, form in enumerate(metric_forms(response)) if index != 1)
    assert html.escape(latency.errors["margin"][0]) in response.content.decode()


# Metric lists that parse but break a rule: the API answers 400 naming the item.
METRIC_RULE_BREAKERS = {
    "continuous guardrail without sd": with_metric(metrics_body(), "latency_ms", baseline_sd=None),
    "secondary with a margin": with_metric(metrics_body(), "revenue", margin=1.0),
    "duplicate metric keys": with_metric(metrics_body(), "revenue", key="refunds"),
    "the primary's key again": with_metric(metrics_body(), "revenue", key="conversion"),
    "binary guardrail harmed out of (0, 1)": with_metric(metrics_body(), "refunds", baseline_mean=0.998),
    "mean of a binary guardrail": with_metric(metrics_body(), "refunds", aggregation="mean"),
    "mean of a binary primary": with_metric(metrics_body(), "conversion", aggregation="mean"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body", METRIC_RULE_BREAKERS.values(), ids=METRIC_RULE_BREAKERS.keys())
def test_the_admin_refuses_the_metric_lists_the_api_refuses_on_the_rows_the_api_names(
        experimenter_admin, experimenter_client, body):
    api = experimenter_client.post(API_URL, body, format="json")
    assert api.status_code == 400
    expected = api.json()["errors"]
    before = rows()

    response = experimenter_admin.post(ADD_URL, add_form_data(body))

    assert response.status_code == 200
    assert rows() == before
    form, metric_rows_shown = response.context["adminform"].form, metric_forms(response)
    for path, messages in expected.items():
        index, field = path[len("metrics["):].split("].")
        if int(index) == 0:  # the primary: the experiment's own metric fields
            shown = form.errors[PRIMARY_FORM_FIELDS[field]]
        else:  # the others: their row, in the same order
            shown = metric_rows_shown[int(index) - 1].errors[{"type": "metric_type"}.get(field, field)]
        for message in messages:
            assert message in shown, (path, shown)


@pytest.mark.django_db
def test_more_than_twenty_metrics_are_refused_and_nothing_is_written(experimenter_admin):
    secondary = [{"key": f"m{index}", "name": f"Metric {index}", "type": "binary", "role": "secondary"}
                 for index in range(MAX_METRICS)]
    body = metrics_body(metrics=[metrics_body()["metrics"][0], *secondary])
    before = rows()

    response = experimenter_admin.post(ADD_URL, add_form_data(body))

    assert response.status_code == 200
    assert rows() == before
    assert response.context["adminform"].form.non_field_errors() == [
        f"Give at most {MAX_METRICS} metrics (one primary); got {MAX_METRICS + 1}."]


@pytest.mark.django_db
def test_editing_a_draft_s_guardrail_goes_through_experiment_update(
        experimenter_admin, experimenter_client, staff_experimenter):
    experiment = api_created(experimenter_client, metrics_body())
    page = experimenter_admin.get(change_url(experiment))
    assert len(metric_forms(page)) == 3  # the stored rows, in order, and no empty one
    events = AuditEvent.objects.filter(experiment=experiment).count()

    response = experimenter_admin.post(change_url(experiment), page_form_data(page, **{"metrics-1-margin": "8"}))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert list(experiment.metrics.values_list("key", "position", "margin")) == [
        ("revenue", 1, None), ("latency_ms", 2, 8.0), ("refunds", 3, 0.005)]
    event = AuditEvent.objects.filter(experiment=experiment).latest("id")
    assert AuditEvent.objects.filter(experiment=experiment).count() == events + 1
    assert (event.action, event.actor) == ("updated", staff_experimenter)
    assert [m["margin"] for m in event.details["after"]["metrics"]] == [None, 8.0, 0.005]


@pytest.mark.django_db
def test_saving_a_draft_with_unchanged_metric_rows_writes_nothing(experimenter_admin, experimenter_client):
    experiment = api_created(experimenter_client, metrics_body())
    page = experimenter_admin.get(change_url(experiment))
    before = (stored_metrics(experiment), AuditEvent.objects.count())

    response = experimenter_admin.post(change_url(experiment), page_form_data(page))

    assert response.status_code == 302
    assert (stored_metrics(Experiment.objects.get(pk=experiment.pk)), AuditEvent.objects.count()) == before


@pytest.mark.django_db
def test_the_preview_lists_each_test_s_need_and_marks_the_one_that_sets_the_size(
        experimenter_admin, experimenter_client):
    plan = sample_plan(experiment_definition(api_created(experimenter_client, metrics_body(key="planned"))))

    preview = experimenter_admin.get(PREVIEW_URL, add_form_data(metrics_body())).json()

    assert [(t["role"], t["key"], t["test"], t["power"], t["sample_size_per_variant"], t["sets_sample"])
            for t in preview["tests"]] == [
        (t.role, t.key, t.test, t.power, t.sample_size_per_variant, t.sets_sample) for t in plan.tests]
    assert preview["sample_size_per_variant"] == plan.sample_size_per_variant
    setter = next(t for t in plan.tests if t.sets_sample)
    assert setter.sample_size_per_variant == plan.sample_size_per_variant
    page = preview["html"]
    assert page.count(SETS_THE_SAMPLE) == 1
    setter_row = page[page.index(f'data-metric="{setter.key}"'):].split("</tr>")[0]
    assert SETS_THE_SAMPLE in setter_row and f"control: {setter.sample_size_per_variant['control']}" in setter_row
    for test in plan.tests:
        assert f'data-metric="{test.key}"' in page
    assert "not planned (it never decides)" in page.split('data-metric="revenue"')[1].split("</tr>")[0]
    assert ("every test is planned at power 93.3% so that the decision keeps 80% with 2 guardrails"
            in preview["power_sentence"])
    assert html.escape(preview["power_sentence"]) in page


@pytest.mark.django_db
def test_a_draft_page_shows_each_test_without_javascript(experimenter_admin, experimenter_client):
    experiment = api_created(experimenter_client, metrics_body())

    page = experimenter_admin.get(change_url(experiment)).content.decode()

    assert page.count(SETS_THE_SAMPLE) == 1
    assert "with 2 guardrails" in page
    assert page.index('id="metrics-group"') < page.index('id="power-preview-module"')


@pytest.mark.django_db
def test_a_started_experiment_shows_each_frozen_test(experimenter_admin, experimenter_client):
    experiment = experiment_start(experiment=api_created(experimenter_client, metrics_body()), actor=None)
    frozen = experiment.protocol["metrics"]

    preview = experimenter_admin.get(preview_url(experiment)).json()
    page = experimenter_admin.get(change_url(experiment)).content.decode()

    assert [(t["key"], t["sample_size_per_variant"], t["sets_sample"]) for t in preview["tests"]] == [
        (m["key"], m["sample_size_per_variant"], m["sets_sample"]) for m in frozen]
    assert "93.3%" in preview["power_sentence"]
    panel = page[page.index("Frozen protocol"):]
    assert panel.count(SETS_THE_SAMPLE) == 1 and "with 2 guardrails" in panel


@pytest.mark.django_db
def test_a_running_experiment_s_metric_rows_are_read_only(experimenter_admin, experimenter_client):
    experiment = experiment_start(experiment=api_created(experimenter_client, metrics_body(traffic_percent=10)),
                                  actor=None)
    before = list(experiment.metrics.values_list(*METRIC_FIELDS))
    page = experimenter_admin.get(change_url(experiment))
    content = page.content.decode()
    assert "latency_ms" in content and "Page latency" in content
    for field in METRIC_FIELDS:
        assert f'name="metrics-0-{field}"' not in content
    assert 'name="metrics-TOTAL_FORMS"' in content

    data = page_form_data(page, traffic_percent="50", **{"metrics-1-margin": "99", "metrics-0-role": "guardrail",
                                                        "metrics-TOTAL_FORMS": "4", "metrics-3-key": "extra",
                                                        "metrics-3-name": "Extra", "metrics-3-role": "secondary",
                                                        "metrics-3-metric_type": "binary"})
    response = experimenter_admin.post(change_url(experiment), data)

    assert response.status_code == 302
    assert list(experiment.metrics.values_list(*METRIC_FIELDS)) == before
    event = AuditEvent.objects.filter(experiment=experiment).latest("id")
    assert (event.action, event.details["after"]) == ("traffic_changed", {"traffic_percent": 50.0})
