"""During a database outage the admin and the reports answer a short 503 page, not a 500; the API, JSON."""

import pytest
from django.db import OperationalError
from django.test import Client, RequestFactory

from experiments.middleware import DatabaseUnavailableMiddleware
from tests.experiments.test_health import database_down
from tests.factories import UserFactory

TEXT = "The database is unavailable; try again in a minute."


def logged_in(**client_options) -> Client:
    """A superuser's session (no group: transactional tests flush the groups a migration made)."""
    client = Client(**client_options)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def assert_outage_page(response):
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "60"
    assert TEXT in response.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/admin/", "/admin/experiments/experiment/", "/reports/"])
def test_a_logged_in_person_sees_the_outage_page_not_a_500(path):
    # The session and the user are loaded from the database on the first access to request.user.
    client = logged_in()
    assert client.get(path).status_code == 200

    with database_down():
        response = client.get(path)

    assert_outage_page(response)
    # The session survives the outage: its cookie is not deleted, the person stays signed in.
    assert "sessionid" not in response.cookies or response.cookies["sessionid"].value
    assert client.get(path).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_anonymous_visitor_sees_the_outage_page_on_the_admin_login():
    with database_down():
        response = Client().post("/admin/login/", {"username": "someone", "password": "secret"})

    assert_outage_page(response)


@pytest.mark.django_db(transaction=True)
def test_an_error_in_a_middleware_still_answers_503(settings):
    # An auth check in middleware (Django's LoginRequiredMiddleware reads request.user in
    # process_view) raises outside the view: Django makes it a 500, which becomes the 503.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    client = logged_in(raise_request_exception=False)

    with database_down():
        page = client.get("/reports/")
        api = client.get("/api/v1/experiments/")

    assert_outage_page(page)
    assert api.status_code == 503
    assert api["Content-Type"] == "application/json" and api["Retry-After"] == "60"
    assert api.json() == {"detail": "The database is unavailable; retry later."}


@pytest.mark.django_db(transaction=True)
def test_the_api_still_answers_503_json_from_its_own_handler(service_key):
    from tests.conftest import bearer_client

    with database_down():
        response = bearer_client(service_key).get("/api/v1/experiments/")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"


def test_a_database_error_escaping_drf_under_api_is_json_and_elsewhere_html():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    factory = RequestFactory()

    api = middleware.process_exception(factory.get("/api/v1/assignments/"), OperationalError("gone"))
    page = middleware.process_exception(factory.get("/admin/"), OperationalError("gone"))

    assert api.status_code == 503 and api["Content-Type"] == "application/json"
    assert page.status_code == 503 and TEXT in page.content.decode()
    assert middleware.process_exception(factory.get("/admin/"), ValueError("a bug")) is None

