"""URL routes: the admin, the REST API v1, its OpenAPI schema and docs, and /healthz."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from experiments.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("experiments.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]),
         name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[],
                                                        authentication_classes=[]), name="api-docs"),
    path("healthz", healthz, name="healthz"),
]
