"""One JSON error shape for every API failure: {"detail": ..., ...}."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from experiments.api.renderers import RequestTooLarge
from experiments.errors import ExperimentError, InvalidDefinition

logger = logging.getLogger(__name__)


def flatten_errors(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {"variants[1].weight": ["..."]}: each names its field and item."""
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for name, value in errors.items():
            if isinstance(name, int):  # a list serializer's errors, keyed by item index
                path = f"{prefix}[{name}]"
            elif name == "non_field_errors" and prefix:
                path = prefix
            else:
                path = f"{prefix}.{name}" if prefix else str(name)
            for key, messages in flatten_errors(value, path).items():
                flat.setdefault(key, []).extend(messages)
        return flat
    if isinstance(errors, list) and any(isinstance(item, (dict, list)) for item in errors):
        flat = {}
        for index, value in enumerate(errors):
            for key, messages in flatten_errors(value, f"{prefix}[{index}]").items():
                flat.setdefault(key, []).extend(messages)
        return flat
    messages = errors if isinstance(errors, list) else [errors]
    return {prefix or "non_field_errors": [str(message) for message in messages]} if messages else {}


def _validation_response(errors: dict[str, list[str]]) -> Response:
    field, messages = next(iter(errors.items()), ("request", ["Invalid input."]))
    return Response(
        {"detail": f"Invalid input: {field}: {messages[0]}", "errors": errors},
        status=status.HTTP_400_BAD_REQUEST,
    )


def json_exception_handler(exc, context):
    """DRF exception handler that also renders domain errors and database outages as JSON."""
    if isinstance(exc, InvalidDefinition):
        return _validation_response(exc.errors)
    if isinstance(exc, ExperimentError):
        return Response({"detail": exc.detail, **exc.extra}, status=exc.status_code)
    if isinstance(exc, RequestTooLarge):
        return Response({"detail": str(exc.detail), "limit_bytes": exc.limit}, status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(flatten_errors(exc.detail))
    if isinstance(exc, (OperationalError, InterfaceError)):
        # A lost connection or a server that does not answer, not a bug: say so, in JSON.
        logger.exception("database unavailable")
        return Response({"detail": "The database is unavailable; retry later."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    response = exception_handler(exc, context)
    if response is not None and not isinstance(response.data, dict):
        response.data = {"detail": response.data}
    return response
