"""Queueing the analysis by hand, and reading the locked-until-unlocked results."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.api.experiments import RUN, VIEW, get_experiment_or_404
from experiments.api.permissions import PersonHasPermission
from experiments.errors import WrongState
from experiments.models import AnalysisResult, Status
from experiments.services.analysis import experiment_request_analysis, locked_error


class ExperimentAnalyzeApi(APIView):
    """Queue the preregistered analysis now that the lock has lifted (423 before)."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"POST": RUN}

    @extend_schema(request=None, responses={202: OpenApiResponse(description="Queued"),
                                           423: OpenApiResponse(description="Locked")})
    def post(self, request, key: str):
        experiment = experiment_request_analysis(experiment=get_experiment_or_404(key), actor=request.user)
        return Response({"detail": "The analysis is queued.", "status": experiment.status},
                        status=status.HTTP_202_ACCEPTED)


class ExperimentResultsApi(APIView):
    """The result: 423 with unlocks_at while locked, 202 while analysing, 200 once analysed."""

    permission_classes = [PersonHasPermission]
    required_permissions = {"GET": VIEW}

    @extend_schema(responses={200: OpenApiResponse(description="The result (DESIGN.md)"),
                              202: OpenApiResponse(description="Analysis in progress"),
                              423: OpenApiResponse(description="Locked until unlocks_at")})
    def get(self, request, key: str):
        experiment = get_experiment_or_404(key)
        if experiment.status in (Status.DRAFT, Status.STOPPED):
            reason = (f" It was stopped early: {experiment.stop_reason}" if experiment.status == Status.STOPPED
                      else "")
            raise WrongState(f"Experiment {key!r} is {experiment.status} and has no result.{reason}",
                             status=experiment.status)
        result = AnalysisResult.objects.filter(experiment=experiment).first()
        if result is not None:
            return Response(result.document)
        if timezone.now() < experiment.unlocks_at:
            raise locked_error(experiment)
        return Response({"detail": "The lock has lifted; the analysis is queued or running.",
                         "status": experiment.status}, status=status.HTTP_202_ACCEPTED)
