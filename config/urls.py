"""URL routes: the admin, sign-in, the REST API v1, its OpenAPI schema and docs, reports and the health checks."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from experiments.api.middleware import api_error_view
from experiments.health import healthz, liveness, readiness

# The admin's modules register here, not at start-up (config/admin_app.py).
admin.autodiscover()

urlpatterns = [
    path("api/v1/", include("experiments.api.urls")),  # first: the serving endpoints' requests
    path("admin/", admin.site.urls),
    # Sign-in for people who read reports without being admin staff (viewers).
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]),
         name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[],
                                                        authentication_classes=[]), name="api-docs"),
    path("healthz", healthz, name="healthz"),  # database and broker (DESIGN.md); kept for compatibility
    path("healthz/live", liveness, name="healthz-live"),  # for a process supervisor
    path("healthz/ready", readiness, name="healthz-ready"),  # for a load balancer
    path("reports/", include("experiments.reports.urls")),
]

# Errors that escape the views and every middleware: JSON under /api/, Django's pages elsewhere
# (experiments/api/middleware.py turns the rest of the API's non-JSON errors into JSON).
handler400 = api_error_view(400, "Bad request.")
handler403 = api_error_view(403, "Permission denied.")
handler404 = api_error_view(404, "Not found: no such path in the API.")
handler500 = api_error_view(500, "Internal server error.")
