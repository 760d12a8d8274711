"""The experiment admin's read-only panels (status, frozen protocol, progress, result) and changelist columns."""

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.timesince import timeuntil

from experiments.admin.preview import frozen_metric_tests
from experiments.choices import Status
from experiments.lock import ResultState, is_locked, look_progress, look_progress_sentence, result_state, visible_result
from experiments.models import Experiment
from experiments.selectors import experiment_progress

TEMPLATES = "admin/experiments/experiment"


def report_url(experiment: Experiment) -> str:
    return f"/reports/{experiment.key}/"


def figure(value: float | None, spec: str = ".4g", suffix: str = "") -> str:
    """A result figure as shown everywhere in the admin: 4 significant digits, a dash when absent."""
    return "\u2014" if value is None else f"{format(value, spec)}{suffix}"


def _bar(share: float | None) -> dict:
    percent = 100 * (share or 0)
    return {"percent": percent, "width": min(percent, 100.0)}


def _comparison_row(comparison: dict) -> dict:
    c = comparison
    relative = None if c.get("relative_effect") is None else 100 * c["relative_effect"]
    return {
        "variant": c.get("variant"), "vs": c.get("vs"), "effect": figure(c.get("effect"), "+.4g"),
        "relative": figure(relative, "+.3g", "%"),
        "ci_low": figure(c.get("ci_low")), "ci_high": figure(c.get("ci_high")),
        "p_value": figure(c.get("p_value")), "adjusted_p_value": figure(c.get("adjusted_p_value")),
        "significant": c.get("significant"),
    }


class ExperimentPanels:
    """Read-only fields and list columns of ExperimentAdmin; every lock decision asks experiments.lock."""

    @admin.display(description="status")
    def status_summary(self, obj):
        now = timezone.now()
        progress = look_progress(obj) if obj.status == Status.RUNNING else None
        return render_to_string(f"{TEMPLATES}/status_summary.html", {
            "experiment": obj, "now": now, "locked": result_state(obj, now) == ResultState.LOCKED,
            "looks": look_progress_sentence(progress) if progress else None,
        })

    @admin.display(description="frozen protocol")
    def frozen_protocol(self, obj):
        protocol = obj.protocol or {}
        sizes = [(v["key"], protocol["sample_size_per_variant"][v["key"]]) for v in protocol.get("variants", [])]
        return render_to_string(f"{TEMPLATES}/frozen_protocol.html",
                                {"experiment": obj, "protocol": protocol, "sizes": sizes, **frozen_metric_tests(obj)})

    @admin.display(description="progress")
    def progress_summary(self, obj):
        progress = experiment_progress(obj)
        planned = (obj.protocol or {}).get("sample_size_per_variant") or {}
        rows = [{"key": key, "units": units, "planned": planned.get(key)} for key, units in progress["units"].items()]
        return render_to_string(f"{TEMPLATES}/progress_summary.html",
                                {"progress": progress, "rows": rows, "analysed": visible_result(obj) is not None,
                                 **_bar(progress["share_of_plan"])})

    @admin.display(description="result")
    def result_summary(self, obj):
        document = visible_result(obj).document
        checks = document.get("checks") or {}
        return render_to_string(f"{TEMPLATES}/result_summary.html", {
            "decision": document.get("decision") or {},
            "test": document.get("test"),
            "analyzed_at": document.get("analyzed_at"),
            "variants": [{"key": v.get("key"), "units": v.get("units"), "mean": figure(v.get("mean")),
                          "sd": figure(v.get("sd"))} for v in document.get("variants", [])],
            "comparisons": [_comparison_row(c) for c in document.get("comparisons", [])],
            "sample_ratio_p_value": figure(checks.get("sample_ratio_p_value")),
            "sample_ratio_ok": checks.get("sample_ratio_ok"),
            "sample_size_reached": checks.get("sample_size_reached") or {},
            "incomplete_pairs": checks.get("incomplete_pairs"),
            "report_url": report_url(obj),
        })

    @admin.display(description="planned sample reached")
    def planned_sample_reached(self, obj):
        if obj.status == Status.DRAFT:
            return None
        return render_to_string(f"{TEMPLATES}/progress_bar.html", _bar(experiment_progress(obj)["share_of_plan"]))

    @admin.display(description="days left")
    def days_left(self, obj):
        if obj.status != Status.RUNNING:
            return None
        now = timezone.now()
        if now < obj.ends_at:
            days = (obj.ends_at - now).total_seconds() / 86400
            return f"{days:.1f} days" if days >= 1 else timeuntil(obj.ends_at, now)
        return f"ended; unlocks in {timeuntil(obj.unlocks_at, now)}" if is_locked(obj, now) else "ended; analysis due"

    @admin.display(description="decision")
    def decision(self, obj):
        result = visible_result(obj)
        if result is None:
            return None
        return f"{result.outcome} ({result.winner})" if result.winner else result.outcome
