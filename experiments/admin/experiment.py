"""The experiment admin: a definition form with a power preview, lifecycle buttons, progress and result."""

import copy
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import admin, messages
from django.contrib.admin.utils import construct_change_message, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.timesince import timeuntil

from experiments.admin.forms import ExperimentAdminForm, StopForm
from experiments.admin.inlines import AuditTrailInline, VariantInline
from experiments.admin.lifecycle import ACTIONS, available_actions, error_text
from experiments.admin.preview import frozen_preview, power_preview
from experiments.definitions.fields import DEFINITION_FIELDS, experiment_definition
from experiments.errors import ExperimentError
from experiments.lock import is_locked, visible_result
from experiments.models import Experiment, Status
from experiments.permissions import RUN
from experiments.selectors import experiment_progress
from experiments.services.definition import RUNNING_EDITABLE_FIELDS, experiment_create, experiment_update

TEMPLATES = "admin/experiments/experiment"
DAILY_UNITS = "expected_daily_units"


def report_url(experiment: Experiment) -> str:
    return f"/reports/{experiment.key}/"


def daily_units(data) -> int | None:
    value = data.get(DAILY_UNITS, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def figure(value: float | None, spec: str = ".4g", suffix: str = "") -> str:
    """A result figure as shown everywhere in the admin: 4 significant digits, a dash when absent."""
    return "\u2014" if value is None else f"{format(value, spec)}{suffix}"


def with_query(url: str, **params) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), **params})))


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Experiments: a definition form with a power preview, lifecycle buttons, progress and result."""

    form = ExperimentAdminForm
    list_display = ("key", "name", "design", "status", "planned_sample_reached", "days_left", "decision")
    list_filter = ("status", "design")
    search_fields = ("key", "name")
    list_per_page = 50
    actions = None
    inlines = [VariantInline, AuditTrailInline]

    # ----- pages and permissions -----

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("result", "concluded_variant").prefetch_related(
            "variants")

    def get_inlines(self, request, obj):
        return [VariantInline, AuditTrailInline] if obj is not None else [VariantInline]

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
            ("Metric", {"fields": ["metric_name", "metric_type", "metric_direction", "baseline_mean", "baseline_sd"],
                        "description": "The one number that decides, and what it is today."}),
            ("Effect and power", {"fields": ["mde", "sample_size_per_variant", "alpha", "power", "alternative"],
                                  "description": "Give the smallest change worth detecting or the sample size "
                                                 "per variant, not both: the other is computed."}),
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

    # ----- saving through the services -----

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
        """Nothing to do: the services wrote the variants with the experiment."""

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

    # ----- the change page: preview, buttons -----

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

    def _url(self, name: str, *args) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args)

    def get_urls(self):
        def wrap(view, **bound):
            def wrapper(request, *args, **kwargs):
                return view(request, *args, **kwargs, **bound)
            return self.admin_site.admin_view(wrapper)

        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        custom = [
            path("preview/", wrap(self.preview_view), name=f"{prefix}_preview"),
            path("<path:object_id>/preview/", wrap(self.preview_view), name=f"{prefix}_change_preview"),
            *(path(f"<path:object_id>/{name}/", wrap(self.lifecycle_view, action=name), name=f"{prefix}_{name}")
              for name in ACTIONS),
        ]
        return custom + super().get_urls()

    def preview_view(self, request, object_id=None):
        """JSON (with the rendered HTML) of the power preview for the form's current values."""
        obj = None
        if object_id is not None:
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404(f"No experiment with id {object_id!r}.")
            if not self.has_view_or_change_permission(request, obj):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        units = daily_units(request.GET)
        if obj is not None and obj.status != Status.DRAFT:
            preview = frozen_preview(obj, daily_units=units)
        elif "variants-TOTAL_FORMS" in request.GET and (obj is None or self.has_change_permission(request, obj)):
            preview = power_preview(self._bound_definition(request, obj), daily_units=units, experiment=obj)
        else:
            preview = power_preview(experiment_definition(obj) if obj else None, daily_units=units, experiment=obj)
        html = render_to_string(f"{TEMPLATES}/power_preview.html", {"preview": preview}, request=request)
        return JsonResponse({**preview, "html": html})

    def _bound_definition(self, request, obj):
        form = self.get_form(request, obj, change=obj is not None)(request.GET, instance=obj)
        inline = next(i for i in self.get_inline_instances(request, obj) if isinstance(i, VariantInline))
        formset_class = inline.get_formset(request, obj)
        formset_class(request.GET, instance=form.instance, prefix=formset_class.get_default_prefix(),
                      queryset=inline.get_queryset(request))
        form.is_valid()
        return form.definition

    def lifecycle_view(self, request, object_id, action):
        """A confirmation page (GET) and the transition itself (POST), for experimenters only."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No experiment with id {object_id!r}.")
        if not (self.has_view_permission(request, obj) and request.user.has_perm(RUN)):
            raise PermissionDenied
        spec = ACTIONS[action]
        form = StopForm(request.POST or None) if action == "stop" else None
        change_url = self._url("change", obj.pk)
        if request.method == "POST" and (form is None or form.is_valid()):
            try:
                experiment = spec.run(experiment=obj, actor=request.user, form=form)
            except ExperimentError as error:
                self.message_user(request, error_text(error), messages.ERROR)
            else:
                experiment = self.get_object(request, str(experiment.pk))
                self.log_change(request, experiment, spec.logged)
                self.message_user(request, spec.done(experiment), messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{spec.label.rstrip(chr(0x2026))} {obj.key}",
            "opts": self.opts, "original": obj, "action": spec, "form": form, "change_url": change_url,
            "question": spec.question(obj) if spec.name in available_actions(obj) else None,
        }
        return TemplateResponse(request, f"{TEMPLATES}/lifecycle_confirm.html", context)

    # ----- read-only panels and changelist columns -----

    @admin.display(description="status")
    def status_summary(self, obj):
        return render_to_string(f"{TEMPLATES}/status_summary.html", {
            "experiment": obj, "now": timezone.now(),
            "locked": obj.unlocks_at is not None and is_locked(obj),
        })

    @admin.display(description="frozen protocol")
    def frozen_protocol(self, obj):
        protocol = obj.protocol or {}
        sizes = [(v["key"], protocol["sample_size_per_variant"][v["key"]]) for v in protocol.get("variants", [])]
        return render_to_string(f"{TEMPLATES}/frozen_protocol.html",
                                {"experiment": obj, "protocol": protocol, "sizes": sizes})

    @admin.display(description="progress")
    def progress_summary(self, obj):
        progress = experiment_progress(obj)
        planned = (obj.protocol or {}).get("sample_size_per_variant") or {}
        rows = [{"key": key, "units": units, "planned": planned.get(key)} for key, units in progress["units"].items()]
        return render_to_string(f"{TEMPLATES}/progress_summary.html",
                                {"progress": progress, "rows": rows, "analysed": visible_result(obj) is not None,
                                 **self._bar(progress["share_of_plan"])})

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
            "comparisons": [{
                "variant": c.get("variant"), "vs": c.get("vs"), "effect": figure(c.get("effect"), "+.4g"),
                "relative": figure(None if c.get("relative_effect") is None else 100 * c["relative_effect"], "+.3g", "%"),
                "ci_low": figure(c.get("ci_low")), "ci_high": figure(c.get("ci_high")),
                "p_value": figure(c.get("p_value")), "adjusted_p_value": figure(c.get("adjusted_p_value")),
                "significant": c.get("significant"),
            } for c in document.get("comparisons", [])],
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
        return render_to_string(f"{TEMPLATES}/progress_bar.html",
                                self._bar(experiment_progress(obj)["share_of_plan"]))

    @staticmethod
    def _bar(share: float | None) -> dict:
        percent = 100 * (share or 0)
        return {"percent": percent, "width": min(percent, 100.0)}

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
