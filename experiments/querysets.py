"""Reusable filters over experiments."""

from django.db import models


class ExperimentQuerySet(models.QuerySet):
    """Filters named after the lifecycle."""

    def running(self) -> "ExperimentQuerySet":
        return self.filter(status="running")

    def with_variants(self) -> "ExperimentQuerySet":
        return self.prefetch_related("variants")
