"""A verified token is trusted for AUTH_CACHE_SECONDS per process: no query on a hit, revocation within the TTL."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from experiments.api.authentication import BearerTokenAuthentication, verified_keys
from experiments.models import ServiceKey
from tests.conftest import bearer_client, token_for
from tests.factories import ExperimentFactory, UserFactory

URL = "/api/v1/sdk/config/"
TTL = 1.0


@pytest.fixture
def auth_cache(settings):
    settings.AUTH_CACHE_SECONDS = TTL
    verified_keys.clear()
    yield
    verified_keys.clear()


def authenticate(token: str):
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    return BearerTokenAuthentication().authenticate(request)


@pytest.mark.django_db
def test_a_verified_key_is_served_from_the_cache_without_a_query(auth_cache, django_assert_num_queries):
    _, key = ServiceKey.objects.create_key(name="web-shop")
    first = authenticate(key)

    with django_assert_num_queries(0):
        again = authenticate(key)

    assert again[0] is first[0] and again[0].is_service


@pytest.mark.django_db
def test_the_cache_holds_a_digest_of_the_token_never_the_token(auth_cache):
    _, key = ServiceKey.objects.create_key(name="web-shop")
    authenticate(key)

    stored = list(verified_keys._keys.keys())
    assert len(stored) == 1 and isinstance(stored[0], bytes) and key.encode() not in stored[0]


@pytest.mark.django_db
def test_a_revoked_service_key_is_refused_once_the_ttl_has_passed(auth_cache):
    ExperimentFactory()
    row, key = ServiceKey.objects.create_key(name="web-shop")
    client = bearer_client(key)
    assert client.get(URL).status_code == 200

    row.revoked = True
    row.save()

    assert client.get(URL).status_code == 200   # within the TTL this worker still trusts it
    time.sleep(TTL + 0.1)
    assert client.get(URL).status_code == 401


@pytest.mark.django_db
def test_a_deactivated_user_is_refused_once_the_ttl_has_passed(auth_cache):
    user = UserFactory(is_superuser=True)
    client = bearer_client(token_for(user))
    assert client.get(URL).status_code == 200

    user.is_active = False
    user.save()
    time.sleep(TTL + 0.1)

    assert client.get(URL).status_code == 401


@pytest.mark.django_db
def test_a_key_that_expires_is_refused_at_once_even_when_cached(settings):
    settings.AUTH_CACHE_SECONDS = 60
    verified_keys.clear()
    _, key = ServiceKey.objects.create_key(name="short", expiry_date=timezone.now() + timedelta(seconds=1))
    client = bearer_client(key)
    assert client.get(URL).status_code == 200

    time.sleep(1.1)   # the key's expiry date is cached with it, so no TTL is needed to enforce it

    assert client.get(URL).status_code == 401
    verified_keys.clear()


@pytest.mark.django_db
def test_with_a_ttl_of_zero_every_request_checks_the_database(service_key, django_assert_num_queries):
    authenticate(service_key)

    with django_assert_num_queries(1):
        authenticate(service_key)
