"""Validated inputs of the analysis: per-arm and per-pair sufficient statistics, the plan and the data."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from analysis.errors import AnalysisError
from analysis.validation import (
    finite,
    in_closed_unit_interval,
    in_open_unit_interval,
    non_negative_integer,
    one_of,
    positive,
)
from analysis.vocabulary import Aggregation, Design, Direction, MetricRole, MetricType, PlanAlternative

# Sums computed by a database in floating point may break (sum x)^2 <= n * sum x^2 by a
# few ulps when every value is equal; anything beyond this relative slack is a caller bug
# (for instance a sum of squared deviations passed as the sum of squares).
_CAUCHY_SCHWARZ_SLACK = 1e-9


def _sum_of_squares(name: str, n: int, total: float, total_of_squares: float) -> None:
    if total_of_squares < 0:
        raise AnalysisError(f"{name} must be >= 0, got {total_of_squares}")
    if total * total > n * total_of_squares * (1 + _CAUCHY_SCHWARZ_SLACK) + 1e-300:
        raise AnalysisError(
            f"{name} = {total_of_squares} is smaller than total^2 / n = {total * total / max(n, 1)}: "
            "it cannot be the sum of the squared values"
        )


def centered_sum_of_squares(n: int, total: float, total_of_squares: float) -> float:
    """sum (x - mean)^2 = S2 - S^2 / n, computed exactly from the float inputs, clamped at 0.

    Float arithmetic would lose about log10(mean^2 / variance) digits to cancellation; the
    exact rational computation loses none, so the only error left is the one already in
    the sums. A slightly negative result (rounding in the caller's sums) is clamped to 0.
    """
    exact = Fraction(total_of_squares) - Fraction(total) ** 2 / n
    return max(float(exact), 0.0)


@dataclass(frozen=True)
class SampleSummary:
    """One arm's per-unit values as sufficient statistics: n, sum x and sum x^2."""

    n: int
    total: float
    total_of_squares: float

    def __post_init__(self) -> None:
        n = non_negative_integer("n", self.n)
        total = finite("total", self.total)
        squares = finite("total_of_squares", self.total_of_squares)
        if n == 0 and (total != 0 or squares != 0):
            raise AnalysisError("an empty sample (n = 0) must have total = total_of_squares = 0")
        _sum_of_squares("total_of_squares", n, total, squares)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "total_of_squares", squares)

    @property
    def mean(self) -> float:
        """sum x / n; AnalysisError for an empty sample."""
        if self.n == 0:
            raise AnalysisError("the mean of an empty sample is undefined")
        return self.total / self.n

    @property
    def variance(self) -> float:
        """The sample variance (ddof = 1): (S2 - S^2 / n) / (n - 1); AnalysisError when n < 2."""
        if self.n < 2:
            raise AnalysisError(f"the variance needs at least 2 values, got {self.n}")
        return centered_sum_of_squares(self.n, self.total, self.total_of_squares) / (self.n - 1)

    @property
    def sd(self) -> float:
        """The sample standard deviation (ddof = 1)."""
        return math.sqrt(self.variance)


@dataclass(frozen=True)
class PairedSummary:
    """Sufficient statistics over complete pairs (x = champion value, y = challenger value).

    Sx, Sxx, Sy, Syy are the sums and sums of squares of each side and cross_total = sum x*y.
    """

    n: int
    champion_total: float
    champion_total_of_squares: float
    challenger_total: float
    challenger_total_of_squares: float
    cross_total: float

    def __post_init__(self) -> None:
        n = non_negative_integer("n", self.n)
        names = (
            "champion_total", "champion_total_of_squares", "challenger_total",
            "challenger_total_of_squares", "cross_total",
        )
        values = {name: finite(name, getattr(self, name)) for name in names}
        if n == 0 and any(values.values()):
            raise AnalysisError("no pairs (n = 0) must come with every total equal to 0")
        _sum_of_squares("champion_total_of_squares", n, values["champion_total"], values["champion_total_of_squares"])
        _sum_of_squares(
            "challenger_total_of_squares", n, values["challenger_total"], values["challenger_total_of_squares"]
        )
        object.__setattr__(self, "n", n)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def champion(self) -> SampleSummary:
        """The champion's side of the pairs."""
        return SampleSummary(self.n, self.champion_total, self.champion_total_of_squares)

    @property
    def challenger(self) -> SampleSummary:
        """The challenger's side of the pairs."""
        return SampleSummary(self.n, self.challenger_total, self.challenger_total_of_squares)

    @property
    def difference_mean(self) -> float:
        """Mean of d = y - x: (Sy - Sx) / n."""
        if self.n == 0:
            raise AnalysisError("the mean difference of no pairs is undefined")
        return (self.challenger_total - self.champion_total) / self.n

    @property
    def difference_variance(self) -> float:
        """Variance (ddof = 1) of d = y - x: (Syy - 2 Sxy + Sxx - (Sy - Sx)^2 / n) / (n - 1).

        Computed exactly from the float sums (see `centered_sum_of_squares`), clamped at 0.
        """
        if self.n < 2:
            raise AnalysisError(f"the variance of the differences needs at least 2 pairs, got {self.n}")
        x, y = Fraction(self.champion_total), Fraction(self.challenger_total)
        squares = (
            Fraction(self.challenger_total_of_squares)
            - 2 * Fraction(self.cross_total)
            + Fraction(self.champion_total_of_squares)
        )
        return max(float(squares - (y - x) ** 2 / self.n), 0.0) / (self.n - 1)

    @property
    def covariance(self) -> float:
        """Sample covariance (ddof = 1) of x and y: (Sxy - Sx Sy / n) / (n - 1)."""
        if self.n < 2:
            raise AnalysisError(f"the covariance needs at least 2 pairs, got {self.n}")
        exact = Fraction(self.cross_total) - Fraction(self.champion_total) * Fraction(self.challenger_total) / self.n
        return float(exact) / (self.n - 1)


@dataclass(frozen=True)
class VariantPlan:
    """One preregistered variant: its key, assignment weight, role and planned sample size."""

    key: str
    weight: float
    is_control: bool
    planned_sample_size: int

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise AnalysisError(f"a variant key must be a non-empty string, got {self.key!r}")
        weight = positive(f"weight of {self.key}", self.weight)
        if not isinstance(self.is_control, bool):
            raise AnalysisError(f"is_control of {self.key} must be a bool, got {self.is_control!r}")
        object.__setattr__(self, "weight", weight)
        planned = non_negative_integer(f"planned_sample_size of {self.key}", self.planned_sample_size)
        object.__setattr__(self, "planned_sample_size", planned)


def hypothesis_alternative(alternative: str, direction: str) -> str:
    """The hypothesis tests' alternative for a plan's: one-sided looks in the preferred direction."""
    if alternative == PlanAlternative.TWO_SIDED:
        return "two-sided"
    return "larger" if direction == Direction.INCREASE else "smaller"


@dataclass(frozen=True)
class MetricPlan:
    """One preregistered metric: its key, role, type, better direction, aggregation and margin.

    `AnalysisPlan.metrics` holds the secondary and guardrail metrics; `AnalysisPlan.primary`
    is the primary's, built from the plan's own fields. `aggregation` turns a unit's
    observations into its value ("sum", absent = 0; or "mean", units without an observation
    left out). `margin` (> 0, in units of the per-unit value) is the largest harm a
    guardrail accepts; it is required for a guardrail and None for any other metric.
    """

    key: str
    role: str
    metric_type: str
    direction: str
    aggregation: str = Aggregation.SUM
    margin: float | None = None
    # CUPED (A/B only): the metric's comparisons adjust for its covariate (`analysis.cuped`).
    cuped: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise AnalysisError(f"a metric key must be a non-empty string, got {self.key!r}")
        one_of(f"role of {self.key}", self.role, MetricRole)
        one_of(f"metric_type of {self.key}", self.metric_type, MetricType)
        one_of(f"direction of {self.key}", self.direction, Direction)
        one_of(f"aggregation of {self.key}", self.aggregation, Aggregation)
        if self.role == MetricRole.GUARDRAIL:
            if self.margin is None:
                raise AnalysisError(f"the guardrail {self.key} needs a margin > 0")
            object.__setattr__(self, "margin", positive(f"margin of {self.key}", self.margin))
        elif self.margin is not None:
            raise AnalysisError(f"only a guardrail has a margin; {self.key} is a {self.role} metric")


@dataclass(frozen=True)
class AnalysisPlan:
    """The frozen protocol the analysis follows.

    `alternative` is the plan's ("two-sided" or "one-sided"); a one-sided test looks in the
    preferred `direction`. `incomplete_pairs_max_share` (champion/challenger only) defaults
    to 0.2: shadow scoring should log every variant for every sampled request, so losing more
    than a fifth of the units means challengers fail (time out, error) on a subset that is
    unlikely to be random, and the complete pairs no longer represent the traffic.

    `metric_type`, `direction`, `metric_key` and `aggregation` are the primary metric's;
    `metrics` are the secondary and guardrail metrics, in the protocol's order (none for a
    single-metric plan).
    """

    design: str
    metric_type: str
    direction: str
    alternative: str
    alpha: float
    variants: tuple[VariantPlan, ...]
    incomplete_pairs_max_share: float = 0.2
    metric_key: str = "primary"
    aggregation: str = Aggregation.SUM
    metrics: tuple[MetricPlan, ...] = ()
    # CUPED on the primary (A/B only); a secondary's or guardrail's is its MetricPlan's.
    cuped: bool = False

    def __post_init__(self) -> None:
        one_of("design", self.design, Design)
        one_of("metric_type", self.metric_type, MetricType)
        one_of("direction", self.direction, Direction)
        one_of("alternative", self.alternative, PlanAlternative)
        # As a MetricPlan the primary's key and aggregation are checked too.
        primary = self.primary
        alpha = in_open_unit_interval("alpha", self.alpha)
        share = in_closed_unit_interval("incomplete_pairs_max_share", self.incomplete_pairs_max_share)
        if not isinstance(self.variants, (tuple, list)) or not all(isinstance(v, VariantPlan) for v in self.variants):
            raise AnalysisError("variants must be a sequence of VariantPlan")
        variants = tuple(self.variants)
        keys = [v.key for v in variants]
        if len(set(keys)) != len(keys):
            raise AnalysisError(f"variant keys must be unique, got {keys}")
        if sum(v.is_control for v in variants) != 1:
            raise AnalysisError("exactly one variant must be the control (champion)")
        if len(variants) < 2:
            raise AnalysisError("a plan needs a control and at least one challenger")
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "incomplete_pairs_max_share", share)
        object.__setattr__(self, "variants", variants)
        object.__setattr__(self, "metrics", _other_metrics(primary, self.metrics))

    @property
    def primary(self) -> MetricPlan:
        """The primary metric, the one that decides."""
        return MetricPlan(self.metric_key, MetricRole.PRIMARY, self.metric_type, self.direction, self.aggregation,
                          cuped=bool(self.cuped))

    @property
    def control(self) -> VariantPlan:
        """The control (for champion_challenger: the champion)."""
        return next(v for v in self.variants if v.is_control)

    @property
    def challengers(self) -> tuple[VariantPlan, ...]:
        """Every variant but the control, in plan order."""
        return tuple(v for v in self.variants if not v.is_control)

    @property
    def per_comparison_alpha(self) -> float:
        """The alpha of each challenger's interval and guardrail test: alpha / k for k challengers."""
        return self.alpha / len(self.challengers)

    @property
    def hypothesis_alternative(self) -> str:
        """The primary's hypothesis tests' alternative: one-sided looks in the preferred direction."""
        return hypothesis_alternative(self.alternative, self.direction)


def _other_metrics(primary: MetricPlan, metrics: object) -> tuple[MetricPlan, ...]:
    """The secondary and guardrail metrics as a tuple, their keys unique and none the primary's."""
    if not isinstance(metrics, (tuple, list)) or not all(isinstance(m, MetricPlan) for m in metrics):
        raise AnalysisError("metrics must be a sequence of MetricPlan")
    keys = [primary.key] + [m.key for m in metrics]
    if len(set(keys)) != len(keys):
        raise AnalysisError(f"metric keys must be unique (the primary's included), got {keys}")
    if any(m.role == MetricRole.PRIMARY for m in metrics):
        raise AnalysisError("metrics holds the secondary and guardrail metrics; the primary is the plan's own")
    return tuple(metrics)


@dataclass(frozen=True)
class AnalysisData:
    """Sufficient statistics gathered by the caller (in SQL) for one analysis.

    - arms: every variant's per-unit values. ab: every assigned unit, a unit without an
      observation counting as 0. champion_challenger: the units with a value for the variant.
    - assigned: ab only, assigned units per variant (for the sample ratio check).
    - pairs: champion_challenger only, challenger key -> its complete pairs with the champion.
    - incomplete_pairs: champion_challenger only, units missing at least one variant.
    - without_observations: an ab metric with aggregation "mean" only, assigned units per
      variant that have no observation of the metric (they are left out of `arms`).
    """

    arms: Mapping[str, SampleSummary]
    assigned: Mapping[str, int] = field(default_factory=dict)
    pairs: Mapping[str, PairedSummary] = field(default_factory=dict)
    incomplete_pairs: int = 0
    without_observations: Mapping[str, int] = field(default_factory=dict)
    # A CUPED metric only (ab): every variant's units as `analysis.cuped.CovariateSummary`.
    covariates: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from analysis.cuped import CovariateSummary  # analysis.cuped imports this module

        if not isinstance(self.covariates, Mapping) or not all(
                isinstance(v, CovariateSummary) for v in self.covariates.values()):
            raise AnalysisError("covariates must map variant keys to CovariateSummary")
        object.__setattr__(self, "covariates", MappingProxyType(dict(self.covariates)))
        for name, expected in (("arms", SampleSummary), ("pairs", PairedSummary)):
            mapping = getattr(self, name)
            if not isinstance(mapping, Mapping) or not all(isinstance(v, expected) for v in mapping.values()):
                raise AnalysisError(f"{name} must map variant keys to {expected.__name__}")
            object.__setattr__(self, name, MappingProxyType(dict(mapping)))
        for name in ("assigned", "without_observations"):
            object.__setattr__(self, name, _unit_counts(name, getattr(self, name)))
        object.__setattr__(self, "incomplete_pairs", non_negative_integer("incomplete_pairs", self.incomplete_pairs))


def _unit_counts(name: str, counts: object) -> Mapping[str, int]:
    if not isinstance(counts, Mapping):
        raise AnalysisError(f"{name} must map variant keys to unit counts")
    return MappingProxyType({key: non_negative_integer(f"{name}[{key!r}]", count) for key, count in counts.items()})
