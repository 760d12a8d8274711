"""Everything one report page shows, built from the experiment and its stored result.

Until the lock module says READY (`experiments.lock.result_state`), the context holds the
protocol and the unlock time and nothing computed from outcomes (no units, means, effects,
intervals, p-values, latencies or charts), so no template can leak them by mistake.
"""

from datetime import datetime
from typing import Any

from analysis.types import AnalysisPlan
from experiments.choices import AuditAction, Outcome, Status
from experiments.lock import ResultState, result_state, visible_result
from experiments.models import Experiment
from experiments.reports import charts
from experiments.reports.aggregates import latency_by_variant, units_per_day
from experiments.reports.tables import comparison_rows, effect_bars, mean_bars, protocol_rows, variant_rows
from experiments.reports.wording import (
    decision_sentence,
    display_scale,
    interval_level,
    level_text,
    metric_label,
    number,
    p_clause,
    percent,
)

# The analysis plan's default, which every stored analysis ran with.
MAX_INCOMPLETE_SHARE = AnalysisPlan.__dataclass_fields__["incomplete_pairs_max_share"].default
DETAILED_ACTIONS = {AuditAction.STARTED, AuditAction.ANALYZED, AuditAction.PROMOTED, AuditAction.TRAFFIC_CHANGED}


def report_context(experiment: Experiment, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the report page renders; outcome figures only when the state is READY."""
    state = result_state(experiment, now)
    context: dict[str, Any] = {
        "experiment": experiment,
        "state": state,
        "metric": metric_label(experiment.metric_name),
        "protocol_rows": protocol_rows(experiment),
        "audit_events": _audit_rows(experiment, show_details=state in (ResultState.READY, ResultState.STOPPED)),
    }
    if state == ResultState.READY:
        context.update(_result_context(experiment, visible_result(experiment, now).document))
    return context


def _result_context(experiment: Experiment, document: dict) -> dict[str, Any]:
    protocol = experiment.protocol
    variants = list(experiment.variants.all())
    control = next(v for v in variants if v.is_control)
    level = interval_level(protocol["alpha"], len(document["comparisons"]))
    scale = display_scale(protocol["metric"]["type"])
    unit = "percentage points" if scale != 1 else ""
    mean_unit = "%" if scale != 1 else ""
    return {
        "document": document,
        "analyzed_at": datetime.fromisoformat(document["analyzed_at"]),
        "level": level_text(level),
        "effect_unit": unit,
        "mean_unit": mean_unit,
        "variant_rows": variant_rows(document, protocol, level),
        "comparison_rows": comparison_rows(document, scale),
        "checks": _checks(document, experiment.design),
        "decision": document["decision"],
        "outcome_label": Outcome(document["decision"]["outcome"]).label,
        "decision_sentence": decision_sentence(
            design=experiment.design, metric_name=experiment.metric_name, metric_type=protocol["metric"]["type"],
            document=document, control=control.key, alpha=protocol["alpha"], mde=protocol.get("mde"), level=level,
        ),
        "promotion": _promotion(experiment),
        "latency_rows": _latency_rows(experiment, variants) if experiment.design == "champion_challenger" else None,
        "charts": _charts(experiment, document, protocol, variants, level, scale, unit, mean_unit),
    }


def _audit_rows(experiment: Experiment, *, show_details: bool) -> list[dict[str, Any]]:
    """The audit trail; while locked without details, which could name an outcome or a variant."""
    return [
        {
            "at": event.at, "action": event.action, "label": event.get_action_display(),
            "actor": event.actor_label, "reason": event.reason,
            "details": _details(event) if show_details else "",
        }
        for event in experiment.audit_events.order_by("at", "id")
    ]


def _details(event) -> str:
    # A created or updated event holds the whole definition, which the protocol section shows
    # better; the details worth a column are the hash, the outcome and the variant.
    if event.action not in DETAILED_ACTIONS:
        return ""
    if event.action == AuditAction.TRAFFIC_CHANGED:
        before, after = event.details.get("before", {}), event.details.get("after", {})
        return f"traffic {before.get('traffic_percent')}% → {after.get('traffic_percent')}%"
    return "; ".join(f"{name}: {'–' if value is None else value}" for name, value in event.details.items())


def _checks(document: dict, design: str) -> list[dict[str, Any]]:
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


def _promotion(experiment: Experiment) -> dict[str, Any]:
    promoted = experiment.audit_events.filter(action=AuditAction.PROMOTED).order_by("-at").first()
    return {
        "concluded": experiment.status == Status.CONCLUDED,
        "variant": experiment.concluded_variant.key if experiment.concluded_variant else None,
        "at": experiment.concluded_at,
        "by": promoted.actor_label if promoted else None,
        "auto_promote": experiment.auto_promote,
    }


def _latency_rows(experiment: Experiment, variants: list) -> list[dict[str, Any]]:
    latencies = latency_by_variant(experiment)
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


def _charts(experiment, document, protocol, variants, level, scale, unit, mean_unit) -> dict[str, str | None]:
    mde = protocol.get("mde")
    mde_lines: list[float] = []
    if mde:
        preferred = 1 if protocol["metric"]["direction"] == "increase" else -1
        mde_lines = ([-mde * scale, mde * scale] if protocol["alternative"] == "two-sided"
                     else [preferred * mde * scale])
    bars = effect_bars(document, scale)
    means = mean_bars(document, protocol, level, scale)
    per_day = units_per_day(experiment)
    series = {}
    for variant in variants:
        running_total, points = 0, []
        for day, units in per_day.get(variant.id, []):
            running_total += units
            points.append((day, running_total))
        if points:
            series[variant.key] = points
    level_label = level_text(level)
    return {
        # Each chart is trusted server output (matplotlib from stored numbers); the template
        # marks it safe, so it must never contain text a user typed without escaping: the
        # labels are variant keys (slugs), the rest numbers.
        "effects": charts.effects_chart(bars, mde_lines=mde_lines, unit=unit, level=level_label) if bars else None,
        "means": charts.means_chart(means, unit=mean_unit, level=level_label) if means else None,
        "units": charts.units_chart(
            series, controls={v.key for v in variants if v.is_control},
            planned={v.key: protocol["sample_size_per_variant"][v.key] for v in variants},
            period=(experiment.started_at.date(), experiment.ends_at.date()),
        ) if series else None,
    }
