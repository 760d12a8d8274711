"""Each function of experiments.db.postgresql and experiments.db.portable gives the same results on the same rows."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from experiments import db
from experiments.db import portable, postgresql
from experiments.models import Assignment, UnitOutcome
from experiments.unit_outcomes.write import pairings
from tests.experiments.builders import start
from tests.experiments.db import on_postgresql
from tests.experiments.reports.helpers import analysed_champion_challenger

ENGINES = pytest.mark.parametrize("engine", [pytest.param(postgresql, marks=on_postgresql), portable],
                                  ids=["postgresql", "portable"])


def test_both_modules_offer_the_same_functions():
    assert set(postgresql.__all__) == set(portable.__all__)
    assert db.backend() in (postgresql, portable) and db.backend() is db.backend()


@pytest.mark.django_db
@ENGINES
def test_storing_assignments_keeps_rows_already_stored_and_reads_them_back(engine):
    experiment = start()
    control, green = (v.id for v in experiment.variants.order_by("position"))
    assert engine.store_assignments(experiment.id, [("a", control), ("b", green)], timezone.now()) == {"a", "b"}

    assert engine.store_assignments(experiment.id, [("a", green), ("c", green)], timezone.now()) == {"c"}

    assert engine.stored_assignments(experiment.id, ["a", "b", "c", "never"]) == {"a": control, "b": green,
                                                                                  "c": green}
    assert engine.stored_assignments(experiment.id, []) == {}
    assert Assignment.objects.filter(experiment=experiment).count() == 3


@pytest.mark.django_db(transaction=True)
@ENGINES
def test_inserting_new_assignments_stores_all_or_nothing(engine):
    experiment = start()
    control, green = (v.id for v in experiment.variants.order_by("position"))
    assert engine.insert_new_assignments(experiment.id, [("a", control), ("b", green)], timezone.now()) is True

    # "b" is stored: nothing of the batch is, whatever the row's place in it.
    assert engine.insert_new_assignments(experiment.id, [("c", green), ("b", control)], timezone.now()) is False
    with transaction.atomic():   # inside a caller's transaction, which goes on
        assert engine.insert_new_assignments(experiment.id, [("b", control), ("d", green)], timezone.now()) is False
        assert engine.insert_new_assignments(experiment.id, [("d", green)], timezone.now()) is True

    assert engine.stored_assignments(experiment.id, ["a", "b", "c", "d"]) == {"a": control, "b": green, "d": green}


@pytest.mark.django_db
@ENGINES
def test_storing_one_assignment_returns_none_when_a_stored_row_won(engine):
    experiment = start()
    control, green = (v.id for v in experiment.variants.order_by("position"))

    first = engine.store_assignment(experiment.id, "u1", green, timezone.now())
    second = engine.store_assignment(experiment.id, "u1", control, timezone.now())

    assert (first, second) == (green, None)
    assert engine.stored_assignments(experiment.id, ["u1"]) == {"u1": green}


@pytest.mark.django_db
@ENGINES
def test_the_state_row_names_the_experiment_and_the_units_stored_variant(engine):
    experiment = start()
    control = experiment.variants.get(is_control=True).id
    engine.store_assignment(experiment.id, "u1", control, timezone.now())

    row = engine.experiment_state_row(experiment.key, "u1")
    without_unit = engine.experiment_state_row(experiment.key, None)

    assert (row["id"], row["key"], row["salt"], row["stored_variant_id"]) == (
        experiment.id, experiment.key, experiment.salt, control)
    assert row["ends_at"] == experiment.ends_at and row["ends_at"].tzinfo is not None
    assert without_unit["stored_variant_id"] is None
    assert engine.experiment_state_row("no-such-experiment", "u1") is None


@pytest.mark.django_db
@ENGINES
def test_latency_percentiles_agree_between_engines(engine):
    experiment, _ = analysed_champion_challenger(requests=61, seed=3)

    latencies = engine.latency_by_variant(experiment)

    reference = portable.latency_by_variant(experiment)
    assert latencies.keys() == reference.keys()
    for variant_id, latency in latencies.items():
        assert latency.count == reference[variant_id].count
        for field in ("mean", "p50", "p95"):
            assert getattr(latency, field) == pytest.approx(getattr(reference[variant_id], field), rel=1e-12)


@pytest.mark.django_db
@on_postgresql
def test_the_analysis_session_gets_its_memory_and_no_jit(settings):
    with transaction.atomic(), connection.cursor() as cursor:
        postgresql.tune_analysis_session()
        cursor.execute("SHOW work_mem")
        work_mem = cursor.fetchone()[0]
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]

    assert (work_mem, jit) == (settings.ANALYSIS_WORK_MEM, "off")


def test_the_portable_side_has_no_session_settings_and_no_csv_import(tmp_path):
    assert portable.tune_analysis_session() is None
    assert (portable.CSV_IMPORT, postgresql.CSV_IMPORT) == (False, True)
    assert portable.import_csv(experiment=None, path=tmp_path / "any.csv", columns=["unit", "value"],
                               now=timezone.now(), fresh=True, on_bytes=lambda n: None) is None


@pytest.mark.django_db
@on_postgresql
@pytest.mark.parametrize("design", ["ab", "champion_challenger"])
def test_both_rebuilds_of_the_unit_sums_give_the_same_rows(design):
    experiment = start(design=design, metric_type="continuous", baseline_mean=None, baseline_sd=1.0, mde=0.2,
                       variants=[{"key": "control", "is_control": True}, {"key": "b"}, {"key": "c"}])
    variants = list(experiment.variants.all())
    pairing = pairings(experiment.design, variants)
    now = timezone.now()
    records = [(variants[i % 3].id, f"u{i % 7}", (i % 9) / 4, None, now, None, 0) for i in range(60)]
    portable.insert_observations(experiment.id, pairing, records, now)

    rebuilt = {engine: (engine.rebuild_unit_outcomes(experiment.id, pairing), outcome_rows(experiment))
               for engine in (postgresql, portable)}

    assert rebuilt[postgresql] == rebuilt[portable] and rebuilt[portable][0] > 0


def outcome_rows(experiment) -> list[tuple]:
    return sorted(UnitOutcome.objects.filter(experiment=experiment)
                  .values_list("unit", "variant_id", "count", "total", "control_count", "control_total"))
