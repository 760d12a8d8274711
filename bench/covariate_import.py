"""Covariate import (CUPED, issue 14): `manage.py import_covariates` against `psql \\copy` of the same rows.

Sets up a dedicated PostgreSQL database (env BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/bench_covariates: dropped, created, migrated) and a draft
A/B experiment with three CUPED metrics (the primary `conversion`, `revenue`, `latency_ms`).
Writes N rows (default 1,000,000: N/3 units x 3 metrics, a pre-period value each) twice, as
the same rows:

  - `covariates.csv`, the import's input: `unit,value,metric`;
  - `floor.csv`, the table's own columns (experiment_id, metric_position, unit, value,
    received_at), for the floor: `psql \\copy` in one COPY and one commit into
    `bench_covariate_copy (LIKE experiments_covariate INCLUDING ALL)` (same primary key).

Then --rounds rounds (default 3) of (floor, import), each step into an empty table
(TRUNCATE + CHECKPOINT first), adjacent so that both see the same load: the import is
`manage.py import_covariates KEY covariates.csv --no-progress`, timed as a subprocess (its
wall time includes Django's start-up). The round with the median ratio is reported.
Target: the import at 0.5x or more of the floor's rows/s. The stored rows are checked
(N rows, every metric, first value kept).

Usage: .venv/bin/python bench/covariate_import.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.analysis_setup import django_setup, three_metrics_definition  # noqa: E402
from bench.common import PYTHON, manage, recreate_database, redacted, server_env  # noqa: E402
from bench.ingest_steps import psql_copy  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_covariates"
TARGET = 0.5
TABLE = "experiments_covariate"
FLOOR_TABLE = "bench_covariate_copy"
COLUMNS = "experiment_id, metric_position, unit, value, received_at"
METRICS = ("conversion", "revenue", "latency_ms")


def _log(message: str) -> None:
    print(message, flush=True)


def _create_experiment(size: int) -> tuple[int, str]:
    """A draft A/B experiment whose three metrics use CUPED, made through the services."""
    from experiments.services.definition import experiment_create

    three = three_metrics_definition(size)
    definition = dict(three, key=f"bench-covariates-{size}", name="Benchmark covariate import", cuped=True,
                      metrics=[dict(m, cuped=True) for m in three["metrics"]])
    experiment = experiment_create(actor=None, definition=definition)
    return experiment.id, experiment.key


def _write_files(workdir: Path, rows: int, experiment_id: int) -> tuple[Path, Path]:
    """The same rows as the import's CSV and as the table's columns for psql."""
    rng = random.Random(14)
    received_at = "2026-12-01 00:00:00+00"
    values = {"conversion": lambda: float(rng.random() < 0.1), "revenue": lambda: round(rng.gammavariate(2, 25), 2),
              "latency_ms": lambda: round(rng.gauss(200, 40), 1)}
    source, floor = workdir / "covariates.csv", workdir / "floor.csv"
    with source.open("w", newline="") as a, floor.open("w", newline="") as b:
        mine, theirs = csv.writer(a), csv.writer(b)
        mine.writerow(["unit", "value", "metric"])
        for i in range(rows):
            unit, position = f"user-{i // len(METRICS):09d}", i % len(METRICS)
            metric = METRICS[position]
            value = values[metric]()
            mine.writerow([unit, repr(value), metric])
            theirs.writerow([experiment_id, position, unit, repr(value), received_at])
    return source, floor


def _empty(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}, {FLOOR_TABLE}")
        conn.execute("CHECKPOINT")


def _floor(database_url: str, path: Path) -> float:
    _empty(database_url)
    return psql_copy(database_url, FLOOR_TABLE, path, columns=COLUMNS)[0]


def _import(database_url: str, env: dict[str, str], key: str, path: Path) -> tuple[float, str]:
    _empty(database_url)
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "manage.py", "import_covariates", key, str(path), "--no-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import_covariates failed:\n{done.stdout}\n{done.stderr}")
    return seconds, (done.stdout.strip().splitlines() or [""])[-1]


def _check(database_url: str, experiment_id: int, rows: int, source: Path) -> str:
    """The import stored every row, under every metric, with the file's values."""
    with psycopg.connect(database_url) as conn:
        stored, positions = conn.execute(
            f"SELECT count(*), count(DISTINCT metric_position) FROM {TABLE} WHERE experiment_id = %s",
            [experiment_id]).fetchone()
        first = conn.execute(f"SELECT value FROM {TABLE} WHERE experiment_id = %s AND metric_position = 1 "
                             "AND unit = 'user-000000000'", [experiment_id]).fetchone()
    with source.open() as f:
        expected = float(list(zip(range(3), csv.reader(f)))[2][1][1])   # user 0's revenue, the file's row 2
    if stored != rows or positions != len(METRICS) or first is None or first[0] != expected:
        raise SystemExit(f"import stored {stored:,} rows over {positions} metrics (expected {rows:,} over 3), "
                         f"user 0's revenue {first} (expected {expected})")
    return f"{stored:,} rows over {positions} metrics stored, values as in the file"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    workdir = Path(tempfile.mkdtemp(prefix="bench-covariates-"))
    env = server_env(database_url, workdir, broker_db=12)
    started = time.perf_counter()
    _log(f"database {redacted(database_url)} (dropped, created, migrated); {args.rows:,} rows, {args.rounds} rounds")
    recreate_database(database_url)
    manage(env, "migrate", "--no-input")
    django_setup(env)
    experiment_id, key = _create_experiment(args.rows)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {FLOOR_TABLE} (LIKE {TABLE} INCLUDING ALL)")
    source, floor = _write_files(workdir, args.rows, experiment_id)
    _log(f"files written: {source} ({source.stat().st_size / 1e6:.0f} MB), "
         f"{floor} ({floor.stat().st_size / 1e6:.0f} MB)")

    rounds = []
    for index in range(args.rounds):
        floor_s = _floor(database_url, floor)
        import_s, said = _import(database_url, env, key, source)
        ratio = floor_s / import_s
        rounds.append((ratio, floor_s, import_s))
        _log(f"  round {index + 1}: psql \\copy {args.rows / floor_s:,.0f} rows/s ({floor_s:.2f} s), import_covariates "
             f"{args.rows / import_s:,.0f} rows/s ({import_s:.2f} s), ratio {ratio:.2f}; it said: {said}")
    _log("  " + _check(database_url, experiment_id, args.rows, source))
    ratio, floor_s, import_s = sorted(rounds)[(len(rounds) - 1) // 2]
    ok = ratio >= TARGET
    _log("")
    _log(f"{'step':<48}{'rows/s':>12}{'seconds':>10}")
    for label, seconds in ((f"(f) psql \\copy into a table like {TABLE}", floor_s),
                           ("(c) manage.py import_covariates (CSV)", import_s)):
        _log(f"{label:<48}{args.rows / seconds:>12,.0f}{seconds:>10.2f}")
    _log(f"import / floor = {ratio:.2f} (target >= {TARGET}): {'PASS' if ok else 'MISS'}; median of "
         f"{', '.join(f'{r[0]:.2f}' for r in rounds)}; load average {os.getloadavg()[0]:.1f}; "
         f"{time.perf_counter() - started:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
