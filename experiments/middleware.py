"""A database outage answers 503 everywhere, not 500: HTML on the pages, JSON under /api/.

The API's exception handler already answers 503 JSON for errors raised inside DRF views. This
middleware covers the rest: the admin and the reports (whose first database access is usually
the lazy `request.user` or session load, in the view or while its template renders), and an
error under /api/ that escapes DRF.

It sits just inside SecurityMiddleware and WhiteNoise, outside the session, auth and messages
middleware:

- an error raised by a view or its template reaches `process_exception`;
- an error raised inside an inner middleware (e.g. an auth check in `process_view`, a session
  save in `process_response`) is turned into a 500 by Django before it reaches us; the
  `got_request_exception` receiver below marks the request, and `__call__` replaces that 500.

The page is rendered without a request context, so it touches neither the session nor the user.
"""

import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 60
API_PREFIX = "/api/"
API_DETAIL = "The database is unavailable; retry later."  # the API exception handler's words
_MARK = "_database_unavailable"


def database_unavailable_response(request):
    """The 503 answer: JSON under /api/, the short HTML page elsewhere; both with Retry-After."""
    if request.path_info.startswith(API_PREFIX):
        response = JsonResponse({"detail": API_DETAIL}, status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_database_errors(sender, request=None, **kwargs):
    """Django is about to answer 500 for an uncaught exception: note whether it is an outage."""
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, DATABASE_ERRORS):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_database_errors, dispatch_uid="experiments.middleware.database_errors")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return database_unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            logger.error("database unavailable: %s %s: %s", request.method, request.path,
                         exception, exc_info=exception)
            return database_unavailable_response(request)
        return None
