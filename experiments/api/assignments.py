"""REST endpoints that serve sticky assignments to services (one unit, or in bulk)."""

from urllib.parse import unquote_to_bytes

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import Field
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.api.experiments import not_found
from experiments.api.permissions import ServiceOrPersonWithPermission
from experiments.api.renderers import OrjsonRenderer
from experiments.api.schema import UNIT_PATTERN, error_responses
from experiments.limits import MAX_BULK_BODY_BYTES, MAX_UNIT_LENGTH, MAX_UNITS_PER_REQUEST, text_problem
from experiments.models import Experiment
from experiments.permissions import FETCH_ASSIGNMENT
from experiments.services.assignment import (
    assignment_for_unit,
    assignments_for_live_experiments,
    assignments_for_units,
)


def parse_unit(data) -> str:
    """A unit id: a non-empty string of at most MAX_UNIT_LENGTH characters (an integer is taken as
    its digits); ValueError with the message otherwise."""
    if isinstance(data, bool) or not isinstance(data, (str, int)):
        raise ValueError("A unit must be a string or an integer.")
    unit = str(data)
    if not unit.strip():
        raise ValueError("A unit must not be empty.")
    if len(unit) > MAX_UNIT_LENGTH:
        raise ValueError(f"A unit must be at most {MAX_UNIT_LENGTH} characters.")
    problem = text_problem(unit)
    if problem:
        raise ValueError(problem)
    return unit


class UnitField(serializers.Field):
    """One unit id (`parse_unit`)."""

    def to_internal_value(self, data) -> str:
        try:
            return parse_unit(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error), code="invalid")

    def to_representation(self, value: str) -> str:
        return value


class UnitListField(serializers.Field):
    """1 to MAX_UNITS_PER_REQUEST unit ids, each `parse_unit`; errors keyed by item (`units[3]`).

    One loop rather than DRF's ListField over UnitField, whose per-item validation machinery
    cost about a tenth of a 10,000-unit batch (bench/assignment.py).
    """

    def to_internal_value(self, data) -> list[str]:
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of units.", code="not_a_list")
        if not data:
            raise serializers.ValidationError("This list may not be empty.", code="empty")
        if len(data) > MAX_UNITS_PER_REQUEST:
            raise serializers.ValidationError(f"Ensure this field has no more than {MAX_UNITS_PER_REQUEST} "
                                              "elements.", code="max_length")
        units, errors = [], {}
        for index, item in enumerate(data):
            try:
                units.append(parse_unit(item))
            except ValueError as error:
                errors[index] = [str(error)]
        if errors:
            raise serializers.ValidationError(errors)
        return units

    def to_representation(self, value: list[str]) -> list[str]:
        return value


def raw_query_value_is_utf8(query_string: str, name: str) -> bool:
    """Whether every raw (percent-encoded) value of `name` in the query string is valid UTF-8.

    Django decodes the query string replacing invalid bytes by U+FFFD, so `?unit=%FF` and
    `?unit=%FE` would both read as "\ufffd": the raw bytes tell them apart.
    """
    for pair in query_string.split("&"):
        key, _, value = pair.partition("=")
        if unquote_to_bytes(key.replace("+", " ").encode("latin-1")) != name.encode():
            continue
        try:
            unquote_to_bytes(value.replace("+", " ").encode("latin-1")).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def query_unit(request) -> str:
    """The `unit` query parameter, parsed as `UnitField` would: ValidationError keyed "unit" otherwise.

    `parse_unit` itself rather than a field: building a DRF Field (let alone a Serializer,
    which deep-copies its fields) on every request is a visible share of this endpoint's
    time (bench/assignment.py); the errors are the ones the field gave, codes included.
    """
    raw = request.query_params.get("unit")
    if raw is None:
        raise serializers.ValidationError({"unit": [ErrorDetail(Field.default_error_messages["required"],
                                                                code="required")]})
    try:
        unit = parse_unit(raw)
    except ValueError as error:
        raise serializers.ValidationError({"unit": [ErrorDetail(str(error), code="invalid")]})
    if "\ufffd" in unit and not raw_query_value_is_utf8(request.META.get("QUERY_STRING", ""), "unit"):
        raise serializers.ValidationError({"unit": "Must be valid UTF-8 (percent-encoded)."})
    return unit


class AssignmentSerializer(serializers.Serializer):
    """DESIGN.md's assignment answer (documentation of the response)."""

    experiment = serializers.SlugField()
    unit = serializers.CharField()
    variant = serializers.SlugField()
    payload = serializers.JSONField()
    in_experiment = serializers.BooleanField()
    shadow = serializers.ListField(child=serializers.SlugField())


class AssignmentBatchResponseSerializer(serializers.Serializer):
    assignments = AssignmentSerializer(many=True)


class ExperimentAssignmentApi(APIView):
    """GET one unit's sticky assignment: `?unit=ID`."""

    permission_classes = [ServiceOrPersonWithPermission]
    required_permission = FETCH_ASSIGNMENT
    renderer_classes = [OrjsonRenderer]
    throttle_scope = "serving"

    @extend_schema(
        parameters=[OpenApiParameter("unit", {"type": "string", "minLength": 1, "maxLength": MAX_UNIT_LENGTH,
                                              "pattern": UNIT_PATTERN}, required=True,
                                     description="The unit's id (UTF-8, no NUL, not blank).")],
        responses={200: AssignmentSerializer, **error_responses(409)},
    )
    def get(self, request, key: str):
        unit = query_unit(request)
        try:
            answer = assignment_for_unit(experiment_key=key, unit=unit)
        except Experiment.DoesNotExist:
            raise not_found(key)
        return Response(answer.as_dict())


class AssignmentBatchApi(APIView):
    """POST `{"unit": ID}` for every live experiment, or `{"units": [...], "experiment": KEY}`."""

    permission_classes = [ServiceOrPersonWithPermission]
    required_permission = FETCH_ASSIGNMENT
    renderer_classes = [OrjsonRenderer]
    throttle_scope = "serving"
    max_body_bytes = MAX_BULK_BODY_BYTES

    @extend_schema_serializer(component_name="AssignmentBatchRequest")
    class InputSerializer(serializers.Serializer):
        unit = UnitField(required=False)
        units = UnitListField(required=False)
        experiment = serializers.SlugField(required=False)

        def validate(self, attrs):
            if ("unit" in attrs) == ("units" in attrs):
                raise serializers.ValidationError({"unit": "Give either unit, or units with experiment."})
            if "units" in attrs and "experiment" not in attrs:
                raise serializers.ValidationError({"experiment": "Required with units."})
            return attrs

    @extend_schema(request=InputSerializer, responses={200: AssignmentBatchResponseSerializer, **error_responses(409)})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "unit" in data and "experiment" not in data:
            answers = assignments_for_live_experiments(unit=data["unit"])
        else:
            units = data["units"] if "units" in data else [data["unit"]]
            try:
                answers = assignments_for_units(experiment_key=data["experiment"], units=units)
            except Experiment.DoesNotExist:
                raise not_found(data["experiment"])
        return Response({"assignments": [answer.as_dict() for answer in answers]})
