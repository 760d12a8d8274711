"""API keys in the admin: service keys and people's personal tokens (hashed; shown once at creation)."""

from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from experiments.models import ServiceKey, UserToken


@admin.register(ServiceKey)
class ServiceKeyAdmin(APIKeyModelAdmin):
    """Service keys: a machine's bearer key, hashed; the key itself is shown once, at creation."""


@admin.register(UserToken)
class UserTokenAdmin(APIKeyModelAdmin):
    """Personal tokens: a person's bearer token with that person's permissions, shown once at creation."""

    list_display = (*APIKeyModelAdmin.list_display, "user")
