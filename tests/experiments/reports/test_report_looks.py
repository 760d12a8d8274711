"""The report's planned looks: a timeline that shows no statistic while locked, and each look's Z once the test ends."""

import pytest

from experiments.models import Experiment
from experiments.services.looks import look_run
from tests.experiments.builders import analysed, assigned_units
from tests.experiments.reports.helpers import read_figures
from tests.experiments.reports.test_report_lock import assert_nothing_measured, page
from tests.experiments.services.test_looks import looks_experiment, observe, reach_look


@pytest.mark.django_db
def test_a_sealed_look_appears_on_the_timeline_and_nothing_measured_does(client, viewer):
    experiment = looks_experiment()
    observe(experiment, assigned_units(experiment, 200), shift=0.0, seed=21)
    reach_look(experiment, 1)
    look = look_run(experiment_id=experiment.pk, index=1)
    z = f"{look.statistics[0]['statistic_z']:+.3f}"

    html = page(client, viewer, experiment.key).content.decode()

    assert "Planned looks" in html and 'data-look="3"' in html
    assert "taken: the test continued" in html and "Look 1 of 3: the test continues." in html
    assert_nothing_measured(html, z, z[1:])


@pytest.mark.django_db
def test_once_the_test_has_ended_the_report_charts_each_looks_statistic_against_its_boundary(client, viewer):
    experiment = looks_experiment()
    units = assigned_units(experiment, 200)
    observe(experiment, units, shift=0.0, seed=22)
    reach_look(experiment, 1)
    assert look_run(experiment_id=experiment.pk, index=1).outcome == "sealed"
    observe(experiment, assigned_units(experiment, 500), shift=0.0, seed=23, start_at=200)
    document = analysed(experiment)
    experiment = Experiment.objects.get(pk=experiment.pk)

    html = page(client, viewer, experiment.key).content.decode()

    assert 'data-chart="looks"' in html and "Statistic at each look against its boundary" in html
    comparison = document["comparisons"][0]
    assert f"Z = {comparison['statistic_z']:+.3f} against the boundary {comparison['boundary']:.3f}" in html
    assert "the final analysis" in html
    assert read_figures(html).svgs >= 4
