"""The project's routes plus two baseline endpoints for `bench/assignment.py`.

- `bench/bare-noauth/`: a DRF APIView without authentication, permissions or throttling,
  rendering a constant JSON object with OrjsonRenderer: the floor, DRF with none of our code.
- `bench/bare/`: the same with the project's default authentication (service keys checked by
  BearerTokenAuthentication), IsAuthenticated and throttling (information).
"""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns
from experiments.api.renderers import OrjsonRenderer

# About the size and shape of one assignment answer.
CONSTANT = {"experiment": "bench-ab", "unit": "bench", "variant": "control",
            "payload": {"color": "blue"}, "in_experiment": True, "shadow": []}


class BareApi(APIView):
    # authentication_classes and throttling: the project's defaults (BearerTokenAuthentication,
    # then sessions; the per-key counter at the serving rate), exactly what the assignment views use.
    permission_classes = [IsAuthenticated]
    renderer_classes = [OrjsonRenderer]
    throttle_scope = "serving"

    def get(self, request):
        return Response(CONSTANT)


class BareNoAuthApi(BareApi):
    """The floor: DRF with none of our code (no authentication, permission or throttling)."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []


urlpatterns = [
    path("bench/bare/", BareApi.as_view(), name="bench-bare"),
    path("bench/bare-noauth/", BareNoAuthApi.as_view(), name="bench-bare-noauth"),
    *project_urlpatterns,
]
