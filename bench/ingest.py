"""Observation ingestion throughput: the REST endpoint and import_observations against a raw COPY.

Sets up a dedicated PostgreSQL database (dropped, created, migrated), a service key, a
running `champion_challenger` continuous experiment (observations name their variant, so no
assignment pass is needed) and, unless --no-ab, a running `ab` binary experiment with
100,000 units assigned beforehand (the path that checks each unit's stored assignment).
Then, with the same generated rows each time and each step inserting N rows into an
empty table (TRUNCATE + CHECKPOINT before each; for the application's steps the per-unit
sums it keeps beside the observations, experiments_unitoutcome, are emptied too):

  (f)  the floor: `psql \\copy` of the same rows from a CSV file of the table's columns, one COPY
       and one commit, into `bench_copy (LIKE experiments_observation INCLUDING ALL)`
  (a)  raw COPY baseline: psycopg 3 `cursor.copy` + `write_row`, one 10,000-row COPY and one
       commit per batch, into `bench_copy (LIKE experiments_observation INCLUDING ALL)`
       (same columns, indexes and unique constraint; LIKE copies no foreign keys)
  (a') information: the same COPY straight into experiments_observation (its two foreign keys too)
  (b)  POST /api/v1/experiments/{key}/observations/ under `gunicorn config.wsgi --workers W`
       (DEBUG off, Redis broker), 10,000 observations per request, each with a unique id,
       from 2 client threads; bodies serialised with orjson before the clock starts.
       The gunicorn workers' memory is sampled every 0.2 s (VmRSS) and their high-water
       mark (VmHWM) read before, midway and after. Run for the cc experiment and the ab one.
  (c)  `manage.py import_observations KEY FILE --no-progress` on a CSV written beforehand,
       timed as a subprocess under /usr/bin/time -v (wall time includes Django's start-up).
  (b-m), (c-m)  the same rows spread over three metrics (the primary and two secondary ones of
       `bench-cc-metrics`): `metric` on every item, a `metric` CSV column; each right after its
       single-metric figure, so that both see the same load.
  (a2), (f2) information: (a) and (f) again at the end, to show how much the machine's load drifted.

Targets: (b) >= 25% of (a)'s rows/s, (c) >= 50% of (a)'s rows/s, (b-m) and (c-m) >= 90% of
(b) and (c), worker memory flat. Every figure is also shown against the floor (f).
Besides wall time, each step's CPU time per row is printed (the Python side and the
database's backends, from /proc): on a machine shared with other work, wall-time ratios
move with the load, CPU per row much less.

Usage: .venv/bin/python bench/ingest.py [--rows 1000000] [--workers 2] [--clients 2] [--no-ab]
       [--ab-import]   (also time import_observations for the ab experiment)
       [--breakdown]   (after the run: in-process time per stage of one 10,000-row request)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import free_port, interrupt, manage, recreate_database, redacted, server_env, stop  # noqa: E402
from bench.ingest_data import (  # noqa: E402
    AB_KEY,
    AB_UNITS,
    BATCH,
    CC_KEY,
    CC_METRICS_KEY,
    METRICS,
    OBSERVATION_TABLES,
    SETUP,
    TARGET_IMPORT,
    TARGET_REST,
    WARMUP_KEY,
    Dataset,
    make_ab,
    make_cc,
)
from bench.ingest_report import breakdown, report  # noqa: E402
from bench.ingest_steps import (  # noqa: E402
    CpuMeter,
    Figure,
    MemoryMonitor,
    MemoryReport,
    children,
    clean,
    memory_kb,
    own_rate,
    post_all,
    psql_copy,
    raw_copy,
    run_import,
    sql,
    start_gunicorn,
    stored,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_ingest"


@dataclass
class Run:
    """What every step of one run shares: its options, database, server environment, and what it recorded."""

    args: argparse.Namespace
    database_url: str
    workdir: Path
    env: dict[str, str]
    port: int
    token: str = ""
    experiments: dict = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    counts: list[tuple] = field(default_factory=list)
    monitors: list[MemoryReport] = field(default_factory=list)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per figure (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--clients", type=int, default=2, help="client threads posting (default 2)")
    parser.add_argument("--no-ab", action="store_true", help="skip the ab experiment (assigned units)")
    parser.add_argument("--ab-import", action="store_true",
                        help="also time import_observations for the ab experiment (about a minute more)")
    parser.add_argument("--breakdown", action="store_true",
                        help="after the run, time each stage of one request in-process")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.rows % BATCH:
        parser.error(f"--rows must be a multiple of {BATCH}")
    return args


def main() -> int:
    args = _arguments()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    run = Run(args, database_url, workdir, server_env(database_url, workdir), args.port or free_port())
    signal.signal(signal.SIGTERM, interrupt)
    begun = time.monotonic()
    print(f"Load average before the run: {Path('/proc/loadavg').read_text().split()[0]} "
          f"({os.cpu_count()} cores; anything else busy skews every figure)", flush=True)
    try:
        _setup(run)
        cc, cc_metrics, ab, warm = _generate(run)
        print("Each step inserts into an empty table (TRUNCATE + CHECKPOINT before it).", flush=True)
        sql(database_url, "DROP TABLE IF EXISTS bench_copy",
            "CREATE TABLE bench_copy (LIKE experiments_observation INCLUDING ALL)")
        _floor(run, cc, "f", "floor: psql \\copy of a CSV file, bench_copy")
        print("(a) raw COPY into bench_copy ...", flush=True)
        clean(database_url, "bench_copy")
        _copy(run, "bench_copy", cc, "a", "raw COPY, bench_copy (LIKE ... INCLUDING ALL)")
        clean(database_url, "bench_copy")

        print("(a') raw COPY into experiments_observation (with its foreign keys) ...", flush=True)
        clean(database_url, *OBSERVATION_TABLES)
        _copy(run, "experiments_observation", cc, "a'", "raw COPY, experiments_observation (+ FKs)",
              note="information")

        _rest(run, cc, cc_metrics, ab, warm)
        _imports(run, cc, cc_metrics, ab)

        print("(a2) raw COPY into bench_copy again (drift check: did the machine's load change?) ...", flush=True)
        clean(database_url, "bench_copy")
        _copy(run, "bench_copy", cc, "a2", "raw COPY, bench_copy, again at the end", note="information: load drift")
        _floor(run, cc, "f2", "floor again at the end", note="information: load drift")

        ok = report(args, run.figures, run.counts, run.monitors, time.monotonic() - begun)
        if args.breakdown:
            breakdown(run.env, run.experiments, cc, ab)
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _setup(run: Run) -> None:
    """A fresh database, a service key and the experiments (through the services)."""
    args, database_url, env = run.args, run.database_url, run.env
    print(f"Database {redacted(database_url)}: drop, create, migrate ...", flush=True)
    recreate_database(database_url)
    manage(env, "migrate", "--noinput", "-v", "0")
    run.token = manage(env, "create_service_key", "bench-ingest").strip().splitlines()[-1]
    setup = SETUP.replace("CC_METRICS_KEY", repr(CC_METRICS_KEY)).replace(
        "SECONDARY_METRICS", repr(METRICS[1:])).replace("AB_UNITS", str(0 if args.no_ab else AB_UNITS)).replace(
        "CC_KEY", repr(CC_KEY)).replace("WARMUP_KEY", repr(WARMUP_KEY)).replace("AB_KEY", repr(AB_KEY))
    run.experiments = orjson.loads(manage(env, "shell", "-c", setup).strip().splitlines()[-1])
    sql(database_url, "ANALYZE")
    for key, e in run.experiments.items():
        print(f"  experiment {key}: {e['design']} {e['metric']}, {e['status']}, variants {list(e['variants'])}")
    if not args.no_ab:
        assigned = sql(database_url, "SELECT count(*) FROM experiments_assignment", fetch=True)[0][0]
        print(f"  {assigned:,} units assigned in {AB_KEY} beforehand")


def _generate(run: Run) -> tuple[Dataset, Dataset, Dataset | None, Dataset]:
    """The cc rows, the same over three metrics, the ab rows (unless --no-ab) and the warm-up rows; not timed."""
    args, workdir = run.args, run.workdir
    print(f"Generating {args.rows:,} rows (REST bodies, CSV, COPY tuples; not timed) ...", flush=True)
    received_at = datetime.now(timezone.utc)
    cc = make_cc(args.rows, run.experiments[CC_KEY], workdir, received_at)
    assert run.experiments[CC_METRICS_KEY]["metrics"] == list(METRICS), run.experiments[CC_METRICS_KEY]
    cc_metrics = make_cc(args.rows, run.experiments[CC_METRICS_KEY], workdir, received_at, key=CC_METRICS_KEY,
                         metrics=METRICS)
    ab = None if args.no_ab else make_ab(args.rows, workdir)
    (workdir / "warm").mkdir()
    warm = make_cc(8 * BATCH, run.experiments[WARMUP_KEY], workdir / "warm", received_at, key=WARMUP_KEY)
    body_mb = sum(map(len, cc.bodies)) / len(cc.bodies) / 1e6
    print(f"  {len(cc.bodies)} bodies of {BATCH:,} observations ({body_mb:.2f} MB each), "
          f"CSV {cc.csv_path.stat().st_size / 1e6:.0f} MB", flush=True)
    return cc, cc_metrics, ab, warm


def _floor(run: Run, dataset: Dataset, tag: str, name: str, note: str = "") -> None:
    """Figure (f) or (f2): `psql \\copy` of the rows' CSV file into bench_copy, and the rows it stored."""
    print(f"({tag}) psql \\copy bench_copy FROM {dataset.floor_csv.name} ...", flush=True)
    clean(run.database_url, "bench_copy")
    meter = CpuMeter(run.database_url, [])
    meter.start()
    seconds, py_cpu = psql_copy(run.database_url, "bench_copy", dataset.floor_csv)
    run.figures.append(Figure(tag, name, run.args.rows, seconds, py_cpu=py_cpu, pg_cpu=meter.stop()[1], note=note))
    rows, ids = stored(run.database_url, "bench_copy", run.experiments[CC_KEY]["id"])[:2]
    run.counts.append((f"({tag}) bench_copy", rows, ids, None, None, None))
    clean(run.database_url, "bench_copy")


def _copy(run: Run, table: str, dataset: Dataset, tag: str, name: str, note: str = "") -> None:
    """Figure (a), (a') or (a2): the raw COPY of every batch into `table`, and the rows it stored."""
    meter = CpuMeter(run.database_url, [os.getpid()])
    meter.start()
    seconds = raw_copy(run.database_url, table, dataset)
    py_cpu, pg_cpu = meter.stop()
    run.figures.append(Figure(tag, name, run.args.rows, seconds, py_cpu=py_cpu, pg_cpu=pg_cpu, note=note))
    rows, ids = stored(run.database_url, table, run.experiments[CC_KEY]["id"])[:2]
    run.counts.append((f"({tag}) {table}", rows, ids, None, None, None))


def _rest(run: Run, cc: Dataset, cc_metrics: Dataset, ab: Dataset | None, warm: Dataset) -> None:
    """Figures (b), (b-m) and (b-ab): the REST posts under gunicorn, with the workers' memory watched."""
    args = run.args
    print(f"(b) gunicorn config.wsgi --workers {args.workers} (DEBUG=false) ...", flush=True)
    server = start_gunicorn(run.env, args.workers, run.port, run.workdir)
    try:
        pids = children(server.pid)
        idle = {pid: memory_kb(pid) for pid in pids}
        # Warm every worker (imports, connection, temp table) on a separate experiment.
        post_all(run.port, WARMUP_KEY, run.token, warm.bodies, args.clients)
        clean(run.database_url, *OBSERVATION_TABLES)

        rest_runs = [(cc, "b", f"REST POST, {CC_KEY} (champion_challenger continuous)"),
                     (cc_metrics, "b-m", f"REST POST, {CC_METRICS_KEY} (the same rows, 3 metrics)")]
        if ab is not None:
            rest_runs.append((ab, "b-ab", f"REST POST, {AB_KEY} (ab binary, {AB_UNITS:,} assigned)"))
        for dataset, tag, name in rest_runs:
            _rest_run(run, pids, idle, dataset, tag, name)
        if children(server.pid) != pids:
            print("WARNING: gunicorn workers were replaced during the run", flush=True)
    finally:
        stop(server)


def _rest_run(run: Run, pids: list[int], idle: dict, dataset: Dataset, tag: str, name: str) -> None:
    args = run.args
    print(f"  ({tag}) {dataset.key}: {len(dataset.bodies)} POSTs of {BATCH:,} from {args.clients} threads ...", flush=True)
    monitor = MemoryMonitor(pids, idle)
    monitor.mark("start")
    monitor.start()
    meter = CpuMeter(run.database_url, pids)
    meter.start()
    seconds, accepted, duplicates = post_all(run.port, dataset.key, run.token, dataset.bodies, args.clients,
                                             on_half=lambda m=monitor: m.mark("mid"))
    py_cpu, pg_cpu = meter.stop()
    monitor.mark("end")
    monitor.stop()
    run.monitors.append(MemoryReport(f"({tag})", monitor))
    run.figures.append(Figure(tag, name, accepted, seconds, TARGET_REST, py_cpu=py_cpu, pg_cpu=pg_cpu,
                              note=f"{duplicates} duplicates" if duplicates else ""))
    e_id = run.experiments[dataset.key]["id"]
    run.counts.append((f"({tag}) experiments_observation", *stored(run.database_url, "experiments_observation", e_id)))
    clean(run.database_url, *OBSERVATION_TABLES)


def _imports(run: Run, cc: Dataset, cc_metrics: Dataset, ab: Dataset | None) -> None:
    """Figures (c), (c-m) and, with --ab-import, (c-ab): import_observations timed as a subprocess."""
    for dataset, tag, name in [(cc, "c", f"import_observations, {CC_KEY} CSV"),
                               (cc_metrics, "c-m", f"import_observations, {CC_METRICS_KEY} CSV (3 metrics)")] + (
            [(ab, "c-ab", f"import_observations, {AB_KEY} CSV")] if ab and run.args.ab_import else []):
        print(f"({tag}) manage.py import_observations {dataset.key} {dataset.csv_path.name} --no-progress ...",
              flush=True)
        meter = CpuMeter(run.database_url, [])
        meter.start()
        seconds, peak_kb, py_cpu, own = run_import(run.env, dataset, run.workdir)
        run.figures.append(Figure(tag, name, dataset.rows, seconds, TARGET_IMPORT, py_cpu=py_cpu,
                                  pg_cpu=meter.stop()[1],
                                  note=f"peak RSS {peak_kb / 1024:.0f} MB; says: {own_rate(own)}"))
        e_id = run.experiments[dataset.key]["id"]
        run.counts.append((f"({tag}) experiments_observation",
                           *stored(run.database_url, "experiments_observation", e_id)))
        clean(run.database_url, *OBSERVATION_TABLES)


if __name__ == "__main__":
    sys.exit(main())
