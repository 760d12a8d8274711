"""Reusable filters over experiments."""

from django.db import models


class ExperimentQuerySet(models.QuerySet):
    """Filters shared by selectors and views."""

    def with_variants(self) -> "ExperimentQuerySet":
        return self.prefetch_related("variants", "metrics")
