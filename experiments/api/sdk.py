"""REST endpoint of the clients that assign locally: the serving configuration, with an ETag."""

from django.http import HttpResponse
from django.utils.http import parse_etags
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from experiments.api.permissions import ServiceOrPersonWithPermission
from experiments.permissions import FETCH_ASSIGNMENT
from experiments.services.sdk_config import sdk_config


class SdkConfigApi(APIView):
    """GET every live or stopped experiment's serving definition; `If-None-Match` with the ETag answers 304."""

    permission_classes = [ServiceOrPersonWithPermission]
    required_permission = FETCH_ASSIGNMENT
    throttle_scope = "serving"

    @extend_schema(
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)],
        responses={200: OpenApiResponse(description='{"experiments": [...]} with an ETag header'),
                   304: OpenApiResponse(description="Not modified: the ETag is current")},
    )
    def get(self, request):
        config = sdk_config()
        wanted = parse_etags(request.headers.get("If-None-Match", ""))
        if config.etag in wanted or "*" in wanted:
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(config.body, content_type="application/json")
        response["ETag"] = config.etag
        return response
