"""CUPED through the pure pipeline: plan and sums in, statsmodels' answer (from per-unit arrays) out."""

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis.cuped import CUPED_Z_TEST, UNADJUSTED_Z_TEST, CovariateSummary
from analysis.errors import AnalysisError
from analysis.pipeline import analyze
from analysis.types import AnalysisData, AnalysisPlan, MetricPlan, SampleSummary, VariantPlan
from experiments.reports.wording import cuped_sentence

REL = 1e-9
ALPHA = 0.05
VARIANTS = ("control", "green", "blue")


def _arrays(seed=3, shift_x=None):
    rng = np.random.default_rng(seed)
    arms = {}
    for variant, effect in zip(VARIANTS, (0.0, 0.8, -0.3)):
        x = rng.normal(10, 3, 400)
        x[rng.random(400) < 0.1] = 0.0  # units without a covariate
        if variant == shift_x:
            x = x + 3.0
        y = 2 + 0.9 * x + effect + rng.normal(0, 2, 400)
        arms[variant] = (y, x)
    return arms


def _summary(y, x):
    return CovariateSummary(len(y), float(y.sum()), float((y * y).sum()), float(x.sum()), float((x * x).sum()),
                            float((x * y).sum()))


def _data(arms):
    return AnalysisData(
        arms={v: SampleSummary(len(y), float(y.sum()), float((y * y).sum())) for v, (y, _) in arms.items()},
        assigned={v: len(y) for v, (y, _) in arms.items()},
        covariates={v: _summary(y, x) for v, (y, x) in arms.items()},
    )


def _plan(*, cuped=True, alternative="one-sided"):
    return AnalysisPlan(
        design="ab", metric_type="continuous", direction="increase", alternative=alternative, alpha=ALPHA,
        variants=tuple(VariantPlan(v, 1.0, v == "control", 100) for v in VARIANTS), metric_key="revenue",
        cuped=cuped,
        metrics=(MetricPlan("basket", "secondary", "continuous", "increase", cuped=cuped),
                 MetricPlan("spend", "secondary", "continuous", "increase"),
                 MetricPlan("latency", "guardrail", "continuous", "decrease", margin=0.5, cuped=cuped)),
    )


def _reference(arms, challenger, *, alternative, alpha, value=0.0):
    (yc, xc), (yj, xj) = arms["control"], arms[challenger]
    y, x = np.concatenate([yc, yj]), np.concatenate([xc, xj])
    theta = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    adj_c, adj_j = yc - theta * (xc - x.mean()), yj - theta * (xj - x.mean())
    compare = CompareMeans(DescrStatsW(adj_j), DescrStatsW(adj_c))
    _, p = compare.ztest_ind(usevar="unequal", alternative=alternative, value=value)
    low, high = compare.zconfint_diff(alpha=alpha, alternative=alternative, usevar="unequal")
    return theta, adj_j.mean() - adj_c.mean(), p, low, high


def _approx(actual, expected):
    if not np.isfinite(expected):
        assert actual is None
    else:
        assert actual == pytest.approx(expected, rel=REL)


def test_primary_secondary_and_guardrail_match_statsmodels():
    primary, basket, spend, latency = _arrays(1), _arrays(2), _arrays(3), _arrays(4)
    document = analyze(_plan(), _data(primary),
                       {"basket": _data(basket), "spend": _data(spend), "latency": _data(latency)}).to_dict()
    entries = {m["key"]: m for m in document["metrics"]}
    k = 2
    raw_secondary = []
    for key, arms, alternative, value in (("revenue", primary, "larger", 0.0), ("basket", basket, "larger", 0.0),
                                          ("latency", latency, "smaller", 0.5)):
        entry = entries[key]
        assert entry["test"] == (CUPED_Z_TEST + " (non-inferiority)" if key == "latency" else CUPED_Z_TEST)
        for comparison, challenger in zip(entry["comparisons"], ("green", "blue")):
            theta, effect, p, low, high = _reference(arms, challenger, alternative=alternative, alpha=ALPHA / k,
                                                     value=value)
            assert comparison["cuped"]["theta"] == pytest.approx(theta, rel=REL)
            assert comparison["cuped"]["variance_reduction"] > 0.5
            assert comparison["test"] == CUPED_Z_TEST + (" (non-inferiority)" if key == "latency" else "")
            _approx(comparison["effect"], effect)
            _approx(comparison["p_value"], p)
            _approx(comparison["ci_low"], low)
            _approx(comparison["ci_high"], high)
            if key == "basket":
                raw_secondary.append(p)
        means = {v["key"]: v["mean"] for v in entry["variants"]}
        assert means["green"] == pytest.approx(arms["green"][0].mean(), rel=REL)  # unadjusted
    # Holm over every (secondary, challenger) pair, the CUPED one and the plain one together.
    spend_p = [c["p_value"] for c in entries["spend"]["comparisons"]]
    expected = multipletests(raw_secondary + spend_p, method="holm")[1]
    got = [c["adjusted_p_value"] for c in entries["basket"]["comparisons"] + entries["spend"]["comparisons"]]
    assert got == pytest.approx(list(expected), rel=REL)
    assert "cuped" not in entries["spend"]["comparisons"][0]
    assert document["comparisons"] == entries["revenue"]["comparisons"]
    assert len(document["checks"]["covariate_balance"]) == 6


def test_without_cuped_the_document_has_no_cuped_keys():
    arms = _arrays(1)
    data = _data(arms)
    document = analyze(_plan(cuped=False), data, {"basket": data, "spend": data, "latency": data}).to_dict()
    assert "covariate_balance" not in document["checks"]
    for entry in document["metrics"]:
        for comparison in entry["comparisons"]:
            assert "cuped" not in comparison and "test" not in comparison


def test_a_shifted_covariate_fails_the_balance_check():
    data = _data(_arrays(1))
    shifted = _data(_arrays(2, shift_x="blue"))
    result = analyze(_plan(), data, {"basket": shifted, "spend": data, "latency": data})
    assert str(result.decision.outcome) == "invalid"
    assert "covariate of basket" in result.decision.reason and "blue" in result.decision.reason
    failed = [c for c in result.to_dict()["checks"]["covariate_balance"] if not c["ok"]]
    assert [(c["metric"], c["variant"]) for c in failed] == [("basket", "blue")]


def test_a_covariate_without_variance_runs_the_unadjusted_z_test():
    arms = {v: (y, np.zeros_like(x)) for v, (y, x) in _arrays(1).items()}
    data = _data(arms)
    document = analyze(_plan(), data, {"basket": data, "spend": data, "latency": data}).to_dict()
    comparison = document["comparisons"][0]
    assert comparison["test"] == UNADJUSTED_Z_TEST
    assert comparison["cuped"]["theta"] is None and comparison["cuped"]["variance_reduction"] == 0.0
    assert "no variance" in comparison["cuped"]["note"]
    compare = CompareMeans(DescrStatsW(arms["green"][0]), DescrStatsW(arms["control"][0]))
    assert comparison["p_value"] == pytest.approx(compare.ztest_ind(usevar="unequal", alternative="larger")[1],
                                                  rel=REL)


def test_missing_covariates_or_champion_challenger_are_refused():
    arms = _arrays(1)
    plain = AnalysisData(arms=_data(arms).arms, assigned=_data(arms).assigned)
    with pytest.raises(AnalysisError, match="covariates"):
        analyze(_plan(), plain, {"basket": _data(arms), "spend": plain, "latency": _data(arms)})


def test_the_report_sentence():
    assert cuped_sentence("Revenue", {"cuped": {"theta": 0.8, "variance_reduction": 0.4612}}) == (
        "using the covariate cut the variance of Revenue by 46%")
    assert cuped_sentence("Revenue", {"effect": 1.0}) is None
