"""Analysis time and worker memory at 1M and 10M observations, against a bare SQL aggregate.

Sets up a dedicated PostgreSQL database (env BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/bench_analysis: dropped, created, migrated). For each size N:

  1. Load, inside PostgreSQL (INSERT ... SELECT ... FROM generate_series; not timed):
     - an `ab` binary experiment (created and started through the services, then its test
       period moved into the past with a queryset update) with 2 variants (weights 1:1),
       U = N/2 assigned units `user-000000042` (variant = a hash of the unit, about 50/50)
       and N observations, each for a unit drawn uniformly at random (so per unit a
       Poisson(2) count: 13.5% of the units have none, 27% one, 59% several), value 1 with
       probability 5% (control) or 5.3% (challenger) per observation, so about 9.5% of
       the units convert; each observation has a unique `id` and timestamps in the period;
     - at the sizes of --cc-sizes (default: every size), a `champion_challenger` continuous
       experiment: N/2 sampled requests (`r-<md5>` ids, one assignment each), each scored by
       both models (N observations; the loss is Gamma(2, 5) for the champion and the
       champion's loss plus Normal(-0.1, 5) for the challenger);
     - observation_count kept consistent, status moved to `analyzing` (as the sweep does),
       then VACUUM ANALYZE. Indexes are dropped during the load and rebuilt from their own
       definitions (pg_indexes), and foreign-key triggers are skipped
       (session_replication_role = replica): loading only, the data is consistent by construction.
     - the per-unit sums the ingestion service keeps as it stores observations (UnitOutcome),
       recomputed from the loaded observations by `unit_outcomes_rebuild` (their cost at
       ingestion is in bench/ingest.py's figures).
  2. Baseline: `SELECT variant_id, count(*), sum(value), sum(value*value) FROM
     experiments_observation WHERE experiment_id = %s GROUP BY variant_id`, run once to warm
     the cache, then again right before every analysis run (the machine is shared: each ratio
     compares two adjacent timings, which see the same load).
  3. The analysis as the worker runs it: `analysis_run(experiment_id=...)` in a fresh
     `python -c` subprocess (django.setup(), a connection opened, then only the call timed,
     inside the subprocess); the subprocess's peak RSS (VmHWM, Django imports included) and
     its total wall time are reported. Rounds of (bare aggregate, analysis): the first round
     warms the cache and is not kept (2 rounds). Before each analysis, TRUNCATE experiments_analysisresult (the
     immutability trigger is a row trigger, which TRUNCATE does not fire) and put the
     experiment back to `analyzing`.
  4. A table (N, bare aggregate s, analysis s, ratio <= 2.0, worker peak RSS < 300 MB,
     PASS/MISS), then, at the largest size, EXPLAIN (ANALYZE, BUFFERS) of each query the
     analysis runs (captured from experiments.unit_outcomes.read while it runs, under the same
     SET LOCAL work_mem), and the former formulation (every observation grouped by unit at
     analysis time, before UnitOutcome) timed side by side (--no-alternatives to skip it).

Usage: .venv/bin/python bench/analysis.py [--sizes 1000000 10000000] [--cc-sizes ...] [--no-alternatives]
       [--no-wait]   (otherwise it waits until no other bench/ script runs before measuring)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, manage, recreate_database, redacted, server_env  # noqa: E402
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_analysis"
DEFAULT_SIZES = [1_000_000, 10_000_000]
TARGET_RATIO = 2.0
TARGET_RSS_MB = 300.0
OTHER_BENCH = r"bench/(assignment|ingest)\.py"
OBSERVATIONS = "experiments_observation"
ASSIGNMENTS = "experiments_assignment"
OUTCOMES = "experiments_unitoutcome"

BARE = f"""SELECT variant_id, count(*), sum(value), sum(value * value)
FROM {OBSERVATIONS} WHERE experiment_id = %s GROUP BY variant_id"""

# Runs in the measured subprocess: Django set up and a connection opened first (a worker
# has both already), then only the call is timed.
WORKER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import django
django.setup()
from django.db import connection
from experiments.services.analysis import analysis_run
connection.ensure_connection()
def status():
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) for k, v in (l.split(":", 1) for l in f) if k in ("VmHWM", "VmRSS")}
ready = status()
t1 = time.perf_counter()
result = analysis_run(experiment_id=int(sys.argv[1]))
t2 = time.perf_counter()
done = status()
print(json.dumps({"analysis_s": t2 - t1, "setup_s": t1 - t0, "outcome": result.outcome,
                  "hwm_ready_kb": ready["VmHWM"], "hwm_kb": done["VmHWM"],
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "document": result.document}))
"""

def _log(message: str) -> None:
    print(message, flush=True)


# -- database -----------------------------------------------------------------------------------

def _timed_sql(conn: psycopg.Connection, sql: str, params: list, *, settings: dict[str, str] | None = None,
               runs: int = 2) -> tuple[float, list]:
    """Run a statement `runs` times in its own transaction; the last run's time and rows."""
    seconds, rows = 0.0, []
    for _ in range(runs):
        with conn.transaction():
            for name, value in (settings or {}).items():
                conn.execute(f"SET LOCAL {name} = '{value}'")
            start = time.perf_counter()
            rows = conn.execute(sql, params).fetchall()
            seconds = time.perf_counter() - start
    return seconds, rows


# -- setup through the services -----------------------------------------------------------------

def _django(env: dict[str, str]):
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "SECRET_KEY",
                                           "ALLOWED_HOSTS", "CELERY_BROKER_URL", "LOG_LEVEL", "VAR_DIR")})
    import django
    django.setup()


def _create_experiments(size: int, cc: bool) -> dict[str, dict]:
    """Create and start the experiments through the services; return ids and variant ids."""
    from experiments.services.definition import experiment_create
    from experiments.services.lifecycle import experiment_start

    common = dict(alpha=0.05, power=0.8, alternative="two-sided", duration=timedelta(days=14),
                  grace_period=timedelta(0), traffic_percent=100.0, auto_promote=False)
    definitions = {"ab": dict(
        key=f"bench-ab-{size}", name=f"Benchmark checkout ({size:,} observations)",
        hypothesis="A green button raises conversion", design="ab", metric_name="conversion",
        metric_type="binary", metric_direction="increase", baseline_mean=0.10, baseline_sd=None,
        mde=0.01, sample_size_per_variant=None,
        variants=[{"key": "control", "weight": 1.0, "is_control": True, "payload": {}},
                  {"key": "green", "weight": 1.0, "is_control": False, "payload": {}}], **common)}
    if cc:
        definitions["cc"] = dict(
            key=f"bench-cc-{size}", name=f"Benchmark ranker ({size:,} observations)",
            hypothesis="The challenger model has a lower loss", design="champion_challenger",
            metric_name="loss", metric_type="continuous", metric_direction="decrease", baseline_mean=None,
            baseline_sd=5.0, mde=0.5, sample_size_per_variant=None,
            variants=[{"key": "champion", "weight": 1.0, "is_control": True, "payload": {}},
                      {"key": "challenger", "weight": 1.0, "is_control": False, "payload": {}}], **common)
    made = {}
    for name, definition in definitions.items():
        experiment = experiment_start(experiment=experiment_create(actor=None, definition=definition), actor=None)
        made[name] = {"id": experiment.id, "key": experiment.key,
                      "variants": [v.id for v in experiment.variants.order_by("position", "id")]}
    return made


def _sum_units(experiment_ids: list[int]) -> None:
    """Recompute the per-unit sums the ingestion service would have kept (the load went around it)."""
    from django.db import connection, transaction

    from experiments.models import Experiment
    from experiments.unit_outcomes.write import unit_outcomes_rebuild

    for experiment_id in experiment_ids:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '1GB'")
            unit_outcomes_rebuild(Experiment.objects.get(pk=experiment_id))


def _make_due(experiment_ids: list[int], counts: dict[int, int]) -> None:
    """Move the test period into the past and mark the analysis queued, as the sweep would."""
    from django.utils import timezone

    from experiments.models import Experiment, Status

    now = timezone.now()
    for experiment_id in experiment_ids:
        Experiment.objects.filter(pk=experiment_id).update(
            started_at=now - timedelta(days=15), ends_at=now - timedelta(days=1),
            status=Status.ANALYZING, analysis_queued_at=now, observation_count=counts[experiment_id])


# -- bulk load ------------------------------------------------------------------------------------

def _indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str, str | None]]:
    """(name, CREATE INDEX statement, constraint name or None) of every non-primary-key index."""
    return conn.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid), c.conname
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('u', 'x')
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
        """, [table]).fetchall()


def _load(conn: psycopg.Connection, made: dict[str, dict], size: int) -> None:
    units = size // 2
    saved = {table: _indexes(conn, table) for table in (OBSERVATIONS, ASSIGNMENTS)}
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")   # no FK triggers while loading
        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        conn.execute("SELECT setseed(0.42)")
        for table, indexes in saved.items():
            for name, _, constraint in indexes:
                if constraint:
                    conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
                else:
                    conn.execute(f'DROP INDEX "{name}"')
        ab = made["ab"]
        control, green = ab["variants"]
        unit = "'user-' || lpad(u::text, 9, '0')"
        variant = f"CASE WHEN hashtext({unit}) & 1 = 0 THEN {control} ELSE {green} END"
        conn.execute(
            f"""
            INSERT INTO {ASSIGNMENTS} (experiment_id, unit, variant_id, assigned_at)
            SELECT %s, {unit}, {variant}, now() - interval '15 days' + u * (interval '13 days' / %s)
            FROM generate_series(0, %s - 1) AS u
            """, [ab["id"], units, units])
        conn.execute(
            f"""
            INSERT INTO {OBSERVATIONS}
                (experiment_id, variant_id, unit, value, latency_ms, observed_at, received_at, idempotency_key)
            SELECT %s, v, {unit}, (random() < CASE WHEN v = {control} THEN 0.05 ELSE 0.053 END)::int, NULL,
                   at, at + interval '2 seconds', 'o-' || i
            FROM (SELECT i, u, {variant} AS v, now() - interval '15 days' + i * (interval '14 days' / %s) AS at
                  FROM (SELECT i, floor(random() * %s)::int AS u FROM generate_series(0, %s - 1) AS i) AS drawn
                 ) AS rows
            """, [ab["id"], size, units, size])
        if "cc" in made:
            cc = made["cc"]
            champion, challenger = cc["variants"]
            request = "'r-' || md5(u::text)"
            conn.execute(
                f"""
                INSERT INTO {ASSIGNMENTS} (experiment_id, unit, variant_id, assigned_at)
                SELECT %s, {request}, %s, now() - interval '15 days' + u * (interval '13 days' / %s)
                FROM generate_series(0, %s - 1) AS u
                """, [cc["id"], champion, units, units])
            # Champion loss ~ Gamma(2, 5) (sum of two exponentials), challenger = champion + Normal(-0.1, 5).
            conn.execute(
                f"""
                INSERT INTO {OBSERVATIONS}
                    (experiment_id, variant_id, unit, value, latency_ms, observed_at, received_at, idempotency_key)
                SELECT %s, v.id, {request}, CASE WHEN v.champion THEN loss ELSE loss - 0.1 + noise END,
                       20 + 60 * random(), at, at + interval '1 hour', 'o-' || u || '-' || v.id
                FROM (SELECT u, -5 * ln(1 - random()) - 5 * ln(1 - random()) AS loss,
                             5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS noise,
                             now() - interval '15 days' + u * (interval '13 days' / %s) AS at
                      FROM generate_series(0, %s - 1) AS u) AS requests
                CROSS JOIN (VALUES (%s::bigint, true), (%s::bigint, false)) AS v (id, champion)
                """, [cc["id"], units, units, champion, challenger])
        for table, indexes in saved.items():
            for name, definition, constraint in indexes:
                conn.execute(definition)
                if constraint:
                    conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" UNIQUE USING INDEX "{name}"')
    for table in (OBSERVATIONS, ASSIGNMENTS):
        conn.execute(f"VACUUM ANALYZE {table}")


# -- measuring ------------------------------------------------------------------------------------

def _other_benchmarks() -> list[str]:
    done = subprocess.run(["pgrep", "-af", OTHER_BENCH], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if line.strip() and str(os.getpid()) != line.split()[0]]


def _wait_quiet(args) -> bool:
    """Wait (up to --wait-timeout s) until no other benchmark runs; True if the machine is quiet."""
    if args.no_wait:
        return not _other_benchmarks()
    deadline = time.monotonic() + args.wait_timeout
    others = _other_benchmarks()
    if others:
        _log(f"  waiting for other benchmarks to finish: {'; '.join(others)}")
    while others and time.monotonic() < deadline:
        time.sleep(5)
        others = _other_benchmarks()
    if others:
        _log(f"  still running after {args.wait_timeout} s, measuring anyway: {'; '.join(others)}")
    return not others


def _reset(conn: psycopg.Connection, experiment_id: int) -> None:
    """Forget the stored result (TRUNCATE does not fire the row trigger) and queue the analysis again."""
    conn.execute("TRUNCATE experiments_analysisresult")
    conn.execute("UPDATE experiments_experiment SET status = 'analyzing' WHERE id = %s", [experiment_id])


def _run_worker(env: dict[str, str], conn: psycopg.Connection, experiment_id: int, variant: str) -> dict:
    """analysis_run once in a fresh subprocess, on a freshly reset experiment: times and memory."""
    _reset(conn, experiment_id)
    start = time.perf_counter()
    done = subprocess.run([PYTHON, "-c", WORKER, str(experiment_id), variant], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"analysis subprocess failed:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["total_s"] = total
    return figures


def _paired(env: dict[str, str], conn: psycopg.Connection, experiment_id: int, variant: str, runs: int) -> dict:
    """`runs` rounds of (bare aggregate, analysis subprocess), each ratio against the bare aggregate
    timed just before it (the machine is shared: adjacent timings see the same load). The first
    round only warms the cache; of the others, the round with the median ratio is kept."""
    rounds = []
    for _ in range(runs):
        bare, _ = _timed_sql(conn, BARE, [experiment_id], runs=1)
        figures = _run_worker(env, conn, experiment_id, variant)
        figures.update(bare_s=bare, ratio=figures["analysis_s"] / bare)
        rounds.append(figures)
    measured = sorted(rounds[1:], key=lambda f: f["ratio"])
    kept = measured[(len(measured) - 1) // 2]
    kept["ratios"] = [f["ratio"] for f in rounds[1:]]
    kept["hwm_kb"] = max(f["hwm_kb"] for f in rounds)
    return kept


def _paired_sql(conn: psycopg.Connection, experiment_id: int, statements: list[tuple[str, list]],
                settings: dict[str, str], runs: int) -> tuple[float, float]:
    """Like _paired for SQL run from here: (seconds, bare seconds) of the median-ratio round after the first."""
    rounds = []
    for _ in range(runs):
        bare, _ = _timed_sql(conn, BARE, [experiment_id], runs=1)
        seconds = sum(_timed_sql(conn, sql, params, settings=settings, runs=1)[0] for sql, params in statements)
        rounds.append((seconds, bare))
    measured = sorted(rounds[1:] or rounds, key=lambda r: r[0] / r[1])
    return measured[(len(measured) - 1) // 2]


def _same_document(a: dict, b: dict, rel: float = 1e-9) -> bool:
    """Same results document, apart from when it was made (floats to a relative tolerance)."""
    def same(x, y):
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(same(p, q) for p, q in zip(x, y))
        if isinstance(x, float) or isinstance(y, float):
            return x is not None and y is not None and abs(x - y) <= rel * max(abs(x), abs(y), 1e-300)
        return x == y
    strip = lambda d: {k: v for k, v in d.items() if k != "analyzed_at"}  # noqa: E731
    return same(strip(a), strip(b))


# -- EXPLAIN --------------------------------------------------------------------------------------

def _explain_application_queries(experiment_id: int) -> list[tuple[str, list, dict]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every summary query analysis_data runs, under the analysis's
    work_mem. Each such query is run once, as EXPLAIN ANALYZE, and replaced by a LIMIT 0 version
    of itself so that no query runs twice (the summaries then come out empty, which is ignored)."""
    from django.conf import settings
    from django.db import connection, transaction

    from experiments.models import Experiment
    from experiments.unit_outcomes.read import analysis_data

    captured = []

    def explain(execute, sql, params, many, context):
        if (OUTCOMES in sql or ASSIGNMENTS in sql) and sql.lstrip().upper().startswith(("WITH", "SELECT")):
            context["cursor"].execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = context["cursor"].fetchone()[0]
            captured.append((sql, list(params or []), json.loads(plan) if isinstance(plan, str) else plan))
            return execute(f"SELECT * FROM ({sql}) AS explained LIMIT 0", params, many, context)
        return execute(sql, params, many, context)

    experiment = Experiment.objects.get(pk=experiment_id)
    with transaction.atomic(), connection.execute_wrapper(explain):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = %s", [settings.ANALYSIS_WORK_MEM])
        try:
            analysis_data(experiment)
        except (ValueError, TypeError, KeyError, IndexError, StopIteration):
            pass   # fewer rows than the code expects: the queries ran (as EXPLAIN) all the same
    return captured


def _plan_lines(plan: dict, depth: int = 0) -> list[str]:
    """One line per plan node: type, loops, rows, time, and memory / spill figures."""
    kind = plan["Node Type"]
    if plan.get("Strategy") in ("Hashed", "Sorted", "Mixed") and kind == "Aggregate":
        kind = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate", "Mixed": "MixedAggregate"}[plan["Strategy"]]
    if plan.get("Partial Mode") in ("Partial", "Finalize"):
        kind = f"{plan['Partial Mode']} {kind}"
    if plan.get("Parallel Aware"):
        kind = "Parallel " + kind
    on = plan.get("Index Name") or plan.get("Relation Name") or plan.get("CTE Name")
    keys = plan.get("Group Key") or plan.get("Hash Cond") or plan.get("Sort Key") or plan.get("Merge Cond")
    bits = [f"{kind}{' on ' + on if on else ''}{' by ' + str(keys) if keys else ''}",
            f"loops={plan.get('Actual Loops')}", f"rows={plan.get('Actual Rows')}",
            f"time={plan.get('Actual Total Time', 0) / 1000:.2f}s"]
    if "HashAgg Batches" in plan:
        bits.append(f"batches={plan['HashAgg Batches']} mem={plan.get('Peak Memory Usage', 0) // 1024}MB "
                    f"disk={plan.get('Disk Usage', 0) // 1024}MB"
                    + (f" planned_partitions={plan['Planned Partitions']}" if plan.get("Planned Partitions") else ""))
    if "Hash Batches" in plan:
        bits.append(f"batches={plan['Hash Batches']} (planned {plan.get('Original Hash Batches')}) "
                    f"mem={plan.get('Peak Memory Usage', 0) // 1024}MB")
    if "Sort Method" in plan:
        bits.append(f"{plan['Sort Method']} {plan.get('Sort Space Used', 0) // 1024}MB "
                    f"{plan.get('Sort Space Type', '')}")
    if "Workers Launched" in plan:
        bits.append(f"workers={plan['Workers Launched']}/{plan.get('Workers Planned')}")
    if plan.get("Temp Written Blocks"):
        bits.append(f"temp_written={plan['Temp Written Blocks'] * 8 // 1024}MB")
    if "Heap Fetches" in plan:
        bits.append(f"heap_fetches={plan['Heap Fetches']}")
    lines = ["    " + "  " * depth + "-> " + "  ".join(bits)]
    for child in plan.get("Plans", []):
        lines += _plan_lines(child, depth + 1)
    return lines


def _explain_summary(explained: dict) -> list[str]:
    jit = explained.get("JIT", {}).get("Timing", {}).get("Total", 0) / 1000
    lines = [f"    planning {explained['Planning Time'] / 1000:.3f} s, execution "
             f"{explained['Execution Time'] / 1000:.2f} s (of which JIT compilation {jit:.2f} s)"]
    return lines + _plan_lines(explained["Plan"])


def _spills(plan: dict) -> list[str]:
    found = []
    if plan.get("Disk Usage") or (plan.get("HashAgg Batches", 1) > 1):
        found.append(f"{plan['Node Type']} ({plan.get('Group Key')}) spilled: {plan.get('HashAgg Batches')} batches, "
                     f"{plan.get('Disk Usage', 0) // 1024} MB on disk (per process), loops={plan.get('Actual Loops')}")
    if plan.get("Hash Batches", 1) > 1:
        found.append(f"Hash ({plan.get('Hash Cond')}) spilled: {plan['Hash Batches']} batches")
    for child in plan.get("Plans", []):
        found += _spills(child)
    return found


# -- alternatives (SQL run from the bench, same transaction settings) ---------------------------------

# What the analysis ran before ingestion kept per-unit sums (UnitOutcome): every observation
# grouped by unit at analysis time. Timed beside the application to show what the sums buy.
AB_ASSIGNED = f"SELECT variant_id, COUNT(*) FROM {ASSIGNMENTS} WHERE experiment_id = %s GROUP BY variant_id"
AB_GROUPED = f"""SELECT variant_id, COUNT(*), SUM(v), SUM(v * v) FROM (
    SELECT variant_id, unit, MAX(value) AS v FROM {OBSERVATIONS} WHERE experiment_id = %s AND value <> 0
    GROUP BY variant_id, unit) AS per_unit GROUP BY variant_id"""
CC_GROUPED = """SELECT COUNT(x), SUM(x), SUM(x * x), COUNT(y), SUM(y), SUM(y * y),
    COUNT(*) FILTER (WHERE x IS NOT NULL AND y IS NOT NULL), SUM(x * y) FILTER (WHERE x IS NOT NULL AND y IS NOT NULL),
    COUNT(*) FILTER (WHERE x IS NULL OR y IS NULL)
    FROM (SELECT unit, AVG(value) FILTER (WHERE variant_id = %s) AS x, AVG(value) FILTER (WHERE variant_id = %s) AS y
          FROM experiments_observation WHERE experiment_id = %s GROUP BY unit) AS per_unit"""


def _alternatives(conn: psycopg.Connection, work_mem: str, name: str, experiment: dict) -> list[tuple]:
    """(label, seconds, bare seconds) of the former observation-grouping queries, run once (warm cache)."""
    settings = {"work_mem": work_mem}
    if name == "ab":
        statements = [(AB_GROUPED, [experiment["id"]]), (AB_ASSIGNED, [experiment["id"]])]
        label = "ab: GROUP BY variant, unit over the observations + assigned counts"
    else:
        champion, challenger = experiment["variants"]
        statements = [(CC_GROUPED, [champion, challenger, experiment["id"]])]
        label = "cc: GROUP BY unit over the observations (one FILTER pass)"
    return [(label, *_paired_sql(conn, experiment["id"], statements, settings, runs=1))]


# -- report ----------------------------------------------------------------------------------------

def _row(label: str, size: int, figures: dict) -> dict:
    bare, ratio = figures["bare_s"], figures["ratio"]
    rss = figures["hwm_kb"] / 1024
    return {"label": label, "size": size, "bare": bare, "analysis": figures["analysis_s"], "ratio": ratio,
            "total": figures["total_s"], "rss": rss, "rss_ready": figures["hwm_ready_kb"] / 1024,
            "ok": ratio <= TARGET_RATIO and rss < TARGET_RSS_MB, "outcome": figures["outcome"],
            "ratios": figures["ratios"]}


def _table(rows: list[dict]) -> list[str]:
    lines = [f"{'experiment':<34}{'N':>12}{'bare s':>9}{'analysis s':>12}{'ratio':>8}{'subproc s':>11}"
             f"{'peak RSS MB':>13}{'(ready)':>9}  result",
             "-" * 140]
    for r in rows:
        lines.append(f"{r['label']:<34}{r['size']:>12,}{r['bare']:>9.2f}{r['analysis']:>12.2f}{r['ratio']:>8.2f}"
                     f"{r['total']:>11.2f}{r['rss']:>13.1f}{r['rss_ready']:>9.1f}  "
                     f"{'PASS' if r['ok'] else 'MISS'} ({r['outcome']}; ratios "
                     f"{', '.join(f'{x:.2f}' for x in r['ratios'])})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--cc-sizes", type=int, nargs="*",
                        help="sizes at which the champion/challenger experiment is loaded too (default: every size)")
    parser.add_argument("--no-alternatives", action="store_true")
    parser.add_argument("--no-wait", action="store_true", help="measure even if other benchmarks run")
    parser.add_argument("--wait-timeout", type=float, default=1800.0)
    args = parser.parse_args()
    if args.cc_sizes is None:
        args.cc_sizes = args.sizes
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    env = server_env(database_url, workdir, broker_db=13)
    _log(f"database {redacted(database_url)} (dropped, created, migrated); sizes {args.sizes}, "
         f"champion/challenger at {args.cc_sizes}")
    recreate_database(database_url)
    manage(env, "migrate", "--no-input")
    _django(env)
    from django.conf import settings
    work_mem = settings.ANALYSIS_WORK_MEM

    rows, quiet, notes, loads = [], [], [], []
    largest = max(args.sizes)
    with psycopg.connect(database_url, autocommit=True) as conn:
        server = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN ('shared_buffers', "
            "'work_mem', 'hash_mem_multiplier', 'max_parallel_workers_per_gather', 'jit')").fetchall())
        _log(f"PostgreSQL settings: {server}; ANALYSIS_WORK_MEM = {work_mem}")
        for size in sorted(args.sizes):
            made = _create_experiments(size, size in args.cc_sizes)
            load_start = time.perf_counter()
            _load(conn, made, size)
            _sum_units([m["id"] for m in made.values()])
            conn.execute(f"VACUUM ANALYZE {OUTCOMES}")
            _make_due([m["id"] for m in made.values()], {m["id"]: size for m in made.values()})
            _log(f"N = {size:,}: loaded {', '.join(made)} in {time.perf_counter() - load_start:.0f} s")
            quiet.append(_wait_quiet(args))
            loads.append(os.getloadavg()[0])
            for name, experiment in made.items():
                _timed_sql(conn, BARE, [experiment["id"]], runs=1)   # warms the cache for the first round
                figures = _paired(env, conn, experiment["id"], "app", runs=2)
                rows.append(_row(f"{name} {'binary' if name == 'ab' else 'continuous'} (application)", size, figures))
                _log(f"  {name}: bare {figures['bare_s']:.2f} s, analysis {figures['analysis_s']:.2f} s "
                     f"(subprocess {figures['total_s']:.2f} s), peak RSS {figures['hwm_kb'] / 1024:.0f} MB, "
                     f"{figures['outcome']}")
                if size == (largest if name == "ab" else max(args.cc_sizes)):
                    _log(f"  EXPLAIN (ANALYZE, BUFFERS) of the {name} summary queries at N = {size:,} "
                         f"(work_mem {work_mem}):")
                    explained = _explain_application_queries(experiment["id"])
                    for index, (sql, params, plan) in enumerate(explained, 1):
                        _log(f"  query {index}: " + " ".join(sql.split())[:160] + " ...")
                        for line in _explain_summary(plan[0]) + ["    " + s for s in _spills(plan[0]["Plan"])]:
                            _log(line)
                    if not args.no_alternatives:
                        _log(f"  Before per-unit sums at N = {size:,} (SQL only, from the bench, work_mem "
                             f"{work_mem}; ratio against a bare aggregate timed just before):")
                        for label, seconds, bare in _alternatives(conn, work_mem, name, experiment):
                            _log(f"    {label:<68} {seconds:6.2f} s  bare {bare:5.2f} s  ratio {seconds / bare:5.2f}")
            quiet[-1] = quiet[-1] and not _other_benchmarks()
            loads.append(os.getloadavg()[0])

    _log("")
    _log(f"Targets: analysis <= {TARGET_RATIO:.1f} x the bare aggregate, worker peak RSS < {TARGET_RSS_MB:.0f} MB "
         f"(VmHWM of the subprocess, Django imports included; '(ready)' = after django.setup and imports)")
    for line in _table(rows):
        _log(line)
    for note in notes:
        _log(note)
    _log(f"machine quiet (no other bench/ script) during the measurements: {'yes' if all(quiet) else 'NO'}; "
         f"1-minute load average at the start/end of each size's measurements: "
         f"{', '.join(f'{x:.1f}' for x in loads)} (2 cores; other processes, e.g. test suites, are not waited for)")
    _log(f"{time.perf_counter() - started:.0f} s in all")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
