"""Bearer tokens: a service key or a person's personal token, both stored hashed.

Verifying a token costs a database query and a password hash, on every request. A verified
token is therefore remembered per worker process for `AUTH_CACHE_SECONDS` (default 5; 0
turns it off), so the hot path (assignments, exposures, observations) pays neither. The
price: a key revoked, an expiry moved earlier or a user deactivated is refused by every
worker within that time, not at once. A key's own expiry date is checked on every request.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from threading import Lock
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from experiments.models import ServiceKey, UserToken


class ServicePrincipal:
    """The caller behind a service key: authenticated, but holds no Django permission."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_service = True
    pk = None
    username = ""

    def __init__(self, service_key: ServiceKey):
        self.service_key = service_key
        self.username = f"service:{service_key.name}"

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def __str__(self) -> str:
        return self.username


@dataclass(frozen=True)
class VerifiedKey:
    """What a request needs of a verified token: who calls, with which key, until when."""

    principal: Any
    key: ServiceKey | UserToken
    expires_at: datetime | None

    @property
    def has_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at < timezone.now()


class VerifiedKeyCache:
    """Tokens verified in this process in the last `AUTH_CACHE_SECONDS`, keyed by their SHA-256.

    The raw token is never kept as a key: only its digest, so a memory dump of the cache
    gives nothing to authenticate with. The TTL is read from the settings on every use (a
    change empties the cache); the clock is `time.monotonic`, so a wall-clock jump cannot
    stretch the time a revoked key is still accepted.

    A plain dict of digest -> (deadline, verified key): a hit, on every request of the hot
    path, is one dict look-up and a clock read, without a lock (a dict's get, set and pop
    are atomic, so threaded servers need none to read). Only `remember`, on a miss, takes the
    lock, to bound the size without racing another thread's sweep.
    """

    MAX_KEYS = 10_000

    def __init__(self, *, timer=time.monotonic):
        self._timer = timer
        self._lock = Lock()
        self._ttl: float | None = None
        self._keys: dict[bytes, tuple[float, VerifiedKey]] = {}

    def _current_ttl(self) -> float:
        ttl = settings.AUTH_CACHE_SECONDS
        if ttl != self._ttl:
            self._ttl = ttl
            self._keys = {}
        return ttl

    def get(self, token: str) -> VerifiedKey | None:
        if self._current_ttl() <= 0:
            return None
        entry = self._keys.get(_digest(token))
        return entry[1] if entry is not None and entry[0] > self._timer() else None

    def remember(self, token: str, verified: VerifiedKey) -> None:
        ttl = self._current_ttl()
        if ttl <= 0:
            return
        now = self._timer()
        with self._lock:
            if len(self._keys) >= self.MAX_KEYS:
                self._keys = {digest: entry for digest, entry in list(self._keys.items()) if entry[0] > now}
                if len(self._keys) >= self.MAX_KEYS:
                    self._keys = {}
            self._keys[_digest(token)] = (now + ttl, verified)

    def forget(self, token: str) -> None:
        self._keys.pop(_digest(token), None)

    def clear(self) -> None:
        self._keys.clear()


verified_keys = VerifiedKeyCache()


def _digest(token: str) -> bytes:
    return sha256(token.encode("utf-8", "surrogateescape")).digest()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`, where the token is a service key or a personal token."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        token = header[1].decode("latin-1")
        verified = verified_keys.get(token)
        if verified is not None and verified.has_expired:
            verified_keys.forget(token)
            verified = None
        if verified is None:
            verified = _verify(token)
            verified_keys.remember(token, verified)
        return verified.principal, verified.key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return self.keyword


def _verify(token: str) -> VerifiedKey:
    """Look the token up in the database (AuthenticationFailed when it is not usable)."""
    # Services call on every request, so their keys are looked up first.
    service_key = _usable_key(ServiceKey, token)
    if service_key is not None:
        return VerifiedKey(ServicePrincipal(service_key), service_key, service_key.expiry_date)
    user_token = _usable_key(UserToken, token, related=("user",))
    if user_token is None:
        raise exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
    if not user_token.user.is_active:
        raise exceptions.AuthenticationFailed("This user is inactive.")
    return VerifiedKey(user_token.user, user_token, user_token.expiry_date)


def _usable_key(model, token: str, related: tuple[str, ...] = ()):
    """The unrevoked, unexpired key whose prefix and hash match the token, or None."""
    prefix = token.partition(".")[0]
    key = model.objects.get_usable_keys().select_related(*related).filter(prefix=prefix).first()
    if key is None or key.has_expired or not key.is_valid(token):
        return None
    return key
