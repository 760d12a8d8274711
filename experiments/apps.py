"""Django app configuration for experiments."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """The experiments app."""

    name = "experiments"
    verbose_name = "Experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI extensions for our authentication and fields.
        from experiments.api import schema  # noqa: F401
