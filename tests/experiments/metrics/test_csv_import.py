"""import_observations with a `metric` column (CSV) or field (JSON Lines): the in-database path and the
row-by-row path store the same rows under the same metrics, and an unknown metric is named by line."""

import pytest
from django.core.management import CommandError

from experiments.models import Experiment, Observation, UnitOutcome
from experiments.services.assignment import assignments_for_units
from experiments.services.csv_import import observations_import_csv
from experiments.unit_outcomes.write import unit_outcomes_rebuild
from tests.experiments.builders import ingest
from tests.experiments.metrics.definitions import started_with_metrics
from tests.experiments.services.test_csv_import import _row_by_row, command, snapshot, write

# Committed data: the in-database import checks the file on a second connection.
pytestmark = pytest.mark.django_db(transaction=True)
METRICS = (("revenue", "continuous"), ("refunds", "binary"))


def ab_experiment() -> Experiment:
    experiment = started_with_metrics(*METRICS, key="checkout",
                                      variants=[{"key": "control", "is_control": True}, {"key": "green"}])
    assignments_for_units(experiment_key="checkout", units=[f"user-{i}" for i in range(40)])
    return experiment


def cc_experiment() -> Experiment:
    return started_with_metrics(*METRICS, key="ranker", design="champion_challenger", metric_type="continuous",
                                baseline_mean=None, baseline_sd=1.0, mde=0.2,
                                variants=[{"key": "champion", "is_control": True}, {"key": "b"}, {"key": "c"}])


def stored(experiment: Experiment) -> list[tuple]:
    return sorted(Observation.objects.filter(experiment=experiment)
                  .values_list("metric_position", "unit", "variant__key", "value", "idempotency_key"))


def sums(experiment: Experiment) -> list[tuple]:
    """The incremental sums, checked against a recount from the stored observations."""
    incremental = sorted(UnitOutcome.objects.filter(experiment=experiment).values_list(
        "metric_position", "unit", "variant_id", "count", "total", "control_count", "control_total"))
    unit_outcomes_rebuild(experiment)
    assert sorted(UnitOutcome.objects.filter(experiment=experiment).values_list(
        "metric_position", "unit", "variant_id", "count", "total", "control_count", "control_total")) == incremental
    return incremental


def forget(experiment: Experiment) -> None:
    Observation.objects.filter(experiment=experiment).delete()
    UnitOutcome.objects.filter(experiment=experiment).delete()
    Experiment.objects.filter(pk=experiment.pk).update(observation_count=0)


@pytest.mark.parametrize("repeated_ids", [False, True], ids=["copied", "on-conflict"])
@pytest.mark.parametrize("design", ["ab", "champion_challenger"])
def test_a_file_with_a_metric_column_stores_what_the_row_by_row_path_stores(tmp_path, repeated_ids, design):
    experiment = ab_experiment() if design == "ab" else cc_experiment()
    lines = ["unit,value,variant,id,metric"]
    for i in range(120):
        metric = ["", "conversion", "revenue", "refunds"][i % 4]
        value = (i * 7 % 13) / 4 if metric == "revenue" else i % 2
        unit = f"user-{i % 40}"
        variant = "" if design == "ab" else ["champion", "b", "c"][i % 3]
        # The same id under each metric is a row each; with repeated_ids, ids also repeat within a metric.
        # (An empty cell and "conversion" are both the primary: their ids differ.)
        ident = f"{'c' if metric == 'conversion' else 't'}-{(i // 4) % 20 if repeated_ids else i // 4}"
        lines.append(f"{unit},{value},{variant},{ident},{metric}")
    path = write(tmp_path, lines)

    result = observations_import_csv(experiment=experiment, path=path)
    in_database, in_database_sums = stored(experiment), sums(experiment)
    forget(experiment)
    again = _row_by_row(Experiment.objects.get(pk=experiment.pk), path)

    expected = (80, 40) if repeated_ids else (120, 0)
    assert result is not None and (result.accepted, result.duplicates) == expected
    assert (again.accepted, again.duplicates) == expected
    assert in_database == stored(experiment)
    assert in_database_sums == sums(experiment)
    assert {row[0] for row in in_database} == {0, 1, 2}


@pytest.mark.parametrize("stored_before", [False, True], ids=["copied", "on-conflict"])
@pytest.mark.parametrize("bad, field", [("user-3,1,clicks", "metric"), ("user-3,0.5,refunds", "value"),
                                        ("user-3,0.5,", "value")])
def test_an_unknown_metric_or_a_value_its_type_refuses_is_named_by_line_with_nothing_written(
        tmp_path, stored_before, bad, field):
    experiment = ab_experiment()
    if stored_before:   # an experiment with observations takes the ON CONFLICT statement
        ingest(experiment, [("user-30", 1)])
    path = write(tmp_path, ["unit,value,metric", "user-1,2.5,revenue", "user-2,1,refunds", bad, "user-4,1,"])
    before = snapshot()

    assert observations_import_csv(experiment=experiment, path=path) is None
    assert snapshot() == before
    with pytest.raises(CommandError, match=rf"line 4: {field}:"):
        command("checkout", path)
    assert snapshot() == before


def test_a_continuous_metric_takes_any_value_in_the_database_path(tmp_path):
    experiment = ab_experiment()
    path = write(tmp_path, ["unit,value,metric", "user-1,2.5,revenue", "user-2,1,refunds", "user-3,0,"])

    output, notes = command("checkout", path)

    assert "Imported 3 observation(s)" in output and "row by row" not in notes
    assert stored(experiment)[0][0] == 0 and [row[0] for row in stored(experiment)] == [0, 1, 2]


def test_a_json_lines_file_names_metrics_and_an_unknown_one_by_line(tmp_path):
    experiment = ab_experiment()
    good = write(tmp_path, ['{"unit": "user-1", "value": 4.5, "metric": "revenue"}', '{"unit": "user-1", "value": 1}'],
                 "good.jsonl")
    bad = write(tmp_path, ['{"unit": "user-2", "value": 1}', '{"unit": "user-2", "value": 1, "metric": "nope"}'],
                "bad.jsonl")

    command("checkout", good)
    with pytest.raises(CommandError, match=r"line 2: metric:"):
        command("checkout", bad)

    assert [(row[0], row[1], row[3]) for row in stored(experiment)] == [(0, "user-1", 1.0), (1, "user-1", 4.5)]
