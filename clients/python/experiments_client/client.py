"""`Client`: local assignment from the SDK configuration, exposures and observations sent in the background."""

import atexit
import logging
import math
import threading
import time
import urllib.parse
import uuid
from collections import OrderedDict, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from experiments_client.errors import ConfigurationUnavailable, UnknownExperiment
from experiments_client.recipe import ServingExperiment
from experiments_client.transport import Transport, detail

log = logging.getLogger("experiments_client")

BATCH_SIZE = 10_000          # the server's limit per request, for exposures and observations
MAX_UNIT_LENGTH = 255        # the server's limit; a longer unit is a 400 there, a ValueError here
CONFIG_PATH = "/api/v1/sdk/config/"
STAT_NAMES = ("assigned", "tracked", "exposures_sent", "observations_sent", "dropped", "errors")


class Client:
    """Assigns units as the server would, from a configuration refreshed in the background.

    `assign` never waits for the network while an experiment runs (the hash alone is sticky
    until `ends_at`: weights are frozen at start and traffic only goes up); after `ends_at`
    and until the conclusion it asks the server once per unit and caches the answer.
    `track` queues an observation and returns at once. A daemon thread refreshes the
    configuration every `refresh_seconds` (with its ETag) and every `flush_seconds` sends the
    queued exposures, then the observations, in batches of at most 10,000, retrying network
    errors, 5xx and 429 up to `max_attempts` times with exponential backoff.
    """

    def __init__(self, base_url: str, key: str, *, refresh_seconds: float = 30, flush_seconds: float = 1,
                 max_queue: int = 100_000, timeout: float = 5, max_attempts: int = 5,
                 backoff_seconds: float = 0.5, max_backoff_seconds: float = 30, cache_size: int = 100_000,
                 senders: int = 4, start: bool = True):
        from experiments_client import __version__

        self.refresh_seconds = refresh_seconds
        self.flush_seconds = flush_seconds
        self.max_queue = max_queue
        self.cache_size = cache_size
        # Batches of one kind are sent `senders` at a time: the server stores them on several
        # workers at once (bench/client.py). Exposures still all finish before observations start.
        self._senders = ThreadPoolExecutor(max_workers=max(1, senders), thread_name_prefix="experiments-client-send")
        self._transport = Transport(base_url, key, timeout=timeout, max_attempts=max_attempts,
                                    backoff_seconds=backoff_seconds, max_backoff_seconds=max_backoff_seconds,
                                    user_agent=f"experiments-client-python/{__version__}")
        self._experiments: dict[str, ServingExperiment] | None = None
        self._etag: str | None = None
        self._exposed: defaultdict[str, set[str]] = defaultdict(set)    # per process, per experiment
        self._exposures: deque[tuple[str, str]] = deque()
        self._observations: deque[tuple[str, dict]] = deque()
        self._answers: OrderedDict[tuple[str, str], dict] = OrderedDict()   # the server's, after ends_at
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        if start:
            self.refresh()
            self._thread = threading.Thread(target=self._run, name="experiments-client", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    # --- assigning -------------------------------------------------------------------------

    def assign(self, experiment: str, unit) -> dict:
        """The REST endpoint's answer for the unit: experiment, unit, variant, payload, in_experiment, shadow.

        Raises ConfigurationUnavailable when no configuration was ever fetched, UnknownExperiment
        for a key the configuration lacks (unknown, or a draft), ValueError for a unit the
        server would refuse (empty, longer than 255 characters, neither a string nor an int).
        The payload is shared with the configuration: treat it as read-only.
        """
        experiments = self._experiments
        if experiments is None:
            raise ConfigurationUnavailable("No configuration fetched from the server yet.")
        state = experiments.get(experiment)
        if state is None:
            raise UnknownExperiment(experiment)
        unit = _unit(unit)
        with self._lock:
            self._stats["assigned"] += 1
        status = state.status
        if status == "running" and time.time() < state.ends_at:
            if not state.is_included(unit):
                return state.answer(unit, state.control, False)
            self._expose(experiment, unit)
            return state.included_answer(unit)
        if status == "concluded":
            return state.answer(unit, state.concluded or state.control, False)
        if status == "stopped":
            return state.answer(unit, state.control, False)
        return self._answer_after_the_end(state, unit)

    def _expose(self, experiment: str, unit: str) -> None:
        seen = self._exposed[experiment]
        if unit in seen:
            return
        if len(self._exposures) + len(self._observations) >= self.max_queue:
            with self._lock:
                self._stats["dropped"] += 1
            return   # not remembered: the next assign of this unit queues it again
        seen.add(unit)
        self._exposures.append((experiment, unit))
        if len(self._exposures) >= BATCH_SIZE:
            self._wake.set()

    def _answer_after_the_end(self, state: ServingExperiment, unit: str) -> dict:
        """After ends_at no unit enters, but stored ones keep their variant: only the server knows which are stored."""
        cache_key = (state.key, unit)
        cached = self._answers.get(cache_key)
        if cached is not None:
            return dict(cached, shadow=list(cached["shadow"]))
        path = f"/api/v1/experiments/{urllib.parse.quote(state.key)}/assignment/?" + urllib.parse.urlencode(
            {"unit": unit})
        try:
            reply = self._transport.request("GET", path)
        except (OSError, ValueError) as error:
            reply, reason = None, f"{type(error).__name__}: {error}"
        else:
            reason = f"HTTP {reply.status}: {detail(reply)}"
        if reply is not None and reply.status == 200 and isinstance(reply.body, dict):
            self._answers[cache_key] = reply.body
            if len(self._answers) > self.cache_size:
                self._answers.popitem(last=False)
            return dict(reply.body, shadow=list(reply.body.get("shadow", [])))
        with self._lock:
            self._stats["errors"] += 1
        log.warning("Asking the server for %r in %r failed (%s): answering locally", unit, state.key, reason)
        # A unit this process put in the experiment was stored with its hashed variant; any
        # other unit is answered as a newcomer (the control), and asked about again next time.
        if unit in self._exposed.get(state.key, ()):
            return state.included_answer(unit)
        return state.answer(unit, state.control, False)

    # --- tracking --------------------------------------------------------------------------

    def track(self, experiment: str, unit, value: float, metric: str | None = None, variant: str | None = None,
              id: str | None = None, timestamp=None) -> str | None:
        """Queue an observation; returns its id (a new UUID when none is given), or None when the queue was full.

        `variant` names the model for champion/challenger; `timestamp` is a datetime, an ISO
        8601 string or a Unix time. Never blocks: the background thread sends it after the
        exposures queued before it.
        """
        item = {"unit": _unit(unit), "value": value, "id": id if id is not None else str(uuid.uuid4())}
        if metric is not None:
            item["metric"] = metric
        if variant is not None:
            item["variant"] = variant
        if timestamp is not None:
            item["timestamp"] = _timestamp(timestamp)
        with self._lock:
            if len(self._exposures) + len(self._observations) >= self.max_queue:
                self._stats["dropped"] += 1
                return None
            self._stats["tracked"] += 1
        self._observations.append((experiment, item))
        if len(self._observations) >= BATCH_SIZE:
            self._wake.set()
        return item["id"]

    # --- the background thread -------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Counters: assigned, tracked, exposures_sent, observations_sent, dropped, errors (a copy)."""
        with self._lock:
            return dict(self._stats)

    @property
    def has_configuration(self) -> bool:
        return self._experiments is not None

    def refresh(self) -> bool:
        """Fetch the configuration now (If-None-Match: a 304 keeps ours); False when the server did not answer."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            reply = self._transport.request("GET", CONFIG_PATH, headers=headers)
        except (OSError, ValueError) as error:
            return self._failed("Fetching the configuration failed", f"{type(error).__name__}: {error}")
        if reply.status == 304:
            return True
        if reply.status != 200 or not isinstance(reply.body, dict):
            return self._failed("Fetching the configuration failed", f"HTTP {reply.status}: {detail(reply)}")
        self._experiments = {doc["key"]: ServingExperiment(doc) for doc in reply.body["experiments"]}
        self._etag = {k.lower(): v for k, v in reply.headers.items()}.get("etag")
        return True

    def _failed(self, what: str, reason: str) -> bool:
        with self._lock:
            self._stats["errors"] += 1
        log.warning("%s (%s); keeping the last configuration", what, reason)
        return False

    def _run(self) -> None:
        next_refresh = time.monotonic() + self.refresh_seconds
        while True:
            stopping = self._stop.is_set()
            if not stopping and (time.monotonic() >= next_refresh or self._experiments is None):
                self.refresh()
                next_refresh = time.monotonic() + self.refresh_seconds
            try:
                self.flush_now()
            except Exception:   # never let the thread die: the queues would only fill up
                log.exception("Flushing failed")
            if stopping:
                return
            self._wake.wait(self.flush_seconds)
            self._wake.clear()

    def flush_now(self) -> None:
        """Send what is queued: every exposure first, then the observations queued before them.

        The observations are taken first, so each one's exposure (queued by the `assign` that
        came before its `track`) is sent before it: the server refuses an A/B observation of
        a unit it has never stored.
        """
        observations = [self._observations.popleft() for _ in range(len(self._observations))]
        exposures = [self._exposures.popleft() for _ in range(len(self._exposures))]
        self._send_all(self._send_exposures, exposures)
        self._send_all(self._send_observations, observations)

    def _send_all(self, send, queued: list[tuple[str, object]]) -> None:
        """Send the items in batches of at most 10,000 per experiment, several at a time; return when all are done."""
        by_experiment: defaultdict[str, list] = defaultdict(list)
        for experiment, item in queued:
            by_experiment[experiment].append(item)
        batches = [(experiment, items[start:start + BATCH_SIZE])
                   for experiment, items in by_experiment.items() for start in range(0, len(items), BATCH_SIZE)]
        if len(batches) == 1:
            send(*batches[0])
            return
        for future in [self._senders.submit(send, experiment, batch) for experiment, batch in batches]:
            future.result()

    def _send_exposures(self, experiment: str, units: list[str]) -> None:
        path = f"/api/v1/experiments/{urllib.parse.quote(experiment)}/exposures/"
        reply, failures = self._transport.send(path, {"units": units}, what=f"{len(units)} exposure(s) of {experiment!r}")
        sent = reply is not None and reply.status < 300
        if reply is not None and not sent:
            log.error("The server refused %d exposure(s) of %r: HTTP %d: %s", len(units), experiment, reply.status,
                      detail(reply))
        with self._lock:
            self._stats["errors"] += failures + (0 if sent or reply is None else 1)
            self._stats["exposures_sent" if sent else "dropped"] += len(units)

    def _send_observations(self, experiment: str, items: list[dict]) -> None:
        path = f"/api/v1/experiments/{urllib.parse.quote(experiment)}/observations/"
        what = f"{len(items)} observation(s) of {experiment!r}"
        reply, failures = self._transport.send(path, {"observations": items}, what=what)
        dropped = len(items) if reply is None else 0
        sent = 0
        if reply is not None and reply.status < 300:
            sent = len(items)
        elif reply is not None:
            failures += 1
            indexes = reply.body.get("indexes") if isinstance(reply.body, dict) else None
            log.error("The server refused %s: HTTP %d: %s", what, reply.status, detail(reply))
            if indexes and len(indexes) < len(items):
                # The batch is all or nothing: drop the items the server named, send the rest once more.
                bad = set(indexes)
                rest = [item for index, item in enumerate(items) if index not in bad]
                again, more_failures = self._transport.send(path, {"observations": rest}, what=what)
                failures += more_failures
                sent = len(rest) if again is not None and again.status < 300 else 0
            dropped = len(items) - sent
        with self._lock:
            self._stats["errors"] += failures
            self._stats["observations_sent"] += sent
            self._stats["dropped"] += dropped

    # --- closing ---------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued (waiting at most `timeout` seconds, retries included) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._transport.deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("close(): %d exposure(s) and %d observation(s) still unsent after %.1f s",
                          len(self._exposures), len(self._observations), timeout)
        else:
            self.flush_now()
        self._senders.shutdown(wait=False)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unit(unit) -> str:
    """A unit as the server takes it: a non-empty string of at most 255 characters, or an int as its digits."""
    if isinstance(unit, bool) or not isinstance(unit, (str, int)):
        raise ValueError(f"A unit must be a string or an integer, not {type(unit).__name__}.")
    unit = str(unit)
    if not unit.strip():
        raise ValueError("A unit must not be empty.")
    if len(unit) > MAX_UNIT_LENGTH:
        raise ValueError(f"A unit must be at most {MAX_UNIT_LENGTH} characters.")
    return unit


def _timestamp(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
    return str(value)
