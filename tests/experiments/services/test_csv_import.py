"""The in-database CSV import stores exactly what the row-by-row path stores, and gives up on anything else.

Each bad cell must make it give up with nothing written (and the command must then name the
line and field, through the row-by-row path); cells only Python reads (underscores in
numbers, a date without a time, ...) make it give up too, and the command still imports them.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from experiments.errors import WrongState
from experiments.models import Experiment, Observation, UnitOutcome
from experiments.services.assignment import assignments_for_units
from experiments.services.csv_import import observations_import_csv
from experiments.unit_outcomes.write import unit_outcomes_rebuild
from tests.experiments.builders import end_test_period, ingest, start

# Committed data: the import checks the file on a second connection, which sees only what is
# committed (an A/B file's units are looked up among the stored assignments).
pytestmark = pytest.mark.django_db(transaction=True)
AB_HEADER = "unit,value,variant,id,timestamp,latency_ms"


def ab_experiment(key: str, metric_type: str = "binary") -> tuple[Experiment, dict[str, str]]:
    fields = {} if metric_type == "binary" else {"metric_type": "continuous", "baseline_mean": None,
                                                 "baseline_sd": 1.0, "mde": 0.2}
    experiment = start(key=key, variants=[{"key": "control", "is_control": True}, {"key": "green"}], **fields)
    answers = assignments_for_units(experiment_key=key, units=[f"user-{i}" for i in range(40)])
    return experiment, {a.unit: a.variant for a in answers}


def cc_experiment(key: str) -> Experiment:
    return start(key=key, design="champion_challenger", metric_type="continuous", baseline_mean=None,
                 baseline_sd=1.0, mde=0.2, variants=[{"key": "champion", "is_control": True}, {"key": "b"},
                                                     {"key": "c"}])


def write(tmp_path, lines: list[str], name: str = "data.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(experiment: Experiment) -> list[tuple]:
    """The stored rows; observed_at None where it defaulted to the time of arrival."""
    return sorted(
        (o.unit, o.variant.key, o.value, o.latency_ms, None if o.observed_at == o.received_at else o.observed_at,
         o.idempotency_key)
        for o in Observation.objects.filter(experiment=experiment).select_related("variant"))


def sums(experiment: Experiment) -> list[tuple]:
    return sorted((o.unit, o.variant_id, o.count, o.total, o.control_count, o.control_total)
                  for o in UnitOutcome.objects.filter(experiment=experiment))


def command(key: str, path) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_observations", key, str(path), "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot() -> tuple:
    return (Observation.objects.count(), UnitOutcome.objects.count(),
            sorted(Experiment.objects.values_list("key", "observation_count")))


@pytest.mark.parametrize("repeated_ids", [False, True], ids=["copied", "on-conflict"])
def test_an_ab_file_stores_what_the_row_by_row_path_stores(tmp_path, repeated_ids):
    # Unique ids: the rows are COPYed from a second connection; repeated ids fail that, and the
    # rows go through one INSERT ... ON CONFLICT instead.
    experiment, variants = ab_experiment("checkout", metric_type="continuous")
    lines = [AB_HEADER]
    for i in range(120):
        unit = f"user-{i % 40}"
        named = variants[unit] if i % 3 == 0 else ""
        stamp = ["", "2026-11-20T10:00:00Z", "2026-11-20 10:00:00.5+02:00", "2026-11-20T10:00:00"][i % 4]
        latency = ["", "12.5", "0", "3e2"][i % 4]
        # With repeated_ids, ids t-1..t-19 come twice: the first one stored wins.
        ident = (f"t-{i % 100}" if repeated_ids else f"t-{i}") if i % 5 else ""
        lines.append(f"{unit},{(i * 7 % 13) / 4 - 1},{named},{ident},{stamp},{latency}")
    path = write(tmp_path, lines)

    result = observations_import_csv(experiment=experiment, path=path)
    in_database, in_database_sums = stored(experiment), _rebuilt(experiment)
    Observation.objects.filter(experiment=experiment).delete()
    UnitOutcome.objects.filter(experiment=experiment).delete()
    row_by_row = _row_by_row(experiment, path)

    expected = (104, 16) if repeated_ids else (120, 0)
    assert result is not None and (result.accepted, result.duplicates) == expected
    assert (row_by_row.accepted, row_by_row.duplicates) == expected
    assert in_database == stored(experiment)
    assert in_database_sums == sums(experiment)
    # Two instants (10:00:00 without an offset is UTC, as 10:00:00Z) and the arrival time.
    assert len({row[4] for row in in_database}) == 3


def test_the_command_takes_the_database_path_for_a_plain_file(tmp_path):
    experiment, _ = ab_experiment("checkout")
    path = write(tmp_path, [AB_HEADER] + [f"user-{i},{i % 2},,,," for i in range(40)])

    output, notes = command("checkout", path)

    assert "Imported 40 observation(s)" in output and "row by row" not in notes
    assert Experiment.objects.get(pk=experiment.pk).observation_count == 40


def _row_by_row(experiment: Experiment, path):
    from experiments.management.commands.import_observations import Command
    return Command()._import_row_by_row(experiment, path, "csv", no_progress=True)


def _rebuilt(experiment: Experiment) -> list[tuple]:
    """The incremental sums, checked against a recount from the stored observations."""
    incremental = sums(experiment)
    unit_outcomes_rebuild(experiment)
    assert sums(experiment) == incremental
    return incremental


def test_a_champion_challenger_file_is_paired_in_the_unit_sums(tmp_path):
    experiment = cc_experiment("ranker")
    lines = ["unit,variant,value,latency_ms"]
    lines += [f"r{i},{['champion', 'b', 'c'][i % 3]},{i / 8},{i}" for i in range(90)]
    path = write(tmp_path, lines)

    result = observations_import_csv(experiment=experiment, path=path)

    assert result is not None and (result.accepted, result.duplicates) == (90, 0)
    assert len(stored(experiment)) == 90
    assert sums(experiment) == _rebuilt(experiment)


AB_BAD = [
    # (cells of one row, the field the row-by-row path names)
    ("user-1,,,,,", "value"),
    (",1,,,,", "unit"),
    ("   ,1,,,,", "unit"),
    ("x" * 256 + ",1,,,,", "unit"),
    ("user-1,nan,,,,", "value"),
    ("user-1,inf,,,,", "value"),
    ("user-1,1e400,,,,", "value"),
    ("user-1,0x1p0,,,,", "value"),
    ("user-1,2,,,,", "value"),
    ("user-1,0.5,,,,", "value"),
    ("user-1,1,purple,,,", "variant"),
    ("stranger,1,,,,", "unit"),
    ("user-1,1,{other},,,", "variant"),
    ("user-1,1,,,yesterday,", "timestamp"),
    ("user-1,1,,,2026-02-30T10:00:00Z,", "timestamp"),
    ("user-1,1,,,2026-11-20T24:00:00Z,", "timestamp"),
    ("user-1,1,,,2026-11-20T10:00:60Z,", "timestamp"),
    ("user-1,1,,,2026-11-20T10:00:00 PST,", "timestamp"),
    ("user-1,1,,,May 4 2026 10:00,", "timestamp"),
    ("user-1,1,,,,-1", "latency_ms"),
    ("user-1,1,,,,inf", "latency_ms"),
    ("user-1,1,,,,nan", "latency_ms"),
    ("user-1,1,,,,0x10", "latency_ms"),
    ("user-1,1,,,,1000000001", "latency_ms"),   # over experiments.limits.MAX_LATENCY_MS
    ("user-1,1,," + "i" * 256 + ",,", "id"),
]


@pytest.mark.parametrize("bad, field", AB_BAD, ids=[f"{field}-{i}" for i, (_, field) in enumerate(AB_BAD)])
@pytest.mark.parametrize("stored_before", [False, True], ids=["copied", "on-conflict"])
def test_a_rule_break_makes_it_give_up_with_nothing_written_and_the_command_names_it(tmp_path, bad, field,
                                                                                      stored_before):
    experiment, variants = ab_experiment("checkout")
    if stored_before:   # an experiment with observations takes the ON CONFLICT statement
        ingest(experiment, [("user-30", 1)])
    other = "green" if variants["user-1"] == "control" else "control"
    lines = [AB_HEADER, "user-2,1,,a,,", "user-3,0,,b,,", bad.format(other=other), "user-4,1,,c,,"]
    path = write(tmp_path, lines)
    before = snapshot()

    assert observations_import_csv(experiment=experiment, path=path) is None
    assert snapshot() == before
    with pytest.raises(CommandError, match=rf"line 4: {field}:"):
        command("checkout", path)
    assert snapshot() == before


def test_a_champion_challenger_row_without_its_model_makes_it_give_up(tmp_path):
    experiment = cc_experiment("ranker")
    path = write(tmp_path, ["unit,variant,value", "r1,champion,1", "r1,,2"])
    before = snapshot()

    assert observations_import_csv(experiment=experiment, path=path) is None
    assert snapshot() == before
    with pytest.raises(CommandError, match=r"line 3: variant:"):
        command("ranker", path)


@pytest.mark.parametrize("value", ["1000000000001", "-1e13"])
def test_a_value_beyond_the_bound_makes_it_give_up_and_the_command_names_it(tmp_path, value):
    # experiments.limits.MAX_ABS_VALUE: beyond it, squares summed by the analysis could overflow.
    experiment, _ = ab_experiment("checkout", metric_type="continuous")
    path = write(tmp_path, ["unit,value", "user-1,5", f"user-2,{value}"])
    before = snapshot()

    assert observations_import_csv(experiment=experiment, path=path) is None
    assert snapshot() == before
    with pytest.raises(CommandError, match=r"line 3: value:"):
        command("checkout", path)
    assert snapshot() == before


@pytest.mark.parametrize("header, row, imported", [
    ("unit,value,colour", "user-1,1,blue", False),      # unknown field
    ("unit,variant", "user-1,control", False),          # no value
    ("\ufeffunit,value", "user-1,1", False),            # a byte-order mark makes the first name unknown
    ("unit,value,value", "user-1,0,1", True),           # Python's csv.DictReader keeps the last one
])
def test_an_unexpected_header_goes_row_by_row(tmp_path, header, row, imported):
    experiment, _ = ab_experiment("checkout")
    path = write(tmp_path, [header, row])

    assert observations_import_csv(experiment=experiment, path=path) is None
    if imported:
        command("checkout", path)
        assert Observation.objects.get().value == 1
    else:
        with pytest.raises(CommandError, match="line 2"):
            command("checkout", path)
        assert not Observation.objects.exists()


@pytest.mark.parametrize("cell", ["1_0", "\u0665", "1e-400"])
def test_numbers_only_python_reads_are_imported_by_the_row_by_row_path(tmp_path, cell):
    experiment, _ = ab_experiment("checkout", metric_type="continuous")
    path = write(tmp_path, ["unit,value", f'user-1,"{cell}"'])

    assert observations_import_csv(experiment=experiment, path=path) is None
    output, notes = command("checkout", path)

    assert "row by row" in notes and "Imported 1 observation(s)" in output
    assert Observation.objects.get().value == float(cell)


@pytest.mark.parametrize("row", [
    "r1,champion,1,2026-11-20",                       # a date without a time
    "r1,champion,1,2026-11-20T10:00",                 # no seconds
    "r1,champion,1,2026-11-20T10:00:00.1234567Z",     # more than 6 digits: Python truncates, PostgreSQL rounds
    "\u00e9\u00e8,b,1,",                               # a unit without an ASCII character
])
def test_timestamps_and_units_it_does_not_recognise_are_imported_row_by_row(tmp_path, row):
    experiment = cc_experiment("ranker")
    path = write(tmp_path, ["unit,variant,value,timestamp", row])

    assert observations_import_csv(experiment=experiment, path=path) is None
    output, notes = command("ranker", path)

    assert "row by row" in notes and "Imported 1 observation(s)" in output


def test_after_the_grace_period_it_refuses_like_the_endpoint(tmp_path):
    experiment, _ = ab_experiment("checkout")
    end_test_period(experiment)
    path = write(tmp_path, [AB_HEADER, "user-1,1,,,,"])

    with pytest.raises(WrongState):
        observations_import_csv(experiment=Experiment.objects.get(pk=experiment.pk), path=path)
    assert not Observation.objects.exists()


def test_a_second_file_for_the_same_units_adds_to_their_sums(tmp_path):
    experiment = cc_experiment("ranker")
    first = write(tmp_path, ["unit,variant,value,id"] + [f"r{i},champion,{i},a{i}" for i in range(30)], "first.csv")
    second = write(tmp_path, ["unit,variant,value,id"] + [f"r{i},b,{i / 2},b{i}" for i in range(0, 30, 2)]
                   + [f"r{i},champion,1,a{i}" for i in range(3)], "second.csv")   # three ids seen before

    one = observations_import_csv(experiment=experiment, path=first)
    two = observations_import_csv(experiment=Experiment.objects.get(pk=experiment.pk), path=second)

    assert (one.accepted, one.duplicates, two.accepted, two.duplicates) == (30, 0, 15, 3)
    assert sums(experiment) == _rebuilt(experiment)
    assert Experiment.objects.get(pk=experiment.pk).observation_count == 45
