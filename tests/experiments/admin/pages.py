"""The admin's URLs, form bodies built the way a browser submits them, and an analysed experiment."""

import json
from datetime import timedelta

from django import forms
from django.urls import reverse
from django.utils.dateparse import parse_duration

from experiments.models import Experiment
from tests.experiments.builders import analysed, assigned_units, ingest, start

ADD_URL = reverse("admin:experiments_experiment_add")
CHANGELIST_URL = reverse("admin:experiments_experiment_changelist")
PREVIEW_URL = reverse("admin:experiments_experiment_preview")
SALT = "0123456789abcdef0123456789abcdef"  # a fixed split, so that the analysed data is the same every run


def change_url(experiment: Experiment) -> str:
    return reverse("admin:experiments_experiment_change", args=[experiment.pk])


def action_url(experiment: Experiment, action: str) -> str:
    return reverse(f"admin:experiments_experiment_{action}", args=[experiment.pk])


def preview_url(experiment: Experiment) -> str:
    return reverse("admin:experiments_experiment_change_preview", args=[experiment.pk])


def _text(value) -> str:
    return "" if value is None else str(value)


def management_form(prefix: str, rows: int) -> dict[str, str]:
    return {f"{prefix}-TOTAL_FORMS": str(rows), f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def variant_rows(variants: list[dict], prefix: str = "variants") -> dict[str, str]:
    """New variant rows (as on the add page): the management form and one row per variant."""
    data = management_form(prefix, len(variants))
    for index, variant in enumerate(variants):
        data[f"{prefix}-{index}-key"] = _text(variant.get("key"))
        data[f"{prefix}-{index}-weight"] = _text(variant.get("weight", 1))
        data[f"{prefix}-{index}-payload"] = json.dumps(variant.get("payload", {}))
        if variant.get("is_control"):
            data[f"{prefix}-{index}-is_control"] = "on"
    return data


# A part-2 metrics item's fields -> the metric row's form fields.
METRIC_ROW_FIELDS = {"key": "key", "name": "name", "role": "role", "type": "metric_type", "direction": "direction",
                     "aggregation": "aggregation", "baseline_mean": "baseline_mean", "baseline_sd": "baseline_sd",
                     "margin": "margin"}


def metric_rows(metrics: list[dict], prefix: str = "metrics") -> dict[str, str]:
    """New secondary metric and guardrail rows (API metrics items), with the defaults the add page shows."""
    data = management_form(prefix, len(metrics))
    for index, metric in enumerate(metrics):
        metric = {"direction": "increase", "aggregation": "sum", **metric}
        for name, field in METRIC_ROW_FIELDS.items():
            data[f"{prefix}-{index}-{field}"] = _text(metric.get(name))
    return data


def add_form_data(body: dict, *, expected_daily_units: int | None = None) -> dict[str, str]:
    """The add form filled in with an API create body (tests/experiments/api/definitions.py), either shape.

    With part 2's `metrics`, the primary fills the experiment's metric fields and the others the metric rows.
    """
    body = dict(body)
    metrics = body.pop("metrics", None) or []
    others = [m for m in metrics if m["role"] != "primary"]
    for primary in (m for m in metrics if m["role"] == "primary"):
        body["metric"] = {name: primary[name] for name in ("key", "name", "type", "direction", "aggregation")
                          if name in primary}
        body.update({name: primary[name] for name in ("baseline_mean", "baseline_sd", "mde") if name in primary})
    metric = body.get("metric", {})
    data = {
        "key": _text(body.get("key")), "name": _text(body.get("name")), "hypothesis": _text(body.get("hypothesis")),
        "design": _text(body.get("design")), "metric_name": _text(metric.get("name")),
        "metric_type": _text(metric.get("type")), "metric_direction": _text(metric.get("direction")),
        "metric_key": _text(metric.get("key")), "metric_aggregation": metric.get("aggregation", "sum"),
        "expected_daily_units": _text(expected_daily_units),
    }
    for name in ("baseline_mean", "baseline_sd", "mde", "sample_size_per_variant", "alpha", "power",
                 "alternative", "duration", "grace_period", "traffic_percent"):
        data[name] = _text(body.get(name))
    if body.get("auto_promote"):
        data["auto_promote"] = "on"
    return {**data, **variant_rows(body.get("variants", [])), **metric_rows(others)}


def api_definition(body: dict) -> dict:
    """The flat definition the API's serializer makes of a create body (what definition_errors sees)."""
    definition = {name: value for name, value in body.items() if name not in ("metric", "variants")}
    definition.update({f"metric_{name}": value for name, value in body["metric"].items()})
    for name in ("duration", "grace_period"):
        definition[name] = parse_duration(body[name])
    definition["variants"] = [{"weight": 1.0, "is_control": False, "payload": {}, **v} for v in body["variants"]]
    return definition


def page_form_data(response, **changes) -> dict[str, str]:
    """What a browser would post back from a change page as it was rendered, with `changes` applied."""
    data: dict[str, str] = {}

    def put(form, name):
        field, value = form.fields[name], form[name].value()
        if isinstance(field.widget, forms.CheckboxInput):
            if value:
                data[form.add_prefix(name)] = "on"
        elif isinstance(value, timedelta):
            data[form.add_prefix(name)] = str(field.prepare_value(value))
        else:
            data[form.add_prefix(name)] = _text(getattr(value, "pk", value))
        if field.show_hidden_initial:  # e.g. a JSON payload whose default is a callable
            data[form.add_initial_prefix(name)] = data.get(form.add_prefix(name), "")

    form = response.context["adminform"].form
    for name in form.fields:
        put(form, name)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = _text(management[name].value())
        if inline.has_change_permission:
            for row in formset.forms:
                for name in row.fields:
                    put(row, name)
    data.update({name: _text(value) for name, value in changes.items()})
    return data


def promotable() -> Experiment:
    """An analysed A/B test whose challenger clearly wins (a fixed salt keeps the split fixed)."""
    experiment = start(salt=SALT, mde=None, sample_size_per_variant=50,
                       variants=[{"key": "control", "is_control": True}, {"key": "green"}])
    units = assigned_units(experiment, 400)
    ingest(experiment, [(unit, int(index % (2 if variant == "green" else 10) == 0))
                        for index, (unit, variant) in enumerate(units.items())])
    assert analysed(experiment)["decision"]["outcome"] == "promote"
    return Experiment.objects.get(pk=experiment.pk)
