"""Planning a definition: each metric's test, its power and sample need, and the sample per variant.

DESIGN.md part 2: with G guardrails every test is planned at power 1 - beta/(G + 1)
(Spotify's beta correction), so that promoting, which needs the primary and every guardrail
to come out right, keeps the planned power. The primary is planned as in part 1, each
guardrail as a one-sided non-inferiority test at its margin; the sample per variant is the
largest need. Secondary metrics are not planned (they never decide).
"""

from dataclasses import dataclass, replace
from typing import Any

from analysis.power import (
    PowerPlan,
    corrected_power,
    guardrail_effect_size,
    guardrail_sample_sizes,
    minimum_detectable_effect,
    round_up_sample_size,
    sample_sizes,
)
from analysis.cuped import cuped_effect_size
from analysis.registry import hypothesis_test_name, non_inferiority_test_name, preregistered_test
from analysis.sequential import inflation_factor
from experiments.choices import Alternative, MetricRole, Spending


@dataclass(frozen=True)
class MetricTestPlan:
    """One metric's preregistered test: what the protocol freezes per metric (DESIGN.md part 2)."""

    key: str
    role: str
    test: str
    alpha: float
    power: float | None
    effect_size: float | None
    margin: float | None
    sample_size_per_variant: dict[str, int] | None
    sets_sample: bool
    # CUPED (DESIGN.md part 2): effect_size is then the adjusted one, unadjusted_effect_size the plain one
    # (only with an expected correlation).
    cuped: bool = False
    expected_correlation: float | None = None
    unadjusted_effect_size: float | None = None


@dataclass(frozen=True)
class SamplePlan:
    """The plan of a definition: the primary's mde, the sample per variant and every metric's test.

    With interim looks `sample_size_per_variant` is the planned maximum (each test's fixed-design
    need times its inflation factor, the largest over the tests), `fixed_sample_size_per_variant`
    what one look at the end would need, and `inflation_factor` the primary's; all None-free
    only then (one look: None and None).
    """

    mde: float
    sample_size_per_variant: dict[str, int]
    tests: tuple[MetricTestPlan, ...]
    fixed_sample_size_per_variant: dict[str, int] | None = None
    inflation_factor: float | None = None


def planned_looks(definition: dict[str, Any]) -> list[float]:
    """The definition's information fractions ([1] when not given: part 1's single look)."""
    return list(definition.get("looks") or [1.0])


def planned_spending(definition: dict[str, Any]) -> str:
    """The definition's alpha-spending function (the model's default when not given)."""
    return definition.get("spending") or Spending.OBRIEN_FLEMING.value


def has_interim_looks(definition: dict[str, Any]) -> bool:
    return len(planned_looks(definition)) > 1


def looks_side_alpha(definition: dict[str, Any], *, one_sided: bool = False) -> float:
    """A test's side level a: alpha/k, or alpha/(2k) for a two-sided primary (DESIGN.md)."""
    challengers = sum(1 for v in definition["variants"] if not v.get("is_control"))
    two_sided = definition["alternative"] == Alternative.TWO_SIDED and not one_sided
    return definition["alpha"] / (2 * challengers if two_sided else challengers)


def test_inflation(definition: dict[str, Any], power: float, *, guardrail: bool = False) -> float:
    """The inflation factor of the maximum sample over the fixed design's, at the test's level and power."""
    return inflation_factor(planned_looks(definition), planned_spending(definition),
                            looks_side_alpha(definition, one_sided=guardrail), power)


def guardrails(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in definition.get("metrics") or [] if m.get("role") == MetricRole.GUARDRAIL]


def power_plan(definition: dict[str, Any], metric: dict[str, Any] | None = None,
               power: float | None = None) -> PowerPlan:
    """The power calculation's inputs: one weight ratio per challenger against the control.

    Without `metric`, the primary's (the definition's own fields); with it, that metric's type
    and baselines. `power` overrides the definition's (the corrected power).
    """
    variants = definition["variants"]
    control = next(variant for variant in variants if variant.get("is_control"))
    source = metric if metric is not None else {
        "metric_type": definition["metric_type"], "baseline_mean": definition.get("baseline_mean"),
        "baseline_sd": definition.get("baseline_sd"),
    }
    return PowerPlan(
        design=definition["design"],
        metric_type=source["metric_type"],
        alpha=definition["alpha"],
        power=definition["power"] if power is None else power,
        alternative=definition["alternative"],
        ratios=tuple(v["weight"] / control["weight"] for v in variants if not v.get("is_control")),
        baseline_mean=source.get("baseline_mean"),
        baseline_sd=source.get("baseline_sd"),
    )


def planning_correlation(metric: dict[str, Any]) -> float | None:
    """The rho a metric (or the definition, for the primary) is planned with: only with CUPED on."""
    return metric.get("expected_correlation") if metric.get("cuped") else None


def _adjusted(effect_size: float, rho: float | None) -> float:
    return effect_size if rho is None else cuped_effect_size(effect_size, rho)


def _by_key(definition: dict[str, Any], control_size: int, challenger_sizes) -> dict[str, int]:
    variants = definition["variants"]
    control_key = next(v["key"] for v in variants if v.get("is_control"))
    challenger_keys = [v["key"] for v in variants if not v.get("is_control")]
    return {control_key: control_size, **dict(zip(challenger_keys, challenger_sizes))}


def primary_sample(definition: dict[str, Any], power: float) -> tuple[float, dict[str, int]]:
    """The primary's (mde, sample per variant key) at `power`, whichever of mde and size was given.

    With a given sample size, it is the control's and each challenger gets it times its
    weight ratio (rounded up), mirroring how sizes are derived from an mde.
    """
    plan = power_plan(definition, power=power)
    rho = planning_correlation(definition)
    if definition.get("mde") is not None:
        mde = definition["mde"]
        sizes = sample_sizes(plan, mde, rho)
        return mde, _by_key(definition, sizes.control, sizes.challengers)
    control_size = definition["sample_size_per_variant"]
    # With interim looks the given size is the maximum; the mde is what its fixed-design
    # equivalent (the maximum over the inflation factor) detects at this power.
    fixed_size = control_size
    if has_interim_looks(definition):
        fixed_size = max(int(control_size / test_inflation(definition, power)), 2)
    mde = minimum_detectable_effect(plan, fixed_size, rho)
    challenger_sizes = tuple(
        control_size if plan.design == "champion_challenger" else round_up_sample_size(control_size * ratio)
        for ratio in plan.ratios
    )
    return mde, _by_key(definition, control_size, challenger_sizes)


def guardrail_sample(definition: dict[str, Any], guardrail: dict[str, Any], power: float) -> tuple[float, dict[str, int]]:
    """A guardrail's (effect size, sample per variant key) for its one-sided non-inferiority test."""
    plan = power_plan(definition, guardrail, power)
    rho = planning_correlation(guardrail)
    sizes = guardrail_sample_sizes(plan, guardrail["margin"], rho)
    return _adjusted(guardrail_effect_size(plan, guardrail["margin"]), rho), _by_key(definition, sizes.control, sizes.challengers)


def sample_plan(definition: dict[str, Any]) -> SamplePlan:
    """Every metric's test and the sample per variant (AnalysisError when a plan cannot be solved).

    With an mde the sample is each variant's largest need, and the test with the largest
    control need sets it (the first on a tie); with a given sample size the size is the
    primary's and the guardrails' needs are shown beside it.
    """
    design = definition["design"]
    challengers = sum(1 for v in definition["variants"] if not v.get("is_control"))
    alpha = definition["alpha"] / challengers
    power = corrected_power(definition["power"], len(guardrails(definition)))
    mde, primary_sizes = primary_sample(definition, power)
    primary_plan = power_plan(definition, power=power)
    primary_effect_size = preregistered_test(design, definition["metric_type"]).planning.effect_size(primary_plan, mde)
    primary_rho = planning_correlation(definition)
    tests = [MetricTestPlan(
        key=definition.get("metric_key") or "", role=MetricRole.PRIMARY.value,
        test=hypothesis_test_name(design, definition["metric_type"]), alpha=alpha, power=power,
        effect_size=_adjusted(primary_effect_size, primary_rho), margin=None, sample_size_per_variant=primary_sizes,
        sets_sample=False, **_cuped_fields(definition, primary_effect_size),
    )]
    for metric in definition.get("metrics") or []:
        if metric["role"] == MetricRole.GUARDRAIL:
            effect_size, sizes = guardrail_sample(definition, metric, power)
            unadjusted = guardrail_effect_size(power_plan(definition, metric, power), metric["margin"])
            tests.append(MetricTestPlan(
                key=metric["key"], role=metric["role"], test=non_inferiority_test_name(design, metric["metric_type"]),
                alpha=alpha, power=power, effect_size=effect_size, margin=metric["margin"],
                sample_size_per_variant=sizes, sets_sample=False, **_cuped_fields(metric, unadjusted),
            ))
        else:
            tests.append(MetricTestPlan(
                key=metric["key"], role=metric["role"], test=hypothesis_test_name(design, metric["metric_type"]),
                alpha=alpha, power=None, effect_size=None, margin=None, sample_size_per_variant=None,
                sets_sample=False, **_cuped_fields(metric, None),
            ))
    control_key = next(v["key"] for v in definition["variants"] if v.get("is_control"))
    planned = [index for index, test in enumerate(tests) if test.sample_size_per_variant is not None]
    fixed, primary_inflation = None, None
    if has_interim_looks(definition):
        fixed = _largest_needs(tests, planned, primary_sizes) if definition.get("mde") is not None else None
        primary_inflation = test_inflation(definition, power)
        tests = [_inflated(definition, test) if test.sample_size_per_variant is not None else test for test in tests]
        if fixed is None:  # a given size is the maximum: its fixed-design equivalent
            fixed = {key: max(int(size / primary_inflation), 2) for key, size in primary_sizes.items()}
    if definition.get("mde") is not None:
        sample = _largest_needs(tests, planned, primary_sizes)
        setter = max(planned, key=lambda i: tests[i].sample_size_per_variant[control_key])
    else:
        sample, setter = primary_sizes, 0
    tests[setter] = replace(tests[setter], sets_sample=True)
    return SamplePlan(mde=mde, sample_size_per_variant=sample, tests=tuple(tests),
                      fixed_sample_size_per_variant=fixed, inflation_factor=primary_inflation)


def _largest_needs(tests: list[MetricTestPlan], planned: list[int], keys) -> dict[str, int]:
    return {key: max(tests[i].sample_size_per_variant[key] for i in planned) for key in keys}


def _inflated(definition: dict[str, Any], test: MetricTestPlan) -> MetricTestPlan:
    """A test's need with interim looks: ceil(fixed need x its inflation factor) per variant (DESIGN.md).

    With a given sample size the primary's need is that size already (the maximum)."""
    if test.role == MetricRole.PRIMARY and definition.get("mde") is None:
        return test
    factor = test_inflation(definition, test.power, guardrail=test.role == MetricRole.GUARDRAIL)
    return replace(test, sample_size_per_variant={
        key: round_up_sample_size(size * factor) for key, size in test.sample_size_per_variant.items()})


def _cuped_fields(metric: dict[str, Any], unadjusted_effect_size: float | None) -> dict[str, Any]:
    """A test's CUPED fields: the unadjusted effect size only when a correlation was planned with."""
    if not metric.get("cuped"):
        return {}
    rho = metric.get("expected_correlation")
    return {"cuped": True, "expected_correlation": rho,
            "unadjusted_effect_size": unadjusted_effect_size if rho is not None else None}


def planned_sample(definition: dict[str, Any]) -> tuple[float, dict[str, int]]:
    """The planned (mde, sample size per variant key): `sample_plan`'s two headline numbers."""
    plan = sample_plan(definition)
    return plan.mde, plan.sample_size_per_variant
