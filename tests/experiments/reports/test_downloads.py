"""The result as files: the JSON is the stored document; the CSV has one row per comparison."""

import csv
import io
import json

import pytest

from experiments.models import AnalysisResult, Assignment
from tests.experiments.builders import analysed, ingest, start
from tests.experiments.reports.helpers import analysed_ab


@pytest.mark.django_db
def test_the_json_download_is_the_stored_document(client, viewer):
    experiment = analysed_ab("promote")
    client.force_login(viewer)

    response = client.get(f"/reports/{experiment.key}/result.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert f'filename="{experiment.key}-result.json"' in response["Content-Disposition"]
    assert json.loads(response.content) == AnalysisResult.objects.get(experiment=experiment).document


@pytest.mark.django_db
def test_the_csv_download_has_one_row_per_comparison_with_both_means(client, viewer):
    experiment = start(variants=[{"key": "control", "is_control": True}, {"key": "b"}, {"key": "c"}])
    # 200 units per arm, written directly: a hashed split could fail the sample ratio check by chance.
    Assignment.objects.bulk_create(Assignment(experiment=experiment, unit=f"{v.key}-{i}", variant=v)
                                   for v in experiment.variants.all() for i in range(200))
    every = {"control": 10, "b": 5, "c": 4}
    ingest(experiment, [(f"{key}-{i}", int(i % n == 0)) for key, n in every.items() for i in range(200)])
    document = analysed(experiment)
    client.force_login(viewer)

    response = client.get(f"/reports/{experiment.key}/result.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["variant"] for row in rows] == ["b", "c"]
    variants = {v["key"]: v for v in document["variants"]}
    for row, comparison in zip(rows, document["comparisons"], strict=True):
        assert row["vs"] == "control" and row["experiment"] == experiment.key
        assert float(row["variant_mean"]) == variants[row["variant"]]["mean"]
        assert float(row["vs_mean"]) == variants["control"]["mean"]
        assert int(row["variant_units"]) == variants[row["variant"]]["units"]
        for field in ("effect", "relative_effect", "ci_low", "ci_high", "p_value", "adjusted_p_value"):
            assert float(row[field]) == comparison[field], field
        assert row["significant"] == ("true" if comparison["significant"] else "false")
        assert float(row["interval_level"]) == pytest.approx(1 - 0.05 / 2)
        assert row["decision"] == document["decision"]["outcome"]
