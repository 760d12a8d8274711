"""The definition as a flat dict of model field names plus `variants`: the shape the rules check."""

from typing import Any

from experiments.models import Experiment

DEFINITION_FIELDS = (
    "key", "name", "hypothesis", "design", "metric_name", "metric_type", "metric_direction",
    "baseline_mean", "baseline_sd", "mde", "sample_size_per_variant", "alpha", "power",
    "alternative", "duration", "grace_period", "traffic_percent", "auto_promote",
)


def experiment_definition(experiment: Experiment) -> dict[str, Any]:
    """The experiment as a flat definition dict (the shape the definition rules check)."""
    definition = {field: getattr(experiment, field) for field in DEFINITION_FIELDS}
    definition["variants"] = [
        {"key": v.key, "weight": v.weight, "is_control": v.is_control, "payload": v.payload}
        for v in experiment.variants.all()
    ]
    return definition
