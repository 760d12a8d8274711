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
  5. Several metrics (issue 12), at the sizes of --metrics-sizes (default 1M and 10M): an `ab`
     experiment made through the services with three metrics, the primary binary `conversion`,
     a secondary continuous `revenue` (aggregation sum) and a guardrail continuous `latency_ms`
     (aggregation mean, margin 5 ms); U = N/2 units assigned as above and N observations, each
     for a unit drawn at random and a metric drawn 40% / 20% / 40% (metric_position set per row;
     conversion 0/1 at 5% / 5.3%, revenue Gamma(2, 25), latency Normal(200, 40) ms, +1 ms for
     green), loaded the same way, then `unit_outcomes_rebuild`. Its floor is the same aggregate
     per metric: `SELECT metric_position, variant_id, count(*), sum(value), sum(value*value) FROM
     experiments_observation WHERE experiment_id = %s GROUP BY metric_position, variant_id`,
     timed adjacent to each analysis run as in 2-3; same targets, one row per size, and the
     EXPLAIN of the analysis's queries at the largest size. --only-metrics runs only this scenario.
  6. CUPED (issue 14), at the sizes of --cuped-sizes (default 1M and 10M): the three-metric
     experiment of 5 with `cuped: true` on every metric, loaded the same way, and a covariate
     for 85% of the units and each metric (15% of the units have none: x = 0), drawn
     independently of the observations (time is measured, not the reduction): 3 x 0.85 x N/2
     covariate rows. The load assigns every unit after its covariate arrived (as in production,
     where covariates are loaded in draft), so the beat's resolver then gives every covariate its
     arm (experiments.db.covariate_arms), timed and printed apart, and the per-unit sums are
     rebuilt with their covariates, as ingestion keeps them. Its floor reads the same rows with no
     work of ours: BARE_METRICS over the
     observations plus `SELECT metric_position, count(*), sum(value), sum(value*value) FROM
     experiments_covariate WHERE experiment_id = %s GROUP BY metric_position`, the two timed
     adjacent to each analysis run; the ratio against the observations' aggregate alone is
     printed beside it, and, as information, the time of the bare join of each covariate to its
     unit's arm (BARE_COVARIATE_JOIN), what an analysis-time CUPED had to add to reading the
     rows before the arms were kept. --only-cuped runs only this scenario.

Usage: .venv/bin/python bench/analysis.py [--sizes 1000000 10000000] [--cc-sizes ...] [--no-alternatives]
       [--metrics-sizes 1000000 10000000] [--only-metrics] [--cuped-sizes 1000000 10000000] [--only-cuped]
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
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.analysis_setup import (  # noqa: E402
    COVARIATES,
    OUTCOMES,
    create_experiments,
    django_setup,
    load,
    make_due,
    resolve_arms,
    sum_units,
)
from bench.analysis_sql import (  # noqa: E402
    BARE,
    BARE_COVARIATE_JOIN,
    BARE_COVARIATES,
    BARE_METRICS,
    alternatives,
    explain_application_queries,
    explain_summary,
    spills,
    timed_sql,
)
from bench.common import PYTHON, manage, recreate_database, redacted, server_env  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_analysis"
DEFAULT_SIZES = [1_000_000, 10_000_000]
TARGET_RATIO = 2.0
TARGET_RSS_MB = 300.0
OTHER_BENCH = r"bench/(assignment|ingest)\.py"

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


def _paired(env: dict[str, str], conn: psycopg.Connection, experiment_id: int, variant: str, runs: int,
            bare_sqls: tuple[str, ...] = (BARE,)) -> dict:
    """`runs` rounds of (bare aggregate, analysis subprocess), each ratio against the bare aggregate
    timed just before it (the machine is shared: adjacent timings see the same load). The first
    round only warms the cache; of the others, the round with the median ratio is kept. With
    several bare statements the floor is their sum (`bare_first_s`: the first alone)."""
    rounds = []
    for _ in range(runs):
        parts = [timed_sql(conn, sql, [experiment_id], runs=1)[0] for sql in bare_sqls]
        bare = sum(parts)
        figures = _run_worker(env, conn, experiment_id, variant)
        figures.update(bare_s=bare, bare_first_s=parts[0], ratio=figures["analysis_s"] / bare)
        rounds.append(figures)
    measured = sorted(rounds[1:], key=lambda f: f["ratio"])
    kept = measured[(len(measured) - 1) // 2]
    kept["ratios"] = [f["ratio"] for f in rounds[1:]]
    kept["hwm_kb"] = max(f["hwm_kb"] for f in rounds)
    return kept


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


# -- report ----------------------------------------------------------------------------------------

LABELS = {"ab": "ab binary (application)", "cc": "cc continuous (application)",
          "metrics": "ab 3 metrics (application)", "cuped": "ab 3 CUPED metrics (application)"}
# The floor of each scenario: the bare aggregates of the rows its analysis reads.
FLOORS = {"ab": (BARE,), "cc": (BARE,), "metrics": (BARE_METRICS,), "cuped": (BARE_METRICS, BARE_COVARIATES)}


def _metrics_summary(document: dict) -> str:
    """Each metric of a results document: key, role, units and mean per variant (a check that all were read)."""
    parts = []
    for metric in document.get("metrics", []):
        arms = ", ".join(f"{v['key']} {v['units']:,} units mean {v['mean']:.4g}"
                         + (f" ({v['units_without_observations']:,} without)" if "units_without_observations" in v
                            else "") for v in metric["variants"])
        parts.append(f"{metric['key']} ({metric['role']}): {arms}")
    return "; ".join(parts) or "no metrics list in the document"


def _cuped_summary(document: dict) -> str:
    """Each CUPED comparison's test, theta and variance reduction (a check that the covariates were read)."""
    parts = []
    for metric in document.get("metrics", []):
        for comparison in metric["comparisons"]:
            if "cuped" in comparison:
                cuped = comparison["cuped"]
                theta = "none" if cuped["theta"] is None else f"{cuped['theta']:.3g}"
                parts.append(f"{metric['key']} {comparison['variant']}: {comparison['test']}, theta {theta}, "
                             f"variance reduction {cuped['variance_reduction']:.4f}")
    return "; ".join(parts) or "no CUPED comparison in the document"


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
    args = _arguments()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    env = server_env(database_url, workdir, broker_db=13)
    _log(f"database {redacted(database_url)} (dropped, created, migrated); sizes {args.sizes}, "
         f"champion/challenger at {args.cc_sizes}, three metrics at {args.metrics_sizes}, "
         f"three CUPED metrics at {args.cuped_sizes}")
    recreate_database(database_url)
    manage(env, "migrate", "--no-input")
    django_setup(env)
    from django.conf import settings
    work_mem = settings.ANALYSIS_WORK_MEM

    rows, quiet, notes, loads = [], [], [], []
    with psycopg.connect(database_url, autocommit=True) as conn:
        server = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN ('shared_buffers', "
            "'work_mem', 'hash_mem_multiplier', 'max_parallel_workers_per_gather', 'jit')").fetchall())
        _log(f"PostgreSQL settings: {server}; ANALYSIS_WORK_MEM = {work_mem}")
        for size in sorted(set(args.sizes) | set(args.cc_sizes) | set(args.metrics_sizes) | set(args.cuped_sizes)):
            _measure_size(args, env, conn, size, work_mem, rows, quiet, loads)

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


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--cc-sizes", type=int, nargs="*",
                        help="sizes at which the champion/challenger experiment is loaded too (default: every size)")
    parser.add_argument("--metrics-sizes", type=int, nargs="*", default=DEFAULT_SIZES,
                        help="sizes of the three-metric experiment (issue 12; default 1M and 10M; none: skip it)")
    parser.add_argument("--only-metrics", action="store_true",
                        help="only the three-metric scenario (no single-metric ab or cc experiment)")
    parser.add_argument("--cuped-sizes", type=int, nargs="*", default=DEFAULT_SIZES,
                        help="sizes of the three-CUPED-metric experiment (issue 14; default 1M and 10M; none: skip it)")
    parser.add_argument("--only-cuped", action="store_true", help="only the CUPED scenario")
    parser.add_argument("--no-alternatives", action="store_true")
    parser.add_argument("--no-wait", action="store_true", help="measure even if other benchmarks run")
    parser.add_argument("--wait-timeout", type=float, default=1800.0)
    args = parser.parse_args()
    if args.cc_sizes is None:
        args.cc_sizes = args.sizes
    if args.only_metrics:
        args.sizes, args.cc_sizes, args.cuped_sizes = [], [], []
    if args.only_cuped:
        args.sizes, args.cc_sizes, args.metrics_sizes = [], [], []
    return args


def _measure_size(args, env: dict[str, str], conn: psycopg.Connection, size: int, work_mem: str,
                  rows: list[dict], quiet: list[bool], loads: list[float]) -> None:
    """Load the experiments of one size, then time each one's analysis against the bare aggregate."""
    made = create_experiments(size, size in args.cc_sizes, ab=size in args.sizes, metrics=size in args.metrics_sizes,
                              cuped=size in args.cuped_sizes)
    load_start = time.perf_counter()
    load(conn, made, size)
    sum_units([m["id"] for m in made.values()])
    conn.execute(f"VACUUM ANALYZE {OUTCOMES}")
    if "cuped" in made:
        resolver_s = resolve_arms(made["cuped"]["id"])
        vacuum_start = time.perf_counter()
        conn.execute(f"VACUUM ANALYZE {COVARIATES}")
        _log(f"N = {size:,}: the beat's resolver gave {made['cuped']['id']}'s covariates their arm in "
             f"{resolver_s:.1f} s (every unit assigned after its covariate; then VACUUM ANALYZE "
             f"{time.perf_counter() - vacuum_start:.1f} s), load average {os.getloadavg()[0]:.2f}")
    make_due([m["id"] for m in made.values()], {m["id"]: size for m in made.values()})
    _log(f"N = {size:,}: loaded {', '.join(made)} in {time.perf_counter() - load_start:.0f} s")
    quiet.append(_wait_quiet(args))
    loads.append(os.getloadavg()[0])
    for name, experiment in made.items():
        for sql in FLOORS[name]:
            timed_sql(conn, sql, [experiment["id"]], runs=1)   # warms the cache for the first round
        figures = _paired(env, conn, experiment["id"], "app", runs=2, bare_sqls=FLOORS[name])
        rows.append(_row(LABELS[name], size, figures))
        _log(f"  {name}: bare {figures['bare_s']:.2f} s, analysis {figures['analysis_s']:.2f} s "
             f"(subprocess {figures['total_s']:.2f} s), peak RSS {figures['hwm_kb'] / 1024:.0f} MB, "
             f"{figures['outcome']}")
        if name == "cuped":
            _log(f"    floor = observations' aggregate {figures['bare_first_s']:.2f} s + covariates' aggregate "
                 f"{figures['bare_s'] - figures['bare_first_s']:.2f} s; against the observations' aggregate alone "
                 f"the ratio is {figures['analysis_s'] / figures['bare_first_s']:.2f}")
            join_s, _ = timed_sql(conn, BARE_COVARIATE_JOIN, [experiment["id"]],
                                  settings={"jit": "off", "work_mem": work_mem}, runs=2)
            _log(f"    information: the bare join of each covariate to its unit's arm (BARE_COVARIATE_JOIN, jit off, "
                 f"work_mem {work_mem}) {join_s:.2f} s = {join_s / figures['bare_s']:.2f} x the floor")
            _log("    " + _cuped_summary(figures["document"]))
        if name in ("metrics", "cuped"):
            _log("    " + _metrics_summary(figures["document"]))
        largest = {"ab": args.sizes, "cc": args.cc_sizes, "metrics": args.metrics_sizes,
                   "cuped": args.cuped_sizes}[name]
        if size == max(largest):
            _explain(args, conn, name, experiment, size, work_mem)
    quiet[-1] = quiet[-1] and not _other_benchmarks()
    loads.append(os.getloadavg()[0])


def _explain(args, conn: psycopg.Connection, name: str, experiment: dict, size: int, work_mem: str) -> None:
    """At the largest size: EXPLAIN of the application's summary queries, and the former queries timed."""
    _log(f"  EXPLAIN (ANALYZE, BUFFERS) of the {name} summary queries at N = {size:,} "
         f"(work_mem {work_mem}):")
    explained = explain_application_queries(experiment["id"])
    for index, (sql, params, plan) in enumerate(explained, 1):
        _log(f"  query {index}: " + " ".join(sql.split())[:160] + " ...")
        for line in explain_summary(plan[0]) + ["    " + s for s in spills(plan[0]["Plan"])]:
            _log(line)
    if not args.no_alternatives and name not in ("metrics", "cuped"):
        _log(f"  Before per-unit sums at N = {size:,} (SQL only, from the bench, work_mem "
             f"{work_mem}; ratio against a bare aggregate timed just before):")
        for label, seconds, bare in alternatives(conn, work_mem, name, experiment):
            _log(f"    {label:<68} {seconds:6.2f} s  bare {bare:5.2f} s  ratio {seconds / bare:5.2f}")


if __name__ == "__main__":
    sys.exit(main())
