"""Routes of the REST API v1 (DESIGN.md's table)."""

from django.urls import path

from experiments.api import assignments, experiments, observations

urlpatterns = [
    path("experiments/", experiments.ExperimentListCreateApi.as_view(), name="experiment-list"),
    path("experiments/<slug:key>/", experiments.ExperimentDetailApi.as_view(), name="experiment-detail"),
    path("experiments/<slug:key>/start/", experiments.ExperimentStartApi.as_view(), name="experiment-start"),
    path("experiments/<slug:key>/stop/", experiments.ExperimentStopApi.as_view(), name="experiment-stop"),
    path("experiments/<slug:key>/assignment/", assignments.ExperimentAssignmentApi.as_view(),
         name="experiment-assignment"),
    path("experiments/<slug:key>/observations/", observations.ObservationIngestApi.as_view(),
         name="experiment-observations"),
    path("assignments/", assignments.AssignmentBatchApi.as_view(), name="assignments"),
]
