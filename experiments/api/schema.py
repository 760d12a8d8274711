"""OpenAPI descriptions of our own authentication, field types and error answers for drf-spectacular.

Every operation under /api/v1/ documents every status code it can answer (schemathesis checks
it: tests/experiments/api/test_schema_fuzz.py). The codes any request may meet, whatever the
endpoint (a malformed body, authentication, an unknown key, an unsupported method, a body over
the limit, a wrong media type, throttling, a database outage), are added to every operation by
`add_common_error_responses`; the codes of one endpoint's rules (409, 422, 423) are in its
`@extend_schema(responses=...)`, through `error_responses`. Every error body is the shared
`Error` component: `{"detail": string, ...}` (errors.py, middleware.py).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from experiments.limits import MAX_UNIT_LENGTH, MAX_UNITS_PER_REQUEST

ERROR_DESCRIPTIONS = {
    400: "Malformed request: invalid JSON, a field of the wrong type or out of its bounds, a broken rule "
         "of the definition. `errors` maps each field path to its messages.",
    401: "Missing, malformed, revoked or expired token.",
    403: "Authenticated, but not allowed (a service key outside serving, a missing permission).",
    404: "No experiment with that key (or no such path).",
    405: "Method not allowed here (`Allow` lists the allowed ones).",
    409: "The experiment is not in a state that allows this.",
    413: "The request body is larger than the endpoint's limit.",
    415: "Unsupported media type: send application/json.",
    422: "Well formed but breaks a rule; `indexes` lists the offending items.",
    423: "Locked until `unlocks_at`.",
    429: "Too many requests for this key; retry after `Retry-After` seconds.",
    503: "The database is unavailable; retry later.",
}
# Every operation may answer these (see the module's docstring).
COMMON_ERROR_CODES = (400, 401, 403, 404, 405, 413, 415, 429, 503)


class ErrorSerializer(serializers.Serializer):
    """The one error body: a human-readable `detail`, plus fields that some errors add."""

    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="Messages by field path, e.g. `observations[3].unit`.")
    indexes = serializers.ListField(child=serializers.IntegerField(), required=False,
                                    help_text="Indexes of the offending items of a batch.")
    unlocks_at = serializers.DateTimeField(required=False, help_text="423: when the result unlocks.")
    look = inline_serializer("LookProgress", {
        "done": serializers.IntegerField(), "of": serializers.IntegerField(),
        "next_at": serializers.DateTimeField(allow_null=True)},
        required=False, help_text="423 with interim looks: looks taken, looks planned, when the next one is due.")
    status = serializers.CharField(required=False, help_text="The experiment's status.")


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """`responses=` entries for an endpoint's own error codes, each with the shared Error body."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in codes}


def add_common_error_responses(result, generator, request, public):
    """Postprocessing hook: every API operation documents the common error codes, as `Error`."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    if "Error" not in components:
        components["Error"] = {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
            "additionalProperties": True,
        }
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path.startswith(("/api/v1/schema/", "/api/v1/docs/")):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in COMMON_ERROR_CODES:
                responses.setdefault(str(code), {
                    "description": ERROR_DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "experiments.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


class IsoDurationFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "experiments.api.serializers.IsoDurationField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "format": "duration", "example": "P14D"}


class FiniteFloatFieldSchema(OpenApiSerializerFieldExtension):
    """A number with the bounds the definition rules check (OpenAPI 3.0's boolean exclusive bounds)."""

    target_class = "experiments.api.serializers.FiniteFloatField"

    def map_serializer_field(self, auto_schema, direction):
        schema = {"type": "number", "format": "double"}
        bounds = getattr(self.target, "bounds", None)
        if bounds is not None and direction == "request":
            low, high, low_exclusive, high_exclusive = bounds
            schema.update(minimum=low, maximum=high)
            if low_exclusive:
                schema["exclusiveMinimum"] = True
            if high_exclusive:
                schema["exclusiveMaximum"] = True
        return schema


# A unit: not blank, no NUL (the JSON Schema pattern is ECMA-262's, as Python's re reads it too).
UNIT_PATTERN = r"^[^\u0000]*\S[^\u0000]*$"


class UnitListFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "experiments.api.assignments.UnitListField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "array", "minItems": 1, "maxItems": MAX_UNITS_PER_REQUEST,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_UNIT_LENGTH, "pattern": UNIT_PATTERN}}


class UnitFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "experiments.api.assignments.UnitField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "minLength": 1, "maxLength": MAX_UNIT_LENGTH, "pattern": UNIT_PATTERN}
