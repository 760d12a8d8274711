"""Several metrics end to end over REST: every number of every metric equals its statsmodels reference.

Definition, start, assignments and observations (with `metric`) go through the API; the
analysis is the worker's (`analysis_run`); the references are computed from the raw values
posted, per DESIGN.md part 2 ("Metrics").
"""

from collections import defaultdict

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats import proportion
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from experiments.models import Experiment
from tests.experiments.api.definitions import URL
from tests.experiments.builders import analysed
from tests.experiments.metrics.definitions import metrics_body

REL = 1e-9
ALPHA = 0.05


def post_observations(client, key: str, observations: list[dict]) -> None:
    for start in range(0, len(observations), 10_000):
        response = client.post(f"{URL}{key}/observations/", {"observations": observations[start:start + 10_000]},
                               format="json")
        assert response.status_code == 201, response.json()


def metric_entry(document: dict, key: str) -> dict:
    return next(m for m in document["metrics"] if m["key"] == key)


def comparison_of(entry: dict, variant: str) -> dict:
    return next(c for c in entry["comparisons"] if c["variant"] == variant)


@pytest.mark.django_db
def test_ab_primary_secondary_and_guardrails_match_statsmodels(experimenter_client, service_client):
    body = metrics_body(variants=[{"key": "control", "is_control": True}, {"key": "green"}, {"key": "blue"}])
    assert experimenter_client.post(URL, body, format="json").status_code == 201
    assert experimenter_client.post(f"{URL}checkout-button/start/").status_code == 200
    units = [f"u{i}" for i in range(900)]
    answers = service_client.post("/api/v1/assignments/", {"experiment": "checkout-button", "units": units},
                                  format="json").json()["assignments"]
    variant_of = {a["unit"]: a["variant"] for a in answers}
    rng = np.random.default_rng(12)
    observations, raw = [], defaultdict(lambda: defaultdict(list))
    for unit in units:
        variant = variant_of[unit]
        shift = {"control": 0.0, "green": 1.0, "blue": -0.5}[variant]
        draws = {
            "conversion": [int(rng.random() < 0.10 + 0.04 * shift)] if rng.random() < 0.8 else [],
            "revenue": [round(float(rng.gamma(2, 5 + shift)), 2) for _ in range(rng.integers(0, 3))],
            "latency_ms": [round(float(rng.normal(200 + 2 * shift, 30)), 1) for _ in range(rng.integers(0, 4))],
            "refunds": [int(rng.random() < 0.03)],
        }
        for metric, values in draws.items():
            for i, value in enumerate(values):
                item = {"unit": unit, "value": value, "id": f"{unit}-{i}"}
                if metric != "conversion":  # the primary: without `metric`
                    item["metric"] = metric
                observations.append(item)
                raw[metric][unit].append(value)
    post_observations(service_client, "checkout-button", observations)

    document = analysed(Experiment.objects.get(key="checkout-button"))

    k = 2
    by_arm = {v: [u for u in units if variant_of[u] == v] for v in ("control", "green", "blue")}

    def any_one(metric):  # binary, aggregation sum: assigned units without observations count 0
        return {v: np.array([max(raw[metric][u], default=0) for u in us]) for v, us in by_arm.items()}

    def summed(metric):
        return {v: np.array([sum(raw[metric][u]) for u in us]) for v, us in by_arm.items()}

    def means(metric):  # aggregation mean: units without observations left out
        return {v: np.array([np.mean(raw[metric][u]) for u in us if raw[metric][u]]) for v, us in by_arm.items()}

    conversion, revenue, latency, refunds = any_one("conversion"), summed("revenue"), means("latency_ms"), \
        any_one("refunds")
    primary = metric_entry(document, "conversion")
    assert primary["role"] == "primary" and primary["comparisons"] == document["comparisons"]
    for variant in ("green", "blue"):
        z, p = proportions_ztest([conversion[variant].sum(), conversion["control"].sum()],
                                 [len(conversion[variant]), len(conversion["control"])])
        assert comparison_of(primary, variant)["p_value"] == pytest.approx(p, rel=REL)

    secondary = metric_entry(document, "revenue")
    p_values = [stats.ttest_ind(revenue[v], revenue["control"], equal_var=False).pvalue for v in ("green", "blue")]
    holm = multipletests(p_values, method="holm")[1]
    for variant, p, adjusted in zip(("green", "blue"), p_values, holm):
        result = comparison_of(secondary, variant)
        assert result["p_value"] == pytest.approx(p, rel=REL)
        assert result["adjusted_p_value"] == pytest.approx(adjusted, rel=REL)
        assert result["effect"] == pytest.approx(revenue[variant].mean() - revenue["control"].mean(), rel=REL)

    guardrail = metric_entry(document, "latency_ms")  # decrease is better, margin 5: H0 effect >= +5
    assert guardrail["aggregation"] == "mean" and guardrail["margin"] == 5.0
    control_entry = next(v for v in guardrail["variants"] if v["key"] == "control")
    assert control_entry["units"] == len(latency["control"])
    assert control_entry["units_without_observations"] == len(by_arm["control"]) - len(latency["control"])
    for variant in ("green", "blue"):
        statistic, p, df = ttest_ind(latency[variant], latency["control"], usevar="unequal", value=5.0,
                                     alternative="smaller")
        bound = CompareMeans.from_data(latency[variant], latency["control"]).tconfint_diff(
            alpha=ALPHA / k, alternative="smaller", usevar="unequal")[1]
        result = comparison_of(guardrail, variant)
        assert result["p_value"] == pytest.approx(p, rel=REL)
        assert result["statistic"] == pytest.approx(statistic, rel=REL)
        assert result["df"] == pytest.approx(df, rel=REL)
        assert result["bound"] == pytest.approx(bound, rel=REL) and result["ci_high"] == result["bound"]
        assert result["ci_low"] is None and result["null_value"] == 5.0
        assert result["non_inferior"] == (p < ALPHA / k)

    binary_guardrail = metric_entry(document, "refunds")  # decrease is better, margin 0.005
    for variant in ("green", "blue"):
        counts = (refunds[variant].sum(), len(refunds[variant]), refunds["control"].sum(), len(refunds["control"]))
        # Called through its module: imported by name, pytest would collect it as a test.
        reference = proportion.test_proportions_2indep(*counts, value=0.005, method="wald", compare="diff",
                                                       alternative="smaller")
        bound = confint_proportions_2indep(*counts, method="wald", compare="diff", alpha=2 * ALPHA / k)[1]
        result = comparison_of(binary_guardrail, variant)
        assert result["p_value"] == pytest.approx(reference.pvalue, rel=REL)
        assert result["bound"] == pytest.approx(bound, rel=REL)


@pytest.mark.django_db
def test_champion_challenger_guardrail_is_the_paired_non_inferiority_test(experimenter_client, service_client):
    body = metrics_body(design="champion_challenger", variants=[
        {"key": "champion", "is_control": True}, {"key": "challenger"}])
    body["metrics"] = [
        {"key": "log_loss", "name": "Log loss", "type": "continuous", "direction": "decrease", "role": "primary",
         "baseline_sd": 0.3, "mde": 0.05},
        {"key": "scoring_ms", "name": "Scoring latency", "type": "continuous", "direction": "decrease",
         "role": "guardrail", "baseline_sd": 4.0, "margin": 2.0},
        {"key": "blocked", "name": "Blocked share", "type": "binary", "direction": "decrease",
         "role": "guardrail", "baseline_sd": 0.3, "margin": 0.05},
    ]
    assert experimenter_client.post(URL, body, format="json").status_code == 201, body
    assert experimenter_client.post(f"{URL}checkout-button/start/").status_code == 200
    rng = np.random.default_rng(5)
    observations, values = [], defaultdict(dict)
    for i in range(400):
        unit = f"r{i}"
        base_loss, base_ms, blocked = rng.gamma(2, 0.2), rng.normal(20, 3), int(rng.random() < 0.1)
        for variant, loss, ms, block in (("champion", base_loss, base_ms, blocked),
                                         ("challenger", base_loss + rng.normal(-0.02, 0.3), base_ms + rng.normal(1, 3),
                                          blocked if rng.random() < 0.9 else 1 - blocked)):
            for metric, value in (("log_loss", round(float(loss), 4)), ("scoring_ms", round(float(ms), 2)),
                                  ("blocked", block)):
                observations.append({"unit": unit, "variant": variant, "value": value, "metric": metric})
                values[(metric, variant)][unit] = value
    post_observations(service_client, "checkout-button", observations)

    document = analysed(Experiment.objects.get(key="checkout-button"))

    for metric, margin in (("scoring_ms", 2.0), ("blocked", 0.05)):
        units = sorted(values[(metric, "champion")])
        differences = np.array([values[(metric, "challenger")][u] - values[(metric, "champion")][u] for u in units])
        statistic, p, df = DescrStatsW(differences).ttest_mean(value=margin, alternative="smaller")
        bound = DescrStatsW(differences).tconfint_mean(alpha=ALPHA, alternative="smaller")[1]
        result = comparison_of(metric_entry(document, metric), "challenger")
        assert result["p_value"] == pytest.approx(p, rel=REL)
        assert result["statistic"] == pytest.approx(statistic, rel=REL)
        assert result["bound"] == pytest.approx(bound, rel=REL)
    primary = comparison_of(metric_entry(document, "log_loss"), "challenger")
    units = sorted(values[("log_loss", "champion")])
    reference = stats.ttest_rel([values[("log_loss", "challenger")][u] for u in units],
                                [values[("log_loss", "champion")][u] for u in units])
    assert primary["p_value"] == pytest.approx(reference.pvalue, rel=REL)
