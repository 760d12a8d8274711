"""The API's boundary for hostile input: under /api/ every answer is JSON, bodies have a size limit.

A middleware rather than only `handler404`/`handler500`/`handler400` (config/urls.py has those
too, for the errors that escape every middleware): Django answers some errors with its HTML
pages from places no handler reaches (a 404 for a path that matches no URL pattern is a
handler's, but a view's own `HttpResponseNotAllowed`, or an HTML page any other code returns,
is not). So this middleware, first in MIDDLEWARE, does two things for paths under /api/:

1. Before the view runs, it compares `Content-Length` with the view's limit
   (`max_body_bytes` on the view class, `limits.MAX_BODY_BYTES` by default) and answers
   413 `{"detail", "limit_bytes"}` without reading a byte; it leaves the limit on the request
   (`request.max_body_bytes`) so that the JSON parsers (renderers.py) stop reading one byte
   past it, for a body whose length is not declared up front.
2. After the view, an error answer (status >= 400) that is not JSON becomes
   `{"detail": <the reason phrase>}` with the same status (and its `Allow`/`Retry-After`).
"""


from django.http import HttpResponse, JsonResponse

from experiments.limits import MAX_BODY_BYTES

API_PREFIX = "/api/"
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def json_error(status: int, detail: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def body_too_large(limit: int) -> JsonResponse:
    return json_error(413, f"The request body is larger than this endpoint's limit of {limit} bytes.",
                      limit_bytes=limit)


class ApiBoundaryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_request(request):
            return self.get_response(request)
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            return _as_json(response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not is_api_request(request):
            return None
        limit = getattr(getattr(view_func, "cls", None), "max_body_bytes", MAX_BODY_BYTES)
        request.max_body_bytes = limit
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return json_error(400, f"Invalid Content-Length header: {declared[:40]!r}.")
        if length < 0:
            return json_error(400, "Invalid Content-Length header: negative.")
        if length > limit:
            return body_too_large(limit)
        return None


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")


def _as_json(response: HttpResponse) -> JsonResponse:
    answer = json_error(response.status_code, response.reason_phrase or "Error.")
    for header in KEPT_HEADERS:
        if header in response:
            answer[header] = response[header]
    return answer


def api_error_view(status: int, detail: str):
    """A handlerNNN for config/urls.py: JSON under /api/, Django's own page elsewhere."""
    from django.views import defaults

    html_views = {400: defaults.bad_request, 403: defaults.permission_denied, 404: defaults.page_not_found,
                  500: defaults.server_error}

    def view(request, exception=None):
        if is_api_request(request):
            return json_error(status, detail)
        if status == 500:
            return html_views[status](request)
        return html_views[status](request, exception)

    view.__name__ = f"api_error_{status}"
    return view



