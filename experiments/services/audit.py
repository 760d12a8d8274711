"""Recording who changed an experiment, when and why."""

from typing import Any

from experiments.choices import AuditAction
from experiments.models import AuditEvent, Experiment


def audit_record(*, experiment: Experiment, action: AuditAction, actor=None, reason: str = "",
                 details: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the experiment's audit trail; `actor` None means the system.

    `action` must be one of `AuditAction` (ValueError otherwise): the reports label each.
    """
    return AuditEvent.objects.create(
        experiment=experiment,
        action=AuditAction(action),
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=getattr(actor, "username", None) or "system",
        reason=reason,
        details=details or {},
    )
