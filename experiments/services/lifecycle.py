"""Starting and stopping experiments: the transitions out of draft and running."""

from django.db import transaction
from django.utils import timezone

from experiments.choices import AuditAction, Status
from experiments.definitions.fields import experiment_definition
from experiments.definitions.protocol import build_protocol, protocol_hash
from experiments.definitions.rules import definition_errors
from experiments.errors import InvalidDefinition, WrongState
from experiments.models import Experiment
from experiments.services.audit import audit_record


@transaction.atomic
def experiment_start(*, experiment: Experiment, actor) -> Experiment:
    """Freeze the protocol (sample size, dates, SHA-256) and start the test period now."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.DRAFT:
        raise WrongState(f"Only a draft can be started; this experiment is {experiment.status}.",
                         status=experiment.status)
    definition = experiment_definition(experiment)
    # Drafts are validated when written, but a rule (or the power code) may have changed
    # since: never freeze a protocol that the rules reject today.
    errors = definition_errors(definition)
    if errors:
        raise InvalidDefinition(errors)
    started_at = timezone.now()
    protocol = build_protocol(definition, started_at=started_at)
    experiment.protocol = protocol
    experiment.protocol_hash = protocol_hash(protocol)
    experiment.started_at = started_at
    experiment.ends_at = started_at + experiment.duration
    experiment.status = Status.RUNNING
    experiment.save()
    audit_record(experiment=experiment, action=AuditAction.STARTED, actor=actor,
                 details={"protocol_hash": experiment.protocol_hash})
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, actor, reason: str) -> Experiment:
    """Abandon a running test for good: it can never be promoted, and its report says so."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.RUNNING:
        raise WrongState(f"Only a running experiment can be stopped; this one is {experiment.status}.",
                         status=experiment.status)
    experiment.status = Status.STOPPED
    experiment.stop_reason = reason
    experiment.save()
    audit_record(experiment=experiment, action=AuditAction.STOPPED, actor=actor, reason=reason)
    return experiment
