"""Fixtures shared by the whole suite: people in each group, tokens, an authenticated client."""

import os

import pytest
from django.contrib.auth.models import Group
from django.core.servers.basehttp import WSGIServer
from rest_framework.test import APIClient

from experiments.models import ServiceKey, UserToken
from tests.factories import UserFactory

# The live server's listen backlog is socketserver's 5: the concurrency tests open 32
# connections at once, which a production server (gunicorn: 2048) would queue, not reset.
WSGIServer.request_queue_size = 128


@pytest.fixture(scope="session", autouse=True)
def _require_real_services(django_db_setup, django_db_blocker):
    """`make test` sets REQUIRE_POSTGRES=1: then a run on SQLite is an error, not a silent pass."""
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        from django.db import connection

        with django_db_blocker.unblock():
            assert connection.vendor == "postgresql", f"tests must run on PostgreSQL, not {connection.vendor}"


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings):
    """Production serves a collected, hashed manifest; tests render pages without collecting."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _no_serving_cache(settings):
    """Tests change an experiment (or revoke a key) and ask again at once: read the database every time.

    The caches themselves are specified in tests/experiments/services/test_serving_cache.py
    and tests/experiments/api/test_authentication_cache.py.
    """
    from experiments.api import throttling
    from experiments.api.authentication import verified_keys
    from experiments.services.assignment import serving_cache

    settings.ASSIGNMENT_STATE_CACHE_SECONDS = 0
    settings.AUTH_CACHE_SECONDS = 0
    serving_cache.states.clear()
    serving_cache.assignments.clear()
    verified_keys.clear()
    throttling._local_counts.clear()


def member_of(group_name: str, **fields):
    """A new user in the group (created by a migration); `fields` go to the factory."""
    user = UserFactory(**fields)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def experimenter(db):
    return member_of("experimenter")


@pytest.fixture
def viewer(db):
    return member_of("viewer")


@pytest.fixture
def service_key(db) -> str:
    _, key = ServiceKey.objects.create_key(name="web-shop")
    return key


def bearer_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def token_for(user) -> str:
    _, token = UserToken.objects.create_key(name="test", user=user)
    return token


@pytest.fixture
def experimenter_client(experimenter) -> APIClient:
    return bearer_client(token_for(experimenter))


@pytest.fixture
def viewer_client(viewer) -> APIClient:
    return bearer_client(token_for(viewer))


@pytest.fixture
def service_client(service_key) -> APIClient:
    return bearer_client(service_key)
