"""REST endpoints for experiments: create, list, read, edit a draft, start and stop."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.api.permissions import PersonHasPermission
from experiments.api.schema import error_responses
from experiments.api.serializers import ExperimentInputSerializer, ExperimentSerializer
from experiments.errors import InvalidDefinition
from experiments.limits import MAX_REASON_LENGTH
from experiments.models import Experiment
from experiments.permissions import ADD, CHANGE, RUN, VIEW
from experiments.selectors import experiment_get
from experiments.services.definition import experiment_create, experiment_update
from experiments.services.lifecycle import experiment_start, experiment_stop
from experiments.services.promotion import experiment_promote


class ExperimentPagination(PageNumberPagination):
    """`{count, next, previous, results}`, newest first: a change of part 1's plain list (README)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    @classmethod
    def schema_parameters(cls) -> list[OpenApiParameter]:
        return [OpenApiParameter("page", {"type": "integer", "minimum": 1},
                                 description="Page number, from 1 (a page past the last is a 404)."),
                OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": cls.max_page_size},
                                 description=f"Experiments per page, at most {cls.max_page_size}.")]


class ExperimentPageSerializer(serializers.Serializer):
    """One page of the experiment list (documentation of the response)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ExperimentSerializer(many=True)


def not_found(key: str) -> Http404:
    return Http404(f"No experiment with key {key!r}.")


def get_experiment_or_404(key: str) -> Experiment:
    try:
        return experiment_get(key)
    except Experiment.DoesNotExist:
        raise not_found(key)


def render(experiment: Experiment, status_code: int = status.HTTP_200_OK) -> Response:
    # Re-read so that the answer shows what is stored, variants included.
    return Response(ExperimentSerializer(experiment_get(experiment.key)).data, status=status_code)


class ExperimentListCreateApi(APIView):
    """List experiments (viewers) and create a draft (experimenters)."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"GET": VIEW, "POST": ADD}

    @extend_schema(operation_id="experiments_list", responses=ExperimentPageSerializer, parameters=ExperimentPagination.schema_parameters())
    def get(self, request):
        experiments = Experiment.objects.with_variants().select_related("concluded_variant", "previous") \
            .order_by("-created_at", "-id")
        paginator = ExperimentPagination()
        page = paginator.paginate_queryset(experiments, request, view=self)
        return paginator.get_paginated_response(ExperimentSerializer(page, many=True).data)

    @extend_schema(request=ExperimentInputSerializer, responses={201: ExperimentSerializer})
    def post(self, request):
        serializer = ExperimentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            experiment = experiment_create(actor=request.user, definition=serializer.validated_data)
        except InvalidDefinition as error:
            raise InvalidDefinition(serializer.client_errors(error.errors)) from error
        return render(experiment, status.HTTP_201_CREATED)


class ExperimentDetailApi(APIView):
    """Read one experiment; PATCH edits a draft (only traffic_percent once running)."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"GET": VIEW, "PATCH": CHANGE}

    @extend_schema(responses=ExperimentSerializer)
    def get(self, request, key: str):
        return Response(ExperimentSerializer(get_experiment_or_404(key)).data)

    @extend_schema(request=ExperimentInputSerializer, responses={200: ExperimentSerializer, **error_responses(409)})
    def patch(self, request, key: str):
        experiment = get_experiment_or_404(key)
        serializer = ExperimentInputSerializer(experiment, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            experiment = experiment_update(experiment=experiment, actor=request.user, changes=serializer.validated_data)
        except InvalidDefinition as error:
            raise InvalidDefinition(serializer.client_errors(error.errors)) from error
        return render(experiment)


class ExperimentStartApi(APIView):
    """Freeze the protocol and start the test period."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"POST": RUN}

    @extend_schema(request=None, responses={200: ExperimentSerializer, **error_responses(409)})
    def post(self, request, key: str):
        experiment = experiment_start(experiment=get_experiment_or_404(key), actor=request.user)
        return render(experiment)


class ExperimentStopApi(APIView):
    """Abandon a running test, with a reason; it can never be promoted."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"POST": RUN}

    @extend_schema_serializer(component_name="StopRequest")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=MAX_REASON_LENGTH)

    @extend_schema(request=InputSerializer, responses={200: ExperimentSerializer, **error_responses(409)})
    def post(self, request, key: str):
        experiment = get_experiment_or_404(key)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        experiment = experiment_stop(experiment=experiment, actor=request.user,
                                     reason=serializer.validated_data["reason"])
        return render(experiment)


class ExperimentPromoteApi(APIView):
    """Apply the analysis's decision: conclude with the winner (promote) or the control (keep, inconclusive)."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"POST": RUN}

    @extend_schema(request=None, responses={200: ExperimentSerializer, **error_responses(409)})
    def post(self, request, key: str):
        experiment = experiment_promote(experiment=get_experiment_or_404(key), actor=request.user)
        return render(experiment)
