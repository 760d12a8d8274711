"""The stakeholders' report pages and downloads: plain Django views, session login only.

No DRF here on purpose: the API's bearer authentication (service keys, personal tokens)
never reaches these views, so a service key can never read a report. Anonymous visitors go
to the admin login; a person without `experiments.view_experiment` gets 403.
"""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from experiments.lock import ResultState, locked_error, result_state, visible_result
from experiments.models import Experiment
from experiments.permissions import VIEW
from experiments.reports.context import report_context
from experiments.reports.downloads import result_csv
from experiments.reports.queries import report_experiment_get, report_list
from experiments.reports.wording import interval_level


def readers_only(view):
    """Login first (a redirect for anonymous visitors), then the view permission (403 without it)."""
    return require_safe(login_required(permission_required(VIEW, raise_exception=True)(view)))


def _experiment_or_404(key: str) -> Experiment:
    try:
        return report_experiment_get(key)
    except Experiment.DoesNotExist:
        raise Http404(f"No report for {key!r}.") from None


@readers_only
def report_index(request):
    return render(request, "reports/index.html", {"reports": report_list()})


@readers_only
def report_detail(request, key: str):
    experiment = _experiment_or_404(key)
    return render(request, "reports/report.html", report_context(experiment))


def _downloadable(key: str):
    """(experiment, result, None) when the result may be downloaded, else (.., .., the JSON error response)."""
    try:
        experiment = report_experiment_get(key)
    except Experiment.DoesNotExist:
        return None, None, JsonResponse({"detail": f"No report for {key!r}."}, status=404)
    state = result_state(experiment)
    if state == ResultState.STOPPED:
        return experiment, None, JsonResponse(
            {"detail": f"Experiment {key!r} was stopped early and has no result: {experiment.stop_reason}",
             "status": experiment.status}, status=409)
    if state != ResultState.READY:
        detail = (locked_error(experiment).detail if state == ResultState.LOCKED else
                  f"The lock of {key!r} has lifted; the analysis is queued or running.")
        return experiment, None, JsonResponse(
            {"detail": detail, "unlocks_at": experiment.unlocks_at.isoformat() if experiment.unlocks_at else None},
            status=423)
    return experiment, visible_result(experiment), None


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@readers_only
def report_result_json(request, key: str):
    _experiment, result, error = _downloadable(key)
    if error:
        return error
    # The stored document exactly as the analysis wrote it (DESIGN.md's results JSON).
    return _attachment(JsonResponse(result.document, json_dumps_params={"indent": 2}), f"{key}-result.json")


@readers_only
def report_result_csv(request, key: str):
    experiment, result, error = _downloadable(key)
    if error:
        return error
    level = interval_level(experiment.protocol["alpha"], len(result.document["comparisons"]))
    body = result_csv(result.document, interval_level=level, primary_key=experiment.metric_key)
    return _attachment(HttpResponse(body, content_type="text/csv; charset=utf-8"), f"{key}-result.csv")
