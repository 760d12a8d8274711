"""The beat job that gives covariates their arm (CUPED): pinned name, scheduled, thin and safe to repeat."""

import pytest
from django.conf import settings

from experiments.models import Covariate
from experiments.tasks import resolve_covariate_arms
from tests.experiments.db.test_covariate_arms import assign, cuped_experiment, started, store_covariates


def test_the_task_name_is_pinned_and_beat_runs_it():
    assert resolve_covariate_arms.name == "experiments.resolve_covariate_arms"
    assert settings.CELERY_BEAT_SCHEDULE["resolve-covariate-arms"]["task"] == "experiments.resolve_covariate_arms"
    assert resolve_covariate_arms.acks_late and resolve_covariate_arms.soft_time_limit


@pytest.mark.django_db
def test_the_task_resolves_the_running_experiments_and_a_second_run_does_nothing(tmp_path):
    experiment = cuped_experiment()
    store_covariates(experiment, "rest", tmp_path)
    experiment = started(experiment)
    assign(experiment)

    first, second = resolve_covariate_arms(), resolve_covariate_arms()

    assert first == Covariate.objects.filter(experiment=experiment).count() > 0 and second == 0
    assert not Covariate.objects.filter(experiment=experiment, variant__isnull=True).exists()
