"""Bearer tokens and permissions: who may read and change experiments."""

import pytest
from rest_framework.test import APIClient

from experiments.models import ServiceKey
from tests.conftest import bearer_client
from tests.experiments.api.definitions import URL, valid_body
from tests.factories import ExperimentFactory, UserFactory

PEOPLE_ENDPOINTS = [
    ("get", URL),
    ("post", URL),
    ("get", f"{URL}demo/"),
    ("patch", f"{URL}demo/"),
    ("post", f"{URL}demo/start/"),
    ("post", f"{URL}demo/stop/"),
]


@pytest.fixture
def demo(db):
    return ExperimentFactory(key="demo")


@pytest.mark.django_db
@pytest.mark.parametrize("method, url", PEOPLE_ENDPOINTS)
def test_no_token_is_a_401_json_error(demo, method, url):
    response = getattr(APIClient(), method)(url, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "detail" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["garbage", "abcdefgh.wrongsecret", ""])
def test_a_wrong_token_is_a_401(demo, token):
    response = APIClient().get(URL, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401


@pytest.mark.django_db
def test_a_revoked_service_key_is_a_401(demo):
    key_row, key = ServiceKey.objects.create_key(name="old")
    key_row.revoked = True
    key_row.save()

    assert bearer_client(key).get(URL).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("method, url", PEOPLE_ENDPOINTS)
def test_a_service_key_may_not_read_or_change_experiments(demo, service_client, method, url):
    body = valid_body() if method != "get" else None
    response = getattr(service_client, method)(url, body, format="json")

    assert response.status_code == 403
    assert "Service keys" in response.json()["detail"]
    demo.refresh_from_db()
    assert demo.status == "draft"


@pytest.mark.django_db
def test_a_viewer_reads_but_cannot_define_start_or_edit(demo, viewer_client):
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.get(f"{URL}demo/").status_code == 200
    assert viewer_client.post(URL, valid_body(), format="json").status_code == 403
    assert viewer_client.patch(f"{URL}demo/", {"name": "x"}, format="json").status_code == 403
    assert viewer_client.post(f"{URL}demo/start/").status_code == 403
    demo.refresh_from_db()
    assert demo.status == "draft" and demo.name != "x"


@pytest.mark.django_db
def test_a_person_without_a_group_cannot_even_read(demo):
    from tests.conftest import token_for

    client = bearer_client(token_for(UserFactory()))

    assert client.get(URL).status_code == 403


@pytest.mark.django_db
def test_people_may_also_use_their_session(demo, experimenter):
    client = APIClient()
    client.force_login(experimenter)

    assert client.get(f"{URL}demo/").status_code == 200


@pytest.mark.django_db
def test_an_inactive_users_token_is_refused(demo, experimenter, experimenter_client):
    experimenter.is_active = False
    experimenter.save()

    assert experimenter_client.get(URL).status_code == 401
