"""Creating and editing experiment definitions (drafts; traffic alone while running)."""

from typing import Any

from django.db import IntegrityError, transaction

from experiments.errors import InvalidDefinition, WrongState
from experiments.models import Experiment, Status, Variant
from experiments.protocol import iso_duration
from experiments.services.audit import audit_record

# The one protocol setting that may change while running: a ramp changes who is included,
# and units already assigned keep their variant.
RUNNING_EDITABLE_FIELDS = frozenset({"traffic_percent"})


@transaction.atomic
def experiment_create(*, actor, definition: dict[str, Any]) -> Experiment:
    """Store a valid definition as a draft with its variants, and audit it."""
    fields = {name: value for name, value in definition.items() if name != "variants"}
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(created_by=_user_or_none(actor), **fields)
    except IntegrityError:
        if Experiment.objects.filter(key=fields["key"]).exists():
            raise InvalidDefinition({"key": [f"An experiment with key {fields['key']!r} already exists."]})
        raise
    _replace_variants(experiment, definition["variants"])
    audit_record(experiment=experiment, action="created", actor=actor, details=_audit_view(definition))
    return experiment


@transaction.atomic
def experiment_update(*, experiment: Experiment, actor, changes: dict[str, Any]) -> Experiment:
    """Apply validated changes: anything while a draft, only traffic_percent while running."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    changed = {
        name: value for name, value in changes.items()
        if name == "variants" or getattr(experiment, name) != value
    }
    if experiment.status != Status.DRAFT:
        frozen = sorted(set(changed) - RUNNING_EDITABLE_FIELDS)
        if frozen or experiment.status != Status.RUNNING:
            raise WrongState(
                f"The experiment is {experiment.status}: its protocol is frozen"
                + (f" ({', '.join(frozen)} cannot change)." if frozen else "."),
                status=experiment.status,
            )
    before = {name: getattr(experiment, name) for name in changed if name != "variants"}
    for name, value in changed.items():
        if name != "variants":
            setattr(experiment, name, value)
    experiment.save()
    if "variants" in changed:
        _replace_variants(experiment, changed["variants"])
    action = "traffic_changed" if set(changed) == {"traffic_percent"} else "updated"
    audit_record(
        experiment=experiment, action=action, actor=actor,
        details={"before": _audit_view(before), "after": _audit_view(changed)},
    )
    return experiment


def _replace_variants(experiment: Experiment, variants: list[dict[str, Any]]) -> None:
    experiment.variants.all().delete()
    Variant.objects.bulk_create(
        Variant(
            experiment=experiment,
            key=v["key"],
            weight=v["weight"],
            is_control=bool(v.get("is_control")),
            payload=v.get("payload") or {},
            position=position,
        )
        for position, v in enumerate(variants)
    )


def _audit_view(values: dict[str, Any]) -> dict[str, Any]:
    """Values as JSON: durations in ISO 8601, a previous experiment by its key."""
    def as_json(value):
        if hasattr(value, "total_seconds"):
            return iso_duration(value)
        return value.key if isinstance(value, Experiment) else value

    return {name: as_json(value) for name, value in values.items()}


def _user_or_none(actor):
    return actor if getattr(actor, "pk", None) else None
