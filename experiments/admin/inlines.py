"""The experiment page's inlines: its variants (editable while a draft) and its audit trail (read-only)."""

from django.contrib import admin

from experiments.admin.forms import VariantForm, VariantInlineFormSet
from experiments.choices import Status
from experiments.models import AuditEvent, Variant
from experiments.permissions import ADD, CHANGE, VIEW


class VariantInline(admin.TabularInline):
    """The arms; editable while a draft, by whoever may add or change experiments."""

    model = Variant
    form = VariantForm
    formset = VariantInlineFormSet
    fields = ("key", "weight", "is_control", "payload")
    ordering = ("position", "id")

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return 2 if obj is None else 0

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
