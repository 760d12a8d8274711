"""CUPED in the admin: the form takes `cuped` and `expected_correlation`, the preview shows the sample with and
without CUPED, and champion/challenger refuses it with the API's words."""

import html
import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiments.definitions.rules import definition_errors
from experiments.models import AuditEvent, Experiment, Metric, Variant
from tests.experiments.admin.pages import ADD_URL, PREVIEW_URL, add_form_data
from tests.experiments.api.definitions import valid_body
from tests.experiments.metrics.definitions import metrics_body


def rows() -> tuple[int, int, int, int]:
    return Experiment.objects.count(), Variant.objects.count(), Metric.objects.count(), AuditEvent.objects.count()


def part_1_data(**changes) -> dict[str, str]:
    return {**add_form_data(valid_body()), "cuped": "on", "expected_correlation": "0.5", **changes}


@pytest.mark.django_db
def test_the_form_stores_cuped_for_the_primary_and_a_metric_row(experimenter_admin):
    data = {**add_form_data(metrics_body()), "cuped": "on", "expected_correlation": "0.5",
            "metrics-1-cuped": "on", "metrics-1-expected_correlation": "0.6"}  # latency_ms
    response = experimenter_admin.post(ADD_URL, data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    experiment = Experiment.objects.get(key="checkout-button")
    assert (experiment.cuped, experiment.expected_correlation) == (True, 0.5)
    latency = experiment.metrics.get(key="latency_ms")
    assert (latency.cuped, latency.expected_correlation) == (True, 0.6)
    assert not experiment.metrics.get(key="refunds").cuped


@pytest.mark.django_db
def test_the_preview_shows_the_sample_without_and_with_cuped(experimenter_admin):
    preview = experimenter_admin.get(PREVIEW_URL, part_1_data()).json()

    h = proportion_effectsize(0.11, 0.10)
    without = math.ceil(NormalIndPower().solve_power(h, nobs1=None, alpha=0.05, power=0.8, ratio=1.0,
                                                     alternative="two-sided"))
    with_cuped = math.ceil(NormalIndPower().solve_power(h / math.sqrt(0.75), nobs1=None, alpha=0.05, power=0.8,
                                                        ratio=1.0, alternative="two-sided"))
    line = f"{without:,} per variant; with CUPED (rho 0.5): {with_cuped:,}"
    assert without == 14745 and with_cuped < without
    assert preview["sample_size_per_variant"] == {"control": with_cuped, "green": with_cuped}
    assert any(line in text for text in preview["cuped"]), preview["cuped"]
    assert line in html.unescape(preview["html"])


@pytest.mark.django_db
def test_the_preview_of_a_cuped_guardrail(experimenter_admin):
    data = {**add_form_data(metrics_body()), "metrics-1-cuped": "on", "metrics-1-expected_correlation": "0.6"}
    preview = experimenter_admin.get(PREVIEW_URL, data).json()

    power = 1 - 0.2 / 3
    without = math.ceil(TTestIndPower().solve_power(0.125, nobs1=None, alpha=0.05, power=power, ratio=1.0,
                                                    alternative="larger"))
    with_cuped = math.ceil(TTestIndPower().solve_power(0.125 / 0.8, nobs1=None, alpha=0.05, power=power, ratio=1.0,
                                                       alternative="larger"))
    assert preview["cuped"] == [f"latency_ms: {without:,} per variant; with CUPED (rho 0.6): {with_cuped:,}"]


@pytest.mark.django_db
def test_the_preview_without_cuped_shows_no_comparison(experimenter_admin):
    preview = experimenter_admin.get(PREVIEW_URL, add_form_data(valid_body())).json()

    assert preview["cuped"] == [] and "CUPED" not in preview["html"]


def _cc_body() -> dict:
    body = valid_body(design="champion_challenger", baseline_sd=1.0, baseline_mean=None, mde=0.1)
    body["metric"]["type"] = "continuous"
    return body


@pytest.mark.django_db
def test_champion_challenger_refuses_cuped_with_the_apis_message(experimenter_admin, experimenter_client):
    before = rows()
    response = experimenter_admin.post(ADD_URL, {**add_form_data(_cc_body()), "cuped": "on"})

    assert response.status_code == 200
    assert rows() == before
    form = response.context["adminform"].form
    api = experimenter_client.post("/api/v1/experiments/", {**_cc_body(), "cuped": True}, format="json")
    assert api.status_code == 400
    message = api.json()["errors"]["cuped"][0]
    assert form.errors["cuped"] == [message]
    from tests.experiments.admin.pages import api_definition

    assert definition_errors({**api_definition(_cc_body()), "cuped": True})["cuped"] == [message]


@pytest.mark.django_db
def test_a_bad_expected_correlation_is_refused_on_its_field(experimenter_admin):
    before = rows()
    response = experimenter_admin.post(ADD_URL, part_1_data(expected_correlation="1"))

    assert response.status_code == 200
    assert "expected_correlation" in response.context["adminform"].form.errors
    assert rows() == before
