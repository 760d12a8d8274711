"""Building experiments in a given state for tests: started, observed, ended, analysed."""

from datetime import timedelta

from django.utils import timezone

from experiments.models import Experiment
from experiments.observation_input import ObservationRow
from experiments.services.analysis import analysis_run, experiments_queue_due_analyses
from experiments.services.assignment import assignments_for_units
from experiments.services.ingestion import observations_ingest
from experiments.services.lifecycle import experiment_start
from tests.factories import ExperimentFactory


def start(**fields) -> Experiment:
    return experiment_start(experiment=ExperimentFactory(**fields), actor=None)


def ingest(experiment: Experiment, observations: list[tuple]) -> None:
    """observations: (unit, value) or (unit, value, variant)."""
    rows = [ObservationRow(i, o[0], float(o[1]), o[2] if len(o) > 2 else None, None, None, None)
            for i, o in enumerate(observations)]
    observations_ingest(experiment=Experiment.objects.get(pk=experiment.pk), rows=rows)


def end_test_period(experiment: Experiment) -> None:
    now = timezone.now()
    Experiment.objects.filter(pk=experiment.pk).update(
        started_at=now - timedelta(days=15), ends_at=now - timedelta(days=1), grace_period=timedelta(0))


def analysed(experiment: Experiment) -> dict:
    """End the test period, let the sweep queue it and run the analysis; the stored document."""
    end_test_period(experiment)
    assert experiment.pk in experiments_queue_due_analyses()
    return analysis_run(experiment_id=experiment.pk).document


def assigned_units(experiment: Experiment, count: int) -> dict[str, str]:
    answers = assignments_for_units(experiment_key=experiment.key, units=[f"u{i}" for i in range(count)])
    return {a.unit: a.variant for a in answers}
