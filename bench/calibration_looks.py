"""Planned interim looks by simulation: A/A false-positive rate, power and average sample of group-sequential tests.

Issue 15's simulation target (DESIGN.md part 2, "Planned interim looks"). Every simulated
experiment goes through `analysis.looks.analyze_look`, the function the beat task runs at each
look, with the `LookSpec` the service builds: look i of K, the spending function, `last` at the
planned last look, and `earlier` = `fractions_by_comparison` of the earlier looks' stored
statistics. A look that does not end the test "continues" to the next one.

Per-unit data, one challenger, alpha 0.05, the data models of bench/calibration.py's four cells:
- ab binary: conversion p0 = 0.10, mde +0.02; each arm's conversions per look segment a
  binomial count (the exact sampling distribution of its Bernoulli units).
- ab continuous: revenue ~ Gamma(shape 4, scale 5) (mean 20, sd 10), challenger + mde = 1;
  raw values drawn and summed (n, sum, sum of squares per arm).
- champion_challenger continuous: champion loss ~ Gamma(2, 5), challenger = champion +
  Normal(-mde, 5), mde 0.5, lower is better; the pairs' five sums.
- champion_challenger binary: champion right 70%, the models disagree on 10% of requests
  (A/A 0.05 / 0.05, A/B 0.04 / 0.06: mde +0.02); a multinomial table per look segment.
- one-sided: ab continuous with alternative "one-sided" (increase).
Look sizes are deterministic: look i uses the first m_i = round(f_i n_max) units of each arm
(champion/challenger: the first m_i pairs) of the run's pre-generated data, so the observed
information fractions are the same in every run and `analyze_look`'s boundary cache solves each
look's boundaries once. Both arms have exactly m_i units (no coin flip), so the sample ratio
check never fails by chance.

Sample: n_fixed = `analysis.power.sample_sizes` for the cell (the planning solver the platform
uses: NormalIndPower on Cohen's h, TTestIndPower, TTestPower; two-sided or one-sided at 0.05,
power 0.8), then n_max = ceil(n_fixed x `inflation_factor(fractions, spending, a, 0.8)`), a =
alpha/2 two-sided (the efficacy side), alpha one-sided; n_max is the plan's planned_sample_size.

Figures (MC SE = sqrt(p (1 - p) / N)):
- A/A: the share of runs rejecting H0 at some look, in [0.04, 0.06]. A rejection is a crossing
  of the primary's boundary at the look that ended the test: an interim look that ends (promote,
  or keep after a harmful crossing) or the last look with the comparison significant (either side
  two-sided; one-sided only the preferred side, i.e. promote). At the last look `keep` is also
  the outcome of "no challenger is significantly better", so `keep` there is not a rejection.
  Beside it, naive peeking on the same runs: the design's own fixed test (Welch, Wald z via the
  pipeline's test, paired t, McNemar) at alpha 0.05 at every look, stopping at the first p < 0.05.
- A/B at the MDE: the share ending in `promote`, within 0.03 of 0.8.
- A/B: the average units per variant at the stopping look, against n_max and n_fixed.

Usage: .venv/bin/python bench/calibration.py --looks-only [--looks-simulations N] [--seed S]
       .venv/bin/python bench/calibration_looks.py [--looks-simulations N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.looks import LookSpec, analyze_look, fractions_by_comparison  # noqa: E402
from analysis.power import PowerPlan, sample_sizes  # noqa: E402
from analysis.sequential import inflation_factor  # noqa: E402
from analysis.types import AnalysisData, AnalysisPlan, PairedSummary, SampleSummary, VariantPlan  # noqa: E402

ALPHA = 0.05
POWER = 0.8
FPR_TARGET = (0.04, 0.06)
POWER_TOLERANCE = 0.03
AA_SIMULATIONS = 5_000
SPENDINGS = ("obrien_fleming", "pocock")
SCHEDULES = {
    "3 equal": (1 / 3, 2 / 3, 1.0),
    "5 equal": (0.2, 0.4, 0.6, 0.8, 1.0),
    "3 uneven": (0.3, 0.7, 1.0),
    "5 uneven": (0.1, 0.25, 0.5, 0.75, 1.0),
}
_CHUNK_UNITS = 4_000_000
_CHAMPION_RIGHT, _DISCORDANCE = 0.70, 0.10
_PRIMARY = "primary/challenger"

# One stream of sufficient statistics per look: a dict of name -> array (runs,) of cumulative sums.
Draw = Callable[[np.random.Generator, tuple[int, ...], float, int], dict[str, np.ndarray]]


def _segments(sizes: tuple[int, ...]) -> list[int]:
    return [b - a for a, b in zip((0, *sizes), sizes)]


def _cumulative(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-segment sums -> (looks, runs) arrays of cumulative sums."""
    return {key: np.cumsum(np.stack([p[key] for p in parts]), axis=0) for key in parts[0]}


def _raw_sums(rng: np.random.Generator, dm: int, runs: int, draw_units) -> dict[str, np.ndarray]:
    """Sums over dm per-unit draws, generated in chunks of runs so the raw values stay in memory."""
    out: dict[str, list[np.ndarray]] = {}
    step = max(1, _CHUNK_UNITS // max(dm, 1))
    for start in range(0, runs, step):
        for key, value in draw_units(rng, min(step, runs - start), dm).items():
            out.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in out.items()}


def _ab_binary(rng, sizes, effect, runs):
    return _cumulative([{"xc": rng.binomial(dm, 0.10, runs).astype(float),
                         "xt": rng.binomial(dm, 0.10 + effect, runs).astype(float)} for dm in _segments(sizes)])


def _ab_continuous(rng, sizes, effect, runs):
    def units(rng, size, dm):
        c = rng.gamma(4.0, 5.0, (size, dm))
        t = rng.gamma(4.0, 5.0, (size, dm)) + effect
        return {"xc": c.sum(1), "qc": (c * c).sum(1), "xt": t.sum(1), "qt": (t * t).sum(1)}

    return _cumulative([_raw_sums(rng, dm, runs, units) for dm in _segments(sizes)])


def _cc_continuous(rng, sizes, effect, runs):
    def units(rng, size, dm):
        x = rng.gamma(2.0, 5.0, (size, dm))
        y = x + rng.normal(-effect, 5.0, (size, dm))
        return {"sx": x.sum(1), "sxx": (x * x).sum(1), "sy": y.sum(1), "syy": (y * y).sum(1), "sxy": (x * y).sum(1)}

    return _cumulative([_raw_sums(rng, dm, runs, units) for dm in _segments(sizes)])


def _cc_binary(rng, sizes, effect, runs):
    champion_only, challenger_only = (_DISCORDANCE - effect) / 2, (_DISCORDANCE + effect) / 2
    both = _CHAMPION_RIGHT - champion_only
    probabilities = [both, champion_only, challenger_only, 1 - both - champion_only - challenger_only]
    parts = []
    for dm in _segments(sizes):
        counts = rng.multinomial(dm, probabilities, size=runs).astype(float)
        a, b, c = counts[:, 0], counts[:, 1], counts[:, 2]
        parts.append({"sx": a + b, "sxx": a + b, "sy": a + c, "syy": a + c, "sxy": a})
    return _cumulative(parts)


@dataclass(frozen=True)
class LooksCell:
    """One design x metric type (x alternative) with its data model."""

    design: str
    metric_type: str
    direction: str
    alternative: str
    mde: float
    baseline_mean: float | None
    baseline_sd: float | None
    draw: Draw

    @property
    def name(self) -> str:
        side = "" if self.alternative == "two-sided" else " one-sided"
        return f"{'cc' if self.design == 'champion_challenger' else 'ab'} {self.metric_type}{side}"

    @property
    def side_alpha(self) -> float:
        """The efficacy side's level a: alpha/2 two-sided, alpha one-sided (k = 1)."""
        return ALPHA / 2 if self.alternative == "two-sided" else ALPHA

    def fixed_n(self) -> int:
        """The fixed design's units per variant for the MDE (`analysis.power.sample_sizes`)."""
        plan = PowerPlan(design=self.design, metric_type=self.metric_type, alpha=ALPHA, power=POWER,
                         alternative=self.alternative, ratios=(1.0,), baseline_mean=self.baseline_mean,
                         baseline_sd=self.baseline_sd)
        return sample_sizes(plan, self.mde).control

    def max_n(self, fractions: tuple[float, ...], spending: str) -> int:
        return math.ceil(self.fixed_n() * inflation_factor(fractions, spending, self.side_alpha, POWER))

    def plan(self, n_max: int) -> AnalysisPlan:
        return AnalysisPlan(design=self.design, metric_type=self.metric_type, direction=self.direction,
                            alternative=self.alternative, alpha=ALPHA,
                            variants=(VariantPlan("control", 1.0, True, n_max),
                                      VariantPlan("challenger", 1.0, False, n_max)))

    def data(self, stats: dict[str, np.ndarray], look: int, run: int, m: int) -> AnalysisData:
        """The look's AnalysisData, as the service's SQL would gather it from the first m units of each arm."""
        s = {key: float(value[look, run]) for key, value in stats.items()}
        if self.design == "champion_challenger":
            pairs = PairedSummary(m, s["sx"], s["sxx"], s["sy"], s["syy"], s["sxy"])
            return AnalysisData(arms={"control": pairs.champion, "challenger": pairs.challenger},
                                pairs={"challenger": pairs})
        qc, qt = (s["xc"], s["xt"]) if self.metric_type == "binary" else (s["qc"], s["qt"])
        arms = {"control": SampleSummary(m, s["xc"], qc), "challenger": SampleSummary(m, s["xt"], qt)}
        return AnalysisData(arms=arms, assigned={"control": m, "challenger": m})


CELLS = (
    LooksCell("ab", "binary", "increase", "two-sided", 0.02, 0.10, None, _ab_binary),
    LooksCell("ab", "continuous", "increase", "two-sided", 1.0, 20.0, 10.0, _ab_continuous),
    LooksCell("champion_challenger", "continuous", "decrease", "two-sided", 0.5, 10.0, 5.0, _cc_continuous),
    LooksCell("champion_challenger", "binary", "increase", "two-sided", 0.02, _CHAMPION_RIGHT,
              math.sqrt(_DISCORDANCE - 0.02**2), _cc_binary),
    LooksCell("ab", "continuous", "increase", "one-sided", 1.0, 20.0, 10.0, _ab_continuous),
)


@dataclass(frozen=True)
class LooksResult:
    """Shares over the runs of one cell x schedule x spending x effect."""

    simulations: int
    n_max: int
    rejected: float       # crossed the primary's boundary at the stopping look (one-sided: preferred side only)
    promoted: float       # ended in promote
    naive: float | None   # naive peeking: the fixed test's p < alpha at some look (None when not asked)
    mean_units: float     # units per variant at the stopping look
    stops: tuple[int, ...]  # runs stopping at each look


def simulate_looks(cell: LooksCell, fractions: tuple[float, ...], spending: str, *, effect: float, simulations: int,
                   rng: np.random.Generator, naive: bool = True, n_max: int | None = None) -> LooksResult:
    """Run `simulations` experiments through `analyze_look` at each look until one ends the test.

    With `naive`, a run goes on after the test ended (the later looks' statistics are then used only
    for peeking) until the design's fixed test has p < alpha at some look or the last look.
    """
    n_max = cell.max_n(fractions, spending) if n_max is None else n_max
    plan = cell.plan(n_max)
    sizes = tuple(round(f * n_max) for f in fractions)
    stats = cell.draw(rng, sizes, effect, simulations)
    looks = len(sizes)
    two_sided = cell.alternative == "two-sided"
    rejected = promoted = peeked = 0
    units = 0
    stops = [0] * looks
    for run in range(simulations):
        stored: list = []
        ended = peek_done = False
        for i, m in enumerate(sizes):
            last = i == looks - 1
            spec = LookSpec(i + 1, looks, spending, last, fractions_by_comparison(stored))
            result = analyze_look(plan, cell.data(stats, i, run, m), None, spec)
            if not ended:
                stored.append(result.statistics)
                if result.ends:
                    ended = True
                    entry = next((e for e in result.statistics if e["id"] == _PRIMARY), None)
                    crossed = entry["crossed"] if entry else None
                    outcome = result.analysis.decision.outcome
                    if outcome == "promote" and crossed != "preferred":
                        raise AssertionError(f"look {i + 1}: promote without a preferred crossing ({crossed})")
                    rejected += crossed == "preferred" or (two_sided and crossed == "harmful")
                    promoted += outcome == "promote"
                    units += m
                    stops[i] += 1
            if naive and not peek_done and result.analysis.comparisons[0].p_value < ALPHA:
                peek_done = True
                peeked += 1
            if ended and (peek_done or not naive):
                break
    n = simulations
    return LooksResult(n, n_max, rejected / n, promoted / n, peeked / n if naive else None, units / n, tuple(stops))


def naive_peeking_rate(fractions: tuple[float, ...], *, two_sided: bool = True) -> float:
    """P(some look's fixed-design z test at alpha rejects) for normal Z with corr sqrt(t_a / t_b), no simulation.

    `scipy.stats.multivariate_normal.cdf` (Genz's quasi-Monte Carlo, seeded, error ~1e-5): the
    reference for the naive-peeking figure (0.107 for three equal looks, 0.142 for five).
    """
    from scipy import stats

    t = np.asarray(fractions, dtype=float)
    correlation = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    normal = stats.multivariate_normal(np.zeros(len(t)), correlation, seed=0)
    if two_sided:
        z = stats.norm.isf(ALPHA / 2)
        return float(1 - normal.cdf(np.full(len(t), z), lower_limit=np.full(len(t), -z)))
    return float(1 - normal.cdf(np.full(len(t), stats.norm.isf(ALPHA))))


def _se(share: float, simulations: int) -> float:
    return math.sqrt(share * (1 - share) / simulations)


# Which schedules each cell runs (both spending functions each): every cell has 3 and 5 looks, equal and
# uneven fractions, and each schedule x spending function appears in two two-sided cells.
DEFAULT_GRID = {
    "ab binary": ("3 equal", "5 uneven"),
    "ab continuous": ("3 uneven", "5 equal"),
    "cc continuous": ("3 equal", "5 uneven"),
    "cc binary": ("3 uneven", "5 equal"),
    "ab continuous one-sided": ("5 equal",),
}


def run_looks(simulations: int = AA_SIMULATIONS, seed: int = 20240601, power_simulations: int | None = None,
              grid: dict[str, tuple[str, ...]] | None = None) -> bool:
    """Every figure of the grid; prints one line per figure and returns whether all pass."""
    grid = DEFAULT_GRID if grid is None else grid
    power_simulations = power_simulations or max(1, simulations // 2)
    cells = [c for c in CELLS if c.name in grid]
    streams = iter(np.random.SeedSequence([seed, 15]).spawn(sum(2 * len(SPENDINGS) * len(grid[c.name]) for c in cells)))
    header = (f"{'cell':<24} {'looks':<9} {'spending':<15} {'n/var':>6} {'sims':>6} {'figure':<30} {'value':>8}"
              f" {'MC SE':>7} {'target':<14} {'':>4}")
    print()
    print(f"Planned interim looks (analysis.looks.analyze_look at each look): alpha {ALPHA}, one challenger, "
          f"power {POWER}; n/var = n_max = ceil(n_fixed x inflation factor)")
    print("looks: " + "; ".join(f"{name} {list(round(f, 4) for f in fs)}" for name, fs in SCHEDULES.items()))
    print(header)
    print("-" * len(header))
    all_ok = True
    started = time.perf_counter()

    def line(cell, looks, spending, n, sims, figure, value, se, target, ok):
        nonlocal all_ok
        if ok is not None:
            all_ok &= ok
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        se_text = f"{se:>7.4f}" if se is not None else f"{'':>7}"
        value_text = f"{value:>8.4f}" if abs(value) < 10 else f"{value:>8.1f}"
        print(f"{cell:<24} {looks:<9} {spending:<15} {n:>6} {sims:>6} {figure:<30} {value_text} {se_text}"
              f" {target:<14} {verdict:>4}", flush=True)

    fpr_target = f"[{FPR_TARGET[0]}, {FPR_TARGET[1]}]"
    pooled: dict[str, list[int]] = {}
    for cell in cells:
        n_fixed = cell.fixed_n()
        for schedule in grid[cell.name]:
            fractions = SCHEDULES[schedule]
            for spending in SPENDINGS:
                cell_started = time.perf_counter()
                n_max = cell.max_n(fractions, spending)
                aa = simulate_looks(cell, fractions, spending, effect=0.0, simulations=simulations,
                                    rng=np.random.default_rng(next(streams)), n_max=n_max)
                ab = simulate_looks(cell, fractions, spending, effect=cell.mde, simulations=power_simulations,
                                    rng=np.random.default_rng(next(streams)), naive=False, n_max=n_max)
                args = (cell.name, schedule, spending, n_max)
                line(*args, simulations, "A/A FPR (sequential)", aa.rejected, _se(aa.rejected, simulations),
                     fpr_target, FPR_TARGET[0] <= aa.rejected <= FPR_TARGET[1])
                reference = naive_peeking_rate(fractions, two_sided=cell.alternative == "two-sided")
                line(*args, simulations, "A/A FPR naive peeking", aa.naive, _se(aa.naive, simulations),
                     f"(normal {reference:.3f})", None)
                pooled.setdefault(cell.name, [0, 0])
                pooled[cell.name][0] += round(aa.rejected * simulations)
                pooled[cell.name][1] += simulations
                line(*args, power_simulations, "power (promote at the MDE)", ab.promoted,
                     _se(ab.promoted, power_simulations), f"{POWER} +/- {POWER_TOLERANCE}",
                     abs(ab.promoted - POWER) <= POWER_TOLERANCE)
                print(f"{'':<24} {'':<9} {'':<15} {'':>6} {'':>6} average n/var at the MDE {ab.mean_units:.0f} "
                      f"= {ab.mean_units / n_fixed:.3f} x n_fixed {n_fixed} ({ab.mean_units / n_max:.3f} x n_max "
                      f"{n_max}); stops by look {list(ab.stops)}; {time.perf_counter() - cell_started:.0f} s",
                      flush=True)
    rejections, runs = (sum(v[i] for v in pooled.values()) for i in (0, 1))
    print("pooled sequential A/A FPR (every schedule and spending function of a cell): "
          + "; ".join(f"{name} {r / n:.4f} (SE {_se(r / n, n):.4f}, {n} runs)" for name, (r, n) in pooled.items())
          + f"; all {rejections / runs:.4f} (SE {_se(rejections / runs, runs):.4f}, {runs} runs)")
    print(f"{time.perf_counter() - started:.0f} s; "
          f"{'every interim-look figure within target' if all_ok else 'some interim-look figures miss target'}")
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--looks-simulations", type=int, default=AA_SIMULATIONS,
                        help=f"A/A runs per cell, schedule and spending function (A/B: half; default {AA_SIMULATIONS})")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)
    return 0 if run_looks(args.looks_simulations, args.seed) else 1


if __name__ == "__main__":
    sys.exit(main())
