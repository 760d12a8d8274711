"""HTTP to the platform (urllib): JSON in and out, retries with exponential backoff, and what to drop."""

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("experiments_client")


@dataclass
class Reply:
    """A server's answer: the status, its headers and its JSON body (None when empty or not JSON)."""

    status: int
    headers: dict
    body: Any


class Transport:
    """Requests to `base_url` with a bearer key; `send` retries transient failures, `request` does not."""

    def __init__(self, base_url: str, key: str, *, timeout: float, max_attempts: int, backoff_seconds: float,
                 max_backoff_seconds: float, user_agent: str):
        self.base_url = base_url.rstrip("/").removesuffix("/api/v1")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json", "User-Agent": user_agent}
        self.deadline: float | None = None   # set by Client.close: no retry is waited for past it

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> Reply:
        """One request; an HTTP error status is a Reply, a network failure raises OSError (URLError, timeout)."""
        data = None
        all_headers = dict(self.headers, **(headers or {}))
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=data, headers=all_headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Reply(response.status, dict(response.headers), _json(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, dict(error.headers or {}), _json(error.read()))

    def send(self, path: str, body: Any, *, what: str) -> tuple[Reply | None, int]:
        """POST with retries on network errors, 5xx and 429; (the last reply or None, failed attempts).

        A reply below 500 other than 429 is returned at once (the caller decides what a 4xx drops).
        None means every attempt failed (or the close deadline passed): the caller drops the batch.
        """
        failures = 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                reply = self.request("POST", path, body)
            except (OSError, ValueError) as error:   # URLError, ConnectionError, timeouts; bad JSON bodies
                reason = f"{type(error).__name__}: {error}"
            else:
                if reply.status < 500 and reply.status != 429:
                    return reply, failures
                reason = f"HTTP {reply.status}: {detail(reply)}"
            failures += 1
            delay = min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
            if attempt == self.max_attempts or not self._may_wait(delay):
                log.error("Giving up on %s after %d attempt(s): %s", what, attempt, reason)
                return None, failures
            log.warning("Sending %s failed (%s); retrying in %.1f s", what, reason, delay)
            time.sleep(delay)
        return None, failures

    def _may_wait(self, delay: float) -> bool:
        return self.deadline is None or time.monotonic() + delay < self.deadline


def detail(reply: Reply) -> str:
    """The server's `detail` message (every error of the platform carries one)."""
    if isinstance(reply.body, dict) and "detail" in reply.body:
        return str(reply.body["detail"])
    return str(reply.body)[:200]


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:500]
