"""Assignments keep two indexes; a variant with assignments still cannot be deleted, found through the experiment."""

import pytest
from django.db import connection
from django.db.models import ProtectedError
from django.test.utils import CaptureQueriesContext

from experiments.models import Assignment, Experiment
from experiments.selectors import experiment_progress
from experiments.services.assignment import assignments_for_units
from tests.experiments.builders import start
from tests.experiments.db import on_postgresql
from tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db


def test_a_variant_with_assignments_cannot_be_deleted():
    experiment = start()
    assignments_for_units(experiment_key=experiment.key, units=[f"u{i}" for i in range(50)])
    treatment = experiment.variants.get(key="treatment")

    with pytest.raises(ProtectedError) as refused:
        treatment.delete()
    with pytest.raises(ProtectedError):
        experiment.variants.all().delete()
    with pytest.raises(ProtectedError):
        Experiment.objects.get(pk=experiment.pk).delete()

    assert all(isinstance(row, Assignment) for row in refused.value.protected_objects)
    assert experiment.variants.count() == 2
    assert Assignment.objects.filter(experiment=experiment).count() == 50


def test_a_variant_without_assignments_is_deleted_even_when_another_experiment_has_some():
    started = start()
    assignments_for_units(experiment_key=started.key, units=["u1", "u2"])
    draft = ExperimentFactory()

    draft.variants.get(key="treatment").delete()
    draft.delete()

    assert not Experiment.objects.filter(pk=draft.pk).exists()
    assert Assignment.objects.filter(experiment=started).count() == 2


def test_the_deletion_check_looks_assignments_up_by_experiment_not_by_variant_alone():
    draft = ExperimentFactory()

    with CaptureQueriesContext(connection) as queries:
        draft.variants.get(key="treatment").delete()

    checks = [q["sql"] for q in queries.captured_queries if Assignment._meta.db_table in q["sql"]]
    assert len(checks) == 1
    assert '"experiment_id" IN (SELECT' in checks[0] and "LIMIT 1" in checks[0]


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        # Tiny test tables would be read whole; the question is whether the index can answer.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@on_postgresql
def test_assignments_have_the_primary_key_and_the_unique_index_carrying_the_variant():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
                       [Assignment._meta.db_table])
        indexes = [row[0] for row in cursor.fetchall()]

    assert len(indexes) == 2
    assert any("(id)" in index for index in indexes)
    assert any("UNIQUE" in index and "(experiment_id, unit) INCLUDE (variant_id)" in index for index in indexes)


@on_postgresql
def test_the_per_variant_counts_are_read_from_the_index_alone():
    experiment = start()
    assignments_for_units(experiment_key=experiment.key, units=[f"u{i}" for i in range(20)])

    with CaptureQueriesContext(connection) as queries:
        progress = experiment_progress(experiment)
    (progress_sql,) = [q["sql"] for q in queries.captured_queries if Assignment._meta.db_table in q["sql"]]
    # experiments.unit_outcomes.read's assigned count.
    analysis_sql = (f"SELECT variant_id, COUNT(*) FROM {Assignment._meta.db_table} "
                    "WHERE experiment_id = %s GROUP BY variant_id")

    assert sum(progress["units"].values()) == 20
    assert "Index Only Scan using assignment_unique_unit_per_experiment" in _plan(progress_sql, [])
    assert "Index Only Scan using assignment_unique_unit_per_experiment" in _plan(analysis_sql, [experiment.id])
