"""URL routes: the admin, sign-in, the REST API v1, its OpenAPI schema and docs, reports and /healthz."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from experiments.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in for people who read reports without being admin staff (viewers).
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("experiments.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]),
         name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[],
                                                        authentication_classes=[]), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("reports/", include("experiments.reports.urls")),
]
