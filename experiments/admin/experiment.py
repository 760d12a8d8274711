"""The experiment admin: a definition form with a power preview, lifecycle buttons, progress and result."""

import copy
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import admin, messages
from django.contrib.admin.utils import construct_change_message
from django.http import HttpResponseRedirect

from experiments.admin.forms import ExperimentAdminForm
from experiments.admin.inlines import AuditTrailInline, MetricInline, VariantInline
from experiments.admin.lifecycle import ACTIONS, available_actions, error_text
from experiments.admin.panels import ExperimentPanels, report_url
from experiments.admin.preview import power_preview
from experiments.admin.views import DAILY_UNITS, ExperimentViews, daily_units
from experiments.choices import Status
from experiments.definitions.fields import DEFINITION_FIELDS, experiment_definition
from experiments.errors import ExperimentError
from experiments.lock import visible_result
from experiments.models import Experiment
from experiments.permissions import RUN
from experiments.services.definition import RUNNING_EDITABLE_FIELDS, experiment_create, experiment_update


def with_query(url: str, **params) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), **params})))


@admin.register(Experiment)
class ExperimentAdmin(ExperimentPanels, ExperimentViews, admin.ModelAdmin):
    """Experiments: a definition form with a power preview, lifecycle buttons, progress and result."""

    form = ExperimentAdminForm
    list_display = ("key", "name", "design", "status", "planned_sample_reached", "days_left", "decision")
    list_filter = ("status", "design")
    search_fields = ("key", "name")
    list_per_page = 50
    actions = None
    inlines = (VariantInline, MetricInline, AuditTrailInline)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("result", "concluded_variant").prefetch_related(
            "variants", "metrics")

    def get_inlines(self, request, obj):
        return [VariantInline, MetricInline, AuditTrailInline] if obj is not None else [VariantInline, MetricInline]

    def has_change_permission(self, request, obj=None) -> bool:
        # Only a draft (everything) or a running test (its traffic) has anything left to edit.
        return super().has_change_permission(request, obj) and (
            obj is None or obj.status in (Status.DRAFT, Status.RUNNING))

    def has_delete_permission(self, request, obj=None) -> bool:
        # A started experiment is evidence: its protocol, assignments and audit trail stay.
        return super().has_delete_permission(request, obj) and obj is not None and obj.status == Status.DRAFT

    def get_fieldsets(self, request, obj=None):
        timing = ["duration", "grace_period", "traffic_percent", "auto_promote"]
        if obj is None or (obj.status == Status.DRAFT and self.has_change_permission(request, obj)):
            timing.append(DAILY_UNITS)
        protocol = [
            ("Question", {"fields": ["key", "name", "hypothesis", "design", *(["follows"] if obj is None else [])],
                          "description": "What is tested, and how units are split between the versions."}),
            ("Metric", {"fields": ["metric_name", "metric_key", "metric_type", "metric_direction",
                                   "metric_aggregation", "baseline_mean", "baseline_sd", "cuped",
                                   "expected_correlation"],
                        "description": "The primary metric: the one number that decides, and what it is today. "
                                       "Secondary metrics and guardrails are listed below the variants."}),
            ("Effect and power", {"fields": ["mde", "sample_size_per_variant", "alpha", "power", "alternative"],
                                  "description": "Give the smallest change worth detecting or the sample size "
                                                 "per variant, not both: the other is computed."}),
            ("Interim looks", {"fields": ["looks", "spending"],
                               "description": "Planned looks at these information fractions, e.g. [0.5, 1]; "
                                              "each spends part of alpha, and only a crossed boundary ends the "
                                              "test early. [1] is one analysis at the end."}),
            ("Duration and traffic", {"fields": timing}),
        ]
        if obj is None:
            return protocol
        return [("Status", {"fields": self._panels(obj)}), *protocol]

    def _panels(self, obj) -> list[str]:
        panels = ["status_summary"]
        if obj.status != Status.DRAFT:
            panels += ["frozen_protocol", "progress_summary"]
        if visible_result(obj) is not None:
            panels.append("result_summary")
        return panels

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.status == Status.DRAFT:
            frozen = ["key"]  # its services, links and reports know it by this name
        elif obj.status == Status.RUNNING:
            frozen = [name for name in DEFINITION_FIELDS if name not in RUNNING_EDITABLE_FIELDS]
        else:
            frozen = list(DEFINITION_FIELDS)
        return [*self._panels(obj), *frozen]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        units = daily_units(request.GET)
        if units and DAILY_UNITS in form.base_fields:
            # Carried over a "Save and continue editing" redirect (see response_change).
            field = copy.copy(form.base_fields[DAILY_UNITS])
            field.initial = units
            form.base_fields = {**form.base_fields, DAILY_UNITS: field}
        return form

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ExperimentError as error:  # e.g. started by someone else since the page was loaded
            self.message_user(request, error_text(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if not change:
            created = experiment_create(actor=request.user, definition=form.definition)
            # The admin goes on with `obj` (history entry, redirect): make it the stored row.
            obj.pk = created.pk
            obj.refresh_from_db()
            obj._state.adding = False
            return
        changes = form.definition_changes()
        if changes:
            experiment_update(experiment=obj, actor=request.user, changes=changes)

    def save_related(self, request, form, formsets, change):
        """Nothing to do: the services wrote the variants and metrics with the experiment."""

    def construct_change_message(self, request, form, formsets, add=False):
        return construct_change_message(form, [], add)  # the formsets were never saved themselves

    def response_add(self, request, obj, post_url_continue=None):
        return self._keep_daily_units(request, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._keep_daily_units(request, super().response_change(request, obj))

    def _keep_daily_units(self, request, response):
        units = daily_units(request.POST)
        if units and "_continue" in request.POST and response.status_code == 302:
            response["Location"] = with_query(response["Location"], **{DAILY_UNITS: units})
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        if obj is None or obj.status == Status.DRAFT:
            if form.is_bound:
                definition = getattr(form, "definition", None)
                units = getattr(form, "cleaned_data", {}).get(DAILY_UNITS)
            else:
                definition = experiment_definition(obj) if obj is not None else None
                units = daily_units(request.GET)
            context["power_preview"] = power_preview(definition, daily_units=units, experiment=obj)
            context["power_preview_url"] = self._url("change_preview" if obj else "preview",
                                                     *([obj.pk] if obj else []))
        if obj is not None:
            can_run = request.user.has_perm(RUN)
            context["lifecycle_buttons"] = [
                {"label": ACTIONS[name].label, "url": self._url(name, obj.pk), "name": name}
                for name in (available_actions(obj) if can_run else [])
            ]
            if visible_result(obj) is not None:
                context["report_url"] = report_url(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)
