"""POST /api/v1/experiments/{key}/observations/: up to 10,000 observations, all or nothing."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.api.assignments import UnitField
from experiments.api.experiments import get_experiment_or_404
from experiments.api.permissions import ServiceOrPersonWithPermission
from experiments.api.renderers import OrjsonParser, OrjsonRenderer
from experiments.api.schema import error_responses
from experiments.errors import MalformedItems
from experiments.limits import (
    MAX_ABS_VALUE,
    MAX_BULK_BODY_BYTES,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_LATENCY_MS,
    MAX_OBSERVATIONS_PER_REQUEST,
)
from experiments.observation_input import ItemErrors, ObservationRow, parse_items
from experiments.permissions import POST_OBSERVATION
from experiments.services.ingestion import observations_ingest


class ObservationSerializer(serializers.Serializer):
    """One observation (documentation only: parsing is `parse_items`, for speed)."""

    unit = UnitField()
    value = serializers.FloatField(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE)
    variant = serializers.SlugField(required=False, max_length=MAX_KEY_LENGTH)
    id = serializers.CharField(required=False, min_length=1, max_length=MAX_ID_LENGTH)
    timestamp = serializers.DateTimeField(required=False)
    latency_ms = serializers.FloatField(required=False, min_value=0, max_value=MAX_LATENCY_MS)
    metric = serializers.SlugField(required=False, max_length=MAX_KEY_LENGTH,
                                   help_text="The metric's key; the primary metric when absent.")


def parse_observation_batch(data) -> list[ObservationRow]:
    """The typed rows of `{"observations": [...]}`, or MalformedItems naming every bad item."""
    items = data.get("observations") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise MalformedItems('Send {"observations": [...]} with at least one observation.',
                             errors={"observations": ["Required: a non-empty list."]}, indexes=[])
    if len(items) > MAX_OBSERVATIONS_PER_REQUEST:
        raise MalformedItems(
            f"At most {MAX_OBSERVATIONS_PER_REQUEST} observations per request; got {len(items)}.",
            errors={"observations": [f"At most {MAX_OBSERVATIONS_PER_REQUEST} items."]}, indexes=[],
        )
    errors = ItemErrors()
    rows = parse_items(items, errors)
    if errors:
        raise MalformedItems(f"{len(errors.indexes)} observation(s) are malformed; nothing was stored.",
                             errors=errors.by_path, indexes=sorted(errors.indexes))
    return rows


class BulkIngestApi(APIView):
    """What the batch endpoints (observations, covariates) share: who may post, orjson both ways,
    the serving throttle and the bulk body limit."""

    permission_classes = [ServiceOrPersonWithPermission]
    required_permission = POST_OBSERVATION
    parser_classes = [OrjsonParser]
    renderer_classes = [OrjsonRenderer]
    throttle_scope = "serving"
    max_body_bytes = MAX_BULK_BODY_BYTES


class ObservationIngestApi(BulkIngestApi):
    """Store a batch of observations: every rule holds for every item, or nothing is stored."""

    @extend_schema(
        request=inline_serializer("ObservationBatch", {"observations": serializers.ListField(
            child=ObservationSerializer(), min_length=1, max_length=MAX_OBSERVATIONS_PER_REQUEST)}),
        responses={201: inline_serializer("ObservationBatchResult", {
            "accepted": serializers.IntegerField(), "duplicates": serializers.IntegerField()}),
            **error_responses(409, 422)},
    )
    def post(self, request, key: str):
        experiment = get_experiment_or_404(key)
        rows = parse_observation_batch(request.data)
        result = observations_ingest(experiment=experiment, rows=rows)
        return Response({"accepted": result.accepted, "duplicates": result.duplicates},
                        status=status.HTTP_201_CREATED)
