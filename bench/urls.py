"""The project's routes plus two baseline endpoints for `bench/assignment.py`.

- `bench/bare/`: a DRF APIView with the project's default authentication (service keys
  are checked by BearerTokenAuthentication) and IsAuthenticated, rendering a constant
  JSON object with OrjsonRenderer: the cost of DRF + auth with no work behind it.
- `bench/bare-noauth/`: the same without authentication or permissions (information only).
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
    # authentication_classes: the project default (BearerTokenAuthentication, then sessions),
    # exactly what the assignment views use.
    permission_classes = [IsAuthenticated]
    renderer_classes = [OrjsonRenderer]

    def get(self, request):
        return Response(CONSTANT)


class BareNoAuthApi(BareApi):
    authentication_classes = []
    permission_classes = []


urlpatterns = [
    path("bench/bare/", BareApi.as_view(), name="bench-bare"),
    path("bench/bare-noauth/", BareNoAuthApi.as_view(), name="bench-bare-noauth"),
    *project_urlpatterns,
]
