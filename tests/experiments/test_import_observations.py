"""`manage.py import_observations`: CSV and JSON Lines backfills, same rules, whole file or nothing."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Observation
from experiments.services.assignment import assignments_for_units
from experiments.services.lifecycle import experiment_start
from tests.factories import ExperimentFactory

UNITS = [f"user-{i}" for i in range(30)]


@pytest.fixture
def experiment(db):
    experiment = experiment_start(experiment=ExperimentFactory(key="checkout-button"), actor=None)
    assignments_for_units(experiment_key=experiment.key, units=UNITS)
    return experiment


def run(*args) -> str:
    out = StringIO()
    call_command("import_observations", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_a_csv_backfill_is_imported_with_a_summary(experiment, tmp_path):
    path = tmp_path / "truth.csv"
    lines = ["unit,value,id,timestamp"] + [f"{u},{i % 2},t-{i},2026-11-20T10:00:00Z" for i, u in enumerate(UNITS)]
    path.write_text("\n".join(lines) + "\n")

    output = run("checkout-button", str(path))
    again = run("checkout-button", str(path))

    assert "Imported 30 observation(s)" in output and "0 duplicate" in output
    assert "Imported 0 observation(s)" in again and "30 duplicate" in again
    assert Observation.objects.count() == 30
    experiment.refresh_from_db()
    assert experiment.observation_count == 30


@pytest.mark.django_db
def test_a_json_lines_backfill_is_imported(experiment, tmp_path):
    path = tmp_path / "truth.jsonl"
    path.write_text("\n".join(json.dumps({"unit": u, "value": 1}) for u in UNITS[:10]) + "\n")

    assert "Imported 10 observation(s)" in run("checkout-button", str(path))


@pytest.mark.django_db
@pytest.mark.parametrize("bad_line, line_number, field", [
    ("user-3,2", 4, "value"),                     # binary takes 0 or 1 (a rule)
    ("user-3,abc", 4, "value"),                   # not a number (malformed)
    ("stranger,1", 4, "unit"),                    # never assigned
])
def test_one_bad_row_imports_nothing_and_names_its_line_and_field(experiment, tmp_path, bad_line, line_number, field):
    path = tmp_path / "truth.csv"
    path.write_text("unit,value\nuser-1,1\nuser-2,0\n" + bad_line + "\nuser-4,1\n")

    with pytest.raises(CommandError) as error:
        run("checkout-button", str(path))

    assert f"line {line_number}: {field}" in str(error.value)
    assert Observation.objects.count() == 0


@pytest.mark.django_db
def test_a_failure_in_a_later_chunk_rolls_back_the_earlier_chunks(experiment, tmp_path, monkeypatch):
    from experiments.management.commands import import_observations

    monkeypatch.setattr(import_observations, "CHUNK_ROWS", 5)
    path = tmp_path / "truth.csv"
    path.write_text("unit,value\n" + "".join(f"{u},1\n" for u in UNITS[:12]) + "stranger,1\n")

    with pytest.raises(CommandError, match="line 14: unit"):
        run("checkout-button", str(path))

    assert Observation.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_experiment_or_file_is_a_clear_error(experiment, tmp_path):
    with pytest.raises(CommandError, match="No experiment"):
        run("nope", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="No file"):
        run("checkout-button", str(tmp_path / "missing.csv"))
