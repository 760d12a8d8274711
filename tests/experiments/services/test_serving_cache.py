"""The per-process serving cache: repeat answers without a query, state changes within its lifetime."""

import time
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.services.assignment import _ServingCache, assignment_for_unit, serving_cache
from experiments.services.lifecycle import experiment_start, experiment_stop
from tests.factories import ExperimentFactory


@pytest.fixture
def cached(settings):
    settings.ASSIGNMENT_STATE_CACHE_SECONDS = 0.5


@pytest.mark.django_db
def test_a_repeat_assignment_is_served_without_a_query(cached):
    experiment = experiment_start(experiment=ExperimentFactory(), actor=None)
    first = assignment_for_unit(experiment_key=experiment.key, unit="u1")

    with CaptureQueriesContext(connection) as queries:
        repeat = assignment_for_unit(experiment_key=experiment.key, unit="u1")

    assert repeat == first and len(queries) == 0


@pytest.mark.django_db
def test_a_stop_reaches_the_cached_state_within_its_lifetime(cached):
    experiment = experiment_start(experiment=ExperimentFactory(), actor=None)
    assignment_for_unit(experiment_key=experiment.key, unit="u1")
    experiment_stop(experiment=experiment, actor=None, reason="bug")

    time.sleep(0.6)
    answer = assignment_for_unit(experiment_key=experiment.key, unit="u1")

    assert (answer.variant, answer.in_experiment) == ("control", False)


@pytest.mark.django_db
def test_drafts_are_never_cached(cached):
    draft = ExperimentFactory()
    with pytest.raises(Exception):
        assignment_for_unit(experiment_key=draft.key, unit="u1")
    experiment_start(experiment=draft, actor=None)

    assert assignment_for_unit(experiment_key=draft.key, unit="u1").in_experiment is True
    assert draft.key in serving_cache.states


def test_a_recently_read_assignment_survives_an_eviction(cached):
    cache = _ServingCache(max_assignments=2)
    state = SimpleNamespace(salt="salt")
    cache.remember_assignment(state, "old-but-read", 1)
    cache.remember_assignment(state, "newer-unread", 2)
    assert cache.assignment(state, "old-but-read") == 1

    cache.remember_assignment(state, "newest", 3)   # full: the least recently used goes

    assert cache.assignment(state, "old-but-read") == 1
    assert cache.assignment(state, "newest") == 3
    assert cache.assignment(state, "newer-unread") is None
