"""32 concurrent clients over real HTTP: no lost and no duplicated assignment."""

import json
import random
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from experiments.models import Assignment, ServiceKey
from experiments.services.lifecycle import experiment_start
from tests.factories import ExperimentFactory

CLIENTS = 32


def _post(url: str, key: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _get(url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _hammer(call, count: int = CLIENTS) -> list:
    start = threading.Barrier(count)

    def client(index: int):
        start.wait()  # every client fires at once
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(client, range(count)))


@pytest.fixture
def running_experiment(transactional_db):
    experiment = ExperimentFactory(variants=[
        {"key": "control", "weight": 1.0, "is_control": True},
        {"key": "b", "weight": 1.0},
        {"key": "c", "weight": 2.0},
    ])
    return experiment_start(experiment=experiment, actor=None)


@pytest.fixture
def key(transactional_db) -> str:
    return ServiceKey.objects.create_key(name="hammer")[1]


def test_concurrent_first_requests_for_one_unit_get_one_answer_and_one_row(live_server, running_experiment, key):
    url = f"{live_server.url}/api/v1/experiments/{running_experiment.key}/assignment/?unit=contested"

    answers = _hammer(lambda _: _get(url, key))

    assert len({a["variant"] for a in answers}) == 1
    assert all(a["in_experiment"] for a in answers)
    assert Assignment.objects.filter(experiment=running_experiment, unit="contested").count() == 1


def test_concurrent_batches_over_the_same_units_lose_and_duplicate_nothing(live_server, running_experiment, key):
    units = [f"user-{i}" for i in range(500)]
    url = f"{live_server.url}/api/v1/assignments/"

    def batch(index: int) -> dict[str, str]:
        shuffled = random.Random(index).sample(units, len(units))
        body = {"experiment": running_experiment.key, "units": shuffled}
        return {a["unit"]: a["variant"] for a in _post(url, key, body)["assignments"]}

    answers = _hammer(batch)

    assert all(answer == answers[0] for answer in answers)
    stored = dict(Assignment.objects.filter(experiment=running_experiment).values_list("unit", "variant__key"))
    assert stored == answers[0]
    assert len(stored) == len(units)
