"""The ingestion service's two storage paths agree: COPY on PostgreSQL, ORM inserts elsewhere."""

import pytest
from django.utils import timezone

from experiments.models import Observation
from experiments.services import ingestion
from experiments.services.lifecycle import experiment_start
from tests.factories import ExperimentFactory


@pytest.fixture
def experiment(db):
    return experiment_start(experiment=ExperimentFactory(), actor=None)


def records(experiment, ids):
    variant_id = experiment.variants.get(is_control=True).id
    return [(variant_id, f"u{i}", 1.0, None, timezone.now(), key) for i, key in enumerate(ids)]


@pytest.mark.django_db
@pytest.mark.parametrize("insert", [ingestion._insert_with_copy, ingestion._insert_portably],
                         ids=["copy", "portable"])
def test_both_storage_paths_skip_ids_already_stored_or_repeated_in_the_batch(experiment, insert):
    now = timezone.now()

    first = insert(experiment.id, records(experiment, ["a", "b", None, None]), now)
    second = insert(experiment.id, records(experiment, ["b", "c", "c", None]), now)

    assert (first, second) == (4, 2)
    assert sorted(Observation.objects.exclude(idempotency_key=None).values_list("idempotency_key", flat=True)) == [
        "a", "b", "c"]
    assert Observation.objects.filter(idempotency_key=None).count() == 3
