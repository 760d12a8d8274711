"""The hashed keys services and people authenticate with."""

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class ServiceKey(AbstractAPIKey):
    """A hashed key for a service: may fetch assignments and post observations, nothing else."""

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "service key"
        verbose_name_plural = "service keys"


class UserToken(AbstractAPIKey):
    """A person's hashed personal API token; it carries that person's permissions."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name="user",
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "personal token"
        verbose_name_plural = "personal tokens"
