"""The demo's finished example: a multi-metric A/B test run for real, in seconds, on generated data.

Nothing is backdated: the example is defined, started, assigned and observed through the
same services as any test, with a 10-second test period and a 5-second grace period, so the
lock is real too. Once it lifts, the preregistered analysis runs (the worker's service),
and a newcomer opens a finished report on the first start. The data are generated so that
the green button raises conversion while the page gets slower than the latency guardrail
allows: the decision shows how a guardrail holds a winner back.
"""

import time
from datetime import timedelta

import numpy as np
from django.utils import timezone

from experiments.models import Experiment
from experiments.observation_input import ObservationRow
from experiments.services.analysis import analysis_run, experiments_queue_due_analyses
from experiments.services.assignment import assignments_for_units
from experiments.services.definition import experiment_create
from experiments.services.ingestion import observations_ingest
from experiments.services.lifecycle import experiment_start

EXAMPLE_KEY = "checkout-redesign"
UNITS = 5_600  # about 2,800 per variant: the plan needs 2,367 (conversion sets it)
BATCH = 10_000
EXAMPLE_SALT = "checkout-redesign-example"


def example_definition() -> dict:
    """Conversion decides; revenue per user is for learning; page latency must not rise by more than 5 ms."""
    return {
        "key": EXAMPLE_KEY, "name": "Checkout redesign (finished example)",
        "hypothesis": "A one-page checkout raises conversion without slowing the page down",
        "design": "ab", "metric_name": "Checkout conversion", "metric_key": "conversion",
        "metric_type": "binary", "metric_direction": "increase", "metric_aggregation": "sum",
        "baseline_mean": 0.10, "baseline_sd": None, "mde": 0.03, "sample_size_per_variant": None,
        "alpha": 0.05, "power": 0.8, "alternative": "two-sided",
        "duration": timedelta(seconds=10), "grace_period": timedelta(seconds=5), "traffic_percent": 100.0,
        "auto_promote": False,
        "variants": [
            {"key": "control", "weight": 1.0, "is_control": True, "payload": {"checkout": "three pages"}},
            {"key": "green", "weight": 1.0, "is_control": False, "payload": {"checkout": "one page"}},
        ],
        "metrics": [
            {"key": "revenue", "name": "Revenue per user", "role": "secondary", "metric_type": "continuous",
             "direction": "increase", "aggregation": "sum", "baseline_mean": None, "baseline_sd": None,
             "margin": None},
            {"key": "page_latency_ms", "name": "Page latency", "role": "guardrail", "metric_type": "continuous",
             "direction": "decrease", "aggregation": "mean", "baseline_mean": 200.0, "baseline_sd": 40.0,
             "margin": 5.0},
        ],
    }


def _observations(variant_of: dict[str, str], seed: int = 2026) -> list[ObservationRow]:
    """Conversion 10% -> 14%, revenue per order about 40, page latency 200 ms -> 207 ms (1 to 3 page views)."""
    rng = np.random.default_rng(seed)
    rows: list[ObservationRow] = []

    def add(unit: str, value: float, metric: str | None) -> None:
        rows.append(ObservationRow(len(rows), unit, float(value), None, None, None, None, metric))

    for unit, variant in variant_of.items():
        green = variant == "green"
        converted = rng.random() < (0.14 if green else 0.10)
        add(unit, int(converted), None)  # the primary: no `metric`
        if converted:
            add(unit, round(float(rng.gamma(4, 10)), 2), "revenue")
        for _ in range(rng.integers(1, 4)):
            add(unit, round(float(rng.normal(207 if green else 200, 40)), 1), "page_latency_ms")
    return rows


def load_finished_example(*, actor, wait=time.sleep) -> Experiment:
    """Define, start, assign, observe; wait for the lock to lift (about 15 s); run the analysis."""
    draft = experiment_create(actor=actor, definition=example_definition())
    # A fixed salt makes the example the same on every machine: with a random one its arms, and so
    # its data, changed from run to run, and about one run in a thousand failed the sample ratio
    # check (a test at p < 0.001 by design) and showed "invalid" instead of the guardrail's story.
    Experiment.objects.filter(pk=draft.pk).update(salt=EXAMPLE_SALT)
    draft.refresh_from_db()
    experiment = experiment_start(experiment=draft, actor=actor)
    answers = assignments_for_units(experiment_key=EXAMPLE_KEY, units=[f"user-{i}" for i in range(UNITS)])
    rows = _observations({a.unit: a.variant for a in answers})
    for start in range(0, len(rows), BATCH):
        observations_ingest(experiment=experiment, rows=rows[start:start + BATCH])
    remaining = (experiment.unlocks_at - timezone.now()).total_seconds()
    if remaining > 0:
        wait(remaining + 0.5)
    experiments_queue_due_analyses()
    analysis_run(experiment_id=experiment.pk)
    return Experiment.objects.get(pk=experiment.pk)
