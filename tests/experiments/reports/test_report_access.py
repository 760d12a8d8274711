"""Who may read a report: people with the view permission over a session, never a service key."""

import pytest

from tests.experiments.reports.helpers import analysed_ab
from tests.factories import UserFactory

PATHS = ("/reports/", "/reports/{key}/", "/reports/{key}/result.json", "/reports/{key}/result.csv")


@pytest.fixture
def experiment(db):
    return analysed_ab("promote")


def urls(key: str) -> list[str]:
    return [path.format(key=key) for path in PATHS]


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_the_admin_login(client, experiment):
    for url in urls(experiment.key):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.django_db
def test_a_person_without_the_view_permission_is_refused(client, experiment):
    client.force_login(UserFactory())
    for url in urls(experiment.key):
        assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_viewers_and_experimenters_read_reports(client, experiment, viewer, experimenter):
    for person in (viewer, experimenter):
        client.force_login(person)
        for url in urls(experiment.key):
            assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_a_service_key_never_reads_a_report(client, experiment, service_key):
    for url in urls(experiment.key):
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {service_key}")
        assert response.status_code in (302, 403)
        assert b"green" not in response.content


@pytest.mark.django_db
def test_a_personal_token_is_not_a_session_either(client, experiment, viewer):
    from tests.conftest import token_for

    response = client.get(f"/reports/{experiment.key}/", HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")

    assert response.status_code == 302


@pytest.mark.django_db
def test_reports_answer_only_reads(client, experiment, viewer):
    client.force_login(viewer)

    assert client.post(f"/reports/{experiment.key}/").status_code in (403, 405)
