"""The report's tables and chart inputs, built from the frozen protocol, the stored results document and the latencies.

Every cell carries the stored number (`value`, rendered as a data-value attribute, exact
to the last digit) next to its rounded text, so that a reader, a test or a scraper can
check the page against the JSON download.
"""

import math
from typing import Any

from scipy import stats

from analysis.types import AnalysisPlan
from experiments.choices import Aggregation, MetricRole, MetricType
from experiments.db.rows import Latency
from experiments.definitions.durations import iso_duration
from experiments.models import Experiment, Variant
from experiments.reports.charts import EffectBar, MeanBar
from experiments.reports.wording import (
    cuped_sentence,
    decimals_for,
    half_width,
    interval_text,
    margin_text,
    number,
    p_clause,
    p_value_text,
    percent,
)

# The analysis plan's default, which every stored analysis ran with.
MAX_INCOMPLETE_SHARE = AnalysisPlan.__dataclass_fields__["incomplete_pairs_max_share"].default


def _cell(field: str, value: Any, text: str) -> dict[str, Any]:
    return {"field": field, "value": "" if value is None else repr(value), "text": text}


def protocol_rows(experiment: Experiment) -> list[tuple[str, str]]:
    """The preregistered protocol as label/value pairs (no outcome in it: shown even while locked)."""
    protocol = experiment.protocol or {}
    metric = protocol.get("metric", {})
    binary = metric.get("type") == MetricType.BINARY
    mde = protocol.get("mde")
    k = max(1, len(protocol.get("variants", [])) - 1)
    sizes = protocol.get("sample_size_per_variant", {})
    weights = {v["key"]: v["weight"] for v in protocol.get("variants", [])}
    control = next((v["key"] for v in protocol.get("variants", []) if v["is_control"]), "")
    rows = [
        ("Design", experiment.get_design_display()),
        ("Metric", (f"{metric.get('name', experiment.metric_name)} ({metric.get('type', '')}, "
                    f"{metric.get('direction', '')} is better)")),
        ("Test", protocol.get("test", "")),
        ("Alternative", protocol.get("alternative", "")),
        ("Alpha", f"{protocol.get('alpha'):g}" + (f" (each of {k} challengers tested at {protocol['alpha'] / k:.4g}, "
                                                 "p-values Holm-adjusted)" if k > 1 else "")),
        ("Power", f"{protocol.get('power'):g}"),
        ("Minimum detectable effect", "–" if mde is None else (
            f"{number(mde * 100, decimals_for(mde * 100))} percentage points" if binary else f"{mde:g}")),
        ("Baseline mean", "–" if protocol.get("baseline_mean") is None else (
            percent(protocol["baseline_mean"], 2) if binary else f"{protocol['baseline_mean']:g}")),
        ("Baseline standard deviation",
         "–" if protocol.get("baseline_sd") is None else f"{protocol['baseline_sd']:g}"),
        # In the variants' order: the stored JSON's key order is not theirs (jsonb sorts keys).
        ("Planned sample per variant", ", ".join(f"{key}: {sizes[key]:,}" for key in weights if key in sizes)),
        ("Variants (weight)", ", ".join(f"{key}{' (control)' if key == control else ''}: {weight:g}"
                                        for key, weight in weights.items())),
        ("Duration", protocol.get("duration", iso_duration(experiment.duration))),
        ("Grace period", protocol.get("grace_period", iso_duration(experiment.grace_period))),
    ]
    return rows + metric_protocol_rows(protocol)


def metric_protocol_rows(protocol: dict) -> list[tuple[str, str]]:
    """A row per guardrail and secondary metric, and which test set the sample; none for a part-1 protocol."""
    metrics = protocol.get("metrics", [])
    rows = []
    for role, title in ((MetricRole.GUARDRAIL, "Guardrail"), (MetricRole.SECONDARY, "Secondary metric")):
        for metric in (m for m in metrics if m["role"] == role):
            facts = [f"{metric['type']}, {metric['direction']} is better"
                     + (", each unit's mean" if metric["aggregation"] == Aggregation.MEAN else "")]
            if role == MetricRole.GUARDRAIL:
                sizes = metric["sample_size_per_variant"] or {}
                facts += [f"margin {margin_text(metric)}",
                          f"{metric['test']} at alpha {metric['alpha']:.4g}, power {metric['power']:.4g}",
                          f"needs {max(sizes.values(), default=0):,} per variant"]
            else:
                facts += [metric["test"], "does not decide"]
            rows.append((f"{title}: {metric['name']}", "; ".join(facts)))
    setter = next((m for m in metrics if m["sets_sample"]), None)
    if setter:
        rows.append(("Planned sample set by", f"{setter['name']} ({setter['role']}), each test at power "
                                              f"{setter['power']:.4g}"))
    return rows


def variant_rows(document: dict, protocol: dict, level: float) -> list[dict[str, Any]]:
    """Per variant: units against the plan, and the mean with the interval of that mean."""
    binary = protocol["metric"]["type"] == MetricType.BINARY
    planned = protocol["sample_size_per_variant"]
    controls = {v["key"] for v in protocol["variants"] if v["is_control"]}
    reached = document["checks"]["sample_size_reached"]
    rows = []
    for variant in document["variants"]:
        interval = mean_interval(variant, level, binary=binary)
        scale = 100.0 if binary else 1.0
        decimals = decimals_for((interval[1] - interval[0]) / 2 * scale) if interval else 2
        share = variant["units"] / planned[variant["key"]] if planned.get(variant["key"]) else None
        rows.append({
            "key": variant["key"],
            "is_control": variant["key"] in controls,
            "units": variant["units"],
            "planned": planned.get(variant["key"]),
            "share": percent(share, 0) if share is not None else "–",
            "reached": reached.get(variant["key"]),
            "cells": [
                _cell("mean", variant["mean"], _scaled(variant["mean"], scale, decimals)),
                _cell("sd", variant["sd"], _scaled(variant["sd"], scale, decimals)),
            ],
            "interval": (interval_text(interval[0] * scale, interval[1] * scale, decimals) if interval else "–"),
        })
    return rows


def metric_variant_rows(metric: dict, controls: set[str], scale: float) -> list[dict[str, Any]]:
    """Per variant of a guardrail or secondary metric: units, units without observations (mean aggregation), mean, sd.

    The mean is printed to the first significant digit of its standard error.
    """
    rows = []
    for variant in metric["variants"]:
        n, mean, sd = variant["units"], variant["mean"], variant["sd"]
        decimals = decimals_for(sd * scale / math.sqrt(n)) if sd is not None and n else 2
        rows.append({
            "key": variant["key"], "is_control": variant["key"] in controls, "units": n,
            "without": variant.get("units_without_observations"),
            "cells": [_cell("mean", mean, _scaled(mean, scale, decimals)),
                      _cell("sd", sd, _scaled(sd, scale, decimals))],
        })
    return rows


def mean_interval(variant: dict, level: float, *, binary: bool) -> tuple[float, float] | None:
    """mean ± crit * sd / sqrt(n): crit from the normal for a rate, from t(n - 1) otherwise."""
    n, mean, sd = variant["units"], variant["mean"], variant["sd"]
    if mean is None or sd is None or n < 2:
        return None
    tail = 1 - (1 - level) / 2
    critical = stats.norm.ppf(tail) if binary else stats.t.ppf(tail, n - 1)
    margin = critical * sd / math.sqrt(n)
    return mean - margin, mean + margin


def _scaled(value: float | None, scale: float, decimals: int) -> str:
    return "–" if value is None else number(value * scale, decimals)


def comparison_rows(document: dict, scale: float, metric_name: str | None = None) -> list[dict[str, Any]]:
    """One row per challenger: both means, effect, relative effect, interval, p and adjusted p; a CUPED
    comparison's row also has its `cuped_sentence` (`wording.cuped_sentence`, with `metric_name`)."""
    means = {v["key"]: v["mean"] for v in document["variants"]}
    rows = []
    for comparison in document["comparisons"]:
        decimals = decimals_for(half_width(comparison, scale))
        relative_width = _relative_half_width(comparison)
        relative_decimals = decimals_for(relative_width * 100) if relative_width else 1
        low = comparison["ci_low"] * scale if comparison["ci_low"] is not None else None
        high = comparison["ci_high"] * scale if comparison["ci_high"] is not None else None
        effect = comparison["effect"]
        relative = comparison["relative_effect"]
        rows.append({
            "variant": comparison["variant"],
            "vs": comparison["vs"],
            "significant": comparison["significant"],
            "not_computable_reason": comparison.get("not_computable_reason"),
            "cells": [
                _cell("variant_mean", means.get(comparison["variant"]),
                      _scaled(means.get(comparison["variant"]), scale, decimals)),
                _cell("vs_mean", means.get(comparison["vs"]), _scaled(means.get(comparison["vs"]), scale, decimals)),
                _cell("effect", effect, number(effect * scale, decimals, signed=True) if effect is not None else "–"),
                _cell("relative_effect", relative,
                      percent(relative, relative_decimals, signed=True) if relative is not None else "–"),
            ],
            "interval": {
                "low": _cell("ci_low", comparison["ci_low"], "")["value"],
                "high": _cell("ci_high", comparison["ci_high"], "")["value"],
                "text": interval_text(low, high, decimals) if effect is not None else "–",
            },
            "p_cells": [
                _cell("p_value", comparison["p_value"], p_value_text(comparison["p_value"])),
                _cell("adjusted_p_value", comparison["adjusted_p_value"], p_value_text(comparison["adjusted_p_value"])),
            ],
        })
        if comparison.get("cuped"):
            rows[-1]["cuped_sentence"] = cuped_sentence(metric_name or document.get("key", "the metric"), comparison)
        if "statistic_z" in comparison:
            rows[-1]["look_sentence"] = look_sentence(document.get("look"), comparison, scale)
    return rows


def look_sentence(look: dict | None, comparison: dict, scale: float) -> str:
    """A comparison at a look: its Z against the boundary, nominal p against nominal alpha, the repeated interval."""
    where = f"At look {look['index']} of {look['of']}" if look else "At this look"
    if comparison.get("statistic_z") is None:
        return f"{where}: not assessed ({comparison.get('look_note') or comparison.get('not_computable_reason')})."
    boundary = comparison.get("boundary")
    low, high = comparison.get("rci_low"), comparison.get("rci_high")
    interval = ", ".join("open" if end is None else f"{end * scale:+.4g}" for end in (low, high))
    crossed = {"preferred": "crossed it in the preferred direction", "harmful": "crossed it on the harmful side",
               None: "did not cross it"}[comparison.get("crossed")]
    return (f"{where} (information fraction {comparison['information_fraction']:.3f}): Z = "
            f"{comparison['statistic_z']:+.3f} against the boundary "
            f"{'none' if boundary is None else f'{boundary:.3f}'}, which it {crossed}; nominal p = "
            f"{comparison['nominal_p_value']:.4g} against the nominal alpha {comparison['nominal_alpha']:.4g}; "
            f"repeated confidence interval [{interval}].")


def _relative_half_width(comparison: dict) -> float | None:
    low, high = comparison.get("relative_ci_low"), comparison.get("relative_ci_high")
    if low is not None and high is not None:
        return (high - low) / 2
    return None


def effect_bars(document: dict, scale: float) -> list[EffectBar]:
    """The computable comparisons as chart bars, in display units."""
    return [
        EffectBar(
            label=c["variant"], effect=c["effect"] * scale,
            low=c["ci_low"] * scale if c["ci_low"] is not None else None,
            high=c["ci_high"] * scale if c["ci_high"] is not None else None,
            significant=c["significant"],
        )
        for c in document["comparisons"] if c["effect"] is not None
    ]


def mean_bars(document: dict, protocol: dict, level: float, scale: float) -> list[MeanBar]:
    """Every variant with a mean and an interval for it, in display units."""
    binary = protocol["metric"]["type"] == MetricType.BINARY
    controls = {v["key"] for v in protocol["variants"] if v["is_control"]}
    bars = []
    for variant in document["variants"]:
        interval = mean_interval(variant, level, binary=binary)
        if interval is not None:
            bars.append(MeanBar(variant["key"], variant["mean"] * scale, interval[0] * scale, interval[1] * scale,
                                variant["key"] in controls))
    return bars


def check_rows(document: dict, design: str) -> list[dict[str, Any]]:
    """The checks: sample ratio (A/B) or incomplete pairs (champion/challenger), then each variant's plan."""
    checks = document["checks"]
    rows = []
    if design == "ab":
        p = checks["sample_ratio_p_value"]
        rows.append({"name": "Sample ratio (assigned units against the weights)",
                     "value": p_clause(p) if p is not None else "–",
                     "ok": checks["sample_ratio_ok"], "status": "passed" if checks["sample_ratio_ok"] else "failed",
                     "note": "fails below p = 0.001 (a broken assignment or lost units)"})
    else:
        incomplete_ok = checks.get("incomplete_pairs_share", 0.0) <= MAX_INCOMPLETE_SHARE
        rows.append({"name": "Incomplete pairs (a request missing a variant's score)",
                     "value": f"{checks['incomplete_pairs']} ({percent(checks.get('incomplete_pairs_share'))})",
                     "ok": incomplete_ok, "status": "passed" if incomplete_ok else "failed",
                     "note": f"fails above {percent(MAX_INCOMPLETE_SHARE, 0)} of the units"})
    for key in (v["key"] for v in document["variants"]):
        reached = checks["sample_size_reached"].get(key, False)
        # Not a failure: a significant result stands below plan, a non-significant one is inconclusive.
        rows.append({"name": f"Planned sample size reached: {key}", "value": "yes" if reached else "no",
                     "ok": reached, "status": "reached" if reached else "not reached",
                     "note": "below plan, a non-significant result is inconclusive"})
    return rows


def latency_rows(latencies: dict[int, Latency], variants: list[Variant]) -> list[dict[str, Any]]:
    """Per variant (champion/challenger): how many latencies, and their mean, p50 and p95 in milliseconds."""
    rows = []
    for variant in variants:
        latency = latencies.get(variant.id)
        rows.append({
            "variant": variant.key, "is_control": variant.is_control,
            "count": latency.count if latency else 0,
            "cells": [
                {"field": field, "value": getattr(latency, field) if latency else None,
                 "text": number(getattr(latency, field), 1) if latency else "–"}
                for field in ("mean", "p50", "p95")
            ],
        })
    return rows
