"""Everything one report page shows, built from the experiment and its stored result.

Until the lock module says READY (`experiments.lock.result_state`), the context holds the
protocol and the unlock time and nothing computed from outcomes (no units, means, effects,
intervals, p-values, latencies or charts), so no template can leak them by mistake.
"""

from datetime import datetime
from typing import Any

from experiments.choices import Design, Outcome
from experiments.lock import ResultState, result_state, visible_result
from experiments.models import Experiment
from experiments.reports.aggregates import latency_by_variant
from experiments.reports.audit import audit_rows, promotion
from experiments.reports.chart_data import report_charts
from experiments.reports.looks import look_timeline, looks_chart
from experiments.reports.metric_sections import metric_names, metric_sections
from experiments.reports.tables import check_rows, comparison_rows, latency_rows, protocol_rows, variant_rows
from experiments.reports.wording import decision_sentence, display_scale, interval_level, level_text, metric_label


def report_context(experiment: Experiment, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the report page renders; outcome figures only when the state is READY."""
    state = result_state(experiment, now)
    context: dict[str, Any] = {
        "experiment": experiment,
        "state": state,
        "metric": metric_label(experiment.metric_name),
        "protocol_rows": protocol_rows(experiment),
        "audit_events": audit_rows(experiment, show_details=state in (ResultState.READY, ResultState.STOPPED)),
        "look_timeline": look_timeline(experiment, result_visible=state == ResultState.READY),
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
        "comparison_rows": comparison_rows(document, scale, experiment.metric_name),
        "checks": check_rows(document, experiment.design),
        "decision": document["decision"],
        "outcome_label": Outcome(document["decision"]["outcome"]).label,
        "decision_sentence": decision_sentence(
            design=experiment.design, metric_name=experiment.metric_name, metric_type=protocol["metric"]["type"],
            document=document, control=control.key, alpha=protocol["alpha"], mde=protocol.get("mde"), level=level,
            metric_names=metric_names(protocol),
        ),
        "promotion": promotion(experiment),
        "latency_rows": (latency_rows(latency_by_variant(experiment), variants)
                         if experiment.design == Design.CHAMPION_CHALLENGER else None),
        "charts": report_charts(experiment, document, variants, level=level, scale=scale, unit=unit,
                                mean_unit=mean_unit),
        "looks_chart": looks_chart(experiment, document),
        # Guardrails, then secondary metrics; empty for a part-1 document, whose page stays part 1's.
        "metric_sections": metric_sections(document, protocol, level=level),
    }
