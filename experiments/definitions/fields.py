"""The definition as a flat dict of model field names plus `variants` and `metrics`: the shape the rules check.

The primary metric is the experiment's own fields (`metric_name`, ..., `baseline_mean`,
`mde`); `metrics` lists the secondary metrics and guardrails, each a dict of `Metric`'s
fields (METRIC_FIELDS), in their order.
"""

from typing import Any

from experiments.models import default_metric_key
from experiments.models import Experiment, Metric

__all__ = ["DEFINITION_FIELDS", "METRIC_FIELDS", "default_metric_key", "experiment_definition", "metric_definition"]

DEFINITION_FIELDS = (
    "key", "name", "hypothesis", "design", "metric_name", "metric_type", "metric_direction", "metric_key",
    "metric_aggregation", "baseline_mean", "baseline_sd", "mde", "cuped", "expected_correlation",
    "sample_size_per_variant", "alpha", "power",
    "alternative", "duration", "grace_period", "traffic_percent", "auto_promote", "looks", "spending",
)
METRIC_FIELDS = ("key", "name", "role", "metric_type", "direction", "aggregation", "baseline_mean", "baseline_sd",
                 "margin", "cuped", "expected_correlation")


def metric_definition(metric: Metric) -> dict[str, Any]:
    return {field: getattr(metric, field) for field in METRIC_FIELDS}


def experiment_definition(experiment: Experiment) -> dict[str, Any]:
    """The experiment as a flat definition dict (the shape the definition rules check)."""
    definition = {field: getattr(experiment, field) for field in DEFINITION_FIELDS}
    definition["variants"] = [
        {"key": v.key, "weight": v.weight, "is_control": v.is_control, "payload": v.payload}
        for v in experiment.variants.all()
    ]
    definition["metrics"] = [metric_definition(metric) for metric in experiment.metrics.all()]
    return definition
