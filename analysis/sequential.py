"""Group-sequential efficacy boundaries with Lan-DeMets alpha spending, by exact numerical integration.

The Z statistics at information fractions t_1 < ... < t_k have the canonical joint distribution
(Jennison & Turnbull 2000, ch. 3): Z_i ~ N(theta sqrt(t_i), 1) with corr(Z_a, Z_b) = sqrt(t_a / t_b).
Equivalently the score S_i = Z_i sqrt(t_i) has independent increments S_i - S_{i-1} ~ N(theta dt, dt).
Each side is computed on its own at its level `a` (a two-sided symmetric design is +-b_i): b_i is the
z such that, under H0, P(S first exceeds b_j sqrt(t_j) at look i) = a(t_i) - a(t_{i-1}), the alpha
the spending function releases between the two looks. The first-crossing probabilities come from the
recursive integration of Armitage, McPherson & Rowe (1969) as in Jennison & Turnbull ch. 19: the
sub-density of S_i on the paths that have not crossed yet is carried from look to look on a grid,
integrated by Simpson's rule; no simulation. The same recursion with a drift gives the power, and so
the inflation factor of the maximum information over the fixed design's (rpact, gsDesign agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, signal, stats

from analysis.errors import AnalysisError
from analysis.validation import finite, in_open_unit_interval, one_of

OBRIEN_FLEMING = "obrien_fleming"
POCOCK = "pocock"
SPENDING_FUNCTIONS = (OBRIEN_FLEMING, POCOCK)
MAX_LOOKS = 10

# The grid spacing is the smallest increment's standard deviation over this many points. Simpson's
# error is of order (h / sd)^4 / 180, so 32 points per sd keeps each probability within ~1e-9,
# far inside the 1e-4 wanted of the boundaries.
_POINTS_PER_SD = 32
# The sub-density is kept within this many standard deviations of S_i: beyond it the mass is
# below phi(10) ~ 1e-22.
_TAIL_SDS = 10.0
# A floor on the spacing bounds the grid (<= 20 / 2e-4 = 100,000 points) when two observed fractions
# are nearly equal; such a look spends almost nothing, so its coarser kernel barely matters.
_MIN_SPACING = 2e-4
_BOUNDARY_XTOL = 1e-12
# An alpha increment below this is beyond what the grid integration resolves (its tail error is
# about 1e-22 per look, its rounding about 1e-16): such a look gets +inf, as if it spent nothing.
# An O'Brien-Fleming look at 3% of the information releases about 1e-38.
_NEGLIGIBLE_ALPHA = 1e-14


@dataclass(frozen=True)
class SequentialDesign:
    """One side of an efficacy-only group-sequential design, validated on construction.

    `fractions` are the information fractions of the looks (strictly increasing, in (0, 1], at most
    10); `alpha_per_side` is the side's level `a` (one-sided alpha/k, two-sided alpha/(2k));
    `final` makes the last look spend up to `a` whatever its fraction ("the last look spends what is
    left" when a test ends before its planned maximum information).
    """

    fractions: tuple[float, ...]
    spending: str
    alpha_per_side: float
    final: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", validate_looks(self.fractions, ends_at_one=False))
        one_of("spending", self.spending, SPENDING_FUNCTIONS)
        object.__setattr__(self, "alpha_per_side", in_open_unit_interval("alpha_per_side", self.alpha_per_side))

    def cumulative_alphas(self) -> tuple[float, ...]:
        """a(t_i) for each look, the last one raised to a(1) = a when `final`."""
        spent = [spent_alpha(self.spending, self.alpha_per_side, t) for t in self.fractions]
        if self.final:
            spent[-1] = self.alpha_per_side
        return tuple(spent)


def validate_looks(fractions: object, *, ends_at_one: bool = True) -> tuple[float, ...]:
    """The fractions as floats if they are 1 to 10 strictly increasing numbers in (0, 1].

    A planned design must end at 1 (`ends_at_one`, the maximum information); fractions observed at
    the looks of a running test need not, so the boundaries are recomputed with `ends_at_one=False`.
    """
    try:
        values = tuple(fractions)  # type: ignore[arg-type]
    except TypeError:
        raise AnalysisError(f"looks must be a list of information fractions, got {fractions!r}") from None
    if not 1 <= len(values) <= MAX_LOOKS:
        raise AnalysisError(f"looks must have between 1 and {MAX_LOOKS} fractions, got {len(values)}")
    checked = [finite("each look's information fraction", value) for value in values]
    if not all(0 < value <= 1 for value in checked):
        raise AnalysisError(f"each look's information fraction must be in (0, 1], got {list(checked)}")
    if any(later <= earlier for earlier, later in zip(checked, checked[1:])):
        raise AnalysisError(f"looks must be strictly increasing, got {list(checked)}")
    if ends_at_one and checked[-1] != 1:
        raise AnalysisError(f"the last planned look must be at information fraction 1, got {checked[-1]}")
    return tuple(checked)


def spent_alpha(spending: str, a: float, t: float) -> float:
    """The alpha a side at level `a` has spent by information fraction `t` (Lan & DeMets 1983).

    O'Brien-Fleming type: a(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t)), which spends almost nothing early;
    Pocock type: a(t) = a ln(1 + (e - 1) t), which spends nearly evenly. Both give a(1) = a.
    """
    one_of("spending", spending, SPENDING_FUNCTIONS)
    if spending == OBRIEN_FLEMING:
        # 2 * sf rather than 2 - 2 cdf keeps the tiny early values exact instead of rounding to 0.
        return float(2 * stats.norm.sf(stats.norm.isf(a / 2) / math.sqrt(t)))
    return a * math.log(1 + (math.e - 1) * t)


def efficacy_boundaries(
    fractions: object, spending: str, alpha_per_side: float, *, final: bool = True
) -> tuple[float, ...]:
    """The z boundaries b_i of one side: under H0, P(cross first at look i) = a(t_i) - a(t_{i-1}).

    Look 1 is closed form, b_1 = z_{1 - a(t_1)}; each later b_i is found by brentq on the recursive
    integration. A look whose increment underflows to 0 gets +inf (it cannot reject).
    """
    design = SequentialDesign(fractions, spending, alpha_per_side, final)  # type: ignore[arg-type]
    return _solve_boundaries(design.fractions, design.cumulative_alphas())


def nominal_alphas(boundaries: object) -> tuple[float, ...]:
    """The per-side nominal level of each look, 1 - Phi(b_i): a look crosses when its p is below it."""
    return tuple(float(stats.norm.sf(b)) for b in _checked_boundaries(boundaries))


def crossing_probabilities(fractions: object, boundaries: object, drift: float = 0.0) -> tuple[float, ...]:
    """P(Z_j >= b_j for some j <= i) for each look i, when E[Z_j] = drift sqrt(t_j).

    With drift 0 this is the alpha spent by look i; with the drift of the alternative, the power.
    """
    looks = validate_looks(fractions, ends_at_one=False)
    bounds = _checked_boundaries(boundaries)
    if len(bounds) != len(looks):
        raise AnalysisError(f"got {len(bounds)} boundaries for {len(looks)} looks")
    walk = _SurvivingDensity(looks, finite("drift", drift))
    cumulative, total = [], 0.0
    for index, b in enumerate(bounds):
        total += walk.first_crossing(index, b)
        walk.advance(index, b)
        cumulative.append(total)
    return tuple(cumulative)


def inflation_factor(fractions: object, spending: str, alpha_per_side: float, power: float) -> float:
    """The maximum information the design needs for `power`, over the fixed design's.

    The drift theta with P(cross some b_i | E[Z_i] = theta sqrt(t_i)) = power is found by brentq;
    a fixed one-sided test at level a needs theta = z_{1-a} + z_{1-power}, so the factor is
    theta^2 / (z_{1-a} + z_{1-power})^2. For a two-sided design only the upper side counts (a =
    alpha/2, as rpact and gsDesign do for efficacy-only designs).
    """
    looks = validate_looks(fractions)
    design = SequentialDesign(looks, spending, alpha_per_side)
    power = in_open_unit_interval("power", power)
    if power <= design.alpha_per_side:
        raise AnalysisError(f"power must exceed the side's alpha {design.alpha_per_side}, got {power}")
    bounds = _solve_boundaries(looks, design.cumulative_alphas())

    def power_gap(drift: float) -> float:
        return crossing_probabilities(looks, bounds, drift)[-1] - power

    # P(cross) >= P(Z_k >= b_k), which reaches `power` at drift b_k + z_power.
    drift = optimize.brentq(power_gap, 0.0, bounds[-1] + stats.norm.isf(1 - power) + 1.0, xtol=1e-12)
    fixed_drift = stats.norm.isf(design.alpha_per_side) + stats.norm.isf(1 - power)
    return float((drift / fixed_drift) ** 2)


def _checked_boundaries(boundaries: object) -> tuple[float, ...]:
    try:
        values = tuple(float(b) for b in boundaries)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise AnalysisError(f"boundaries must be a list of numbers, got {boundaries!r}") from None
    if any(math.isnan(b) or b == -math.inf for b in values):
        raise AnalysisError(f"boundaries must be numbers or +inf, got {list(values)}")
    return values


def _solve_boundaries(looks: tuple[float, ...], cumulative: tuple[float, ...]) -> tuple[float, ...]:
    walk = _SurvivingDensity(looks, 0.0)
    bounds, spent = [], 0.0
    for index, target in enumerate(cumulative):
        increment = target - spent
        if increment <= _NEGLIGIBLE_ALPHA:
            # Nothing (or less than the integration resolves) to spend: the look cannot reject.
            b = math.inf
        elif index == 0:
            b = float(stats.norm.isf(increment))
        else:
            # Under H0, Phi(-b) - a(t_{i-1}) <= P(first cross at i) <= Phi(-b): the root lies between
            # z_{1 - a(t_i)} and z_{1 - increment}; the margins absorb rounding in the integration.
            low, high = stats.norm.isf(min(target, 0.5)) - 0.5, stats.norm.isf(increment) + 0.5
            b = optimize.brentq(
                lambda z: walk.first_crossing(index, z) - increment, low, high, xtol=_BOUNDARY_XTOL
            )
        walk.advance(index, b)
        bounds.append(float(b))
        spent = target
    return tuple(bounds)


class _SurvivingDensity:
    """The sub-density of the score S_i on the paths that have not crossed by look i, on a grid.

    All looks share one spacing h, so carrying the density from look i to i+1,
    f_{i+1}(u) = integral over s < c_i of f_i(s) phi((u - s - theta dt) / sqrt(dt)) / sqrt(dt) ds,
    is a discrete convolution (done by FFT); each grid ends exactly at the boundary c_i = b_i sqrt(t_i),
    where f_i is cut off, so Simpson's rule integrates a smooth function on every interval.
    """

    def __init__(self, looks: tuple[float, ...], drift: float) -> None:
        self.looks = looks
        self.drift = drift
        increments = np.diff((0.0,) + looks)
        self.spacing = max(float(np.sqrt(increments.min())) / _POINTS_PER_SD, _MIN_SPACING)
        self.points: np.ndarray | None = None  # grid of S_i, ascending
        self.weighted: np.ndarray | None = None  # Simpson weight x f_i at each point

    def first_crossing(self, index: int, b: float) -> float:
        """P(no crossing before look `index`, then S >= b sqrt(t)) for a trial boundary b."""
        if b == math.inf:
            return 0.0
        t = self.looks[index]
        if index == 0:
            return float(stats.norm.sf(b - self.drift * math.sqrt(t)))
        dt = t - self.looks[index - 1]
        threshold = (b * math.sqrt(t) - self.points - self.drift * dt) / math.sqrt(dt)
        return float(self.weighted @ stats.norm.sf(threshold))

    def advance(self, index: int, b: float) -> None:
        """Move to look `index` with its boundary b fixed: the grid and sub-density below it."""
        t = self.looks[index]
        mean, sd = self.drift * t, math.sqrt(t)
        top = min(b * sd, mean + _TAIL_SDS * sd)
        bottom = min(mean, top) - _TAIL_SDS * sd
        intervals = 2 * max(1, math.ceil((top - bottom) / (2 * self.spacing)))  # Simpson needs an even count
        points = top - self.spacing * np.arange(intervals, -1, -1)
        if index == 0:
            density = stats.norm.pdf(points, loc=mean, scale=sd)
        else:
            density = self._carried(points, t - self.looks[index - 1])
        weights = np.ones(intervals + 1)
        weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
        self.points, self.weighted = points, density * weights * (self.spacing / 3)

    def _carried(self, points: np.ndarray, dt: float) -> np.ndarray:
        # u_m - s_j = (u_0 - s_0) + h (m - j): the kernel at every lag m - j from -(n - 1) to len(points) - 1.
        n = len(self.points)
        lags = np.arange(-(n - 1), len(points))
        gaps = points[0] - self.points[0] + self.spacing * lags
        kernel = stats.norm.pdf(gaps, loc=self.drift * dt, scale=math.sqrt(dt))
        carried = signal.fftconvolve(self.weighted, kernel)[n - 1 : n - 1 + len(points)]
        # FFT rounding leaves values of order 1e-17 where the density is 0; a density is never negative.
        return np.maximum(carried, 0.0)
