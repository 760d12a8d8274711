"""The experiment page's inlines: its variants and its other metrics (editable while a draft), its audit trail (read-only)."""

from django.contrib import admin

from experiments.admin.forms import DefinitionRowsFormSet, MetricForm, VariantForm
from experiments.choices import Status
from experiments.definitions.fields import METRIC_FIELDS
from experiments.limits import MAX_METRICS
from experiments.models import AuditEvent, Metric, Variant
from experiments.permissions import ADD, CHANGE, VIEW


class DefinitionRowsInline(admin.TabularInline):
    """Rows of one of the definition's lists; editable while a draft, by whoever may add or change experiments."""

    formset = DefinitionRowsFormSet
    ordering = ("position", "id")
    extra_on_add = 1  # empty rows offered on the add page; none on an existing experiment

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return self.extra_on_add if obj is None else 0

    def _can_edit(self, request, obj) -> bool:
        if obj is None:
            return request.user.has_perm(ADD)
        return request.user.has_perm(CHANGE) and obj.status == Status.DRAFT

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(VIEW) or request.user.has_perm(CHANGE)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._can_edit(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._can_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can_edit(request, obj)


class VariantInline(DefinitionRowsInline):
    """The arms."""

    model = Variant
    form = VariantForm
    fields = ("key", "weight", "is_control", "payload")
    extra_on_add = 2


class MetricInline(DefinitionRowsInline):
    """The secondary metrics and guardrails (the definition's `metrics`), in their order.

    Decision: the primary metric stays in the experiment's own form (its Metric fieldset, where
    part 1 put it: name, key, type, direction, aggregation, baselines, and the mde beside the
    power), so that a part-1 experiment reads as before and the one number that decides is never
    one row among others; this inline holds only the others, as `Metric` rows do.
    """

    model = Metric
    form = MetricForm
    fields = METRIC_FIELDS
    verbose_name = "secondary metric or guardrail"
    verbose_name_plural = "secondary metrics and guardrails"
    max_num = MAX_METRICS - 1  # hides "Add another" at the limit; the definition rules refuse more


class AuditTrailInline(admin.TabularInline):
    """Who did what, when and why: read-only for everyone."""

    model = AuditEvent
    verbose_name = "audit event"
    verbose_name_plural = "audit trail"
    extra = 0
    can_delete = False
    fields = ("at", "action", "actor_label", "reason", "details")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(VIEW) or request.user.has_perm(CHANGE)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
