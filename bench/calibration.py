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

Usage: .venv/bin/python bench/calibration.py [--simulations N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=20_000, help="simulated experiments per cell and scenario")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
