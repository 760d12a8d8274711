"""A part-2 definition shared by the metrics tests: a checkout test with a revenue secondary and two guardrails."""

from tests.experiments.api.definitions import valid_body


def metrics_body(**overrides) -> dict:
    body = valid_body()
    for field in ("metric", "baseline_mean", "baseline_sd", "mde"):
        body.pop(field)
    body["metrics"] = [
        {"key": "conversion", "name": "Checkout conversion", "type": "binary", "direction": "increase",
         "role": "primary", "baseline_mean": 0.10, "mde": 0.01},
        {"key": "revenue", "name": "Revenue per user", "type": "continuous", "direction": "increase",
         "role": "secondary"},
        {"key": "latency_ms", "name": "Page latency", "type": "continuous", "direction": "decrease",
         "role": "guardrail", "aggregation": "mean", "baseline_sd": 40.0, "margin": 5.0},
        {"key": "refunds", "name": "Refund rate", "type": "binary", "direction": "decrease",
         "role": "guardrail", "baseline_mean": 0.02, "margin": 0.005},
    ]
    body.update(overrides)
    return body


# What each key of metrics_body() is stored under: the primary at 0, the others in order.
POSITIONS = {"conversion": 0, "revenue": 1, "latency_ms": 2, "refunds": 3}


def started_with_metrics(*metrics: tuple[str, str], **fields):
    """A started experiment (ExperimentFactory's fields) with secondary metrics (key, type) at positions 1, 2, ..."""
    from experiments.models import Metric
    from experiments.services.lifecycle import experiment_start
    from tests.factories import ExperimentFactory

    experiment = ExperimentFactory(**fields)
    for position, (key, metric_type) in enumerate(metrics, start=1):
        Metric.objects.create(experiment=experiment, position=position, key=key, name=key, metric_type=metric_type)
    return experiment_start(experiment=experiment, actor=None)
