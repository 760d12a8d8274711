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
