"""The ingestion benchmark's report (figures, CPU per row, rows stored, workers' memory) and its breakdown."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.common import manage
from bench.ingest_data import BATCH, FLAT_TOLERANCE_KB, TARGET_METRICS, Dataset
from bench.ingest_steps import Figure, MemoryReport


def report(args, figures: list[Figure], counts, monitors: list[MemoryReport], total: float) -> bool:
    """Print the figures, CPU per row, rows stored and workers' memory; True if every target was met."""
    best = max((f for f in figures if f.tag in ("a", "a2")), key=lambda f: f.rate)
    floor = max((f for f in figures if f.tag in ("f", "f2")), key=lambda f: f.rate)
    all_ok = _figures_table(args, figures, best, floor)
    all_ok &= _metrics_table(figures, floor)
    _cpu_table(figures, best)
    all_ok &= _rows_stored(args, counts)
    all_ok &= _workers_memory(monitors)
    print()
    print(f"Whole run {total:.0f} s; {'all targets met' if all_ok else 'some targets missed'}.")
    return all_ok


def _figures_table(args, figures: list[Figure], best: Figure, floor: Figure) -> bool:
    baseline = best.rate
    print()
    print(f"Ingestion benchmark: {args.rows:,} rows per figure, batches of {BATCH:,}, PostgreSQL, "
          f"gunicorn {args.workers} sync workers, {args.clients} client threads, {os.cpu_count()} cores "
          f"shared by client, server and database")
    print("Each figure inserts the same rows into an empty table (TRUNCATE + CHECKPOINT before each).")
    print("load = the machine's 1-minute load average at the end of the step (this process and gunicorn included).")
    print(f"vs COPY = rows/s over the faster raw COPY into bench_copy, ({best.tag}) {baseline:,.0f} rows/s: (a) at the "
          "start and (a2) at the end, the faster being the one least slowed by other load (the stricter baseline).")
    print(f"vs floor = rows/s over the faster psql \\copy of a CSV file, ({floor.tag}) {floor.rate:,.0f} rows/s.")
    print()
    header = (f"{'figure':<6} {'what':<56} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'vs COPY':>7} {'vs floor':>8} "
              f"{'load':>5}  target")
    print(header)
    print("-" * (len(header) + 6))
    all_ok = True
    for f in figures:
        ratio = f.rate / baseline
        target = ""
        if f.target is not None:
            ok = ratio >= f.target and f.rows == args.rows
            all_ok &= ok
            target = f">= {f.target:.0%} {'PASS' if ok else 'MISS'}"
        print(f"{'(' + f.tag + ')':<6} {f.name:<56} {f.rows:>10,} {f.seconds:>8.2f} {f.rate:>10,.0f} "
              f"{ratio:>7.0%} {f.rate / floor.rate:>8.0%} {f.load:>5}  {target}" + (f"  [{f.note}]" if f.note else ""))
    return all_ok


def _metrics_table(figures: list[Figure], floor: Figure) -> bool:
    """Several metrics against one: each multi-metric figure over its single-metric one, from this run."""
    by_tag = {f.tag: f for f in figures}
    print()
    print(f"Several metrics (the same rows over 3 metrics) vs one metric (part 1), measured in this run; "
          f"target >= {TARGET_METRICS:.0%}:")
    all_ok = True
    for single, multi in (("b", "b-m"), ("c", "c-m")):
        if single not in by_tag or multi not in by_tag:
            continue
        one, several = by_tag[single], by_tag[multi]
        ratio = several.rate / one.rate
        ok = ratio >= TARGET_METRICS
        all_ok &= ok
        print(f"  ({single}) {one.rate:>8,.0f} rows/s ({one.rate / floor.rate:.0%} of the floor)   "
              f"({multi}) {several.rate:>8,.0f} rows/s ({several.rate / floor.rate:.0%} of the floor)   "
              f"ratio {ratio:.2f}x  {'PASS' if ok else 'MISS'}")
    return all_ok


def _cpu_table(figures: list[Figure], best: Figure) -> None:
    baseline_cpu = (best.py_cpu + best.pg_cpu) / best.rows
    print()
    print("CPU time per row (microseconds), a measure that other load on the machine disturbs much less "
          "than wall time:")
    print("  Python = the COPY client (a), the gunicorn workers (b; the HTTP client not counted), the command (c); "
          "PostgreSQL = the benchmark database's backends")
    print(f"  CPU vs COPY = ({best.tag})'s CPU per row over the figure's: the share of COPY's efficiency, whatever "
          "the parallelism")
    print(f"  {'figure':<7} {'Python':>8} {'PostgreSQL':>11} {'total':>8} {'wall':>8} {'CPU vs COPY':>12}")
    for f in figures:
        if f.py_cpu is None:
            continue
        micro = 1e6 / f.rows
        cpu = (f.py_cpu + f.pg_cpu) / f.rows
        print(f"  {'(' + f.tag + ')':<7} {f.py_cpu * micro:>8.1f} {f.pg_cpu * micro:>11.1f} "
              f"{cpu * 1e6:>8.1f} {f.seconds * micro:>8.1f} {baseline_cpu / cpu:>12.0%}")


def _rows_stored(args, counts) -> bool:
    all_ok = True
    print()
    print("Rows stored after each step (then truncated):")
    for label, rows, ids, counter, sums, metrics in counts:
        ok = rows == args.rows and ids == args.rows and counter in (None, args.rows)
        all_ok &= ok
        counter_text = (f", observation_count {counter:,}, unit-sum rows {sums:,}, metrics {metrics}"
                        if counter is not None else "")
        print(f"  {label:<34} {rows:>10,} rows, {ids:>10,} distinct ids{counter_text}  {'OK' if ok else 'MISMATCH'}")
    return all_ok


def _workers_memory(monitors: list[MemoryReport]) -> bool:
    all_ok = True
    print()
    print("gunicorn workers' memory (MB): idle = before warm-up; start/mid/end = VmRSS (VmHWM) before, "
          "midway, after; peak = max VmRSS sampled every 0.2 s")
    for entry in monitors:
        m = entry.monitor
        for pid in m.pids:
            start, mid, end = (m.marks.get(n, {}).get(pid, {}) for n in ("start", "mid", "end"))
            first_half = mid.get("VmHWM", 0) - start.get("VmHWM", 0)
            second_half = end.get("VmHWM", 0) - mid.get("VmHWM", 0)
            flat = second_half <= FLAT_TOLERANCE_KB
            all_ok &= flat
            print(f"  {entry.label:<8} worker {pid}: idle {_mb(m.idle[pid].get('VmRSS'))}, "
                  f"start {_mb(start.get('VmRSS'))} ({_mb(start.get('VmHWM'))}), "
                  f"mid {_mb(mid.get('VmRSS'))} ({_mb(mid.get('VmHWM'))}), "
                  f"end {_mb(end.get('VmRSS'))} ({_mb(end.get('VmHWM'))}), peak {_mb(m.peak_rss[pid])}; "
                  f"VmHWM growth 1st half {first_half / 1024:+.1f}, 2nd half {second_half / 1024:+.1f}: "
                  f"{'flat' if flat else 'NOT FLAT'}")
    print(f"  (flat = VmHWM grows by at most {FLAT_TOLERANCE_KB // 1024} MB over the second half of the run; "
          "a leak would grow it as much as the first half)")
    return all_ok


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f}"


# -- in-process breakdown of one request ------------------------------------------------------

BREAKDOWN = r"""
import time, orjson
from django.db import connection, transaction
from django.test import Client
from experiments.api.observations import parse_observation_batch
from experiments.api.experiments import get_experiment_or_404
from experiments.models import Experiment, Observation
from experiments.services import ingestion
from django.utils import timezone

REPEAT = 7

def clean():
    with connection.cursor() as c:
        c.execute("TRUNCATE experiments_observation")

def timed(label, results, fn):
    t = time.perf_counter(); out = fn(); results.setdefault(label, []).append(time.perf_counter() - t); return out

from django.test import RequestFactory
from experiments.api.authentication import BearerTokenAuthentication
from experiments.models import Assignment
from rest_framework.request import Request

def stages(key, body, results):
    started = time.perf_counter()
    http_request = RequestFactory().post("/", body, content_type="application/json",
                                         HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    timed("authenticate (service key lookup + hash)", results,
          lambda: BearerTokenAuthentication().authenticate(Request(http_request)))
    experiment = timed("get experiment", results, lambda: get_experiment_or_404(key))
    data = timed("orjson.loads", results, lambda: orjson.loads(body))
    rows = timed("parse_items", results, lambda: parse_observation_batch(data))
    atomic = transaction.atomic()
    atomic.__enter__()
    now = timezone.now()
    errors = ingestion.ItemErrors()
    resolved = timed("_resolve (variants + assignment lookup)", results,
                     lambda: ingestion._resolve(experiment, rows, errors))
    assert not errors, errors.by_path
    records = timed("build records", results, lambda: [
        (v, r.unit, r.value, r.latency_ms, r.timestamp or now, r.id) for v, r in resolved])
    with connection.cursor() as cursor:
        timed("temp table create/truncate", results, lambda: (cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_observation ("
            " variant_id bigint, unit varchar(255), value double precision, latency_ms double precision,"
            " observed_at timestamptz, idempotency_key varchar(255)) ON COMMIT DELETE ROWS"),
            cursor.execute("TRUNCATE incoming_observation")))
        def copy():
            with cursor.cursor.copy(f"COPY incoming_observation ({ingestion._COLUMNS}) FROM STDIN") as cp:
                for record in records:
                    cp.write_row(record)
        timed("COPY into temp table", results, copy)
        timed("INSERT ... SELECT ON CONFLICT", results, lambda: cursor.execute(
            f"INSERT INTO experiments_observation (experiment_id, received_at, {ingestion._COLUMNS}) "
            f"SELECT %s, %s, {ingestion._COLUMNS} FROM incoming_observation "
            "ON CONFLICT (experiment_id, idempotency_key) DO NOTHING", [experiment.id, now]))
    from django.db.models import F
    timed("counter update", results, lambda: Experiment.objects.filter(pk=experiment.pk).update(
        observation_count=F("observation_count") + len(records)))
    timed("commit (deferred FK checks run here)", results, lambda: atomic.__exit__(None, None, None))
    results.setdefault("sum of the stages", []).append(time.perf_counter() - started)
    if experiment.design == "ab":
        units = {r.unit for r in rows}
        timed("(apart) the Assignment unit__in query alone", results, lambda: dict(
            Assignment.objects.filter(experiment=experiment, unit__in=units).values_list("unit", "variant_id")))
        def any_array():
            with connection.cursor() as c:
                c.execute("SELECT unit, variant_id FROM experiments_assignment WHERE experiment_id = %s"
                          " AND unit = ANY(%s)", [experiment.id, list(units)])
                return dict(c.fetchall())
        timed("(apart) what-if: it as unit = ANY(%s array)", results, any_array)
    return len(records)

def full(key, body, token, results):
    client = Client()
    t = time.perf_counter()
    r = client.post(f"/api/v1/experiments/{key}/observations/", body, content_type="application/json",
                    HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    results.setdefault("full request (Django test client)", []).append(time.perf_counter() - t)
    assert r.status_code == 201, r.content[:300]

for key, path in CASES:
    bodies = [open(f"{path}.{i}", "rb").read() for i in range(REPEAT)]
    results = {}
    clean(); stages(key, bodies[0], {}); full(key, bodies[1], TOKEN, {})  # warm
    # Interleaved, each on an empty table, so that both see the same machine load.
    for i in range(REPEAT):
        clean(); stages(key, bodies[i], results)
        clean(); full(key, bodies[i], TOKEN, results)
    clean()
    print(f"{key}: median ms of {REPEAT} runs per {len(orjson.loads(bodies[0])['observations']):,}-row request, "
          f"sequential, single process, into an empty table")
    for label, values in results.items():
        values = sorted(values)
        print(f"  {label:<46} {values[len(values) // 2] * 1000:8.1f}")
    full_ms = sorted(results["full request (Django test client)"])[REPEAT // 2] * 1000
    stage_ms = sorted(results["sum of the stages"])[REPEAT // 2] * 1000
    print(f"  {'=> Django/DRF/test-client overhead (full - sum)':<46} {full_ms - stage_ms:8.1f}")

# import_observations' own per-chunk work before observations_ingest: CSV rows -> items.
import itertools
from experiments.management.commands.import_observations import _csv_items
with open(CSV, encoding="utf-8", newline="") as handle:
    items = _csv_items(handle)
    csv_times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        chunk = list(itertools.islice(items, 10_000))
        csv_times.append(time.perf_counter() - t)
print(f"import_observations, CSV -> items (csv.DictReader + float()), per 10,000 rows: "
      f"{sorted(csv_times)[REPEAT // 2] * 1000:.1f} ms; then parse_items and observations_ingest as above")
"""


def breakdown(env, experiments, cc: Dataset, ab: Dataset | None) -> None:
    """Time each stage of one request in-process (the server's work without HTTP), per design."""
    token = manage(env, "create_service_key", "bench-breakdown").strip().splitlines()[-1]
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-breakdown-"))
    try:
        cases = []
        for dataset in [cc] + ([ab] if ab else []):
            for i in range(7):
                (workdir / f"{dataset.key}.{i}").write_bytes(dataset.bodies[i])
            cases.append((dataset.key, str(workdir / dataset.key)))
        code = f"CASES = {cases!r}\nTOKEN = {token!r}\nCSV = {str(cc.csv_path)!r}\n" + BREAKDOWN
        print()
        print("Breakdown (in-process, no HTTP):")
        print(manage(env, "shell", "-c", code).rstrip())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
