"""CUPED calibration by simulation: A/A false-positive rate, variance reduction and power of `cuped_z_test`.

Per-unit data: a pre-exposure covariate x and the value y, bivariate normal with correlation
rho (x ~ Normal(20, 10), y ~ Normal(20, 10)); 2n units per experiment assigned by a fair
coin. Each arm's `CovariateSummary` (n and the sums of y, y^2, x, x^2, x*y) is built from the
arrays (vectorised numpy, seeded), and `analysis.cuped.cuped_z_test` runs on it, the same
function the analysis runs for a CUPED metric.

Planning: `analysis.power.sample_sizes` with `expected_correlation` rho, as a definition with
CUPED is planned: the effect size (mde / baseline_sd) divided by sqrt(1 - rho^2)
(`cuped_effect_size`), then the `TTestIndPower` rule (two-sided, alpha 0.05, power 0.8, one challenger).

Checks (PASS / FAIL lines; sim SE = sqrt(p (1 - p) / N)):
- A/A false-positive rate with CUPED in [0.04, 0.06], rho 0.5 and 0.8, and a binary cell
  (y Bernoulli, x a binary pre-period conversion: P(y) = 0.10 + 0.30 x, P(x) = 0.30);
- the mean `variance_reduction` of the A/A runs within 0.03 of rho^2;
- A/B at the MDE with the sample planned with the true rho: power within 0.03 of 0.8.

Usage: .venv/bin/python bench/calibration.py --cuped-only [--cuped-simulations N] [--seed S]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.cuped import CovariateSummary, cuped_effect_size, cuped_z_test  # noqa: E402
from analysis.power import PowerPlan, sample_sizes  # noqa: E402

ALPHA = 0.05
POWER = 0.8
FPR_TARGET = (0.04, 0.06)
POWER_TOLERANCE = 0.03
REDUCTION_TOLERANCE = 0.03
CUPED_SIMULATIONS = 10_000
POWER_SIMULATIONS = 4_000
AA_UNITS = 500  # units per arm (on average: coin flip out of 2n) of the A/A cells
MEAN, SD, MDE = 20.0, 10.0, 1.0
RHOS = (0.5, 0.8)
# Binary cell: P(x = 1), P(y = 1 | x = 0), P(y = 1 | x = 1).
_PX, _PY0, _PY1 = 0.30, 0.10, 0.40
_CHUNK_UNITS = 4_000_000


def binary_rho() -> float:
    """The correlation of y and x in the binary cell (phi coefficient)."""
    py = _PX * _PY1 + (1 - _PX) * _PY0
    cov = _PX * _PY1 - _PX * py
    return cov / math.sqrt(_PX * (1 - _PX) * py * (1 - py))


def _plan() -> PowerPlan:
    return PowerPlan(design="ab", metric_type="continuous", alpha=ALPHA, power=POWER, alternative="two-sided",
                     ratios=(1.0,), baseline_mean=MEAN, baseline_sd=SD)


def planned_n(rho: float | None) -> int:
    """Units per variant for MDE as the platform plans it (`sample_sizes`): without CUPED, or with
    the expected correlation rho (the effect size divided by sqrt(1 - rho^2))."""
    return sample_sizes(_plan(), MDE, expected_correlation=rho).control


def _summaries(x: np.ndarray, y: np.ndarray, treated: np.ndarray) -> Iterator[tuple[CovariateSummary, ...]]:
    """Per simulated experiment (rows), the control's and the challenger's CovariateSummary."""
    arms = []
    for mask in (~treated, treated):
        xm, ym = np.where(mask, x, 0.0), np.where(mask, y, 0.0)
        arms.append((mask.sum(1), ym.sum(1), (ym * ym).sum(1), xm.sum(1), (xm * xm).sum(1), (xm * ym).sum(1)))
    for i in range(x.shape[0]):
        yield tuple(CovariateSummary(int(a[0][i]), *(float(s[i]) for s in a[1:])) for a in arms)


def _normal_units(rng: np.random.Generator, rho: float, effect: float, size: int, units: int):
    z1, z2 = rng.standard_normal((2, size, units))
    x = MEAN + SD * z1
    y = MEAN + SD * (rho * z1 + math.sqrt(1 - rho * rho) * z2)
    treated = rng.random((size, units)) < 0.5
    return x, y + effect * treated, treated


def _binary_units(rng: np.random.Generator, rho: float, effect: float, size: int, units: int):
    x = (rng.random((size, units)) < _PX).astype(float)
    treated = rng.random((size, units)) < 0.5
    y = (rng.random((size, units)) < _PY0 + (_PY1 - _PY0) * x + effect * treated).astype(float)
    return x, y, treated


def simulate(kind: str, rho: float, *, n: int, effect: float, simulations: int,
             rng: np.random.Generator) -> tuple[float, float, float, float]:
    """(share significant, share significant with effect > 0, mean variance_reduction, its sd) over the runs."""
    units = 2 * n
    draw = _normal_units if kind == "normal" else _binary_units
    significant = positive = 0
    reductions = np.empty(simulations)
    k = 0
    step = max(1, _CHUNK_UNITS // units)
    for start in range(0, simulations, step):
        x, y, treated = draw(rng, rho, effect, min(step, simulations - start), units)
        for control, challenger in _summaries(x, y, treated):
            result = cuped_z_test(control, challenger, alternative="two-sided", alpha=ALPHA)
            if result.p_value < ALPHA:
                significant += 1
                positive += result.effect > 0
            reductions[k] = result.variance_reduction
            k += 1
    return significant / simulations, positive / simulations, float(reductions.mean()), float(reductions.std())


def _se(share: float, simulations: int) -> float:
    return math.sqrt(share * (1 - share) / simulations)


def run_cuped(simulations: int = CUPED_SIMULATIONS, seed: int = 20240601,
              power_simulations: int = POWER_SIMULATIONS) -> bool:
    """Every CUPED figure; prints one line per figure and returns whether all pass."""
    streams = iter(np.random.SeedSequence([seed, 13]).spawn(2 * len(RHOS) + 1))
    header = f"{'cell':<34} {'n/variant':>9} {'sims':>6} {'figure':<28} {'value':>7} {'MC SE':>7} {'target':<17} {'':>4}"
    print()
    print(f"CUPED (analysis.cuped.cuped_z_test): alpha {ALPHA}, two-sided, one challenger; x, y ~ bivariate normal "
          f"(mean {MEAN:g}, sd {SD:g}, correlation rho), coin-flip assignment of 2n units")
    print(header)
    print("-" * len(header))
    all_ok = True
    started = time.perf_counter()

    def line(cell, n, sims, figure, value, se, target, ok):
        nonlocal all_ok
        all_ok &= ok
        print(f"{cell:<34} {n:>9} {sims:>6} {figure:<28} {value:>7.4f} {se:>7.4f} {target:<17} "
              f"{'PASS' if ok else 'FAIL':>4}", flush=True)

    fpr_target = f"[{FPR_TARGET[0]}, {FPR_TARGET[1]}]"
    for rho in RHOS:
        fpr, _, reduction, sd = simulate("normal", rho, n=AA_UNITS, effect=0.0, simulations=simulations,
                                         rng=np.random.default_rng(next(streams)))
        cell = f"A/A continuous rho {rho}"
        line(cell, AA_UNITS, simulations, "FPR", fpr, _se(fpr, simulations), fpr_target,
             FPR_TARGET[0] <= fpr <= FPR_TARGET[1])
        line(cell, AA_UNITS, simulations, "mean variance reduction", reduction, sd / math.sqrt(simulations),
             f"{rho * rho:.4f} +/- {REDUCTION_TOLERANCE}", abs(reduction - rho * rho) <= REDUCTION_TOLERANCE)
    rho_b = binary_rho()
    fpr, _, reduction, sd = simulate("binary", rho_b, n=AA_UNITS, effect=0.0, simulations=simulations,
                                     rng=np.random.default_rng(next(streams)))
    line("A/A binary (x binary)", AA_UNITS, simulations, "FPR", fpr, _se(fpr, simulations), fpr_target,
         FPR_TARGET[0] <= fpr <= FPR_TARGET[1])
    print(f"{'':<34} {'':>9} {'':>6} binary: P(x) {_PX}, P(y | x=0) {_PY0}, P(y | x=1) {_PY1}; rho {rho_b:.4f}, "
          f"rho^2 {rho_b**2:.4f}, mean variance reduction {reduction:.4f} (MC SE {sd / math.sqrt(simulations):.4f})")
    unadjusted = planned_n(None)
    for rho in RHOS:
        n = planned_n(rho)
        _, power, _, _ = simulate("normal", rho, n=n, effect=MDE, simulations=power_simulations,
                                  rng=np.random.default_rng(next(streams)))
        line(f"A/B continuous rho {rho} (mde {MDE:g})", n, power_simulations, "power (planned with rho)", power,
             _se(power, power_simulations), f"{POWER} +/- {POWER_TOLERANCE}", abs(power - POWER) <= POWER_TOLERANCE)
        print(f"{'':<34} {'':>9} {'':>6} planned n/variant: {n} with CUPED (effect size "
              f"{cuped_effect_size(MDE / SD, rho):.4f}), {unadjusted} without (effect size {MDE / SD:.4f}); "
              f"{n / unadjusted:.3f}x", flush=True)
    print(f"{time.perf_counter() - started:.0f} s; "
          f"{'every CUPED figure within target' if all_ok else 'some CUPED figures miss target'}")
    return all_ok


if __name__ == "__main__":
    sys.exit(0 if run_cuped() else 1)
