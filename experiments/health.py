"""GET /healthz: 200 when the database and the Celery broker answer, 503 otherwise."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from config.celery_app import app as celery_app


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        # The URL is read from settings on each call so that an outage can be simulated in tests.
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as broker:
            broker.ensure_connection(max_retries=1, timeout=settings.HEALTHZ_BROKER_TIMEOUT_SECONDS)
        return True
    except Exception:
        return False


@require_GET
def healthz(request):
    """Anyone may ask; the answer names each dependency and whether it is reachable."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable",
         **{name: "ok" if ok else "unreachable" for name, ok in checks.items()}},
        status=200 if healthy else 503,
    )
