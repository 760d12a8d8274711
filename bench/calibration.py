"""Calibration of the analysis by simulation: false-positive rate of A/A tests and power of A/B tests.

For each design x metric, simulated experiments run through `analysis.pipeline.analyze`
with the sample size `analysis.power.sample_sizes` plans for the cell's MDE (two-sided,
alpha 0.05, power 0.8, one challenger). A/A: the challenger equals the control, and the
share of significant challengers should be alpha. A/B: the challenger differs by the MDE
in the preferred direction, and the share significant in that direction should be the
planned power.

Cells (per-unit data models):
- ab binary: conversion, p0 = 0.10, mde = +0.02. Units are assigned by a fair coin out of
  2n, and each arm's conversions are a binomial count (the exact sampling distribution).
- ab continuous: revenue per user ~ Gamma(shape 4, scale 5) (mean 20, sd 10, right-skewed),
  challenger shifted by mde = +1; raw values are drawn and summed; coin-flip assignment.
- cc continuous: per-request loss of the champion ~ Gamma(2, 5); the challenger's loss is
  the champion's plus Normal(-mde, 5), so the paired difference has sd 5; mde = 0.5, lower
  is better.
- cc binary: whether the model's answer is right (higher is better). The champion is right
  on 70% of requests; the two models disagree on 10% of requests. A/A: the disagreements
  split evenly, P(champion right only) = P(challenger right only) = 0.05. A/B: 0.04 and
  0.06, so mde = +0.02 and the paired difference has sd sqrt(0.10 - 0.02^2) = 0.3156, the
  baseline_sd of the plan. Each simulated table is a multinomial draw (exact).

Several metrics per experiment (issue 12, DESIGN.md part 2 "Metrics"), one cell per design x
primary metric type, each with a primary, two guardrails (one continuous latency, one binary)
and a secondary metric. The data go through the code the worker runs: the definition dict ->
`definition_errors` and `build_protocol` (so `sample_plan`: every test at the beta-corrected
power 1 - (1 - 0.8) / 3, guardrails as one-sided non-inferiority tests, the sample the largest
need; and `protocol_metrics`), through its canonical JSON -> `protocol_analysis_plan` (the
worker's protocol -> AnalysisPlan) -> AnalysisData from simulated per-unit values (per-arm
count, sum and sum of squares, per-pair sums for champion/challenger, as the SQL reads them;
a mean-aggregated metric is each unit's mean of 1 to 5 simulated page views) -> `analyze`.
- ab binary: conversion p0 = 0.10, mde 0.02 (primary); revenue = conversion x Gamma(2, 25)
  (secondary); page latency, aggregation mean (unit level Gamma(4, 50) + Exponential(40) per
  view, sd of the unit mean 103.6), decrease, margin 6 ms; checkout errors 5%, decrease,
  margin 0.013. Coin-flip assignment of 2n units, as the single-metric cells.
- ab continuous: revenue ~ Gamma(4, 5), mde 1 (primary); page latency as above, margin 10 ms;
  refunds 5%, margin 0.02; sign-up 30% (secondary).
- cc continuous: log loss as the single-metric cell (primary); scoring latency, paired
  difference Normal(harm, 20), margin 1.8 ms; blocked transactions, champion 8%, the models
  disagree on 12% (multinomial table), margin 0.03; calibration error (secondary).
- cc binary: answer right as the single-metric cell (primary); latency, paired difference
  Normal(harm, 50), margin 3 ms; refusals, champion 5%, disagreement 4%, margin 0.012; answer
  length (secondary).
The margins make the tests' needs close, so each runs near its planned power, and the sample
is set by a guardrail in two cells and by the primary in the other two. Scenarios, N
simulations each (`--metrics-simulations`, default 3,000), SE = the simulation standard error:
- (a) no true effect anywhere: share of `promote` <= alpha + 2 SE (SE at alpha).
- (b) primary effect = MDE in its preferred direction, guardrails' true effect 0: share of
  `promote` >= the protocol's power - 0.03; the primary's share significant in its direction
  and each guardrail's `non_inferior` share within 0.03 of statsmodels' `power()` of the
  planning solver at the frozen sample (frozen effect size, alpha / k; guardrails one-sided).
- (c) primary = 2 x MDE, one guardrail's true harm = its margin (the others 0): that
  guardrail's `non_inferior` share within 3 SE of alpha / k (SE at alpha / k).

Usage: .venv/bin/python bench/calibration.py [--simulations N] [--seed S] [--metrics-simulations M]
       .venv/bin/python bench/calibration.py --metrics-only [--metrics-simulations M] [--seed S]
       .venv/bin/python bench/calibration.py --cuped-only [--cuped-simulations C] [--seed S]
       .venv/bin/python bench/calibration.py --looks-only [--looks-simulations L] [--seed S]

CUPED (`analysis.cuped`): bench/calibration_cuped.py, run by `--cuped-only` and at the end of the full run.
Planned interim looks (`analysis.looks`, issue 15): bench/calibration_looks.py, run by `--looks-only` and last.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.pipeline import AnalysisData, AnalysisPlan, VariantPlan, analyze  # noqa: E402
from analysis.power import PowerPlan, sample_sizes  # noqa: E402
from analysis.types import PairedSummary, SampleSummary  # noqa: E402

ALPHA = 0.05
POWER = 0.8
FPR_TARGET = (0.04, 0.06)
POWER_TOLERANCE = 0.03
# Simulated experiments are generated in chunks so that raw per-unit values stay in memory.
_CHUNK_UNITS = 4_000_000

# McNemar cell: P(champion right), P(models disagree).
_CHAMPION_RIGHT = 0.70
_DISCORDANCE = 0.10


@dataclass(frozen=True)
class Cell:
    """One design x metric with its preregistered plan and a generator of simulated data."""

    design: str
    metric_type: str
    direction: str
    mde: float
    baseline_mean: float | None
    baseline_sd: float | None
    simulate: Callable[[np.random.Generator, int, float, int], Iterator[AnalysisData]]

    @property
    def name(self) -> str:
        return f"{self.design} {self.metric_type}"

    def planned_n(self) -> int:
        plan = PowerPlan(
            design=self.design, metric_type=self.metric_type, alpha=ALPHA, power=POWER, alternative="two-sided",
            ratios=(1.0,), baseline_mean=self.baseline_mean, baseline_sd=self.baseline_sd,
        )
        return sample_sizes(plan, self.mde).control

    def plan(self, n: int) -> AnalysisPlan:
        return AnalysisPlan(
            design=self.design, metric_type=self.metric_type, direction=self.direction, alternative="two-sided",
            alpha=ALPHA, variants=(VariantPlan("control", 1.0, True, n), VariantPlan("challenger", 1.0, False, n)),
        )


def _coin_split(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    control = rng.binomial(2 * n, 0.5, size)
    return control, 2 * n - control


def _ab_data(nc, xc, qc, nt, xt, qt) -> Iterator[AnalysisData]:
    for i in range(len(nc)):
        yield AnalysisData(
            arms={"control": SampleSummary(int(nc[i]), float(xc[i]), float(qc[i])),
                  "challenger": SampleSummary(int(nt[i]), float(xt[i]), float(qt[i]))},
            assigned={"control": int(nc[i]), "challenger": int(nt[i])},
        )


def _cc_data(n, sx, sxx, sy, syy, sxy) -> Iterator[AnalysisData]:
    for i in range(len(sx)):
        pairs = PairedSummary(n, float(sx[i]), float(sxx[i]), float(sy[i]), float(syy[i]), float(sxy[i]))
        yield AnalysisData(arms={"control": pairs.champion, "challenger": pairs.challenger},
                           pairs={"challenger": pairs})


def _ab_binary(rng, n, effect, sims):
    nc, nt = _coin_split(rng, n, sims)
    xc, xt = rng.binomial(nc, 0.10), rng.binomial(nt, 0.10 + effect)
    yield from _ab_data(nc, xc, xc, nt, xt, xt)


def _ab_continuous(rng, n, effect, sims):
    for size in _chunks(sims, 2 * n):
        values = rng.gamma(4.0, 5.0, (size, 2 * n))
        treated = rng.random((size, 2 * n)) < 0.5
        values[treated] += effect
        control = np.where(treated, 0.0, values)
        challenger = np.where(treated, values, 0.0)
        nt = treated.sum(axis=1)
        yield from _ab_data(2 * n - nt, control.sum(1), (control**2).sum(1),
                            nt, challenger.sum(1), (challenger**2).sum(1))


def _cc_continuous(rng, n, effect, sims):
    # Lower loss is better: the challenger's loss is the champion's minus the effect, plus noise.
    for size in _chunks(sims, n):
        x = rng.gamma(2.0, 5.0, (size, n))
        y = x + rng.normal(-effect, 5.0, (size, n))
        yield from _cc_data(n, x.sum(1), (x * x).sum(1), y.sum(1), (y * y).sum(1), (x * y).sum(1))


def _cc_binary(rng, n, effect, sims):
    champion_only = (_DISCORDANCE - effect) / 2
    challenger_only = (_DISCORDANCE + effect) / 2
    both = _CHAMPION_RIGHT - champion_only
    counts = rng.multinomial(n, [both, champion_only, challenger_only, 1 - both - champion_only - challenger_only],
                             size=sims)
    a, b, c = counts[:, 0], counts[:, 1], counts[:, 2]
    yield from _cc_data(n, a + b, a + b, a + c, a + c, a)


def _chunks(sims: int, units_per_sim: int) -> Iterator[int]:
    step = max(1, _CHUNK_UNITS // units_per_sim)
    for start in range(0, sims, step):
        yield min(step, sims - start)


CELLS = (
    Cell("ab", "binary", "increase", 0.02, 0.10, None, _ab_binary),
    Cell("ab", "continuous", "increase", 1.0, 20.0, 10.0, _ab_continuous),
    Cell("champion_challenger", "continuous", "decrease", 0.5, 10.0, 5.0, _cc_continuous),
    Cell("champion_challenger", "binary", "increase", 0.02, _CHAMPION_RIGHT,
         math.sqrt(_DISCORDANCE - 0.02**2), _cc_binary),
)


@dataclass(frozen=True)
class Rates:
    """Shares of simulated experiments with a significant challenger, any direction and the preferred one."""

    simulations: int
    significant: float
    significant_in_direction: float


def simulate(cell: Cell, *, effect: float, simulations: int, rng: np.random.Generator, n: int | None = None) -> Rates:
    """Run `simulations` experiments of the cell with this absolute effect through `analyze`."""
    n = cell.planned_n() if n is None else n
    plan = cell.plan(n)
    sign = 1 if cell.direction == "increase" else -1
    significant = in_direction = 0
    for data in cell.simulate(rng, n, effect, simulations):
        comparison = analyze(plan, data).comparisons[0]
        if comparison.significant:
            significant += 1
            in_direction += sign * comparison.effect > 0
    return Rates(simulations, significant / simulations, in_direction / simulations)


def mcnemar_rejection_rate(n: int, effect: float, *, correction: bool = True) -> float:
    """The exact rate at which the cc binary cell's test is significant in the preferred direction.

    Enumerates the discordant count D ~ Binomial(n, 0.10) and c | D ~ Binomial(D, P(challenger
    right only) / 0.10) instead of simulating, with the same rule as `mcnemar_test`. It checks
    the simulation and shows what the continuity correction costs (correction=False).
    """
    from scipy import stats

    share = (_DISCORDANCE + effect) / 2 / _DISCORDANCE
    rate = 0.0
    for d in range(1, n + 1):
        weight = stats.binom.pmf(d, n, _DISCORDANCE)
        if weight < 1e-16:
            continue
        c = np.arange(d + 1)
        b = d - c
        if d < 25:
            p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, c), d, 0.5))
        else:
            p = stats.chi2.sf((np.abs(c - b) - int(correction)) ** 2 / d, 1)
        rejected = (p < ALPHA) & ((c > b) if effect > 0 else True)
        rate += weight * float(np.sum(stats.binom.pmf(c, d, share) * rejected))
    return rate


# --- Several metrics per experiment (issue 12): a primary, two guardrails and a secondary metric ----------------

METRICS_SIMULATIONS = 3_000
# Target of (b): the share of `promote` is at least the protocol's power minus this.
PROMOTE_TOLERANCE = 0.03
# Target of (b): each test's rejection rate within this of its statsmodels power at the frozen sample.
TEST_POWER_TOLERANCE = 0.03
# Target of (a): promote <= alpha + this many simulation SEs; of (c): within this many SEs of alpha / k.
FPR_SES = 2
HARM_SES = 3
# A fixed start: the protocol holds dates, the plan does not depend on them.
_STARTED_AT = datetime(2024, 6, 1, tzinfo=timezone.utc)

# Latency of a page view in the A/B cells: the unit's own level ~ Gamma(4, 50) (mean 200 ms, sd 100)
# plus Exponential(40 ms) per view, and 1 to 5 views per unit (uniform). The unit's value
# (aggregation mean) is the mean of its views: mean 240, variance 100^2 + 40^2 E[1/K].
_VIEWS = 5
_LATENCY_SD = math.sqrt(100.0**2 + 40.0**2 * sum(1 / k for k in range(1, _VIEWS + 1)) / _VIEWS)
# The champion/challenger binary guardrails: (the champion's rate, the share of requests where the models disagree).
# The sd of the paired difference with no effect is sqrt(disagreement), the guardrail's baseline_sd.
# A paired t test of -1/0/1 differences is slightly liberal when few pairs disagree and the margin
# is large against their share: blocked was first 6% disagreement with margin 0.021 (81 discordant
# pairs at the frozen sample), exact non_inferior rate at harm = margin 0.0534, which a 3,000-run
# simulation saw as 0.0627 (a miss of the 3-SE target by chance, 2% likely); at 12% and 0.03 (about
# the same effect size: 1,321 pairs instead of 1,348, 159 discordant) it is 0.0518. bench/README.md
# and docs/metrics.md give both.
_BLOCKED = (0.08, 0.12)
_REFUSED = (0.05, 0.04)


def django_setup() -> None:
    """The definitions and the protocol read the Django models' choices: set Django up (no database is opened)."""
    from django.apps import apps

    if apps.ready:  # under pytest-django, or called twice
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "calibration-only-not-secret")
    import django

    django.setup()


def _guardrail(key: str, metric_type: str, direction: str, margin: float, *, baseline_mean: float | None = None,
               baseline_sd: float | None = None, aggregation: str = "sum") -> dict:
    return {"key": key, "name": key.replace("_", " "), "role": "guardrail", "metric_type": metric_type,
            "direction": direction, "aggregation": aggregation, "baseline_mean": baseline_mean,
            "baseline_sd": baseline_sd, "margin": margin}


def _secondary(key: str, metric_type: str, direction: str) -> dict:
    return {"key": key, "name": key.replace("_", " "), "role": "secondary", "metric_type": metric_type,
            "direction": direction, "aggregation": "sum", "baseline_mean": None, "baseline_sd": None, "margin": None}


def _definition(design: str, metric_key: str, metric_type: str, direction: str, mde: float, *,
                baseline_mean: float | None, baseline_sd: float | None, metrics: list[dict]) -> dict:
    """A complete definition as `services.definition` receives it (it passes `definition_errors`)."""
    control, challenger = ("control", "green") if design == "ab" else ("champion", "challenger")
    return {
        "key": f"calibration-{design}-{metric_type}", "name": f"Calibration {design} {metric_type}",
        "hypothesis": "simulated", "design": design, "metric_name": metric_key, "metric_key": metric_key,
        "metric_type": metric_type, "metric_direction": direction, "metric_aggregation": "sum",
        "baseline_mean": baseline_mean, "baseline_sd": baseline_sd, "mde": mde, "sample_size_per_variant": None,
        "alpha": ALPHA, "power": POWER, "alternative": "two-sided", "traffic_percent": 100.0,
        "duration": timedelta(days=14), "grace_period": timedelta(0), "auto_promote": False,
        "variants": [{"key": control, "weight": 1.0, "is_control": True, "payload": {}},
                     {"key": challenger, "weight": 1.0, "is_control": False, "payload": {}}],
        "metrics": metrics,
    }


# Simulated data: each generator takes (rng, n per variant, true effects by metric key, simulations)
# and yields, per simulated experiment, the primary's AnalysisData and the other metrics' by key,
# exactly as `experiments.unit_outcomes.read.analysis_data_by_metric` would read them.
Effects = dict[str, float]
MetricsData = tuple[AnalysisData, dict[str, AnalysisData]]


def _ab_arm_sums(treated: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per simulated experiment (row): sum and sum of squares of the control's and the challenger's unit values."""
    control, challenger = np.where(treated, 0.0, values), np.where(treated, values, 0.0)
    return control.sum(1), (control * control).sum(1), challenger.sum(1), (challenger * challenger).sum(1)


def _ab_experiments(arms: tuple[str, str], nc: np.ndarray, nt: np.ndarray, sums: dict[str, tuple],
                    primary: str, mean_metrics: set[str]) -> Iterator[MetricsData]:
    control, challenger = arms
    for i in range(len(nc)):
        assigned = {control: int(nc[i]), challenger: int(nt[i])}
        by_key = {}
        for key, (sc, qc, st, qt) in sums.items():
            by_key[key] = AnalysisData(
                arms={control: SampleSummary(int(nc[i]), float(sc[i]), float(qc[i])),
                      challenger: SampleSummary(int(nt[i]), float(st[i]), float(qt[i]))},
                assigned=assigned,
                # By mean, the units without an observation are counted apart: every unit here has one.
                without_observations={control: 0, challenger: 0} if key in mean_metrics else {},
            )
        yield by_key.pop(primary), by_key


def _page_latency(rng: np.random.Generator, treated: np.ndarray, harm: float) -> np.ndarray:
    """Each unit's mean page-view latency (aggregation mean) from 1 to 5 simulated views; + harm per treated view."""
    size, units = treated.shape
    level = rng.gamma(4.0, 50.0, (size, units))
    views = rng.integers(1, _VIEWS + 1, (size, units))
    latency = level[..., None] + rng.exponential(40.0, (size, units, _VIEWS))
    seen = np.arange(_VIEWS) < views[..., None]
    mean = np.where(seen, latency, 0.0).sum(-1) / views
    return mean + np.where(treated, harm, 0.0)


def _ab_binary_metrics(rng, n, effects: Effects, sims) -> Iterator[MetricsData]:
    """Checkout: conversion (primary), revenue = conversion x Gamma(2, 25) (secondary), mean page latency and
    checkout errors (guardrails)."""
    for size in _chunks(sims, 2 * n * (_VIEWS + 4)):
        treated = rng.random((size, 2 * n)) < 0.5
        converted = (rng.random((size, 2 * n)) < np.where(treated, 0.10 + effects["conversion"], 0.10)).astype(float)
        revenue = converted * rng.gamma(2.0, 25.0, (size, 2 * n)) + np.where(treated, effects["revenue"], 0.0)
        errors = (rng.random((size, 2 * n)) < np.where(treated, 0.05 + effects["checkout_errors"], 0.05)).astype(float)
        latency = _page_latency(rng, treated, effects["page_latency_ms"])
        nt = treated.sum(1)
        sums = {key: _ab_arm_sums(treated, values) for key, values in
                (("conversion", converted), ("revenue", revenue), ("page_latency_ms", latency),
                 ("checkout_errors", errors))}
        yield from _ab_experiments(("control", "green"), 2 * n - nt, nt, sums, "conversion", {"page_latency_ms"})


def _ab_continuous_metrics(rng, n, effects: Effects, sims) -> Iterator[MetricsData]:
    """Revenue per user ~ Gamma(4, 5) (primary, as the single-metric cell), mean page latency and refunds
    (guardrails), a 30% sign-up rate (secondary)."""
    for size in _chunks(sims, 2 * n * (_VIEWS + 4)):
        treated = rng.random((size, 2 * n)) < 0.5
        revenue = rng.gamma(4.0, 5.0, (size, 2 * n)) + np.where(treated, effects["revenue"], 0.0)
        signed_up = (rng.random((size, 2 * n)) < np.where(treated, 0.30 + effects["signed_up"], 0.30)).astype(float)
        refunds = (rng.random((size, 2 * n)) < np.where(treated, 0.05 + effects["refunds"], 0.05)).astype(float)
        latency = _page_latency(rng, treated, effects["page_latency_ms"])
        nt = treated.sum(1)
        sums = {key: _ab_arm_sums(treated, values) for key, values in
                (("revenue", revenue), ("page_latency_ms", latency), ("refunds", refunds), ("signed_up", signed_up))}
        yield from _ab_experiments(("control", "green"), 2 * n - nt, nt, sums, "revenue", {"page_latency_ms"})


def _paired_sums(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    return x.sum(1), (x * x).sum(1), y.sum(1), (y * y).sum(1), (x * y).sum(1)


def _binary_pairs(rng, n, size, champion_rate: float, discordance: float, effect: float) -> tuple[np.ndarray, ...]:
    """Paired sums of a 0/1 metric from a multinomial table (exact): P(champion 1 only) = (q - effect) / 2,
    P(challenger 1 only) = (q + effect) / 2, P(both 1) = champion_rate - P(champion 1 only)."""
    champion_only, challenger_only = (discordance - effect) / 2, (discordance + effect) / 2
    both = champion_rate - champion_only
    counts = rng.multinomial(n, [both, champion_only, challenger_only, 1 - both - champion_only - challenger_only],
                             size=size)
    a, b, c = counts[:, 0], counts[:, 1], counts[:, 2]
    return a + b, a + b, a + c, a + c, a


def _cc_experiments(n: int, sums: dict[str, tuple], primary: str) -> Iterator[MetricsData]:
    size = len(next(iter(sums.values()))[0])
    for i in range(size):
        by_key = {}
        for key, (sx, sxx, sy, syy, sxy) in sums.items():
            pairs = PairedSummary(n, float(sx[i]), float(sxx[i]), float(sy[i]), float(syy[i]), float(sxy[i]))
            by_key[key] = AnalysisData(arms={"champion": pairs.champion, "challenger": pairs.challenger},
                                       pairs={"challenger": pairs})
        yield by_key.pop(primary), by_key


def _cc_continuous_metrics(rng, n, effects: Effects, sims) -> Iterator[MetricsData]:
    """Fraud model: log loss (primary, as the single-metric cell), scoring latency (paired difference sd 20 ms) and
    blocked transactions (champion 8%, the models disagree on 12%) as guardrails, calibration error (secondary)."""
    for size in _chunks(sims, 3 * n):
        x = rng.gamma(2.0, 5.0, (size, n))
        loss = _paired_sums(x, x + rng.normal(effects["log_loss"], 5.0, (size, n)))
        x = rng.gamma(9.0, 120.0 / 9, (size, n))
        latency = _paired_sums(x, x + rng.normal(effects["scoring_latency_ms"], 20.0, (size, n)))
        x = rng.normal(0.05, 0.02, (size, n))
        calibration = _paired_sums(x, x + rng.normal(effects["calibration_error"], 0.02, (size, n)))
        blocked = _binary_pairs(rng, n, size, *_BLOCKED, effects["blocked"])
        yield from _cc_experiments(n, {"log_loss": loss, "scoring_latency_ms": latency, "blocked": blocked,
                                       "calibration_error": calibration}, "log_loss")


def _cc_binary_metrics(rng, n, effects: Effects, sims) -> Iterator[MetricsData]:
    """Assistant model: answer right (primary, as the single-metric cell), latency (paired difference sd 50 ms) and
    refusals (champion 5%, the models disagree on 4%) as guardrails, answer length (secondary)."""
    for size in _chunks(sims, 2 * n):
        right = _binary_pairs(rng, n, size, _CHAMPION_RIGHT, _DISCORDANCE, effects["answer_right"])
        refused = _binary_pairs(rng, n, size, *_REFUSED, effects["refused"])
        x = rng.gamma(9.0, 100.0, (size, n))
        latency = _paired_sums(x, x + rng.normal(effects["latency_ms"], 50.0, (size, n)))
        x = rng.gamma(4.0, 50.0, (size, n))
        length = _paired_sums(x, x + rng.normal(effects["answer_length"], 30.0, (size, n)))
        yield from _cc_experiments(n, {"answer_right": right, "latency_ms": latency, "refused": refused,
                                       "answer_length": length}, "answer_right")


@dataclass(frozen=True)
class MetricsCell:
    """One design x primary metric type with two guardrails and a secondary metric, planned as a definition."""

    name: str
    definition: dict
    harmed: str  # the guardrail whose true harm equals its margin in scenario (c)
    simulate: Callable[[np.random.Generator, int, Effects, int], Iterator[MetricsData]]
    # champion/challenger binary metrics: key -> the share of requests where the models disagree
    discordance: dict[str, float] = field(default_factory=dict)

    def protocol(self) -> dict:
        """The frozen protocol, as the worker reads it back: `build_protocol` (so `sample_plan`, beta-corrected,
        and `protocol_metrics`), through its canonical JSON."""
        from experiments.definitions.protocol import build_protocol, canonical_json
        from experiments.definitions.rules import definition_errors

        errors = definition_errors(self.definition)
        if errors:
            raise ValueError(f"{self.name}: the definition is not valid: {errors}")
        return json.loads(canonical_json(build_protocol(self.definition, started_at=_STARTED_AT)))

    def plan(self, protocol: dict) -> AnalysisPlan:
        """The worker's AnalysisPlan of the frozen protocol (`experiments.services.analysis`)."""
        from experiments.services.analysis import protocol_analysis_plan

        return protocol_analysis_plan(protocol, metric_key=self.definition["metric_key"])


def metrics_cells() -> tuple[MetricsCell, ...]:
    """The four cells. Margins are chosen so that the tests' needs are close (each test's power at the frozen
    sample is then near its planned 1 - beta / 3) and a different test sets the sample in different cells."""
    return (
        MetricsCell("ab binary", _definition(
            "ab", "conversion", "binary", "increase", 0.02, baseline_mean=0.10, baseline_sd=None, metrics=[
                _secondary("revenue", "continuous", "increase"),
                _guardrail("page_latency_ms", "continuous", "decrease", 6.0, baseline_mean=240.0,
                           baseline_sd=_LATENCY_SD, aggregation="mean"),
                _guardrail("checkout_errors", "binary", "decrease", 0.013, baseline_mean=0.05),
            ]), "checkout_errors", _ab_binary_metrics),
        MetricsCell("ab continuous", _definition(
            "ab", "revenue", "continuous", "increase", 1.0, baseline_mean=20.0, baseline_sd=10.0, metrics=[
                _guardrail("page_latency_ms", "continuous", "decrease", 10.0, baseline_mean=240.0,
                           baseline_sd=_LATENCY_SD, aggregation="mean"),
                _guardrail("refunds", "binary", "decrease", 0.02, baseline_mean=0.05),
                _secondary("signed_up", "binary", "increase"),
            ]), "page_latency_ms", _ab_continuous_metrics),
        MetricsCell("champion_challenger continuous", _definition(
            "champion_challenger", "log_loss", "continuous", "decrease", 0.5, baseline_mean=10.0, baseline_sd=5.0,
            metrics=[
                _guardrail("scoring_latency_ms", "continuous", "decrease", 1.8, baseline_sd=20.0),
                _guardrail("blocked", "binary", "decrease", 0.03, baseline_mean=_BLOCKED[0],
                           baseline_sd=math.sqrt(_BLOCKED[1])),
                _secondary("calibration_error", "continuous", "decrease"),
            ]), "blocked", _cc_continuous_metrics, {"blocked": _BLOCKED[1]}),
        MetricsCell("champion_challenger binary", _definition(
            "champion_challenger", "answer_right", "binary", "increase", 0.02, baseline_mean=_CHAMPION_RIGHT,
            baseline_sd=math.sqrt(_DISCORDANCE - 0.02**2), metrics=[
                _secondary("answer_length", "continuous", "decrease"),
                _guardrail("latency_ms", "continuous", "decrease", 3.0, baseline_sd=50.0),
                _guardrail("refused", "binary", "decrease", 0.012, baseline_mean=_REFUSED[0],
                           baseline_sd=math.sqrt(_REFUSED[1])),
            ]), "latency_ms", _cc_binary_metrics, {"refused": _REFUSED[1]}),
    )


def reference_power(protocol: dict, entry: dict) -> float:
    """statsmodels' power of one planned test (`protocol.metrics[i]`) at the frozen sample: the same solver as
    its planning, its frozen effect size, alpha / k, the plan's alternative (a guardrail: one-sided "larger")."""
    from analysis.registry import preregistered_test

    solver = preregistered_test(protocol["design"], entry["type"]).planning.solver()
    alternative = "larger" if entry["role"] == "guardrail" else (
        "two-sided" if protocol["alternative"] == "two-sided" else "larger")
    control = next(v["key"] for v in protocol["variants"] if v["is_control"])
    challenger = next(v["key"] for v in protocol["variants"] if not v["is_control"])
    sizes = protocol["sample_size_per_variant"]
    known = dict(effect_size=entry["effect_size"], alpha=entry["alpha"], alternative=alternative)
    if protocol["design"] == "champion_challenger":
        return float(solver.power(nobs=sizes[challenger], **known))
    return float(solver.power(nobs1=sizes[control], ratio=sizes[challenger] / sizes[control], **known))


def paired_binary_non_inferior_rate(n: int, discordance: float, effect: float, *, margin: float, direction: str,
                                    alpha: float) -> float:
    """The exact rate at which a champion/challenger binary guardrail is shown non-inferior (no simulation noise).

    Enumerates the discordant count D ~ Binomial(n, discordance) and the challenger-only count
    c | D ~ Binomial(D, (discordance + effect) / (2 discordance)), with the rule of
    `paired_non_inferiority`: the paired t statistic of the -1/0/1 differences against the
    harmful edge of the margin, one-sided at alpha on n - 1 df.
    """
    from scipy import stats

    from analysis.non_inferiority import null_value

    share = (discordance + effect) / 2 / discordance
    null = null_value(margin, direction)
    critical = stats.t.ppf(1 - alpha, n - 1)
    rate = 0.0
    for d in range(1, n + 1):
        weight = stats.binom.pmf(d, n, discordance)
        if weight < 1e-16:
            continue
        c = np.arange(d + 1)
        difference = (2 * c - d) / n
        se = np.sqrt(np.maximum(d - (2 * c - d) ** 2 / n, 0.0) / (n - 1) / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = (difference - null) / se
        shown = (se > 0) & ((statistic > critical) if direction == "increase" else (statistic < -critical))
        rate += weight * float(np.sum(stats.binom.pmf(c, d, share) * shown))
    return rate


@dataclass(frozen=True)
class MetricsRates:
    """Shares of simulated experiments: promoted, primary significant in its direction, each guardrail non-inferior."""

    simulations: int
    promote: float
    primary: float
    non_inferior: dict[str, float]


def scenario_effects(protocol: dict, primary_mdes: float, harmed: str | None = None) -> Effects:
    """True challenger - control effects: the primary `primary_mdes` MDEs in its preferred direction, the
    `harmed` guardrail its margin in the harmful direction, every other metric 0."""
    effects = {}
    for entry in protocol["metrics"]:
        better = 1 if entry["direction"] == "increase" else -1
        if entry["role"] == "primary":
            effects[entry["key"]] = better * primary_mdes * entry["mde"]
        elif entry["key"] == harmed:
            effects[entry["key"]] = -better * entry["margin"]
        else:
            effects[entry["key"]] = 0.0
    return effects


def simulate_metrics(cell: MetricsCell, effects: Effects, *, simulations: int, rng: np.random.Generator,
                     protocol: dict | None = None) -> MetricsRates:
    """Run `simulations` experiments of the cell with these true effects through `analyze`, as the worker does."""
    protocol = cell.protocol() if protocol is None else protocol
    plan = cell.plan(protocol)
    n = protocol["sample_size_per_variant"][plan.control.key]
    sign = 1 if plan.direction == "increase" else -1
    guardrails = [m.key for m in plan.metrics if m.role == "guardrail"]
    promoted = primary = 0
    non_inferior = dict.fromkeys(guardrails, 0)
    for data, others in cell.simulate(rng, n, effects, simulations):
        result = analyze(plan, data, others)
        promoted += result.decision.outcome == "promote"
        comparison = result.comparisons[0]
        primary += comparison.significant and sign * comparison.effect > 0
        for metric in result.metrics[1:]:
            if metric.key in non_inferior:
                non_inferior[metric.key] += metric.comparisons[0].non_inferior
    return MetricsRates(simulations, promoted / simulations, primary / simulations,
                        {key: count / simulations for key, count in non_inferior.items()})


def _se(share: float, simulations: int) -> float:
    return math.sqrt(share * (1 - share) / simulations)


def run_metrics(simulations: int, seed: int) -> bool:
    """Scenarios (a), (b) and (c) of every metrics cell; prints one line per figure and returns whether all pass."""
    django_setup()
    cells = metrics_cells()
    streams = np.random.SeedSequence([seed, 12]).spawn(3 * len(cells))
    header = (f"{'cell':<31} {'n/variant':>9} {'sc':<3} {'figure':<46} {'share':>7} {'sim SE':>7}"
              f" {'target':<22} {'':>4}")
    print()
    print(f"Several metrics (issue 12): a primary, two guardrails and a secondary per experiment; alpha {ALPHA}, "
          f"power {POWER}, one challenger (k = 1), {simulations} simulations per scenario")
    print("(a) no true effect anywhere; (b) primary at the MDE, guardrails' true effect 0; "
          "(c) primary at 2 x MDE, one guardrail's true harm = its margin")
    print(header)
    print("-" * len(header))
    all_ok = True
    started = time.perf_counter()

    def line(cell: str, n: int, scenario: str, figure: str, share: float, target: str, ok: bool) -> None:
        nonlocal all_ok
        all_ok &= ok
        print(f"{cell:<31} {n:>9} {scenario:<3} {figure:<46} {share:>7.4f} {_se(share, simulations):>7.4f}"
              f" {target:<22} {'PASS' if ok else 'FAIL':>4}", flush=True)

    for i, cell in enumerate(cells):
        cell_started = time.perf_counter()
        protocol = cell.protocol()
        entries = {m["key"]: m for m in protocol["metrics"]}
        primary, *_ = protocol["metrics"]
        guardrails = [m for m in protocol["metrics"] if m["role"] == "guardrail"]
        control = next(v["key"] for v in protocol["variants"] if v["is_control"])
        n = protocol["sample_size_per_variant"][control]
        alpha_k = primary["alpha"]
        setter = next(m["key"] for m in protocol["metrics"] if m["sets_sample"])
        rates = {
            name: simulate_metrics(cell, scenario_effects(protocol, mdes, harmed), simulations=simulations,
                                   rng=np.random.default_rng(streams[3 * i + j]), protocol=protocol)
            for j, (name, mdes, harmed) in enumerate((("a", 0.0, None), ("b", 1.0, None), ("c", 2.0, cell.harmed)))
        }
        bound = ALPHA + FPR_SES * _se(ALPHA, simulations)
        line(cell.name, n, "(a)", "promote", rates["a"].promote, f"<= {bound:.4f}", rates["a"].promote <= bound)
        floor = protocol["power"] - PROMOTE_TOLERANCE
        line(cell.name, n, "(b)", "promote", rates["b"].promote, f">= {floor:.4f}", rates["b"].promote >= floor)
        tests = [(primary, rates["b"].primary, f"{primary['key']} significant, {primary['direction']}")]
        tests += [(g, rates["b"].non_inferior[g["key"]], f"{g['key']} non_inferior") for g in guardrails]
        for entry, share, figure in tests:
            reference = reference_power(protocol, entry)
            marker = "*" if entry["sets_sample"] else ""
            line(cell.name, n, "(b)", figure + marker, share, f"{reference:.4f} +/- {TEST_POWER_TOLERANCE}",
                 abs(share - reference) <= TEST_POWER_TOLERANCE)
        harmed = entries[cell.harmed]
        share = rates["c"].non_inferior[cell.harmed]
        width = HARM_SES * _se(alpha_k, simulations)
        line(cell.name, n, "(c)", f"{harmed['key']} non_inferior (harm = margin)", share,
             f"{alpha_k:.4f} +/- {width:.4f}", abs(share - alpha_k) <= width)
        for key, discordance in cell.discordance.items():
            entry = entries[key]
            exact = paired_binary_non_inferior_rate(n, discordance, scenario_effects(protocol, 0.0, key)[key],
                                                    margin=entry["margin"], direction=entry["direction"],
                                                    alpha=entry["alpha"])
            print(f"{'':<31} {'':>9} {'':<3} exact (enumeration, no simulation noise): {key} non_inferior at "
                  f"harm = margin {exact:.4f} (alpha / k = {entry['alpha']})", flush=True)
        print(f"{'':<31} {'':>9} {'':<3} (c) promote {rates['c'].promote:.4f}; every test planned at power "
              f"{primary['power']:.4f}; * sets the sample ({setter}); {time.perf_counter() - cell_started:.0f} s",
              flush=True)
    print(f"{time.perf_counter() - started:.0f} s; "
          f"{'every multi-metric figure within target' if all_ok else 'some multi-metric figures miss target'}")
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=20_000, help="simulated experiments per cell and scenario")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--metrics-only", action="store_true",
                        help="run only the multi-metric scenarios (issue 12), not the single-metric A/A and A/B ones")
    parser.add_argument("--metrics-simulations", type=int, default=METRICS_SIMULATIONS,
                        help="simulated experiments per multi-metric cell and scenario")
    parser.add_argument("--cuped-only", action="store_true",
                        help="run only the CUPED calibration (bench/calibration_cuped.py)")
    parser.add_argument("--cuped-simulations", type=int, default=None,
                        help="simulated A/A experiments per CUPED cell (default 10,000; A/B cells 4,000)")
    parser.add_argument("--looks-only", action="store_true",
                        help="run only the interim-looks calibration (bench/calibration_looks.py)")
    parser.add_argument("--looks-simulations", type=int, default=None,
                        help="A/A runs per interim-looks cell, schedule and spending function (default 5,000; "
                             "A/B half)")
    args = parser.parse_args(argv)
    if args.looks_only:
        return 0 if _run_looks(args) else 1
    if args.cuped_only:
        return 0 if _run_cuped(args) else 1
    if args.metrics_only:
        return 0 if run_metrics(args.metrics_simulations, args.seed) else 1

    streams = np.random.SeedSequence(args.seed).spawn(2 * len(CELLS))
    header = (f"{'cell':<32} {'n/variant':>9} {'sims':>6} {'FPR':>7} {'target':>12} {'ok':>3}"
              f" {'power':>7} {'plan':>5} {'ok':>3}")
    print(f"alpha {ALPHA}, two-sided, one challenger; FPR target {FPR_TARGET}, power {POWER} +/- {POWER_TOLERANCE}")
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    all_ok = True
    for i, cell in enumerate(CELLS):
        n = cell.planned_n()
        aa = simulate(cell, effect=0.0, simulations=args.simulations, rng=np.random.default_rng(streams[2 * i]), n=n)
        ab = simulate(cell, effect=cell.mde, simulations=args.simulations,
                      rng=np.random.default_rng(streams[2 * i + 1]), n=n)
        fpr_ok = FPR_TARGET[0] <= aa.significant <= FPR_TARGET[1]
        power_ok = abs(ab.significant_in_direction - POWER) <= POWER_TOLERANCE
        all_ok &= fpr_ok and power_ok
        print(f"{cell.name:<32} {n:>9} {args.simulations:>6} {aa.significant:>7.4f} "
              f"{'[0.04, 0.06]':>12} {'yes' if fpr_ok else 'NO':>3} {ab.significant_in_direction:>7.4f} "
              f"{POWER:>5} {'yes' if power_ok else 'NO':>3}")
    print(f"{time.perf_counter() - started:.0f} s; {'all cells within target' if all_ok else 'some cells miss target'}")
    n = CELLS[3].planned_n()
    print(
        f"champion_challenger binary without simulation noise (exact enumeration, n = {n}): "
        f"FPR {mcnemar_rejection_rate(n, 0.0):.4f}, power {mcnemar_rejection_rate(n, CELLS[3].mde):.4f}; "
        f"without the continuity correction FPR {mcnemar_rejection_rate(n, 0.0, correction=False):.4f}, "
        f"power {mcnemar_rejection_rate(n, CELLS[3].mde, correction=False):.4f}"
    )
    metrics_ok = run_metrics(args.metrics_simulations, args.seed)
    cuped_ok = _run_cuped(args)
    return 0 if _run_looks(args) and cuped_ok and metrics_ok else 1


def _run_cuped(args: argparse.Namespace) -> bool:
    """The CUPED part (bench/calibration_cuped.py) with this run's seed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from calibration_cuped import CUPED_SIMULATIONS, run_cuped

    return run_cuped(args.cuped_simulations or CUPED_SIMULATIONS, args.seed)


def _run_looks(args: argparse.Namespace) -> bool:
    """The interim-looks part (bench/calibration_looks.py) with this run's seed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from calibration_looks import AA_SIMULATIONS, run_looks

    return run_looks(args.looks_simulations or AA_SIMULATIONS, args.seed)


if __name__ == "__main__":
    sys.exit(main())
