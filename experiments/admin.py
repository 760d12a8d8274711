"""Django admin for experiments, variants, the audit trail and API keys."""

from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from experiments.models import AuditEvent, Experiment, ServiceKey, UserToken, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("key", "weight", "is_control", "payload", "position")


class AuditEventInline(admin.TabularInline):
    model = AuditEvent
    extra = 0
    can_delete = False
    fields = ("at", "action", "actor_label", "reason", "details")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "design", "status", "started_at", "ends_at")
    list_filter = ("status", "design")
    search_fields = ("key", "name")
    readonly_fields = ("salt", "status", "protocol", "protocol_hash", "started_at", "ends_at", "stop_reason")
    inlines = [VariantInline, AuditEventInline]


@admin.register(ServiceKey)
class ServiceKeyAdmin(APIKeyModelAdmin):
    pass


@admin.register(UserToken)
class UserTokenAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "user")
