"""A started multi-metric experiment with a stored result whose document is a hand-made fixture.

The experiment is real: metrics_body() (a checkout conversion primary, a revenue secondary and
two guardrails, page latency and refund rate) posted over REST and started, so its protocol
is frozen with `metrics`. The result is not an analysis: `multi_metric_document` writes a
document of the shape the analysis stores (top-level primary fields plus `metrics`), with
numbers chosen to read well, not computed from data.
"""

import copy
from datetime import timedelta

from django.utils import timezone

from experiments.choices import Status
from experiments.models import AnalysisResult, Experiment
from tests.experiments.metrics.definitions import metrics_body

KEY = "checkout-button"

# FIXTURE OF THE SHAPE ONLY: invented numbers, each comparison carrying the keys the analysis writes.
PRIMARY = {"variant": "green", "vs": "control", "effect": 0.011, "relative_effect": 0.11, "ci_low": 0.0015,
           "ci_high": 0.0205, "relative_ci_low": 0.015, "relative_ci_high": 0.205, "p_value": 0.021,
           "adjusted_p_value": 0.021, "significant": True, "statistic": 2.31, "df": None,
           "not_computable_reason": None}
REVENUE = {"variant": "green", "vs": "control", "effect": 0.8, "relative_effect": 0.04, "ci_low": -0.2,
           "ci_high": 1.8, "relative_ci_low": -0.01, "relative_ci_high": 0.09, "p_value": 0.12,
           "adjusted_p_value": 0.24, "significant": False, "statistic": 1.55, "df": 9876.5,
           "not_computable_reason": None}
# Page latency (decrease is better, margin 5 ms): the harmful side is up, so only ci_high is set.
LATENCY_HELD = {"variant": "green", "vs": "control", "effect": 1.2, "relative_effect": 0.01, "ci_low": None,
                "ci_high": 3.4, "relative_ci_low": None, "relative_ci_high": 0.03, "p_value": 0.0004,
                "adjusted_p_value": 0.0004, "significant": True, "statistic": -3.4, "df": 9000.2,
                "not_computable_reason": None, "margin": 5.0, "null_value": 5.0, "non_inferior": True, "bound": 3.4}
LATENCY_BROKEN = {**LATENCY_HELD, "effect": 7.0, "relative_effect": 0.06, "ci_high": 9.1, "relative_ci_high": 0.08,
                  "p_value": 0.93, "adjusted_p_value": 0.93, "significant": False, "statistic": 1.5,
                  "non_inferior": False, "bound": 9.1}
REFUNDS = {"variant": "green", "vs": "control", "effect": 0.001, "relative_effect": 0.05, "ci_low": None,
           "ci_high": 0.003, "relative_ci_low": None, "relative_ci_high": 0.15, "p_value": 0.011,
           "adjusted_p_value": 0.011, "significant": True, "statistic": -2.3, "df": None,
           "not_computable_reason": None, "margin": 0.005, "null_value": 0.005, "non_inferior": True,
           "bound": 0.003}


def _variants(mean_control: float, mean_green: float, sd: float, *, without: int | None = None) -> list[dict]:
    extra = {} if without is None else {"units_without_observations": without}
    return [{"key": "control", "units": 5000, "mean": mean_control, "sd": sd, **extra},
            {"key": "green", "units": 5000, "mean": mean_green, "sd": sd, **extra}]


def _metric(key: str, role: str, metric_type: str, direction: str, aggregation: str, test: str,
            margin: float | None, variants: list[dict], comparison: dict) -> dict:
    return {"key": key, "role": role, "type": metric_type, "direction": direction, "aggregation": aggregation,
            "test": test, "margin": margin, "variants": variants, "comparisons": [comparison]}


def multi_metric_document(experiment: Experiment, *, latency_held: bool) -> dict:
    """A FIXTURE of the stored document's shape: keep (latency not shown within +5 ms) or promote (it held)."""
    primary_variants = _variants(0.100, 0.111, 0.31)
    latency = LATENCY_HELD if latency_held else LATENCY_BROKEN
    decision = ({"outcome": "promote", "variant": "green", "reason": "Promote green: fixture reason."} if latency_held
                else {"outcome": "keep", "variant": None,
                      "reason": "Keep the control: green raised conversion, but latency_ms was not shown to stay "
                                "within +5 ms: estimate +7.0, bound +9.1."})
    return {
        "experiment": experiment.key, "protocol_hash": experiment.protocol_hash, "test": "two-proportion z-test",
        "analyzed_at": timezone.now().isoformat(),
        "variants": primary_variants, "comparisons": [PRIMARY],
        "checks": {"sample_ratio_p_value": 0.61, "sample_ratio_ok": True,
                   "sample_size_reached": {"control": True, "green": True}, "incomplete_pairs": 0,
                   "incomplete_pairs_share": 0.0},
        "decision": decision,
        # In definition order after the primary: the report puts the guardrails before the secondary.
        "metrics": [
            _metric("conversion", "primary", "binary", "increase", "sum", "two-proportion z-test", None,
                    primary_variants, PRIMARY),
            _metric("revenue", "secondary", "continuous", "increase", "sum", "Welch t-test", None,
                    _variants(20.0, 20.8, 25.0), REVENUE),
            _metric("latency_ms", "guardrail", "continuous", "decrease", "mean", "Welch t-test, non-inferiority",
                    5.0, _variants(210.0, 210.0 + latency["effect"], 40.0, without=120), latency),
            _metric("refunds", "guardrail", "binary", "decrease", "sum", "two-proportion z-test, non-inferiority",
                    0.005, _variants(0.020, 0.021, 0.14), REFUNDS),
        ],
    }


def started_multi_metric(experimenter_client) -> Experiment:
    """metrics_body() posted and started over REST, its test period then moved into the past."""
    assert experimenter_client.post("/api/v1/experiments/", metrics_body(), format="json").status_code == 201
    assert experimenter_client.post(f"/api/v1/experiments/{KEY}/start/").status_code == 200
    now = timezone.now()
    Experiment.objects.filter(key=KEY).update(started_at=now - timedelta(days=15), ends_at=now - timedelta(days=1),
                                              grace_period=timedelta(0))
    return Experiment.objects.get(key=KEY)


def store_result(experiment: Experiment, document: dict) -> Experiment:
    """Store `document` as the experiment's result, as the analysis service would, and mark it analysed."""
    AnalysisResult.objects.create(experiment=experiment, protocol_hash=experiment.protocol_hash,
                                  analyzed_at=timezone.now(), outcome=document["decision"]["outcome"],
                                  winner=document["decision"]["variant"] or "", document=copy.deepcopy(document))
    Experiment.objects.filter(pk=experiment.pk).update(status=Status.ANALYZED)
    return Experiment.objects.get(pk=experiment.pk)


def reported_multi_metric(experimenter_client, *, latency_held: bool = False) -> tuple[Experiment, dict]:
    """The started multi-metric experiment with its fixture result stored; (experiment, document)."""
    experiment = started_multi_metric(experimenter_client)
    document = multi_metric_document(experiment, latency_held=latency_held)
    return store_result(experiment, document), document
