"""The preregistered protocol: built from a definition at start, canonical JSON, SHA-256."""

import hashlib
import json
import math
from datetime import datetime
from typing import Any

from analysis.pipeline import hypothesis_test_name
from analysis.power import PowerPlan
from analysis.registry import preregistered_test
from analysis.sequential import efficacy_boundaries, nominal_alphas
from experiments.choices import Aggregation, Alternative, MetricRole
from experiments.definitions.durations import iso_duration
from experiments.definitions.fields import default_metric_key
from experiments.definitions.planning import (
    MetricTestPlan,
    SamplePlan,
    has_interim_looks,
    looks_side_alpha,
    planned_looks,
    planned_spending,
    sample_plan,
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, no NaN: the same protocol always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def protocol_hash(protocol: dict[str, Any]) -> str:
    """SHA-256 hex digest of the protocol's canonical JSON."""
    return hashlib.sha256(canonical_json(protocol).encode("utf-8")).hexdigest()


def build_protocol(definition: dict[str, Any], *, started_at: datetime) -> dict[str, Any]:
    """Everything the analysis will be held to, frozen at start.

    `traffic_percent` is left out on purpose: it is the one setting that may change while
    running (a ramp), and it changes who is included, not how the test is run.
    """
    plan = sample_plan(definition)
    mde, sizes = plan.mde, plan.sample_size_per_variant
    ends_at = started_at + definition["duration"]
    protocol = {
        "design": definition["design"],
        "metric": {
            "name": definition["metric_name"],
            "type": definition["metric_type"],
            "direction": definition["metric_direction"],
        },
        "baseline_mean": definition.get("baseline_mean"),
        "baseline_sd": definition.get("baseline_sd"),
        "mde": mde,
        "alpha": definition["alpha"],
        "power": definition["power"],
        "alternative": definition["alternative"],
        "variants": [
            {"key": v["key"], "weight": v["weight"], "is_control": bool(v.get("is_control"))}
            for v in definition["variants"]
        ],
        "sample_size_per_variant": sizes,
        "test": hypothesis_test_name(definition["design"], definition["metric_type"]),
        "duration": iso_duration(definition["duration"]),
        "grace_period": iso_duration(definition["grace_period"]),
        "started_at": started_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "unlocks_at": (ends_at + definition["grace_period"]).isoformat(),
    }
    if has_several_metrics(definition):
        protocol["metrics"] = protocol_metrics(definition, plan)
    if has_interim_looks(definition):
        protocol.update(protocol_looks(definition, plan, started_at=started_at))
    return protocol


def protocol_looks(definition: dict[str, Any], plan: SamplePlan, *, started_at: datetime | None) -> dict[str, Any]:
    """The protocol's interim-look fields (DESIGN.md part 2): `looks`, `spending`, `inflation_factor`
    and `fixed_sample_size_per_variant`.

    `looks[i]` = {"index", "fraction", "at", "boundary", "nominal_alpha"}: look i at
    `started_at + fraction x duration + grace_period` (the last one when the lock lifts), with the
    primary's planned boundary at the planned fractions. A look that spends (almost) no alpha has an
    infinite boundary: null here, nominal alpha 0. `at` is None before the start (the preview).
    """
    fractions = planned_looks(definition)
    spending = planned_spending(definition)
    boundaries = efficacy_boundaries(fractions, spending, looks_side_alpha(definition))
    sides = 2 if definition["alternative"] == Alternative.TWO_SIDED else 1
    looks = []
    for index, (fraction, boundary, side_alpha) in enumerate(
            zip(fractions, boundaries, nominal_alphas(boundaries)), start=1):
        at = (started_at + fraction * definition["duration"] + definition["grace_period"]) if started_at else None
        finite = math.isfinite(boundary)  # 1 - Phi(+inf) = 0: a look that cannot reject
        looks.append({"index": index, "fraction": fraction, "at": at.isoformat() if at else None,
                      "boundary": boundary if finite else None, "nominal_alpha": sides * side_alpha})
    return {"looks": looks, "spending": spending, "inflation_factor": plan.inflation_factor,
            "fixed_sample_size_per_variant": plan.fixed_sample_size_per_variant}


def has_several_metrics(definition: dict[str, Any]) -> bool:
    """Whether the definition says more than part 1 could: other metrics, or a primary key or aggregation
    other than part 1's. Only then does the protocol hold `metrics`, so a part-1 experiment hashes as before."""
    return bool(definition.get("metrics")) or bool(definition.get("cuped")) or (
        definition.get("metric_aggregation", Aggregation.SUM) != Aggregation.SUM
        or definition.get("metric_key") not in (None, "", default_metric_key(definition["metric_name"]))
    )


def definition_metrics(definition: dict[str, Any], *, mde: float | None) -> list[dict[str, Any]]:
    """Every metric of a definition in part 2's shape, the primary first (with `mde`; the others None).

    Each entry has `cuped` and `expected_correlation` (the answers' shape); the protocol keeps
    them only with CUPED on (`protocol_metrics`)."""
    primary = {
        "key": definition.get("metric_key") or default_metric_key(definition["metric_name"]),
        "name": definition["metric_name"], "role": MetricRole.PRIMARY.value, "type": definition["metric_type"],
        "direction": definition["metric_direction"],
        "aggregation": definition.get("metric_aggregation") or Aggregation.SUM.value,
        "baseline_mean": definition.get("baseline_mean"), "baseline_sd": definition.get("baseline_sd"),
        "mde": mde, "margin": None,
        "cuped": bool(definition.get("cuped")), "expected_correlation": definition.get("expected_correlation"),
    }
    others = [
        {"key": m["key"], "name": m["name"], "role": m["role"], "type": m["metric_type"], "direction": m["direction"],
         "aggregation": m["aggregation"], "baseline_mean": m.get("baseline_mean"),
         "baseline_sd": m.get("baseline_sd"), "mde": None, "margin": m.get("margin"),
         "cuped": bool(m.get("cuped")), "expected_correlation": m.get("expected_correlation")}
        for m in definition.get("metrics") or []
    ]
    return [primary, *others]


def protocol_metrics(definition: dict[str, Any], plan: SamplePlan) -> list[dict[str, Any]]:
    """`protocol.metrics`: every metric's definition and its test's plan, the primary first.

    CUPED's keys enter only when on (so that a protocol without CUPED hashes as before):
    `"cuped": true`, `"expected_correlation"` when given, and then `"unadjusted_effect_size"`
    beside the adjusted `effect_size`."""
    return [_without_cuped_off({**metric, **_test_entry(test)})
            for metric, test in zip(definition_metrics(definition, mde=plan.mde), plan.tests)]


def _without_cuped_off(entry: dict[str, Any]) -> dict[str, Any]:
    if not entry.get("cuped"):
        entry.pop("cuped", None)
        entry.pop("expected_correlation", None)
    elif entry.get("expected_correlation") is None:
        entry.pop("expected_correlation", None)
    return entry


def _test_entry(test: MetricTestPlan) -> dict[str, Any]:
    entry = {"test": test.test, "alpha": test.alpha, "power": test.power, "effect_size": test.effect_size,
             "sample_size_per_variant": test.sample_size_per_variant, "sets_sample": test.sets_sample}
    if test.cuped and test.expected_correlation is not None and test.unadjusted_effect_size is not None:
        entry["unadjusted_effect_size"] = test.unadjusted_effect_size
    return entry


def frozen_protocol_metrics(protocol: dict[str, Any], *, metric_key: str) -> list[dict[str, Any]]:
    """A frozen protocol's `metrics`; a part-1 protocol's one entry from its part-1 fields (nothing solved)."""
    if "metrics" in protocol:
        return protocol["metrics"]
    metric, variants = protocol["metric"], protocol["variants"]
    challengers = [v for v in variants if not v["is_control"]]
    control = next(v for v in variants if v["is_control"])
    plan = PowerPlan(
        design=protocol["design"], metric_type=metric["type"], alpha=protocol["alpha"], power=protocol["power"],
        alternative=protocol["alternative"], ratios=tuple(v["weight"] / control["weight"] for v in challengers),
        baseline_mean=protocol["baseline_mean"], baseline_sd=protocol["baseline_sd"],
    )
    return [{
        "key": metric_key, "name": metric["name"], "role": MetricRole.PRIMARY.value, "type": metric["type"],
        "direction": metric["direction"], "aggregation": Aggregation.SUM.value,
        "baseline_mean": protocol["baseline_mean"], "baseline_sd": protocol["baseline_sd"], "mde": protocol["mde"],
        "margin": None, "test": protocol["test"], "alpha": protocol["alpha"] / len(challengers),
        "power": protocol["power"],
        "effect_size": preregistered_test(protocol["design"], metric["type"]).planning.effect_size(plan, protocol["mde"]),
        "sample_size_per_variant": protocol["sample_size_per_variant"], "sets_sample": True,
    }]
