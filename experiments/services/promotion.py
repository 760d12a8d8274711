"""Acting on a decision: conclude the experiment and serve its winner (or the control) to everyone."""

from django.db import transaction
from django.utils import timezone

from experiments.choices import AuditAction, Outcome, Status
from experiments.errors import WrongState
from experiments.models import AnalysisResult, Experiment
from experiments.services.audit import audit_record


@transaction.atomic
def experiment_promote(*, experiment: Experiment, actor) -> Experiment:
    """Apply the stored decision: promote concludes with the winner; keep or inconclusive with the control.

    An invalid result, a stopped experiment and one not analysed yet cannot be concluded
    with a winner: WrongState says why.
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status == Status.STOPPED:
        raise WrongState(f"Experiment {experiment.key!r} was stopped early ({experiment.stop_reason}): "
                         "it can never be promoted.", status=experiment.status)
    if experiment.status == Status.CONCLUDED:
        raise WrongState(f"Experiment {experiment.key!r} is already concluded with "
                         f"{experiment.concluded_variant.key!r}.", status=experiment.status)
    if experiment.status != Status.ANALYZED:
        raise WrongState(f"Experiment {experiment.key!r} is {experiment.status}: only an analysed experiment "
                         "can be promoted.", status=experiment.status)
    result = AnalysisResult.objects.get(experiment=experiment)
    if result.outcome == Outcome.INVALID:
        raise WrongState(
            f"The analysis of {experiment.key!r} is invalid ({result.document['decision']['reason']}): "
            "nothing can be promoted from it.", status=experiment.status, outcome=result.outcome,
        )
    variants = experiment.variants.all()
    winner = (variants.get(key=result.winner) if result.outcome == Outcome.PROMOTE else variants.get(is_control=True))
    experiment.status = Status.CONCLUDED
    experiment.concluded_variant = winner
    experiment.concluded_at = timezone.now()
    experiment.save(update_fields=["status", "concluded_variant", "concluded_at", "updated_at"])
    audit_record(experiment=experiment, action=AuditAction.PROMOTED, actor=actor,
                 details={"outcome": result.outcome, "variant": winner.key, "protocol_hash": result.protocol_hash})
    return experiment
