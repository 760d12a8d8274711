"""Per-key request rates for the token-authenticated endpoints: 429 with Retry-After beyond them.

A fixed one-window counter per (scope, key, window) in Django's cache: one `incr` per request
(plus one `add` for the first request of a window). DRF's SimpleRateThrottle keeps a list of
every request's time per key and reads and writes it whole on every request, which at
100,000/minute is a 100,000-item list pickled twice per request: far too dear for the
assignment path. A fixed window lets a burst of up to twice the rate through across a window
boundary; that is the price of one counter.

Scopes (the view's `throttle_scope`): "serving" (assignments and observations) and "people"
(everything else); rates in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (config/settings.py,
from the environment). The key is the token (service key or personal token) or, for a session,
the user; an anonymous request is not counted (it gets a 401 or 403 anyway).

The cache is Django's "default": LocMemCache unless CACHE_URL is set, i.e. per process, so
with N gunicorn workers a key may send up to N times the rate; set CACHE_URL=redis://... to
count across workers.
"""

import time

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

_DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_parsed: dict[str, tuple[int, int]] = {}


def parse_rate(rate: str) -> tuple[int, int]:
    """"1000/minute" -> (1000, 60)."""
    parsed = _parsed.get(rate)
    if parsed is None:
        count, _, period = rate.partition("/")
        parsed = _parsed[rate] = (int(count), _DURATIONS[period.strip()[0]])
    return parsed


# Counters of this process's windows, used instead of the cache when that is LocMemCache (also
# per process): the same counts without LocMemCache's pickling and locking on every request.
_local_counts: dict[str, int] = {}


def _count(key: str, duration: int) -> int:
    """This request's number in its window: one `incr` in the shared cache, or a dict entry."""
    shared = caches["default"]
    if isinstance(shared, LocMemCache):
        count = _local_counts.get(key, 0) + 1
        if count == 1 and len(_local_counts) > 10_000:
            _local_counts.clear()  # old windows: their keys are never asked for again
        _local_counts[key] = count
        return count
    try:
        return shared.incr(key)
    except ValueError:  # the window's first request (or the counter expired)
        if shared.add(key, 1, timeout=duration + 1):
            return 1
        return shared.incr(key)


class KeyRateThrottle(BaseThrottle):
    default_scope = "people"

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", self.default_scope)
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        ident = self._ident(request)
        if rate is None or ident is None:
            return True
        limit, duration = parse_rate(rate)
        now = time.time()
        window = int(now // duration)
        count = _count(f"throttle:{scope}:{ident}:{window}", duration)
        if count <= limit:
            return True
        self._wait = (window + 1) * duration - now
        return False

    def wait(self) -> float | None:
        return max(1.0, getattr(self, "_wait", 1.0))

    @staticmethod
    def _ident(request) -> str | None:
        auth = request.auth
        if auth is not None and getattr(auth, "pk", None) is not None:
            return f"{type(auth).__name__}:{auth.pk}"
        user = request.user
        if user is not None and user.is_authenticated and user.pk is not None:
            return f"user:{user.pk}"
        return None
