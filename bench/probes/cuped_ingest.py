"""Observation ingestion into a CUPED experiment against the same experiment without CUPED (issue 14).

What CUPED's precomputed columns cost observation ingestion (experiments.db.covariate_arms): a
new unit sum of a CUPED experiment looks up its unit's covariate, under a shared advisory lock.
A non-CUPED experiment runs the same SQL as before and takes no lock, so this measures only the
CUPED side. In-process, through the services (no HTTP, so the difference is not diluted):

- two A/B experiments with the three metrics of bench/analysis.py, one with `cuped: true` on
  each; U units assigned to each (SQL), and for the CUPED one a covariate for 85% of the units
  and each metric (SQL, with its arm, as the resolver leaves them);
- rounds, alternating the two experiments: `observations_ingest` of --rows rows in batches of
  --batch (each for a random unit and metric, fresh ids), then `observations_import_csv` of a
  --rows-row CSV file (the one-statement path, observations being stored already).

Usage: BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cuped_ingest .venv/bin/python \\
    bench/probes/cuped_ingest.py [--units 200000] [--rows 100000] [--batch 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.analysis_setup import django_setup, three_metrics_definition  # noqa: E402
from bench.common import manage, recreate_database, redacted, server_env  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_cuped_ingest"
METRICS = ("conversion", "revenue", "latency_ms")


def _experiments(units: int) -> dict[str, int]:
    from django.db import connection

    from experiments.services.definition import experiment_create
    from experiments.services.lifecycle import experiment_start

    three = three_metrics_definition(units)
    made = {}
    for name, cuped in (("plain", False), ("cuped", True)):
        definition = dict(three, key=f"bench-ingest-{name}", name=f"Ingestion, {name}", cuped=cuped,
                          metrics=[dict(m, cuped=cuped) for m in three["metrics"]])
        experiment = experiment_start(experiment=experiment_create(actor=None, definition=definition), actor=None)
        control, green = experiment.variants.order_by("position").values_list("id", flat=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO experiments_assignment (experiment_id, unit, variant_id, assigned_at) "
                "SELECT %s, 'user-' || u, CASE WHEN u %% 2 = 0 THEN %s ELSE %s END, now() "
                "FROM generate_series(0, %s - 1) AS u", [experiment.id, control, green, units])
            if cuped:
                cursor.execute(
                    "INSERT INTO experiments_covariate (experiment_id, metric_position, unit, value, received_at, "
                    "variant_id) SELECT %s, m, 'user-' || u, random() * 100, now(), "
                    "CASE WHEN u %% 2 = 0 THEN %s ELSE %s END "
                    "FROM generate_series(0, %s - 1) AS u CROSS JOIN generate_series(0, 2) AS m "
                    "WHERE random() < 0.85", [experiment.id, control, green, units])
            cursor.execute("ANALYZE experiments_assignment")
            cursor.execute("ANALYZE experiments_covariate")
        made[name] = experiment.id
    return made


def _rows(rng: random.Random, units: int, count: int, tag: str) -> list[tuple[str, float, str, str]]:
    rows = []
    for i in range(count):
        metric = METRICS[rng.randrange(3)]
        value = float(rng.random() < 0.05) if metric == "conversion" else round(rng.gauss(200, 40), 1)
        rows.append((f"user-{rng.randrange(units)}", value, metric, f"{tag}-{i}"))
    return rows


def _rest(experiment_id: int, rows, batch: int) -> float:
    from experiments.models import Experiment
    from experiments.observation_input import ObservationRow
    from experiments.services.ingestion import observations_ingest

    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        items = [ObservationRow(i, unit, value, None, key, None, None, metric)
                 for i, (unit, value, metric, key) in enumerate(rows[start:start + batch])]
        observations_ingest(experiment=Experiment.objects.get(pk=experiment_id), rows=items)
    return time.perf_counter() - started


def _csv(experiment_id: int, rows, workdir: Path) -> float:
    from experiments.models import Experiment
    from experiments.services.csv_import import observations_import_csv

    path = workdir / f"observations-{experiment_id}.csv"
    path.write_text("unit,value,metric,id\n" + "".join(f"{u},{v!r},{m},{k}\n" for u, v, m, k in rows))
    started = time.perf_counter()
    assert observations_import_csv(experiment=Experiment.objects.get(pk=experiment_id), path=path) is not None
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    workdir = Path(tempfile.mkdtemp(prefix="bench-cuped-ingest-"))
    env = server_env(database_url, workdir, broker_db=12)
    print(f"database {redacted(database_url)} (dropped, created, migrated); {args.units:,} units, "
          f"{args.rows:,} rows per figure, batches of {args.batch}, {args.rounds} rounds", flush=True)
    recreate_database(database_url)
    manage(env, "migrate", "--no-input")
    django_setup(env)
    made = _experiments(args.units)
    rng = random.Random(14)
    times: dict[tuple[str, str], list[float]] = {}
    for index in range(args.rounds):
        for path in ("rest", "csv"):
            for name in (("plain", "cuped") if index % 2 == 0 else ("cuped", "plain")):
                rows = _rows(rng, args.units, args.rows, f"{path}{index}")
                seconds = (_rest(made[name], rows, args.batch) if path == "rest"
                           else _csv(made[name], rows, workdir))
                times.setdefault((path, name), []).append(seconds)
                print(f"  round {index + 1} {path:<4} {name:<5} {args.rows / seconds:>9,.0f} rows/s "
                      f"({seconds:.2f} s), load average {os.getloadavg()[0]:.2f}", flush=True)
    for path in ("rest", "csv"):
        plain, cuped = median(times[(path, "plain")]), median(times[(path, "cuped")])
        print(f"{path}: plain {args.rows / plain:,.0f} rows/s, CUPED {args.rows / cuped:,.0f} rows/s, "
              f"CUPED / plain throughput {plain / cuped:.2f} (medians of {args.rounds})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
