"""POST /api/v1/experiments/{key}/covariates/: up to 10,000 covariates (CUPED), all or nothing."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from experiments.api.assignments import UnitField
from experiments.api.experiments import get_experiment_or_404
from experiments.api.observations import BulkIngestApi
from experiments.api.schema import error_responses
from experiments.limits import MAX_ABS_VALUE, MAX_KEY_LENGTH
from experiments.services.covariates import MAX_COVARIATES_PER_REQUEST, covariates_ingest, parse_covariate_batch


class CovariateSerializer(serializers.Serializer):
    """One covariate (documentation only: parsing is `parse_covariate_batch`, for speed)."""

    unit = UnitField()
    value = serializers.FloatField(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE,
                                   help_text="The unit's value of the metric before the test.")
    metric = serializers.SlugField(required=False, max_length=MAX_KEY_LENGTH,
                                   help_text="The metric's key (one with `cuped`); the primary metric when absent.")


class CovariateIngestApi(BulkIngestApi):
    """Store a batch of covariates: every rule holds for every item, or nothing is stored."""

    @extend_schema(
        request=inline_serializer("CovariateBatch", {"covariates": serializers.ListField(
            child=CovariateSerializer(), min_length=1, max_length=MAX_COVARIATES_PER_REQUEST)}),
        responses={201: inline_serializer("CovariateBatchResult", {
            "accepted": serializers.IntegerField(), "duplicates": serializers.IntegerField()}),
            **error_responses(409, 422)},
    )
    def post(self, request, key: str):
        experiment = get_experiment_or_404(key)
        rows = parse_covariate_batch(request.data)
        result = covariates_ingest(experiment=experiment, rows=rows)
        return Response({"accepted": result.accepted, "duplicates": result.duplicates},
                        status=status.HTTP_201_CREATED)
