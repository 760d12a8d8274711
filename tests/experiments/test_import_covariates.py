"""`manage.py import_covariates`: CSV and JSON Lines, the endpoint's rules, the whole file or nothing."""

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from experiments.models import Covariate, Experiment, Metric
from experiments.services.lifecycle import experiment_start
from tests.factories import ExperimentFactory

UNITS = [f"user-{i}" for i in range(30)]


@pytest.fixture
def experiment(db) -> Experiment:
    experiment = ExperimentFactory(key="checkout-button")
    Experiment.objects.filter(pk=experiment.pk).update(cuped=True)
    Metric.objects.create(experiment=experiment, position=1, key="revenue", name="revenue",
                          metric_type="continuous", cuped=True)
    Metric.objects.create(experiment=experiment, position=2, key="clicks", name="clicks", metric_type="continuous")
    return Experiment.objects.get(pk=experiment.pk)


def run(*args) -> str:
    out = StringIO()
    call_command("import_covariates", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def stored() -> dict[tuple[int, str], float]:
    return {(c.metric_position, c.unit): c.value for c in Covariate.objects.all()}


@pytest.mark.django_db
def test_a_csv_file_is_imported_and_again_only_duplicates(experiment, tmp_path):
    path = tmp_path / "before.csv"
    path.write_text("\n".join(["unit,value"] + [f"{u},{i}.5" for i, u in enumerate(UNITS)]) + "\n")

    output = run("checkout-button", str(path))
    again = run("checkout-button", str(path))

    assert "accepted: 30, duplicates: 0" in output
    assert "accepted: 0, duplicates: 30" in again
    assert stored() == {(0, u): i + 0.5 for i, u in enumerate(UNITS)}


@pytest.mark.django_db
def test_a_csv_metric_column_names_the_metric_and_the_first_value_wins(experiment, tmp_path):
    path = tmp_path / "before.csv"
    path.write_text("unit,value,metric\nu-1,1,\nu-1,2,revenue\nu-1,3,revenue\nu-2,4,revenue\nu-1,5,\n")
    Covariate.objects.create(experiment=experiment, metric_position=1, unit="u-2", value=99)

    output = run("checkout-button", str(path))

    assert "accepted: 2, duplicates: 3" in output
    assert stored() == {(0, "u-1"): 1.0, (1, "u-1"): 2.0, (1, "u-2"): 99.0}


@pytest.mark.django_db
def test_the_primary_by_key_in_a_csv(experiment, tmp_path):
    path = tmp_path / "before.csv"
    path.write_text(f"unit,value,metric\nu-1,1,{experiment.metric_key}\nu-1,2,\nu-2,3,revenue\n")

    output = run("checkout-button", str(path))

    assert "accepted: 2, duplicates: 1" in output
    assert stored() == {(0, "u-1"): 1.0, (1, "u-2"): 3.0}


@pytest.mark.django_db
def test_a_json_lines_file_is_imported(experiment, tmp_path):
    path = tmp_path / "before.jsonl"
    lines = [json.dumps({"unit": u, "value": i}) for i, u in enumerate(UNITS[:10])]
    lines.append(json.dumps({"unit": UNITS[0], "value": 5, "metric": "revenue"}))
    lines.append(json.dumps({"unit": UNITS[0], "value": 6}))
    path.write_text("\n".join(lines) + "\n")

    output = run("checkout-button", str(path))

    assert "accepted: 11, duplicates: 1" in output
    assert stored() == {**{(0, u): float(i) for i, u in enumerate(UNITS[:10])}, (1, UNITS[0]): 5.0}


@pytest.mark.django_db
def test_a_running_experiment_takes_a_file(experiment, tmp_path):
    experiment_start(experiment=experiment, actor=None)
    path = tmp_path / "before.csv"
    path.write_text("unit,value\nu-1,1\n")

    assert "accepted: 1, duplicates: 0" in run("checkout-button", str(path))


BAD_CSV = {
    "value not a number": ("unit,value\nu-1,1\nu-2,abc\n", "line 3: value"),
    "value NaN": ("unit,value\nu-1,1\nu-2,NaN\n", "line 3: value"),
    "value inf": ("unit,value\nu-1,1\nu-2,inf\n", "line 3: value"),
    "unit missing": ("unit,value\nu-1,1\n,2\n", "line 3: unit"),
    "unit too long": (f"unit,value\nu-1,1\n{'u' * 256},2\n", "line 3: unit"),
    "unknown metric": ("unit,value,metric\nu-1,1,\nu-2,2,latency\n", "line 3: metric"),
    "metric without cuped": ("unit,value,metric\nu-1,1,\nu-2,2,clicks\n", "line 3: metric"),
    "unknown column": ("unit,value,variant\nu-1,1,control\n", "line 2: variant"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("text, named", BAD_CSV.values(), ids=BAD_CSV.keys())
def test_a_bad_csv_line_is_named_and_nothing_is_written(experiment, tmp_path, text, named):
    Covariate.objects.create(experiment=experiment, metric_position=0, unit="before", value=1)
    before = stored()
    path = tmp_path / "before.csv"
    path.write_text(text)

    with pytest.raises(CommandError) as error:
        run("checkout-button", str(path))

    assert named in str(error.value) and "Nothing was imported" in str(error.value)
    assert stored() == before


@pytest.mark.django_db
def test_a_bad_line_after_the_first_chunk_leaves_nothing_written(experiment, tmp_path):
    path = tmp_path / "before.csv"
    rows = [f"u-{i},{i}" for i in range(10_005)] + ["u-last,oops"]
    path.write_text("unit,value\n" + "\n".join(rows) + "\n")

    with pytest.raises(CommandError) as error:
        run("checkout-button", str(path))

    assert "line 10007: value" in str(error.value)
    assert Covariate.objects.count() == 0


@pytest.mark.django_db
def test_a_large_file_spanning_chunks_keeps_the_first_value(experiment, tmp_path):
    path = tmp_path / "before.csv"
    rows = [f"u-{i},{i}" for i in range(10_005)] + ["u-0,-1"]
    path.write_text("unit,value\n" + "\n".join(rows) + "\n")

    output = run("checkout-button", str(path))

    assert "accepted: 10005, duplicates: 1" in output
    assert Covariate.objects.get(unit="u-0").value == 0.0


@pytest.mark.django_db
@pytest.mark.parametrize("line, named", [
    ('{"unit": "u-2", "value": "NaN"}', "line 2: value"),
    ('{"unit": "u-2", "value": 1, "metric": "clicks"}', "line 2: metric"),
    ('{"unit": "u-2", "value": 1, "metric": "nope"}', "line 2: metric"),
    ('{"value": 1}', "line 2: unit"),
    ("not json", "line 2: item"),
])
def test_a_bad_json_line_is_named_and_nothing_is_written(experiment, tmp_path, line, named):
    path = tmp_path / "before.jsonl"
    path.write_text('{"unit": "u-1", "value": 1}\n' + line + "\n")

    with pytest.raises(CommandError) as error:
        run("checkout-button", str(path))

    assert named in str(error.value)
    assert Covariate.objects.count() == 0


@pytest.mark.django_db
def test_an_ended_experiment_refuses_the_file(experiment, tmp_path):
    Experiment.objects.filter(pk=experiment.pk).update(status="stopped")
    path = tmp_path / "before.csv"
    path.write_text("unit,value\nu-1,1\n")

    with pytest.raises(CommandError, match="covariates are taken only"):
        run("checkout-button", str(path))
    assert Covariate.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_experiment_or_file_is_an_error(experiment, tmp_path):
    with pytest.raises(CommandError, match="No experiment"):
        run("nope", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="No file"):
        run("checkout-button", str(tmp_path / "missing.csv"))


def run_with_stderr(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_covariates", *args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# The in-database CSV path (PostgreSQL): which way a file went is said on stderr when it falls back.
IN_DATABASE = pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                                 reason="the in-database CSV path is PostgreSQL's")


@IN_DATABASE
@pytest.mark.django_db
@pytest.mark.parametrize("before", [False, True], ids=["fresh", "covariates-stored-before"])
@pytest.mark.parametrize("repeat", [False, True], ids=["no-repeat", "repeat-in-file"])
def test_a_plain_csv_goes_in_the_database_and_stores_what_row_by_row_would(experiment, tmp_path, before, repeat):
    """Into a fresh experiment (streamed COPY) or one with covariates (ON CONFLICT), with or without a
    repeat in the file: the rows stored are those the row-by-row path stores (first value wins)."""
    lines = ["unit,value,metric"] + [f"{u},{i}.25,{'revenue' if i % 2 else ''}" for i, u in enumerate(UNITS)]
    if repeat:
        lines.append(f"{UNITS[1]},999,revenue")
    path = tmp_path / "before.csv"
    path.write_text("\n".join(lines) + "\n")
    expected = {(1 if i % 2 else 0, u): i + 0.25 for i, u in enumerate(UNITS)}
    if before:
        Covariate.objects.create(experiment=experiment, metric_position=0, unit=UNITS[0], value=-1.0)
        expected[(0, UNITS[0])] = -1.0

    output, errors = run_with_stderr("checkout-button", str(path))

    assert "row by row" not in errors
    duplicates = int(before) + int(repeat)
    assert f"accepted: {len(UNITS) - int(before)}, duplicates: {duplicates}" in output
    assert stored() == expected


@IN_DATABASE
@pytest.mark.django_db
@pytest.mark.parametrize("row, named", [
    ("u-2,1e13,", "line 3: value"),        # beyond MAX_ABS_VALUE
    ("u-2,NaN,", "line 3: value"),
    (" ,1,", "line 3: unit"),              # blank
    ("u-2,1,clicks", "line 3: metric"),     # a metric without cuped
    ("u-2,1,nope", "line 3: metric"),       # an unknown metric
])
def test_a_row_the_database_path_does_not_take_falls_back_and_is_named(experiment, tmp_path, row, named):
    path = tmp_path / "before.csv"
    path.write_text(f"unit,value,metric\nu-1,1,\n{row}\n")

    with pytest.raises(CommandError) as raised:
        call_command("import_covariates", "checkout-button", str(path), "--no-progress",
                     stdout=StringIO(), stderr=(errors := StringIO()))

    assert "row by row" in errors.getvalue()
    assert named in str(raised.value)
    assert Covariate.objects.count() == 0
