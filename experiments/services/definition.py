"""Creating and editing experiment definitions (drafts; traffic alone while running).

The definition rules are checked here and nowhere else: the REST serializers and the admin
forms only parse, then call these functions (the admin asks `experiment_definition_check`
first, to put each message on its form field and preview the plan). Follow-ups (`from`) are resolved here too,
so the admin can create one as the API does.
"""

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from experiments.choices import AuditAction, Status
from experiments.definitions.durations import iso_duration
from experiments.definitions.fields import METRIC_FIELDS, default_metric_key, experiment_definition
from experiments.definitions.rules import definition_errors
from experiments.errors import InvalidDefinition, WrongState
from experiments.models import Experiment, Metric, Variant
from experiments.services.audit import audit_record

# The one protocol setting that may change while running: a ramp changes who is included,
# and units already assigned keep their variant. It may only go up (DESIGN.md part 2): with
# weights frozen at start, the hash alone is then sticky until ends_at, stored rows or not.
RUNNING_EDITABLE_FIELDS = frozenset({"traffic_percent"})


@dataclass(frozen=True)
class DefinitionCheck:
    """A definition resolved and checked: the whole of it (a follow-up's champion added), what to
    write (for an edit: only the changes), and every rule it breaks ({} when none)."""

    whole: dict[str, Any]
    changes: dict[str, Any]
    errors: dict[str, list[str]]


def experiment_definition_check(*, definition: dict[str, Any], experiment: Experiment | None = None) -> DefinitionCheck:
    """Check a new definition (or, with `experiment`, an edit of it) against every rule.

    `definition` holds model field names plus `variants` and, for a new experiment, `from`
    (the key of the concluded experiment it follows). For an edit it holds the changes.
    """
    changes = dict(definition)
    errors: dict[str, list[str]] = {}
    if "from" in changes:
        previous_key = changes.pop("from")
        if experiment is not None:
            errors["from"] = ["Only a new experiment can follow another."]
        else:
            follow_up = _follow_up(previous_key, changes.get("variants") or [])
            if isinstance(follow_up, dict):
                return DefinitionCheck(changes, changes, follow_up)
            changes["previous"], changes["variants"] = follow_up
    if experiment is None:
        if Experiment.objects.filter(key=changes.get("key")).exists():
            errors["key"] = [f"An experiment with key {changes['key']!r} already exists."]
        whole = changes
    else:
        if "key" in changes and changes["key"] != experiment.key:
            errors["key"] = ["The key of an experiment cannot change."]
        whole = {**experiment_definition(experiment), **changes}
    if not whole.get("metric_key"):  # the rules check the key the save will derive
        whole["metric_key"] = default_metric_key(whole.get("metric_name"))
    for path, messages in definition_errors(whole).items():
        errors.setdefault(path, []).extend(messages)
    return DefinitionCheck(whole, changes, errors)


def _follow_up(previous_key: str, variants: list[dict]) -> tuple[Experiment, list[dict]] | dict[str, list[str]]:
    """The concluded experiment and the variants with its concluded variant as the control, or the errors."""
    previous = Experiment.objects.filter(key=previous_key).select_related("concluded_variant").first()
    if previous is None:
        return {"from": [f"No experiment with key {previous_key!r}."]}
    if previous.concluded_variant is None:
        return {"from": [f"Experiment {previous_key!r} is {previous.status}, not concluded: it has no winner "
                         "to carry over."]}
    if any(v.get("is_control") for v in variants):
        return {"variants": [f"With from, the control is the concluded variant of {previous_key!r}; "
                             "list only the challengers."]}
    winner = previous.concluded_variant
    champion = {"key": winner.key, "weight": winner.weight, "is_control": True, "payload": winner.payload}
    return previous, [champion, *variants]


@transaction.atomic
def experiment_create(*, actor, definition: dict[str, Any]) -> Experiment:
    """Check the rules (InvalidDefinition naming every broken one), store the draft with its variants, audit it."""
    check = experiment_definition_check(definition=definition)
    if check.errors:
        raise InvalidDefinition(check.errors)
    definition = check.whole
    fields = {name: value for name, value in definition.items() if name not in ("variants", "metrics")}
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(created_by=_user_or_none(actor), **fields)
    except IntegrityError:
        if Experiment.objects.filter(key=fields["key"]).exists():  # created concurrently since the check
            raise InvalidDefinition({"key": [f"An experiment with key {fields['key']!r} already exists."]})
        raise
    _replace_variants(experiment, definition["variants"])
    _replace_metrics(experiment, definition.get("metrics") or [])
    audit_record(experiment=experiment, action=AuditAction.CREATED, actor=actor, details=_audit_view(definition))
    return experiment


@transaction.atomic
def experiment_update(*, experiment: Experiment, actor, changes: dict[str, Any]) -> Experiment:
    """Check the rules on the definition with the changes merged in, then apply them.

    Anything may change while a draft, only traffic_percent while running, and only upwards
    (WrongState otherwise).
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    check = experiment_definition_check(definition=changes, experiment=experiment)
    if check.errors:
        raise InvalidDefinition(check.errors)
    changes = check.changes
    changed = {
        name: value for name, value in changes.items()
        if name in ("variants", "metrics") or getattr(experiment, name) != value
    }
    if not changed:
        return experiment  # nothing changes, so nothing is written or audited
    if experiment.status != Status.DRAFT:
        frozen = sorted(set(changed) - RUNNING_EDITABLE_FIELDS)
        if frozen or experiment.status != Status.RUNNING:
            raise WrongState(
                f"The experiment is {experiment.status}: its protocol is frozen"
                + (f" ({', '.join(frozen)} cannot change)." if frozen else "."),
                status=experiment.status,
            )
        if changed.get("traffic_percent", experiment.traffic_percent) < experiment.traffic_percent:
            raise WrongState(
                f"While running, traffic_percent may only go up (it is {experiment.traffic_percent:g}): the "
                "hash alone must keep every included unit in, for the clients that assign locally.",
                status=experiment.status,
            )
    lists = ("variants", "metrics")
    before = {name: getattr(experiment, name) for name in changed if name not in lists}
    for name, value in changed.items():
        if name not in lists:
            setattr(experiment, name, value)
    experiment.save()
    if "variants" in changed:
        _replace_variants(experiment, changed["variants"])
    if "metrics" in changed:
        _replace_metrics(experiment, changed["metrics"])
    action = AuditAction.TRAFFIC_CHANGED if set(changed) == {"traffic_percent"} else AuditAction.UPDATED
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


def _replace_metrics(experiment: Experiment, metrics: list[dict[str, Any]]) -> None:
    """The secondary metrics and guardrails, at positions 1, 2, ... (0 is the primary).

    A field the caller left out takes the model's default (cuped off), not None.
    """
    experiment.metrics.all().delete()
    Metric.objects.bulk_create(
        Metric(experiment=experiment, position=position, **{field: m[field] for field in METRIC_FIELDS if field in m})
        for position, m in enumerate(metrics, start=1)
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
