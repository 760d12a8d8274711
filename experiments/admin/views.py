"""The experiment admin's own URLs: the live power preview (JSON) and the lifecycle confirmation pages."""

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse

from experiments.admin.forms import StopForm
from experiments.admin.inlines import DefinitionRowsInline
from experiments.admin.lifecycle import ACTIONS, available_actions, error_text
from experiments.admin.panels import TEMPLATES
from experiments.admin.preview import frozen_preview, power_preview
from experiments.choices import Status
from experiments.definitions.fields import experiment_definition
from experiments.errors import ExperimentError
from experiments.permissions import RUN

DAILY_UNITS = "expected_daily_units"


def daily_units(data) -> int | None:
    value = data.get(DAILY_UNITS, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


class ExperimentViews:
    """The preview and lifecycle views of ExperimentAdmin, routed by get_urls in front of the admin's own."""

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
        for inline in self.get_inline_instances(request, obj):
            if not isinstance(inline, DefinitionRowsInline):
                continue
            formset_class = inline.get_formset(request, obj)
            prefix = formset_class.get_default_prefix()
            if f"{prefix}-TOTAL_FORMS" in request.GET:  # rows the page did not send keep their stored values
                formset_class(request.GET, instance=form.instance, prefix=prefix,
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
