"""The ingestion benchmark's data: its experiments (made through the services) and the rows it inserts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

CC_KEY = "bench-cc"
CC_METRICS_KEY = "bench-cc-metrics"
# The multi-metric scenario: the cc rows spread over the primary (its key is slugify("loss")) and two more.
METRICS = ("loss", "latency", "cost")
AB_KEY = "bench-ab"
WARMUP_KEY = "bench-warmup"
AB_UNITS = 100_000
BATCH = 10_000
TARGET_REST = 0.25
TARGET_IMPORT = 0.50
TARGET_METRICS = 0.90   # several metrics' rows/s over one metric's, measured in the same run
FLAT_TOLERANCE_KB = 8 * 1024   # growth of a worker's high-water mark allowed over the second half of a run
# What the application writes per observation: the rows and the per-unit sums the analysis reads.
OBSERVATION_TABLES = ("experiments_observation", "experiments_unitoutcome")
COLUMNS = "experiment_id, variant_id, unit, value, latency_ms, observed_at, received_at, idempotency_key"
BASE_TIME = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)

SETUP = """
import json
from datetime import timedelta
from experiments.models import Experiment
from experiments.services.assignment import assignments_for_units
from experiments.services.definition import experiment_create
from experiments.services.lifecycle import experiment_start

def cc(key, metrics=()):
    definition = dict(
        key=key, name="Benchmark ranker", hypothesis="The challenger model has a lower loss",
        design="champion_challenger", metric_name="loss", metric_type="continuous",
        metric_direction="decrease", baseline_mean=None, baseline_sd=5.0, mde=0.5,
        sample_size_per_variant=None, alpha=0.05, power=0.8, alternative="two-sided",
        duration=timedelta(days=14), grace_period=timedelta(0), traffic_percent=100.0, auto_promote=False,
        variants=[{"key": "champion", "weight": 1.0, "is_control": True, "payload": {}},
                  {"key": "challenger", "weight": 1.0, "is_control": False, "payload": {}}],
        metrics=[{"key": key, "name": key, "role": "secondary", "metric_type": "continuous",
                  "direction": "decrease", "aggregation": "sum", "baseline_mean": None, "baseline_sd": None,
                  "margin": None} for key in metrics],
    )
    return experiment_start(experiment=experiment_create(actor=None, definition=definition), actor=None)

def ab(key):
    definition = dict(
        key=key, name="Benchmark checkout", hypothesis="A green button raises conversion",
        design="ab", metric_name="conversion", metric_type="binary", metric_direction="increase",
        baseline_mean=0.10, baseline_sd=None, mde=0.01, sample_size_per_variant=None, alpha=0.05,
        power=0.8, alternative="two-sided", duration=timedelta(days=14), grace_period=timedelta(0),
        traffic_percent=100.0, auto_promote=False,
        variants=[{"key": "control", "weight": 1.0, "is_control": True, "payload": {}},
                  {"key": "green", "weight": 1.0, "is_control": False, "payload": {}}],
    )
    experiment = experiment_start(experiment=experiment_create(actor=None, definition=definition), actor=None)
    units = [f"u-{i:06d}" for i in range(AB_UNITS)]
    for start in range(0, len(units), 10_000):
        assignments_for_units(experiment_key=key, units=units[start:start + 10_000])
    return experiment

made = [cc(CC_KEY), cc(CC_METRICS_KEY, SECONDARY_METRICS), cc(WARMUP_KEY)] + ([ab(AB_KEY)] if AB_UNITS else [])
print(json.dumps({e.key: {"id": e.id, "status": e.status, "design": e.design, "metric": e.metric_type,
                          "variants": {v.key: v.id for v in e.variants.all()},
                          "metrics": [e.metric_key] + [m.key for m in e.metrics.all()]} for e in made}))
"""


# -- data -------------------------------------------------------------------------------------

@dataclass
class Dataset:
    """The same rows three ways: REST bodies, a CSV file, and tuples for COPY (and a CSV of them for psql)."""

    key: str
    rows: int
    bodies: list[bytes]
    csv_path: Path
    copy_batches: list[list[tuple]] = field(default_factory=list)
    floor_csv: Path | None = None


def make_cc(rows: int, experiment: dict, workdir: Path, received_at: datetime, *, key: str = CC_KEY,
            metrics: tuple[str, ...] = ()) -> Dataset:
    """Champion/challenger: request r-N scored by both models (value = loss, plus latency).

    With `metrics`, the same rows name a metric each (`metric` on every item, a `metric` CSV
    column), both scores of a request under the same one, so that the per-unit sums have as
    many rows as with one metric; without, the COPY tuples and their CSV (the psql floor) too.
    """
    rng = random.Random(42)
    variants = experiment["variants"]
    bodies, copy_batches = [], []
    csv_path = workdir / f"{key}.csv"
    floor_csv = None if metrics else workdir / f"{key}-floor.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as csv_file, \
            (floor_csv or Path("/dev/null")).open("w", encoding="utf-8", newline="") as floor_file:
        csv_file.write("unit,value,variant,id,timestamp,latency_ms" + (",metric\n" if metrics else "\n"))
        for start in range(0, rows, BATCH):
            items, tuples, lines, floor_lines = [], [], [], []
            for i in range(start, min(start + BATCH, rows)):
                unit = f"r-{i // 2:07d}"
                variant = "champion" if i % 2 == 0 else "challenger"
                value = round(rng.gammavariate(2.0, 5.0), 6)
                latency = round(rng.uniform(5.0, 80.0), 3)
                ident = f"o-{i:07d}"
                when = BASE_TIME + timedelta(milliseconds=i)
                stamp = when.isoformat()
                item = {"unit": unit, "value": value, "variant": variant, "id": ident,
                        "timestamp": stamp, "latency_ms": latency}
                line = f"{unit},{value!r},{variant},{ident},{stamp},{latency!r}"
                if metrics:
                    item["metric"] = metric = metrics[(i // 2) % len(metrics)]
                    lines.append(f"{line},{metric}\n")
                else:
                    lines.append(line + "\n")
                    tuples.append((experiment["id"], variants[variant], unit, value, latency, when, received_at,
                                   ident))
                    floor_lines.append(f"{experiment['id']},{variants[variant]},{unit},{value!r},{latency!r},"
                                       f"{stamp},{received_at.isoformat()},{ident}\n")
                items.append(item)
            bodies.append(orjson.dumps({"observations": items}))
            if tuples:
                copy_batches.append(tuples)
            csv_file.writelines(lines)
            floor_file.writelines(floor_lines)
    return Dataset(key, rows, bodies, csv_path, copy_batches, floor_csv)


def make_ab(rows: int, workdir: Path) -> Dataset:
    """A/B binary: conversions 0/1 of the 100,000 assigned users, no variant named (the stored one applies)."""
    rng = random.Random(7)
    bodies = []
    csv_path = workdir / "ab.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as csv_file:
        csv_file.write("unit,value,id,timestamp\n")
        for start in range(0, rows, BATCH):
            items, lines = [], []
            for i in range(start, min(start + BATCH, rows)):
                unit = f"u-{i % AB_UNITS:06d}"   # each batch: 10,000 distinct units to look up
                value = 1 if rng.random() < 0.1 else 0
                ident = f"a-{i:07d}"
                stamp = (BASE_TIME + timedelta(milliseconds=i)).isoformat()
                items.append({"unit": unit, "value": value, "id": ident, "timestamp": stamp})
                lines.append(f"{unit},{value},{ident},{stamp}\n")
            bodies.append(orjson.dumps({"observations": items}))
            csv_file.writelines(lines)
    return Dataset(AB_KEY, rows, bodies, csv_path)


