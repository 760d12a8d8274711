"""CUPED's precomputed columns (experiments.db.covariate_arms) equal what joining at analysis time gives.

Every write path, in every order, must leave `Covariate.variant_id` equal to the unit's assignment
and `UnitOutcome.covariate` equal to the unit's covariate of the row's metric, and `covariate_sums`
equal to the former query, kept here as JOINED_SQL (the covariates joined to their assignments
and outcomes at analysis time): a path that misses a row makes these tests fail.
"""

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments.choices import Aggregation, MetricType
from experiments.db import covariates as covariate_storage
from experiments.db import covariate_sums, portable
from experiments.db.covariate_arms import SETTLED
from experiments.db.cuped_statistics import combined_sums, covariate_arm_sums
from experiments.models import Assignment, Covariate, Experiment, Metric, UnitOutcome
from experiments.observation_input import ItemErrors, ObservationRow
from experiments.services.assignment import assignments_for_units
from experiments.services.covariates import (CovariateRow, covariate_arms_resolve, covariate_arms_resolve_running,
                                             covariates_import, covariates_import_csv, covariates_ingest)
from experiments.services.csv_import import observations_import_csv
from experiments.services.ingestion import observations_ingest
from experiments.services.lifecycle import experiment_start
from experiments.unit_outcomes.read import analysis_data_and_covariate_sums
from experiments.unit_outcomes.write import pairings, unit_outcomes_rebuild
from tests.experiments.db import on_postgresql
from tests.factories import ExperimentFactory

# The CUPED metrics: {position: (metric_type, aggregation)}; position 3 (`clicks`) has no CUPED.
CUPED = {0: (MetricType.BINARY, Aggregation.SUM), 1: (MetricType.CONTINUOUS, Aggregation.SUM),
         2: (MetricType.CONTINUOUS, Aggregation.MEAN)}
KEYS = {0: None, 1: "revenue", 2: "latency", 3: "clicks"}
UNITS = [f"u{i}" for i in range(36)]
# Committed rows: the in-database CSV paths read the assignments on a second connection.
pytestmark = pytest.mark.django_db(transaction=True)

# The former analysis-time formulation, the reference: each covariate joined to its unit's
# assignment (its arm) and, where there is one, its outcome of the same metric.
JOINED_SQL = """
    SELECT c.metric_position, a.variant_id, SUM(c.value), SUM(c.value * c.value),
           SUM(CASE WHEN o.unit IS NOT NULL THEN c.value END),
           SUM(CASE WHEN o.unit IS NOT NULL THEN c.value * c.value END),
           SUM(c.value * (CASE o.metric_position WHEN 0 THEN CASE WHEN o.total > 0 THEN 1.0 ELSE 0.0 END
                                                 WHEN 1 THEN o.total WHEN 2 THEN o.total / o.count END))
    FROM experiments_covariate c
    JOIN experiments_assignment a ON a.experiment_id = c.experiment_id AND a.unit = c.unit
    LEFT JOIN experiments_unitoutcome o ON o.experiment_id = c.experiment_id
        AND o.metric_position = c.metric_position AND o.unit = c.unit AND o.variant_id = a.variant_id
    WHERE c.experiment_id = %s AND c.metric_position IN (0, 1, 2)
    GROUP BY c.metric_position, a.variant_id
"""


def joined_sums(experiment_id: int) -> dict[int, dict[int, tuple]]:
    with connection.cursor() as cursor:
        cursor.execute(JOINED_SQL, [experiment_id])
        rows = cursor.fetchall()
    sums = {position: {} for position in CUPED}
    for position, variant_id, x, x2, x_observed, x2_observed, xy in rows:
        if CUPED[position][1] == Aggregation.MEAN:
            x, x2 = x_observed, x2_observed
        sums[position][variant_id] = (float(x or 0.0), float(x2 or 0.0), float(xy or 0.0))
    return sums


def assert_as_joined(experiment: Experiment) -> None:
    """Both columns as the join gives them, and `covariate_sums` as JOINED_SQL's."""
    arms = dict(Assignment.objects.filter(experiment=experiment).values_list("unit", "variant_id"))
    covariates = {(c.metric_position, c.unit): c for c in Covariate.objects.filter(experiment=experiment)}
    assert {key: c.variant_id for key, c in covariates.items()} == {key: arms.get(key[1]) for key in covariates}
    outcomes = UnitOutcome.objects.filter(experiment=experiment)
    assert {(o.metric_position, o.unit): o.covariate for o in outcomes} == {
        (o.metric_position, o.unit): getattr(covariates.get((o.metric_position, o.unit)), "value", None)
        for o in outcomes}
    expected, actual = joined_sums(experiment.id), covariate_sums(experiment.id, CUPED)
    # What the analysis reads: the outcome rows' sums from the summary's own pass, with the arms' sums.
    _, observed = analysis_data_and_covariate_sums(experiment, frozenset(CUPED))
    analysed = combined_sums(CUPED, covariate_arm_sums(experiment.id, CUPED), observed)
    # The same terms; the order a plan adds them in may differ, hence approx (values here are exact anyway).
    for computed in (actual, analysed):
        assert computed.keys() == expected.keys()
        for position in expected:
            assert computed[position].keys() == expected[position].keys()
            for variant_id, sums in expected[position].items():
                assert computed[position][variant_id] == pytest.approx(sums, rel=1e-12)
    assert any(expected[position] for position in expected), "the scenario must have covariates of assigned units"


def cuped_experiment() -> Experiment:
    """A draft A/B with CUPED on the binary primary, `revenue` (sum) and `latency` (mean); `clicks` without."""
    experiment = ExperimentFactory(cuped=True)
    for position, key in list(KEYS.items())[1:]:
        Metric.objects.create(experiment=experiment, position=position, key=key, name=key,
                              metric_type="continuous", cuped=position != 3,
                              aggregation=Aggregation.MEAN if position == 2 else Aggregation.SUM)
    return Experiment.objects.get(pk=experiment.pk)


def started(experiment: Experiment) -> Experiment:
    return experiment_start(experiment=Experiment.objects.get(pk=experiment.pk), actor=None)


def assign(experiment: Experiment, units=UNITS) -> None:
    assignments_for_units(experiment_key=experiment.key, units=list(units))


def covariate_records(units=UNITS) -> list[tuple[int, str, float]]:
    """(position, unit, value) for most units and each CUPED metric; values exact in binary."""
    return [(position, unit, float(i % 2) if position == 0 else i * 0.25 + position)
            for i, unit in enumerate(units) for position in (0, 1, 2) if (i + position) % 5]


def observation_items(units=UNITS) -> list[tuple[str, float, str | None, str]]:
    """(unit, value, metric key, id): most units observe some metrics, some twice."""
    items = []
    for i, unit in enumerate(units):
        for position in (0, 1, 2, 3):
            for repeat in range((i + position) % 3):
                value = float((i + repeat) % 2) if position == 0 else (i + repeat) * 0.5
                items.append((unit, value, KEYS[position], f"{unit}-{position}-{repeat}"))
    return items


def store_covariates(experiment: Experiment, path: str, tmp_path, units=UNITS) -> None:
    """Through one of the four covariate paths: REST, the file row by row, CSV fresh, CSV staged."""
    experiment = Experiment.objects.get(pk=experiment.pk)
    records = covariate_records(units)
    if path == "rest":
        rows = [CovariateRow(i, unit, value, KEYS[position]) for i, (position, unit, value) in enumerate(records)]
        covariates_ingest(experiment=experiment, rows=rows)
    elif path == "rows":
        rows = [CovariateRow(i, unit, value, KEYS[position]) for i, (position, unit, value) in enumerate(records)]
        covariates_import(experiment=experiment, chunks=[(rows[:20], ItemErrors()), (rows[20:], ItemErrors())])
    else:
        if path == "csv_staged":   # a covariate already stored: the staged INSERT ... ON CONFLICT path
            covariates_ingest(experiment=experiment, rows=[CovariateRow(0, "elsewhere", 1.0, None)])
        csv = tmp_path / "covariates.csv"
        csv.write_text("unit,value,metric\n" + "".join(
            f"{unit},{value!r},{KEYS[position] or ''}\n" for position, unit, value in records))
        assert covariates_import_csv(experiment=experiment, path=csv) is not None, "the in-database path"
    assert Covariate.objects.filter(experiment=experiment).count() >= len(records)


def store_observations(experiment: Experiment, path: str, tmp_path, units=UNITS) -> None:
    """Through one of the observation paths: REST, CSV fresh, CSV staged, or REST then a rebuild."""
    experiment = Experiment.objects.get(pk=experiment.pk)
    items = observation_items(units)
    if path in ("rest", "rebuild"):
        observations_ingest(experiment=experiment, rows=[
            ObservationRow(i, unit, value, None, key, None, None, metric) for i, (unit, value, metric, key)
            in enumerate(items)])
        if path == "rebuild":
            UnitOutcome.objects.filter(experiment=experiment).update(covariate=None)
            unit_outcomes_rebuild(experiment)
        return
    if path == "csv_staged":   # an observation already stored: the one-statement path
        first, *items = items
        observations_ingest(experiment=experiment, rows=[ObservationRow(0, first[0], first[1], None, first[3],
                                                                        None, None, first[2])])
        experiment = Experiment.objects.get(pk=experiment.pk)
    csv = tmp_path / "observations.csv"
    csv.write_text("unit,value,metric,id\n" + "".join(f"{u},{v!r},{m or ''},{k}\n" for u, v, m, k in items))
    assert observations_import_csv(experiment=experiment, path=csv) is not None, "the in-database path"


COVARIATE_PATHS = pytest.mark.parametrize("covariate_path", [
    "rest", "rows", pytest.param("csv_fresh", marks=on_postgresql), pytest.param("csv_staged", marks=on_postgresql)])
OBSERVATION_PATHS = pytest.mark.parametrize("observation_path", [
    "rest", pytest.param("csv_fresh", marks=on_postgresql), pytest.param("csv_staged", marks=on_postgresql),
    "rebuild"])


@COVARIATE_PATHS
@OBSERVATION_PATHS
def test_covariates_loaded_in_draft_get_their_arm_from_the_resolver(covariate_path, observation_path, tmp_path):
    experiment = cuped_experiment()
    store_covariates(experiment, covariate_path, tmp_path)
    experiment = started(experiment)
    assign(experiment)
    assert not Covariate.objects.filter(experiment=experiment, variant__isnull=False).exists()
    store_observations(experiment, observation_path, tmp_path)

    covariate_arms_resolve(experiment_id=experiment.id)

    assert_as_joined(experiment)


@COVARIATE_PATHS
def test_covariates_of_units_already_assigned_take_their_arm_at_once(covariate_path, tmp_path):
    experiment = started(cuped_experiment())
    assign(experiment)

    store_covariates(experiment, covariate_path, tmp_path)
    store_observations(experiment, "rest", tmp_path)

    assert_as_joined(experiment)   # no resolver run


@COVARIATE_PATHS
def test_covariates_after_the_observations_reach_the_stored_outcomes(covariate_path, tmp_path):
    experiment = started(cuped_experiment())
    assign(experiment)
    store_observations(experiment, "rest", tmp_path)
    assert not UnitOutcome.objects.filter(experiment=experiment, covariate__isnull=False).exists()

    store_covariates(experiment, covariate_path, tmp_path)

    assert_as_joined(experiment)


@OBSERVATION_PATHS
def test_observations_after_the_covariates_take_them(observation_path, tmp_path):
    experiment = started(cuped_experiment())
    assign(experiment, UNITS[:20])
    store_covariates(experiment, "rest", tmp_path)
    assign(experiment, UNITS[20:])   # covariate before assignment for these

    store_observations(experiment, observation_path, tmp_path)
    covariate_arms_resolve(experiment_id=experiment.id)

    assert_as_joined(experiment)
    assert UnitOutcome.objects.filter(experiment=experiment, covariate__isnull=False).exists()


def test_the_portable_paths_fill_both_columns_alike(tmp_path):
    experiment = started(cuped_experiment())
    pairing = pairings(experiment.design, experiment.variants.all())
    now = timezone.now()
    assign(experiment, UNITS[:24])
    variant_of = dict(Assignment.objects.filter(experiment=experiment).values_list("unit", "variant_id"))
    records = covariate_records()
    # Covariates before and after their units' observations and assignments, all through the ORM paths.
    covariate_storage._insert_portable(experiment.id, [r for r in records if r[1] in UNITS[:12]], now)
    observations = [(variant_of[u], u, v, None, now, k, position) for u, v, m, k in observation_items(UNITS[:24])
                    for position in [next(p for p, key in KEYS.items() if key == m)]]
    portable.insert_observations(experiment.id, pairing, observations, now, covariates=True)
    covariate_storage._insert_portable(experiment.id, [r for r in records if r[1] in UNITS[12:]], now)
    assign(experiment, UNITS[24:])
    covariate_arms_resolve(experiment_id=experiment.id)
    assert_as_joined(experiment)

    portable.rebuild_unit_outcomes(experiment.id, pairing, covariates=True)

    assert_as_joined(experiment)


def test_the_watermark_moves_only_past_settled_assignments_and_resolving_again_is_harmless(tmp_path):
    experiment = cuped_experiment()
    store_covariates(experiment, "rest", tmp_path)
    experiment = started(experiment)
    assign(experiment, UNITS[:10])
    now = timezone.now()
    last = Assignment.objects.filter(experiment=experiment).order_by("-id").first()

    resolved = covariate_arms_resolve(experiment_id=experiment.id, now=now)

    assert resolved == Covariate.objects.filter(experiment=experiment, unit__in=UNITS[:10]).count() > 0
    # Assigned just now: resolved, but the watermark stays below them (one may still commit out of order).
    assert Experiment.objects.get(pk=experiment.pk).covariate_arms_through == 0
    assert covariate_arms_resolve(experiment_id=experiment.id, now=now) == 0
    assert covariate_arms_resolve(experiment_id=experiment.id, now=now + SETTLED + timedelta(seconds=1)) == 0
    assert Experiment.objects.get(pk=experiment.pk).covariate_arms_through == last.id
    # A later assignment is above the watermark: the beat's sweep of running experiments finds it.
    assign(experiment, UNITS[10:])
    assert covariate_arms_resolve_running() > 0
    assert_as_joined(experiment)


def test_the_analysis_resolves_the_remainder_itself(tmp_path):
    from tests.experiments.builders import analysed

    experiment = cuped_experiment()
    store_covariates(experiment, "rest", tmp_path)
    experiment = started(experiment)
    assign(experiment)
    store_observations(experiment, "rest", tmp_path)
    assert not Covariate.objects.filter(experiment=experiment, variant__isnull=False).exists()

    analysed(experiment)

    assert not Covariate.objects.filter(experiment=experiment, unit__in=UNITS, variant__isnull=True).exists()


def _in_thread(target, results: dict, name: str) -> threading.Thread:
    def run():
        try:
            results[name] = target()
        except BaseException as error:   # re-raised by the test
            results[name] = error
        finally:
            connections.close_all()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@on_postgresql
@pytest.mark.parametrize("first", ["covariates", "observations"])
def test_a_covariate_batch_and_an_observation_batch_committing_together_leave_the_covariate_on_the_outcome(first):
    """Without the advisory lock, each batch misses the other's uncommitted row and the outcome keeps no
    covariate. The first batch waits before committing until the second has started (and, with the
    lock, is waiting for it): either order must end with the covariate on the outcome."""
    experiment = started(cuped_experiment())
    assign(experiment, ["u0"])
    first_inside, second_started, results = threading.Event(), threading.Event(), {}

    def hold_until_the_second_started():
        first_inside.set()
        second_started.wait(10)
        threading.Event().wait(0.5)   # room for the second batch to commit, were it not held back

    def covariates():
        with transaction.atomic():
            covariates_ingest(experiment=Experiment.objects.get(pk=experiment.pk),
                              rows=[CovariateRow(0, "u0", 2.5, "revenue")])
            if first == "covariates":
                hold_until_the_second_started()

    def observations():
        with transaction.atomic():
            observations_ingest(experiment=Experiment.objects.get(pk=experiment.pk),
                                rows=[ObservationRow(0, "u0", 4.0, None, "o1", None, None, "revenue")])
            if first == "observations":
                hold_until_the_second_started()

    order = [covariates, observations] if first == "covariates" else [observations, covariates]
    one = _in_thread(order[0], results, "first")
    assert first_inside.wait(10)

    def second():
        second_started.set()
        return order[1]()

    two = _in_thread(second, results, "second")
    one.join(20)
    two.join(20)

    assert not any(isinstance(result, BaseException) for result in results.values()), results
    assert UnitOutcome.objects.get(experiment=experiment, metric_position=1, unit="u0").covariate == 2.5


@on_postgresql
def test_the_resolver_probes_the_covariates_key_once_per_new_assignment(tmp_path):
    """Naming the metric positions lets the UPDATE look each new assignment's covariates up by the
    covariates' primary key; without them every beat run read all of the experiment's covariates."""
    experiment = cuped_experiment()
    store_covariates(experiment, "rest", tmp_path)
    experiment = started(experiment)
    assign(experiment, UNITS[:-1])
    covariate_arms_resolve(experiment_id=experiment.id, now=timezone.now() + SETTLED + timedelta(seconds=1))
    assign(experiment, UNITS[-1:])   # the one assignment past the watermark
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Covariate._meta.db_table}, {Assignment._meta.db_table}")
    with CaptureQueriesContext(connection) as queries:
        assert covariate_arms_resolve(experiment_id=experiment.id) == Covariate.objects.filter(
            experiment=experiment, unit=UNITS[-1]).count() > 0
    (update,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE experiments_covariate")]

    with transaction.atomic(), connection.cursor() as cursor:
        # Tiny test tables would be read whole; the question is whether the key can answer.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {update}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    probe = re.search(r"Index Scan (?:using|on) experiments_covariate_pkey[^\n]*\n\s*Index Cond: ([^\n]*)", plan)
    assert probe, plan
    assert "metric_position = ANY" in probe[1] and "unit" in probe[1], plan
