"""Staff members of each group, logged in to the admin (the admin only lets staff in)."""

import pytest
from django.test import Client

from tests.conftest import member_of


def staff_member(group_name: str):
    return member_of(group_name, is_staff=True)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_experimenter(db):
    return staff_member("experimenter")


@pytest.fixture
def staff_viewer(db):
    return staff_member("viewer")


@pytest.fixture
def experimenter_admin(staff_experimenter) -> Client:
    return logged_in(staff_experimenter)


@pytest.fixture
def viewer_admin(staff_viewer) -> Client:
    return logged_in(staff_viewer)
