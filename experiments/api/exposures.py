"""REST endpoint where a client that assigns locally stores the units it put in an experiment."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.api.assignments import UnitListField
from experiments.api.experiments import not_found
from experiments.api.permissions import ServiceOrPersonWithPermission
from experiments.api.renderers import OrjsonRenderer
from experiments.api.schema import error_responses
from experiments.limits import MAX_BULK_BODY_BYTES
from experiments.models import Experiment
from experiments.permissions import FETCH_ASSIGNMENT
from experiments.services.exposures import exposures_store


class ExposureCountsSerializer(serializers.Serializer):
    """The answer (documentation of the response): what became of the batch's distinct units."""

    stored = serializers.IntegerField()
    existing = serializers.IntegerField()
    not_included = serializers.IntegerField()


class ExperimentExposuresApi(APIView):
    """POST `{"units": [...]}` (up to 10,000): store the assignments the published recipe gives them."""

    permission_classes = [ServiceOrPersonWithPermission]
    required_permission = FETCH_ASSIGNMENT
    renderer_classes = [OrjsonRenderer]
    throttle_scope = "serving"
    max_body_bytes = MAX_BULK_BODY_BYTES  # 10,000 units of up to 255 characters

    @extend_schema_serializer(component_name="ExposureBatch")
    class InputSerializer(serializers.Serializer):
        units = UnitListField()

    @extend_schema(request=InputSerializer, responses={201: ExposureCountsSerializer, **error_responses(409)})
    def post(self, request, key: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            counts = exposures_store(experiment_key=key, units=serializer.validated_data["units"])
        except Experiment.DoesNotExist:
            raise not_found(key)
        return Response(counts.as_dict(), status=status.HTTP_201_CREATED)
