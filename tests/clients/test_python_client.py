"""clients/python against a live server: the same answers as the REST endpoint, outages, exactly-once delivery."""

import json
import threading
import time
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from experiments_client import Client, ConfigurationUnavailable, UnknownExperiment

from experiments import hashing
from experiments.models import Assignment, Experiment, Observation, ServiceKey
from experiments.services.assignment import assignments_for_units
from experiments.services.definition import experiment_update
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.factories import ExperimentFactory

BATCH = 10_000
THREE_VARIANTS = [
    {"key": "control", "weight": 1.0, "is_control": True, "payload": {"color": "blue"}},
    {"key": "green", "weight": 1.0, "payload": {"color": "green"}},
    {"key": "red", "weight": 2.0, "payload": {"color": "red"}},
]
MODELS = [{"key": "model-v1", "is_control": True, "payload": {"model": "v1"}}, {"key": "model-v2"},
          {"key": "model-v3"}]


def running(**fields) -> Experiment:
    return experiment_start(experiment=ExperimentFactory(**fields), actor=None)


def server_answers(key: str, units: list[str]) -> list[dict]:
    """What the REST batch endpoint answers, from its service, 10,000 units at a time."""
    answers = []
    for start in range(0, len(units), BATCH):
        answers += [a.as_dict() for a in assignments_for_units(experiment_key=key, units=units[start:start + BATCH])]
    return answers


def rest_answer(base_url: str, token: str, key: str, unit: str) -> dict:
    request = urllib.request.Request(f"{base_url}/api/v1/experiments/{key}/assignment/?unit={unit}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def agree(client: Client, key: str, units: list[str]) -> int:
    """Assert that the client answers every unit as the server does; returns how many were compared."""
    mine = [client.assign(key, unit) for unit in units]
    theirs = server_answers(key, units)
    mismatches = [(m, t) for m, t in zip(mine, theirs) if m != t]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[0]}"
    return len(units)


@pytest.fixture
def token(transactional_db) -> str:
    # Transactional tests flush the groups the migrations created: a service key needs none.
    return ServiceKey.objects.create_key(name="client-tests")[1]


@pytest.fixture
def make_client(live_server, token):
    clients = []

    def make(**options) -> Client:
        client = Client(options.pop("base_url", live_server.url), token, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=2)


@pytest.mark.django_db(transaction=True)
def test_the_client_answers_as_the_server_for_100000_units_in_every_state(make_client, live_server, token):
    ramp = running(key="ramp", traffic_percent=20, variants=THREE_VARIANTS)
    stop = running(key="stop", traffic_percent=50, variants=THREE_VARIANTS)
    concluded = running(key="concluded", variants=THREE_VARIANTS)
    running(key="shadowed", design="champion_challenger", metric_type="continuous", baseline_mean=None,
            baseline_sd=5.0, mde=0.5, traffic_percent=30, variants=MODELS)
    client = make_client(refresh_seconds=3600, flush_seconds=0.5)
    compared = 0

    # A ramp: 20 % for the first units, then 60 % for them and new ones.
    units = [f"r-{i}" for i in range(30_000)]
    compared += agree(client, "ramp", units[:20_000])
    experiment_update(experiment=ramp, actor=None, changes={"traffic_percent": 60})
    client.refresh()
    compared += agree(client, "ramp", units)
    for unit in units[:300]:   # and over real HTTP
        assert client.assign("ramp", unit) == rest_answer(live_server.url, token, "ramp", unit)

    # A stop: every unit, assigned or not, gets the control out of the experiment.
    compared += agree(client, "stop", [f"s-{i}" for i in range(5_000)])
    experiment_stop(experiment=stop, actor=None, reason="bug")
    client.refresh()
    compared += agree(client, "stop", [f"s-{i}" for i in range(15_000)])

    # A conclusion: everyone gets the winner.
    winner = concluded.variants.get(key="red")
    Experiment.objects.filter(pk=concluded.pk).update(status="concluded", concluded_variant=winner)
    client.refresh()
    compared += agree(client, "concluded", [f"c-{i}" for i in range(10_000)])

    # Champion/challenger: the champion is served; a sampled request gets the challengers to shadow.
    compared += agree(client, "shadowed", [f"q-{i}" for i in range(20_000)])
    assert {a["shadow"] == ["model-v2", "model-v3"] for a in (client.assign("shadowed", f"q-{i}") for i in range(99))} \
        == {True, False}

    # After ends_at no unit enters; the units stored before keep their variant (asked once, over HTTP).
    now = timezone.now()
    Experiment.objects.filter(pk=ramp.pk).update(started_at=now - timedelta(days=15), ends_at=now - timedelta(seconds=1))
    client.refresh()
    window = units[:150] + [f"late-{i}" for i in range(150)]
    answers = [client.assign("ramp", unit) for unit in window]
    assert answers == [rest_answer(live_server.url, token, "ramp", unit) for unit in window]
    assert [client.assign("ramp", unit) for unit in window] == answers   # cached: no second request
    assert {(a["variant"], a["in_experiment"]) for a in answers[150:]} == {("control", False)}
    assert all(a["in_experiment"] == hashing.is_included(ramp.salt, a["unit"], 60) for a in answers[:150])
    compared += len(window)

    assert compared >= 100_000
    with pytest.raises(UnknownExperiment):
        client.assign("never-defined", "u")


class _StandIn(BaseHTTPRequestHandler):
    """A server that passes the configuration on from the live server (until it goes away) and answers POSTs
    with scripted statuses."""

    config_request: urllib.request.Request
    statuses: list[int] = []
    posts: list[dict] = []

    def do_GET(self):
        with urllib.request.urlopen(self.config_request, timeout=5) as response:
            self._reply(200, response.read(), {"ETag": response.headers["ETag"]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posts.append(body)
        status = type(self).statuses.pop(0) if type(self).statuses else 201
        self._reply(status, json.dumps({"detail": f"scripted {status}"}).encode())

    def _reply(self, status, body, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in(live_server, token):
    _StandIn.config_request = urllib.request.Request(f"{live_server.url}/api/v1/sdk/config/",
                                                     headers={"Authorization": f"Bearer {token}"})
    _StandIn.statuses, _StandIn.posts = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_with_the_server_down_assign_answers_from_the_last_configuration_and_track_returns_at_once(
        make_client, stand_in):
    running(key="ab", traffic_percent=50, variants=THREE_VARIANTS)
    client = make_client(base_url=f"http://127.0.0.1:{stand_in.server_address[1]}", refresh_seconds=0.1,
                         flush_seconds=0.1, max_attempts=3, backoff_seconds=0.01)
    assert client.has_configuration
    before = [client.assign("ab", f"u-{i}") for i in range(1_000)]

    stand_in.shutdown()
    stand_in.server_close()   # the port is closed: every request is refused
    time.sleep(0.3)           # refreshes fail meanwhile

    assert [client.assign("ab", f"u-{i}") for i in range(1_000)] == before
    started = time.perf_counter()
    for i in range(1_000):
        client.track("ab", f"u-{i}", 1)
    assert time.perf_counter() - started < 1.0
    client.close(timeout=2)
    assert client.stats["errors"] > 0 and client.stats["dropped"] > 0


@pytest.mark.django_db(transaction=True)
def test_without_any_configuration_assign_raises_and_track_still_queues(make_client, live_server):
    client = make_client(base_url="http://127.0.0.1:9", timeout=0.5)

    with pytest.raises(ConfigurationUnavailable):
        client.assign("ab", "u-1")
    assert client.track("ab", "u-1", 1) is not None


@pytest.mark.django_db(transaction=True)
def test_5xx_is_retried_and_a_refused_batch_is_dropped_without_retry(make_client, stand_in):
    client = make_client(base_url=f"http://127.0.0.1:{stand_in.server_address[1]}", flush_seconds=0.05,
                         backoff_seconds=0.01, start=True)
    _StandIn.statuses = [503, 429, 201, 400]

    client.track("ab", "u-1", 1)
    deadline = time.monotonic() + 5
    while client.stats["observations_sent"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    client.track("ab", "u-2", 1, metric="revenue")
    client.close(timeout=2)

    assert len(_StandIn.posts) == 4   # three attempts for the first batch, one for the refused one
    assert _StandIn.posts[-1]["observations"][0]["metric"] == "revenue"
    assert "metric" not in _StandIn.posts[0]["observations"][0]
    assert client.stats == {"assigned": 0, "tracked": 2, "exposures_sent": 0, "observations_sent": 1,
                            "dropped": 1, "errors": 3}


@pytest.mark.django_db(transaction=True)
def test_after_close_every_exposure_and_observation_is_stored_exactly_once(make_client):
    ab = running(key="ab", traffic_percent=50, variants=THREE_VARIANTS)
    everyone = running(key="everyone", variants=THREE_VARIANTS)
    shadowed = running(key="shadowed", design="champion_challenger", metric_type="continuous", baseline_mean=None,
                       baseline_sd=5.0, mde=0.5, traffic_percent=40, variants=MODELS)
    client = make_client(flush_seconds=0.05)
    ids = set()
    included = 0

    for i in range(4_000):   # assigned twice, tracked while the background thread flushes
        unit = f"u-{i}"
        answer = client.assign("ab", unit)
        client.assign("ab", unit)
        if answer["in_experiment"]:
            included += 1
            ids.add(client.track("ab", unit, i % 2))
            ids.add(client.track("ab", unit, 1, id=f"order-{i}"))
            client.track("ab", unit, 1, id=f"order-{i}")   # a retry by the caller: stored once
    for i in range(12_000):   # more than one batch of exposures
        client.assign("everyone", f"e-{i}")
    for i in range(500):
        answer = client.assign("shadowed", f"req-{i}")
        for model in [answer["variant"], *answer["shadow"]]:
            ids.add(client.track("shadowed", f"req-{i}", 0.5, variant=model))
    client.close(timeout=20)

    assert Assignment.objects.filter(experiment=ab).count() == included
    assert Assignment.objects.filter(experiment=everyone).count() == 12_000
    sampled = Assignment.objects.filter(experiment=shadowed).count()
    assert sampled == sum(hashing.is_included(shadowed.salt, f"req-{i}", 40) for i in range(500))
    stored_ids = list(Observation.objects.values_list("idempotency_key", flat=True))
    assert len(stored_ids) == len(set(stored_ids)) == len(ids)
    assert set(stored_ids) == ids
    assert Observation.objects.filter(experiment=shadowed).count() == sampled * 3 + (500 - sampled) * 1
    stats = client.stats
    assert stats["dropped"] == 0 and stats["errors"] == 0, stats
    assert stats["exposures_sent"] == included + 12_000 + sampled
    assert stats["observations_sent"] == stats["tracked"] == 3 * included + sampled * 3 + (500 - sampled)
