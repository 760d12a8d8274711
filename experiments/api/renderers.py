"""JSON rendering with orjson, and the API's JSON parsers: a body-size limit and a depth limit.

Both parsers read the raw stream themselves (never `request.body`, whose limit is Django's
DATA_UPLOAD_MAX_MEMORY_SIZE and whose error is an HTML 400): they read at most the limit the
middleware left on the request plus one byte, so a body over it is a 413 however it was sent,
and the worker never holds more than the limit.
"""

import json

import orjson
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from experiments.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH


class RequestTooLarge(exceptions.APIException):
    """413: the body passed the endpoint's limit while being read (middleware.py checks Content-Length)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than this endpoint's limit of {limit} bytes.")
        self.limit = limit


class OrjsonRenderer(BaseRenderer):
    """Renders JSON with orjson (faster than json.dumps on large batches; bench/README.md)."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data)


def read_limited(stream, parser_context) -> bytes:
    """The body, or RequestTooLarge once it passes the request's limit (middleware.py)."""
    request = (parser_context or {}).get("request")
    limit = getattr(getattr(request, "_request", request), "max_body_bytes", MAX_BODY_BYTES)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RequestTooLarge(limit)
    return body


def too_deep() -> ParseError:
    return ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects.")


def check_depth(data, limit: int = MAX_JSON_DEPTH):
    """`data`, or ParseError when arrays and objects nest deeper than `limit` (the top level is 1)."""
    stack = [(data, 1)] if isinstance(data, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise too_deep()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return data


class OrjsonParser(BaseParser):
    """Parses JSON with orjson; NaN and Infinity literals are malformed JSON, as in the standard."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_limited(stream, parser_context)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            if "recursion" in str(error).lower() or "depth" in str(error).lower():
                raise too_deep()
            raise ParseError(f"JSON parse error - {error}")
        return check_depth(data)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class StrictJsonParser(BaseParser):
    """The standard library's JSON parser (exact big integers: a bound names its field), strict UTF-8,
    no NaN/Infinity, and the depth limit (json.loads itself would raise RecursionError at ~1000)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_limited(stream, parser_context)
        try:
            text = body.decode("utf-8")
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise too_deep()
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
            raise ParseError(f"JSON parse error - {error}")
        return check_depth(data)
