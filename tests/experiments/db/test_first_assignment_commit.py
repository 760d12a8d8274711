"""A single first assignment commits asynchronously on its own, and never changes a caller's transaction."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from experiments.db import postgresql
from experiments.models import Assignment
from tests.experiments.builders import start
from tests.experiments.db import on_postgresql


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_first_assignment_outside_a_transaction_is_stored_and_the_session_stays_synchronous():
    experiment = start()
    control, green = (v.id for v in experiment.variants.order_by("position"))

    first = postgresql.store_assignment(experiment.id, "u1", green, timezone.now())
    second = postgresql.store_assignment(experiment.id, "u1", control, timezone.now())

    assert (first, second) == (green, None)
    assert list(Assignment.objects.filter(experiment=experiment).values_list("unit", "variant_id")) == [("u1", green)]
    # SET LOCAL ended with the statement's own transaction: the next write commits synchronously.
    assert _synchronous_commit() == "on"


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_callers_commit_stays_synchronous():
    experiment = start()
    green = experiment.variants.get(is_control=False).id

    with transaction.atomic():
        assert postgresql.store_assignment(experiment.id, "u1", green, timezone.now()) == green
        assert _synchronous_commit() == "on"

    assert Assignment.objects.filter(experiment=experiment, unit="u1").exists()
