"""OpenAPI descriptions of our own authentication and field types for drf-spectacular."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "experiments.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


class IsoDurationFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "experiments.api.serializers.IsoDurationField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "format": "duration", "example": "P14D"}
