"""The admin's power preview: the sample size a draft would freeze, each metric's test, and how many days it needs."""

import copy
import math
from dataclasses import asdict
from typing import Any

from analysis.errors import AnalysisError
from experiments.choices import Design, MetricRole
from experiments.definitions.durations import iso_duration
from experiments.definitions.fields import experiment_definition
from experiments.definitions.planning import has_interim_looks, sample_plan
from experiments.definitions.protocol import frozen_protocol_metrics, protocol_looks
from experiments.definitions.rules import definition_warnings
from experiments.models import Experiment
from experiments.services.definition import experiment_definition_check


def power_preview(definition: dict[str, Any] | None, *, daily_units: int | None,
                  experiment: Experiment | None = None) -> dict[str, Any]:
    """The sample size a draft would freeze if started now, each metric's test (`sample_plan`'s), and the days needed.

    Days needed = the longest time any variant takes to reach its planned size, each variant
    getting daily units x traffic share x its weight share (for A/B). With sizes that follow
    the weights this is total planned units / (daily units x traffic share). Champion/challenger
    scores every sampled request with every variant, so it needs the control's size in requests.
    """
    preview: dict[str, Any] = {
        "sample_size_per_variant": None, "mde": None, "total_units": None, "expected_daily_units": daily_units,
        "days_needed": None, "duration_days": None, "duration": None, "warnings": [], "errors": {},
        "tests": [], "power_sentence": None, "cuped": [], "looks": None,
    }
    if not definition:
        return preview
    check = experiment_definition_check(definition=definition, experiment=experiment)
    if check.errors:
        preview["errors"] = check.errors
        return preview
    definition = check.whole
    try:
        plan = sample_plan(definition)
    except (AnalysisError, ArithmeticError, KeyError, StopIteration) as error:
        preview["errors"] = {"mde": [str(error)]}
        return preview
    preview.update(metric_tests([asdict(test) for test in plan.tests], planned_power=definition["power"]))
    preview["cuped"] = cuped_comparison(definition, plan)
    if has_interim_looks(definition):
        preview["looks"] = looks_preview(protocol_looks(definition, plan, started_at=None), definition)
    return _schedule(preview, definition, mde=plan.mde, sizes=plan.sample_size_per_variant, daily_units=daily_units)


def cuped_comparison(definition: dict[str, Any], plan) -> list[str]:
    """For each metric planned with CUPED's expected correlation: its need per variant without and with CUPED.

    "conversion: 14,745 per variant; with CUPED (rho 0.5): 11,059" (the control's need; without
    CUPED = the same plan with that metric's correlation left out).
    """
    control = next(v["key"] for v in definition["variants"] if v.get("is_control"))
    lines = []
    for index, test in enumerate(plan.tests):
        if not (test.cuped and test.expected_correlation is not None and test.sample_size_per_variant):
            continue
        plain = copy.deepcopy(definition)
        target = plain if index == 0 else plain["metrics"][index - 1]
        target["cuped"], target["expected_correlation"] = False, None
        try:
            without = sample_plan(plain).tests[index].sample_size_per_variant[control]
        except (AnalysisError, ArithmeticError, KeyError, StopIteration):
            continue
        lines.append(f"{test.key}: {without:,} per variant; with CUPED (rho {test.expected_correlation:g}): "
                     f"{test.sample_size_per_variant[control]:,}")
    return lines


def frozen_preview(experiment: Experiment, *, daily_units: int | None) -> dict[str, Any]:
    """The same figures for a started experiment, from its frozen protocol (no outcome in it)."""
    protocol = experiment.protocol or {}
    preview: dict[str, Any] = {"expected_daily_units": daily_units, "warnings": [], "errors": {},
                               **frozen_metric_tests(experiment),
                               "looks": looks_preview(protocol, experiment_definition(experiment))
                               if protocol.get("looks") else None}
    return _schedule(preview, experiment_definition(experiment), mde=protocol.get("mde"),
                     sizes=protocol.get("sample_size_per_variant") or {}, daily_units=daily_units)


def looks_preview(looks: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    """The planned looks as the admin shows them: when (day of the test), at what fraction, which boundary.

    `looks` is `protocol_looks`' (a draft's, times None) or a frozen protocol's. The planned maximum
    is the fixed design's need times the inflation factor (DESIGN.md part 2).
    """
    days = definition["duration"].total_seconds() / 86400
    grace = definition["grace_period"].total_seconds() / 86400
    rows = [{"index": look["index"], "fraction": look["fraction"], "day": look["fraction"] * days + grace,
             "at": look["at"], "boundary": look["boundary"], "nominal_alpha": look["nominal_alpha"]}
            for look in looks["looks"]]
    return {"rows": rows, "spending": looks["spending"], "inflation_factor": looks["inflation_factor"],
            "fixed_sample_size_per_variant": looks["fixed_sample_size_per_variant"]}


def frozen_metric_tests(experiment: Experiment) -> dict[str, Any]:
    """`metric_tests` of a started experiment: its protocol's `metrics` (a part-1 protocol's one test)."""
    protocol = experiment.protocol
    if not protocol:
        return metric_tests([], planned_power=None)
    return metric_tests(frozen_protocol_metrics(protocol, metric_key=experiment.metric_key),
                        planned_power=protocol["power"])


def metric_tests(tests: list[dict[str, Any]], *, planned_power: float | None) -> dict[str, Any]:
    """Each metric's planned test as shown (role, key, test, power, need, whether it sets the sample),
    and the sentence that explains the corrected power when guardrails raised it.

    `tests` are `MetricTestPlan`s as dicts or frozen `protocol.metrics` entries: the same keys.
    """
    rows = [{"key": t["key"], "role": t["role"], "test": t["test"], "power": t["power"],
             "power_percent": percent(t["power"]), "sample_size_per_variant": t["sample_size_per_variant"],
             "sets_sample": t["sets_sample"]} for t in tests]
    guardrails = sum(1 for t in tests if t["role"] == MetricRole.GUARDRAIL)
    sentence = None
    if guardrails and planned_power is not None:
        sentence = (f"Spotify's beta correction: every test is planned at power {percent(rows[0]['power'])} so that "
                    f"the decision keeps {percent(planned_power)} with {guardrails} "
                    f"guardrail{'s' if guardrails > 1 else ''}.")
    return {"tests": rows, "power_sentence": sentence}


def percent(share: float | None) -> str | None:
    """0.9333 as "93.3%", 0.8 as "80%"."""
    return None if share is None else f"{100 * share:.1f}".removesuffix(".0") + "%"


def _schedule(preview: dict[str, Any], definition: dict[str, Any], *, mde, sizes: dict[str, int],
              daily_units: int | None) -> dict[str, Any]:
    champion_challenger = definition["design"] == Design.CHAMPION_CHALLENGER
    duration_days = definition["duration"].total_seconds() / 86400
    preview.update(
        sample_size_per_variant=sizes, mde=mde, duration_days=duration_days,
        duration=iso_duration(definition["duration"]),
        total_units=max(sizes.values(), default=0) if champion_challenger else sum(sizes.values()),
        warnings=list(definition_warnings(definition)),
    )
    if daily_units and sizes:
        included_per_day = daily_units * definition["traffic_percent"] / 100
        if champion_challenger:
            days = preview["total_units"] / included_per_day
        else:
            total_weight = sum(v["weight"] for v in definition["variants"])
            days = max(sizes[v["key"]] / (included_per_day * v["weight"] / total_weight)
                       for v in definition["variants"])
        preview["days_needed"] = days
        if days > duration_days:
            preview["warnings"].append(
                f"At {daily_units:,} units a day and {definition['traffic_percent']:g}% traffic the planned "
                f"sample needs about {math.ceil(days * 10) / 10:g} days, but the test runs "
                f"{duration_days:g} days: it would end underpowered (inconclusive). Raise the traffic, "
                "lengthen the duration or accept a larger minimum change."
            )
    return preview
