"""Planning a definition: the power calculation's inputs and the planned sample per variant."""

from typing import Any

from analysis.power import PowerPlan, minimum_detectable_effect, round_up_sample_size, sample_sizes


def power_plan(definition: dict[str, Any]) -> PowerPlan:
    """The power calculation's inputs: one weight ratio per challenger against the control."""
    variants = definition["variants"]
    control = next(variant for variant in variants if variant.get("is_control"))
    return PowerPlan(
        design=definition["design"],
        metric_type=definition["metric_type"],
        alpha=definition["alpha"],
        power=definition["power"],
        alternative=definition["alternative"],
        ratios=tuple(v["weight"] / control["weight"] for v in variants if not v.get("is_control")),
        baseline_mean=definition.get("baseline_mean"),
        baseline_sd=definition.get("baseline_sd"),
    )


def planned_sample(definition: dict[str, Any]) -> tuple[float, dict[str, int]]:
    """The planned (mde, sample size per variant key), whichever of mde and size was given.

    With a given sample size, it is the control's and each challenger gets it times its
    weight ratio (rounded up), mirroring how sizes are derived from an mde.
    """
    plan = power_plan(definition)
    variants = definition["variants"]
    control_key = next(v["key"] for v in variants if v.get("is_control"))
    challenger_keys = [v["key"] for v in variants if not v.get("is_control")]
    if definition.get("mde") is not None:
        mde = definition["mde"]
        sizes = sample_sizes(plan, mde)
        control_size, challenger_sizes = sizes.control, sizes.challengers
    else:
        control_size = definition["sample_size_per_variant"]
        mde = minimum_detectable_effect(plan, control_size)
        challenger_sizes = tuple(
            control_size if plan.design == "champion_challenger" else round_up_sample_size(control_size * ratio)
            for ratio in plan.ratios
        )
    return mde, {control_key: control_size, **dict(zip(challenger_keys, challenger_sizes))}

