"""The report's audit trail and promotion, read from the experiment's audit events."""

from typing import Any

from experiments.choices import AuditAction, Status
from experiments.models import Experiment

DETAILED_ACTIONS = {AuditAction.STARTED, AuditAction.ANALYZED, AuditAction.PROMOTED, AuditAction.TRAFFIC_CHANGED}


def audit_rows(experiment: Experiment, *, show_details: bool) -> list[dict[str, Any]]:
    """The audit trail; while locked without details, which could name an outcome or a variant."""
    return [
        {
            "at": event.at, "action": event.action, "label": event.get_action_display(),
            "actor": event.actor_label, "reason": event.reason,
            "details": _details(event) if show_details else "",
        }
        for event in experiment.audit_events.order_by("at", "id")
    ]


def _details(event) -> str:
    # A created or updated event holds the whole definition, which the protocol section shows
    # better; the details worth a column are the hash, the outcome and the variant.
    if event.action not in DETAILED_ACTIONS:
        return ""
    if event.action == AuditAction.TRAFFIC_CHANGED:
        before, after = event.details.get("before", {}), event.details.get("after", {})
        return f"traffic {before.get('traffic_percent')}% → {after.get('traffic_percent')}%"
    return "; ".join(f"{name}: {'–' if value is None else value}" for name, value in event.details.items())


def promotion(experiment: Experiment) -> dict[str, Any]:
    """Whether the experiment is concluded, with which variant, when and by whom."""
    promoted = experiment.audit_events.filter(action=AuditAction.PROMOTED).order_by("-at").first()
    return {
        "concluded": experiment.status == Status.CONCLUDED,
        "variant": experiment.concluded_variant.key if experiment.concluded_variant else None,
        "at": experiment.concluded_at,
        "by": promoted.actor_label if promoted else None,
        "auto_promote": experiment.auto_promote,
    }
