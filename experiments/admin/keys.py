"""API keys in the admin: service keys and people's personal tokens (hashed; shown once at creation)."""

from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from experiments.models import ServiceKey, UserToken


@admin.register(ServiceKey)
class ServiceKeyAdmin(APIKeyModelAdmin):
    pass


@admin.register(UserToken)
class UserTokenAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "user")
