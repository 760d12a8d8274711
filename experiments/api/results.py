"""Queueing the analysis by hand, and reading the locked-until-unlocked results."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.api.experiments import get_experiment_or_404
from experiments.api.permissions import PersonHasPermission
from experiments.api.schema import error_responses
from experiments.errors import WrongState
from experiments.lock import ResultState, locked_error, result_state, visible_result
from experiments.models import Experiment
from experiments.permissions import RUN, VIEW
from experiments.services.analysis import experiment_request_analysis

# 202 answers: what is happening, and the experiment's status.
PENDING = inline_serializer("AnalysisPending", {"detail": serializers.CharField(), "status": serializers.CharField()})


class ExperimentAnalyzeApi(APIView):
    """Queue the preregistered analysis now that the lock has lifted (423 before)."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"POST": RUN}

    @extend_schema(request=None, responses={202: OpenApiResponse(PENDING, description="Queued"),
                                           **error_responses(409, 423)})
    def post(self, request, key: str):
        experiment = experiment_request_analysis(experiment=get_experiment_or_404(key), actor=request.user)
        # The service leaves `analysis_queued_at` empty when the broker did not take the task.
        handed_over = Experiment.objects.filter(pk=experiment.pk, analysis_queued_at__isnull=False).exists()
        detail = ("The analysis is queued." if handed_over else
                  "The analysis is recorded; the task queue does not answer, so the sweep will queue it "
                  "as soon as the queue is back.")
        return Response({"detail": detail, "status": experiment.status}, status=status.HTTP_202_ACCEPTED)


class ExperimentResultsApi(APIView):
    """The result: 423 with unlocks_at while locked, 202 while analysing, 200 once analysed."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"GET": VIEW}

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The result (DESIGN.md)"),
                              202: OpenApiResponse(PENDING, description="Analysis in progress"),
                              **error_responses(409, 423)})
    def get(self, request, key: str):
        experiment = get_experiment_or_404(key)
        state = result_state(experiment)
        if state in (ResultState.NOT_STARTED, ResultState.STOPPED):
            reason = (f" It was stopped early: {experiment.stop_reason}" if state == ResultState.STOPPED else "")
            raise WrongState(f"Experiment {key!r} is {experiment.status} and has no result.{reason}",
                             status=experiment.status)
        if state == ResultState.LOCKED:
            raise locked_error(experiment)
        if state == ResultState.PENDING:
            return Response({"detail": "The lock has lifted; the analysis is queued or running.",
                             "status": experiment.status}, status=status.HTTP_202_ACCEPTED)
        return Response(visible_result(experiment).document)
