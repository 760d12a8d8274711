"""The Django choices and the statistics' vocabulary are one list each: same values, same order."""

import pytest

from analysis import vocabulary
from experiments import choices


@pytest.mark.parametrize(("django_choices", "pure"), [
    (choices.Design, vocabulary.Design), (choices.MetricType, vocabulary.MetricType),
    (choices.Direction, vocabulary.Direction), (choices.Alternative, vocabulary.PlanAlternative),
    (choices.Outcome, vocabulary.Outcome),
])
def test_every_shared_choice_has_the_values_of_the_statistics_vocabulary(django_choices, pure):
    assert django_choices.values == [member.value for member in pure]


@pytest.mark.django_db
def test_the_audit_trail_takes_only_the_audit_actions_the_reports_can_label():
    from experiments.services.audit import audit_record
    from tests.factories import ExperimentFactory

    experiment = ExperimentFactory()
    with pytest.raises(ValueError):
        audit_record(experiment=experiment, action="renamed")
    event = audit_record(experiment=experiment, action="started")
    assert event.get_action_display() == choices.AuditAction.STARTED.label
