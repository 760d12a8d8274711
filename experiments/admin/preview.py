"""The admin's power preview: the sample size a draft would freeze, and how many days it needs."""

import math
from typing import Any

from analysis.errors import AnalysisError
from experiments.choices import Design
from experiments.definitions.durations import iso_duration
from experiments.definitions.fields import experiment_definition
from experiments.definitions.planning import planned_sample
from experiments.definitions.rules import definition_warnings
from experiments.models import Experiment
from experiments.services.definition import experiment_definition_check


def power_preview(definition: dict[str, Any] | None, *, daily_units: int | None,
                  experiment: Experiment | None = None) -> dict[str, Any]:
    """The sample size a draft would freeze if started now, and how many days it needs.

    Days needed = the longest time any variant takes to reach its planned size, each variant
    getting daily units x traffic share x its weight share (for A/B). With sizes that follow
    the weights this is total planned units / (daily units x traffic share). Champion/challenger
    scores every sampled request with every variant, so it needs the control's size in requests.
    """
    preview: dict[str, Any] = {
        "sample_size_per_variant": None, "mde": None, "total_units": None, "expected_daily_units": daily_units,
        "days_needed": None, "duration_days": None, "duration": None, "warnings": [], "errors": {},
    }
    if not definition:
        return preview
    check = experiment_definition_check(definition=definition, experiment=experiment)
    if check.errors:
        preview["errors"] = check.errors
        return preview
    definition = check.whole
    try:
        mde, sizes = planned_sample(definition)
    except (AnalysisError, ArithmeticError, KeyError, StopIteration) as error:
        preview["errors"] = {"mde": [str(error)]}
        return preview
    return _schedule(preview, definition, mde=mde, sizes=sizes, daily_units=daily_units)


def frozen_preview(experiment: Experiment, *, daily_units: int | None) -> dict[str, Any]:
    """The same figures for a started experiment, from its frozen protocol (no outcome in it)."""
    protocol = experiment.protocol or {}
    preview: dict[str, Any] = {"expected_daily_units": daily_units, "warnings": [], "errors": {}}
    return _schedule(preview, experiment_definition(experiment), mde=protocol.get("mde"),
                     sizes=protocol.get("sample_size_per_variant") or {}, daily_units=daily_units)


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
