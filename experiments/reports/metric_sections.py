"""The report's sections for guardrails and secondary metrics, from the stored document's `metrics`.

The primary keeps part 1's section (the document's top-level `variants` and `comparisons` are
its). These follow it: guardrails first, since they can hold a challenger back, then the
secondary metrics, which never decide; each group in the order of definition. A document
stored before several metrics existed has no `metrics`, so it gets no section and its page
is part 1's.
"""

from typing import Any

from experiments.choices import Aggregation, Direction, MetricRole, MetricType
from experiments.reports.chart_data import metric_effects_chart
from experiments.reports.tables import comparison_rows, metric_variant_rows
from experiments.reports.wording import display_scale, effect_unit, guardrail_verdict, margin_text

SECTION_ROLES = (MetricRole.GUARDRAIL, MetricRole.SECONDARY)


def metric_names(protocol: dict) -> dict[str, str]:
    """Each metric's name by key, from the frozen protocol (the document holds keys only)."""
    return {m["key"]: m["name"] for m in protocol.get("metrics", [])}


def metric_sections(document: dict, protocol: dict, *, level: float) -> list[dict[str, Any]]:
    """One section per guardrail, then per secondary metric; none for a document without `metrics`."""
    names = metric_names(protocol)
    controls = {v["key"] for v in protocol["variants"] if v["is_control"]}
    entries = document.get("metrics") or []
    return [_section(metric, names.get(metric["key"], metric["key"]), controls, level)
            for role in SECTION_ROLES for metric in entries if metric["role"] == role]


def _section(metric: dict, name: str, controls: set[str], level: float) -> dict[str, Any]:
    scale = display_scale(metric["type"])
    binary = metric["type"] == MetricType.BINARY
    guardrail = metric["role"] == MetricRole.GUARDRAIL
    unit = "percentage points" if binary else effect_unit(metric)
    rows = comparison_rows(metric, scale, name)
    if guardrail:
        for row, comparison in zip(rows, metric["comparisons"], strict=True):
            row["non_inferior"] = bool(comparison.get("non_inferior"))
            row["verdict"] = guardrail_verdict(metric, comparison, name=name)
    return {
        "key": metric["key"],
        "name": name,
        "role": metric["role"],
        "role_label": MetricRole(metric["role"]).label,
        "guardrail": guardrail,
        "type": metric["type"],
        "direction": Direction(metric["direction"]).label.lower(),
        "mean_aggregation": metric["aggregation"] == Aggregation.MEAN,
        "test": metric["test"],
        "margin": margin_text(metric) if guardrail else None,
        "effect_unit": unit,
        "mean_unit": "%" if binary else effect_unit(metric),
        "variant_rows": metric_variant_rows(metric, controls, scale),
        "comparison_rows": rows,
        "chart": metric_effects_chart(metric, name=name, unit=unit, level=level),
    }
