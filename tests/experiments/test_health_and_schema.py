"""/healthz reports the database and the real broker; the OpenAPI schema and docs are public."""

import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthz_is_200_when_the_database_and_broker_answer():
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_does_not_answer(settings):
    settings.HEALTHZ_BROKER_TIMEOUT_SECONDS = 0.5
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] == "unreachable" and response.json()["database"] == "ok"


@pytest.mark.django_db
def test_the_openapi_schema_describes_the_experiments_api_without_authentication():
    response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/experiments/{key}/start/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.django_db
def test_the_docs_page_loads_swagger_ui_from_our_own_static_files():
    response = Client().get("/api/v1/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "cdn.jsdelivr" not in html
