"""Health checks for operators.

- `GET /healthz/live` (liveness, for a process supervisor): 200 while the process can answer a
  request; it checks no dependency, so a database or broker outage never gets the process killed.
- `GET /healthz/ready` (readiness, for a load balancer): 503 when the database does not answer,
  200 otherwise. The broker is reported (`"broker": "ok" | "unreachable"`) but does not make the
  API unready: assignments and observations are served without it (only queued analyses wait).
  The broker check is bounded by HEALTHZ_READY_BROKER_TIMEOUT_SECONDS even when the broker
  accepts the connection and never answers.
- `GET /healthz` (DESIGN.md: "database and broker reachable"): 200 when both answer, 503 otherwise,
  as before (kept for compatibility; do not point a load balancer at it).
"""

import concurrent.futures
import threading

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery_app import app as celery_app


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok(timeout: float | None = None, max_retries: int = 1) -> bool:
    timeout = settings.HEALTHZ_BROKER_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        # The URL is read from settings on each call so that an outage can be simulated in tests.
        # Socket timeouts: a broker that accepts the connection and never answers would otherwise
        # hold the check forever (ensure_connection's timeout only bounds its retries).
        with celery_app.connection_for_write(
            settings.CELERY_BROKER_URL, connect_timeout=timeout,
            transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        ) as broker:
            broker.ensure_connection(max_retries=max_retries, timeout=timeout)
        return True
    except Exception:
        return False


# At most one readiness broker check runs at a time: while a broker that never answers holds one,
# the following probes wait on that same check (bounded by their own timeout) instead of each
# starting a thread of its own.
_broker_check_lock = threading.Lock()
_broker_check: concurrent.futures.Future | None = None


def _run_broker_check(future: concurrent.futures.Future, timeout: float) -> None:
    try:
        future.set_result(_broker_ok(timeout=timeout, max_retries=0))
    except BaseException as exc:  # pragma: no cover - _broker_ok catches everything it can
        future.set_exception(exc)


def _broker_ok_within(timeout: float) -> bool:
    """Whether the broker answers, waiting at most `timeout` seconds whatever the broker does."""
    global _broker_check
    with _broker_check_lock:
        if _broker_check is None or _broker_check.done():
            _broker_check = concurrent.futures.Future()
            threading.Thread(target=_run_broker_check, args=(_broker_check, timeout),
                             name="healthz-broker", daemon=True).start()
        check = _broker_check
    try:
        return check.result(timeout=timeout)
    except Exception:  # the wait timed out (the broker does not answer), or the check failed
        return False


def _answer(checks: dict[str, bool], healthy: bool) -> JsonResponse:
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable",
         **{name: "ok" if ok else "unreachable" for name, ok in checks.items()}},
        status=200 if healthy else 503,
    )


@never_cache
@require_GET
def healthz(request):
    """Anyone may ask; the answer names each dependency and whether it is reachable."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    return _answer(checks, all(checks.values()))


@never_cache
@require_GET
def liveness(request):
    """The process answers: nothing else is checked (no database, no broker)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readiness(request):
    """Ready to serve traffic: the database answers. The broker is reported, not required."""
    checks = {"database": _database_ok(),
              "broker": _broker_ok_within(settings.HEALTHZ_READY_BROKER_TIMEOUT_SECONDS)}
    return _answer(checks, checks["database"])
