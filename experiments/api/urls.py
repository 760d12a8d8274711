"""Routes of the REST API v1 (DESIGN.md's table)."""

from django.urls import path

from experiments.api import assignments, covariates, experiments, exposures, observations, results, sdk

# The serving endpoints first: Django tries the patterns in order, and these take most requests.
urlpatterns = [
    path("experiments/<slug:key>/assignment/", assignments.ExperimentAssignmentApi.as_view(),
         name="experiment-assignment"),
    path("experiments/", experiments.ExperimentListCreateApi.as_view(), name="experiment-list"),
    path("experiments/<slug:key>/", experiments.ExperimentDetailApi.as_view(), name="experiment-detail"),
    path("experiments/<slug:key>/start/", experiments.ExperimentStartApi.as_view(), name="experiment-start"),
    path("experiments/<slug:key>/stop/", experiments.ExperimentStopApi.as_view(), name="experiment-stop"),
    path("experiments/<slug:key>/exposures/", exposures.ExperimentExposuresApi.as_view(),
         name="experiment-exposures"),
    path("experiments/<slug:key>/observations/", observations.ObservationIngestApi.as_view(),
         name="experiment-observations"),
    path("experiments/<slug:key>/covariates/", covariates.CovariateIngestApi.as_view(), name="experiment-covariates"),
    path("experiments/<slug:key>/analyze/", results.ExperimentAnalyzeApi.as_view(), name="experiment-analyze"),
    path("experiments/<slug:key>/results/", results.ExperimentResultsApi.as_view(), name="experiment-results"),
    path("experiments/<slug:key>/promote/", experiments.ExperimentPromoteApi.as_view(), name="experiment-promote"),
    path("assignments/", assignments.AssignmentBatchApi.as_view(), name="assignments"),
    path("sdk/config/", sdk.SdkConfigApi.as_view(), name="sdk-config"),
]
