"""Interim looks in the admin: the form takes looks and spending, the preview shows each look before the start,
and a running experiment's page says only that the test continues."""

import html

import pytest

from analysis.sequential import efficacy_boundaries, inflation_factor
from experiments.models import Experiment
from experiments.services.looks import look_run
from tests.experiments.admin.pages import ADD_URL, PREVIEW_URL, add_form_data, change_url
from tests.experiments.api.definitions import valid_body
from tests.experiments.builders import assigned_units
from tests.experiments.services.test_looks import looks_experiment, observe, reach_look


def looks_data(**changes) -> dict[str, str]:
    return {**add_form_data(valid_body()), "looks": "[0.2, 0.4, 0.6, 0.8, 1]", "spending": "pocock", **changes}


@pytest.mark.django_db
def test_the_form_stores_the_looks_and_the_spending_function(experimenter_admin):
    response = experimenter_admin.post(ADD_URL, looks_data())

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    experiment = Experiment.objects.get(key="checkout-button")
    assert (experiment.looks, experiment.spending) == ([0.2, 0.4, 0.6, 0.8, 1], "pocock")


@pytest.mark.django_db
def test_a_form_without_looks_keeps_one_look_at_the_end(experimenter_admin):
    response = experimenter_admin.post(ADD_URL, add_form_data(valid_body()))

    assert response.status_code == 302
    assert Experiment.objects.get(key="checkout-button").looks == [1.0]


@pytest.mark.parametrize("looks", ["[0.6, 0.3, 1]", "[0.5, 0.9]", "[0.5, 2]", '["a", 1]', "{}"])
@pytest.mark.django_db
def test_bad_looks_are_refused_on_the_field_with_the_apis_words(experimenter_admin, looks):
    response = experimenter_admin.post(ADD_URL, looks_data(looks=looks))

    assert response.status_code == 200
    assert "looks" in response.context["adminform"].form.errors
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_the_preview_shows_each_looks_boundary_and_the_inflated_sample_before_the_start(experimenter_admin):
    preview = experimenter_admin.get(PREVIEW_URL, looks_data()).json()

    page = html.unescape(preview["html"])
    assert 'id="preview-looks-table"' in page
    for boundary in efficacy_boundaries([0.2, 0.4, 0.6, 0.8, 1], "pocock", 0.025):
        assert f"{boundary:.3f}" in page
    assert round(boundary, 3) == 2.386  # DESIGN.md's Pocock check
    factor = inflation_factor([0.2, 0.4, 0.6, 0.8, 1], "pocock", 0.025, 0.8)
    assert f"{factor:.4f}" in page and "14745" in page  # the fixed design's need, times the factor
    assert preview["sample_size_per_variant"]["control"] == int(-(-14745 * factor // 1))


@pytest.mark.django_db
def test_a_running_experiment_says_only_which_look_it_is_at(experimenter_admin):
    experiment = looks_experiment()
    observe(experiment, assigned_units(experiment, 200), shift=0.0, seed=31)
    reach_look(experiment, 1)
    look = look_run(experiment_id=experiment.pk, index=1)

    page = experimenter_admin.get(change_url(experiment)).content.decode()

    assert "Look 1 of 3: the test continues; the next look is at" in page
    assert f"{look.statistics[0]['statistic_z']:.3f}" not in page
