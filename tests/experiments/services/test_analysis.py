"""The stored analysis equals scipy/statsmodels on the same raw data, runs once, and is immutable."""

from collections import defaultdict
from datetime import timedelta

import numpy as np
import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportions_ztest

from experiments.errors import Locked, WrongState
from experiments.models import AnalysisResult, AuditEvent, Experiment, ImmutableResultError, Observation
from experiments.services.analysis import analysis_run, experiments_queue_due_analyses
from tests.experiments.builders import analysed, assigned_units, end_test_period, ingest, start

REL = 1e-9


def comparison(document: dict, variant: str) -> dict:
    return next(c for c in document["comparisons"] if c["variant"] == variant)


@pytest.mark.django_db
def test_ab_binary_matches_the_pooled_z_test_on_per_unit_conversions():
    experiment = start(variants=[{"key": "control", "is_control": True}, {"key": "green"}])
    units = assigned_units(experiment, 600)
    rng = np.random.default_rng(1)
    observations = []
    for unit, variant in units.items():
        rate = 0.3 if variant == "green" else 0.2
        # Several observations per unit: the unit converts if any of them is 1.
        observations += [(unit, int(rng.random() < rate / 2)) for _ in range(2)]
    ingest(experiment, observations)

    document = analysed(experiment)

    converted = defaultdict(int)
    for unit, value in observations:
        converted[unit] = max(converted[unit], value)
    counts = {v: sum(1 for u in units if units[u] == v) for v in ("control", "green")}
    successes = {v: sum(converted[u] for u in units if units[u] == v) for v in ("control", "green")}
    z, p = proportions_ztest([successes["green"], successes["control"]], [counts["green"], counts["control"]])
    result = comparison(document, "green")
    assert result["p_value"] == pytest.approx(p, rel=REL)
    assert result["statistic"] == pytest.approx(z, rel=REL)
    assert result["effect"] == pytest.approx(successes["green"] / counts["green"]
                                             - successes["control"] / counts["control"], rel=REL)
    assert {v["key"]: v["units"] for v in document["variants"]} == counts
    assert document["test"] == "two-proportion z-test"
    assert document["protocol_hash"] == Experiment.objects.get(pk=experiment.pk).protocol_hash


@pytest.mark.django_db
def test_ab_continuous_sums_each_units_values_and_counts_silent_units_as_zero():
    experiment = start(metric_type="continuous", baseline_mean=20.0, baseline_sd=10.0, mde=2.0,
                       variants=[{"key": "control", "is_control": True}, {"key": "b"}, {"key": "c"}])
    units = assigned_units(experiment, 900)
    rng = np.random.default_rng(2)
    observations = []
    for unit, variant in units.items():
        if rng.random() < 0.2:
            continue  # never bought anything: counts as 0
        mean = {"control": 20, "b": 21, "c": 25}[variant]
        observations += [(unit, round(float(rng.normal(mean / 2, 5)), 2)) for _ in range(2)]
    ingest(experiment, observations)

    document = analysed(experiment)

    per_unit = defaultdict(float)
    for unit, value in observations:
        per_unit[unit] += value
    values = {v: np.array([per_unit.get(u, 0.0) for u in units if units[u] == v]) for v in ("control", "b", "c")}
    for challenger in ("b", "c"):
        reference = stats.ttest_ind(values[challenger], values["control"], equal_var=False)
        interval = reference.confidence_interval(1 - 0.05 / 2)
        result = comparison(document, challenger)
        assert result["p_value"] == pytest.approx(reference.pvalue, rel=REL)
        assert result["statistic"] == pytest.approx(reference.statistic, rel=REL)
        assert (result["ci_low"], result["ci_high"]) == (pytest.approx(interval.low, rel=REL),
                                                        pytest.approx(interval.high, rel=REL))
    variants = {v["key"]: v for v in document["variants"]}
    assert variants["c"]["mean"] == pytest.approx(values["c"].mean(), rel=REL)
    assert variants["c"]["sd"] == pytest.approx(values["c"].std(ddof=1), rel=REL)
    assert document["decision"]["outcome"] in {"promote", "keep", "inconclusive", "invalid"}


@pytest.mark.django_db
def test_champion_challenger_continuous_is_the_paired_t_test_over_complete_pairs():
    experiment = start(design="champion_challenger", metric_type="continuous", metric_direction="decrease",
                       baseline_mean=None, baseline_sd=1.0, mde=0.2,
                       variants=[{"key": "champion", "is_control": True}, {"key": "challenger"}])
    rng = np.random.default_rng(3)
    observations, pairs = [], []
    for i in range(400):
        loss = float(rng.gamma(2, 1))
        new_loss = loss - 0.1 + float(rng.normal(0, 0.5))
        observations.append((f"r{i}", loss, "champion"))
        if i % 10:  # every tenth request lost its challenger score: an incomplete pair
            observations.append((f"r{i}", new_loss, "challenger"))
            pairs.append((loss, new_loss))
    ingest(experiment, observations)

    document = analysed(experiment)

    champion, challenger = np.array(pairs).T
    reference = stats.ttest_rel(challenger, champion)
    result = comparison(document, "challenger")
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=REL)
    assert result["effect"] == pytest.approx((challenger - champion).mean(), rel=REL)
    interval = reference.confidence_interval(0.95)
    assert result["ci_low"] == pytest.approx(interval.low, rel=REL)
    assert document["checks"]["incomplete_pairs"] == 40
    assert document["test"] == "paired t-test"


@pytest.mark.django_db
def test_with_two_challengers_each_is_paired_on_its_own_complete_pairs_and_units_count_once():
    experiment = start(design="champion_challenger", metric_type="continuous", baseline_mean=None,
                       baseline_sd=1.0, mde=0.2, variants=[{"key": "champion", "is_control": True},
                                                           {"key": "b"}, {"key": "c"}])
    rng = np.random.default_rng(8)
    observations, values = [], defaultdict(dict)
    for i in range(300):
        # Which models scored request i: all three mostly, else a pattern that leaves it incomplete.
        scored = [("champion", "b", "c"), ("champion", "b", "c"), ("champion", "b"), ("champion",), ("b", "c"),
                  ("c",)][i % 6]
        for model in scored:
            value = float(rng.normal(1.0, 1.0))
            observations.append((f"r{i}", value, model))
            values[f"r{i}"][model] = value
    ingest(experiment, observations)

    document = analysed(experiment)

    incomplete = sum(1 for scores in values.values() if len(scores) < 3)
    assert document["checks"]["incomplete_pairs"] == incomplete == 200
    for challenger in ("b", "c"):
        pairs = np.array([(v["champion"], v[challenger]) for v in values.values()
                          if "champion" in v and challenger in v])
        reference = stats.ttest_rel(pairs[:, 1], pairs[:, 0])
        result = comparison(document, challenger)
        assert result["effect"] == pytest.approx((pairs[:, 1] - pairs[:, 0]).mean(), rel=REL)
        assert result["statistic"] == pytest.approx(reference.statistic, rel=REL)


@pytest.mark.django_db
def test_champion_challenger_binary_is_mcnemar_on_the_discordant_pairs():
    experiment = start(design="champion_challenger", metric_type="binary", baseline_mean=None, baseline_sd=0.3,
                       mde=0.05, variants=[{"key": "champion", "is_control": True}, {"key": "challenger"}])
    rng = np.random.default_rng(4)
    observations, table = [], np.zeros((2, 2), dtype=int)
    for i in range(500):
        x = int(rng.random() < 0.7)
        y = x if rng.random() < 0.85 else 1 - x
        observations += [(f"r{i}", x, "champion"), (f"r{i}", y, "challenger")]
        table[x, y] += 1
    ingest(experiment, observations)

    document = analysed(experiment)

    discordant = table[1, 0] + table[0, 1]
    reference = mcnemar(table, exact=discordant < 25, correction=True)
    assert comparison(document, "challenger")["p_value"] == pytest.approx(reference.pvalue, rel=REL)
    assert document["test"] == "McNemar test"


@pytest.mark.django_db
def test_an_experiment_without_any_observation_ends_invalid_or_inconclusive_with_a_reason():
    experiment = start()
    assigned_units(experiment, 50)

    document = analysed(experiment)

    assert document["decision"]["outcome"] in {"invalid", "inconclusive"}
    assert document["decision"]["reason"]


@pytest.mark.django_db
def test_a_champion_challenger_experiment_with_no_complete_pair_finishes_with_a_reason():
    experiment = start(design="champion_challenger", metric_type="continuous", baseline_mean=None,
                       baseline_sd=1.0, mde=0.2)
    ingest(experiment, [(f"r{i}", 1.0, "control") for i in range(30)])

    document = analysed(experiment)

    assert document["decision"]["outcome"] in {"invalid", "inconclusive"}
    assert document["checks"]["incomplete_pairs"] == 30


@pytest.mark.django_db
def test_a_second_run_returns_the_stored_result_and_stores_nothing_more():
    experiment = start()
    assigned_units(experiment, 20)
    first = analysed(experiment)

    second = analysis_run(experiment_id=experiment.pk).document

    assert second == first
    assert AnalysisResult.objects.count() == 1
    assert AuditEvent.objects.filter(experiment=experiment, action="analyzed").count() == 1
    assert Experiment.objects.get(pk=experiment.pk).status == "analyzed"


@pytest.mark.django_db
def test_a_result_cannot_be_changed_by_the_model_or_by_sql():
    experiment = start()
    analysed(experiment)
    result = AnalysisResult.objects.get()
    stored_outcome = result.outcome

    result.outcome = "changed"
    with pytest.raises(ImmutableResultError):
        result.save()
    with pytest.raises(ImmutableResultError):
        result.delete()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        AnalysisResult.objects.filter(pk=result.pk).update(outcome="keep")
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM experiments_analysisresult")
    assert AnalysisResult.objects.get().outcome == stored_outcome


@pytest.mark.django_db
def test_nothing_is_analysed_one_second_before_the_lock_lifts():
    experiment = start(grace_period=timedelta(hours=1))
    now = timezone.now()
    Experiment.objects.filter(pk=experiment.pk).update(started_at=now - timedelta(days=15),
                                                       ends_at=now - timedelta(minutes=59))

    assert experiments_queue_due_analyses() == []
    Experiment.objects.filter(pk=experiment.pk).update(status="analyzing")
    with pytest.raises(Locked):
        analysis_run(experiment_id=experiment.pk)
    assert not AnalysisResult.objects.exists()


@pytest.mark.django_db
def test_the_sweep_queues_only_ended_running_experiments_and_requeues_stale_ones(settings):
    ended, running, stopped, stale = start(), start(), start(), start()
    end_test_period(ended)
    end_test_period(stopped)
    Experiment.objects.filter(pk=stopped.pk).update(status="stopped")
    end_test_period(stale)
    Experiment.objects.filter(pk=stale.pk).update(
        status="analyzing", analysis_queued_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1))

    queued = experiments_queue_due_analyses()

    assert sorted(queued) == sorted([ended.pk, stale.pk])
    assert Experiment.objects.get(pk=running.pk).status == "running"
    assert AuditEvent.objects.filter(experiment=stale, action="analysis_requeued").exists()
    assert experiments_queue_due_analyses() == []  # a second sweep finds nothing new


@pytest.mark.django_db
def test_analysis_of_a_running_experiment_is_refused():
    experiment = start()

    with pytest.raises(WrongState):
        analysis_run(experiment_id=experiment.pk)
    assert Observation.objects.count() == 0
