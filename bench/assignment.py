"""Throughput and latency of the assignment endpoints, against a bare DRF endpoint as baseline.

Sets up a dedicated PostgreSQL database (dropped and recreated), a service key and a
running A/B experiment with two variants, starts gunicorn the way production does
(`gunicorn config.wsgi --workers W`, sync workers, DEBUG off, settings `bench.settings`
= the project's settings plus two baseline routes), and measures with wrk:

  (a)  GET bench/bare-noauth/     DRF APIView without authentication, constant JSON (the floor: baseline)
  (a') GET bench/bare/            the same with our bearer auth + IsAuthenticated (information)
  (b)  GET .../assignment/?unit=  first-time: every request a never-seen unit
  (c)  GET .../assignment/?unit=  repeat: cycling over 1,000 units assigned beforehand
  (d)  POST /api/v1/assignments/  10,000 never-seen units per request, sequentially; and
                                  10,000 already-assigned units per request

wrk and the server share the machine's cores, so the figures are a lower bound of what
the server alone would do; the ratios to (a) are what the targets are about.

Usage: .venv/bin/python bench/assignment.py [--duration 10] [--workers 4] [--connections 32]
       [--rounds 3] [--batch-requests 10] [--port P]   (env BENCH_DATABASE_URL: the database it drops)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.assignment_wrk import (  # noqa: E402
    BATCH_UNITS,
    EXPERIMENT_KEY,
    LUA_FIRST_TIME,
    LUA_REPEAT,
    REPEAT_UNITS,
    Figure,
    batch,
    count_rows,
    cpu_snapshot,
    figure,
    foreign_share,
    http,
    wrk,
)
from bench.common import free_port, interrupt, manage, recreate_database, redacted, server_env, spawn_gunicorn, stop  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_experiments"

TARGET_REPEAT = 0.80
TARGET_FIRST = 0.50
TARGET_BATCH_SECONDS = 0.25

CREATE_EXPERIMENT = f"""
from experiments.management.commands.setup_demo import demo_definition
from experiments.services.definition import experiment_create
from experiments.services.lifecycle import experiment_start
definition = demo_definition()
definition.update(key={EXPERIMENT_KEY!r}, name="Benchmark A/B")
experiment = experiment_create(actor=None, definition=definition)
experiment = experiment_start(experiment=experiment, actor=None)
print(experiment.status, [v.key for v in experiment.variants.all()])
"""

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="wrk rounds per figure, interleaved; the best is reported (default 3)")
    parser.add_argument("--batch-requests", type=int, default=10,
                        help="sequential 10,000-unit batches of never-seen units (default 10)")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk).", file=sys.stderr)
        return 2
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    port = args.port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-assignment-"))
    env = server_env(database_url, workdir, settings_module="bench.settings")
    server: subprocess.Popen | None = None
    # Ctrl-C and SIGTERM both unwind through the finally below, which stops gunicorn.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        print(f"Database {redacted(database_url)}: drop, create, migrate ...", flush=True)
        recreate_database(database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        key = manage(env, "create_service_key", "bench").strip().splitlines()[-1]
        created = manage(env, "shell", "--no-imports", "-c", CREATE_EXPERIMENT).strip().splitlines()[-1]
        print(f"Experiment {EXPERIMENT_KEY!r}: {created}", flush=True)

        print(f"gunicorn config.wsgi --workers {args.workers} --bind 127.0.0.1:{port} "
              f"(DJANGO_SETTINGS_MODULE=bench.settings, DEBUG=false)", flush=True)
        server = spawn_gunicorn(env, args.workers, port, workdir)
        args.server_pgid = server.pid
        args.db_name = urllib.parse.urlsplit(database_url).path.lstrip("/")
        _wait_until_up(port, key, server, workdir)
        results = _measure(args, port, key, workdir, database_url)
        _report(args, results)
        return 0 if results["all_pass"] else 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


# -- setup ------------------------------------------------------------------------------------

def _wait_until_up(port: int, key: str, server: subprocess.Popen, workdir: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited:\n" + (workdir / "gunicorn.log").read_text(errors="replace"))
        try:
            status, _ = http(port, "GET", "/bench/bare/", key)
            if status == 200:
                return
            raise SystemExit(f"GET /bench/bare/ answered {status}.")
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 30 s.")


# -- the run ----------------------------------------------------------------------------------

def _measure(args, port: int, key: str, workdir: Path, database_url: str) -> dict:
    """Every figure, the targets' checks and the rows stored."""
    first_lua = workdir / "first_time.lua"
    first_lua.write_text(LUA_FIRST_TIME)
    repeat_lua = workdir / "repeat.lua"
    repeat_lua.write_text(LUA_REPEAT)

    load_before = _load()
    # Pre-assign the repeat set with one batch, then warm every worker on every path
    # (imports, database connection, the per-process variant cache).
    batch(port, key, [f"r-{i}" for i in range(REPEAT_UNITS)])
    print("Warming up ...", flush=True)
    for path, script, script_args in (("/bench/bare/", None, ()), ("/bench/bare-noauth/", None, ()),
                                      ("/", first_lua, ("w",)), ("/", repeat_lua, ())):
        wrk(args, port, key, path, script, script_args, duration=2)

    figures, first, first_rows = _wrk_figures(args, port, key, first_lua, repeat_lua, database_url)
    new_latencies, assigned_latencies, batch_rows = _batch_figures(args, port, key, database_url, figures)
    checks = _checks(figures, new_latencies, assigned_latencies)
    generated = first["generated"]
    answered = first["requests"] - first["non2xx"]
    rows_ok = generated is not None and answered <= first_rows <= generated and first["non2xx"] == 0
    batch_ok = batch_rows == BATCH_UNITS * len(new_latencies)
    return {"figures": figures, "checks": checks, "load_before": load_before, "generated": generated, "answered": answered,
            "first_rows": first_rows, "rows_ok": rows_ok, "batch_rows": batch_rows, "batch_ok": batch_ok,
            "batch_requested": BATCH_UNITS * len(new_latencies), "port": port,
            "all_pass": all(ok for _, ok, _ in checks) and rows_ok and batch_ok}


def _wrk_figures(args, port: int, key: str, first_lua: Path, repeat_lua: Path,
                 database_url: str) -> tuple[dict[str, Figure], dict, int]:
    """(a), (a'), (c) and (b) in interleaved rounds: the figures, the first-time totals and rows stored."""
    # Rounds interleave the figures, so that a burst of other load on the machine hits
    # one round of each rather than one figure; each figure reports its best round.
    runs: dict[str, list[dict]] = {"a": [], "a'": [], "c": [], "b": []}
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
          f"{args.rounds} round(s) of each figure:", flush=True)
    for r in range(1, args.rounds + 1):
        print(f"  round {r}: (a) bare no auth, (a') bare + auth, (c) repeat, (b) first-time ...", flush=True)
        # The baselines get the same kind of request line as the assignments (a `unit` query).
        runs["a"].append(wrk(args, port, key, "/bench/bare-noauth/?unit=r-1"))
        runs["a'"].append(wrk(args, port, key, "/bench/bare/?unit=r-1"))
        runs["c"].append(wrk(args, port, key, "/", repeat_lua))
        runs["b"].append(wrk(args, port, key, "/", first_lua, (f"n{r}",)))
    time.sleep(1.0)  # let requests still in flight when wrk stopped finish
    first_rows = count_rows(database_url, "n%")
    names = {"a": "(a)  bare DRF, no auth (baseline)", "a'": "(a') bare DRF + our bearer auth",
             "c": f"(c)  repeat GET ({REPEAT_UNITS:,} assigned units)", "b": "(b)  first-time GET (never-seen units)"}
    figures: dict[str, Figure] = {}
    for tag, results in runs.items():
        best = max(results, key=lambda result: result["rps"])
        figures[tag] = figure(names[tag], best)
        figures[tag].foreign_cpu = best["foreign_cpu"]
        figures[tag].spread = (min(x["rps"] for x in results), max(x["rps"] for x in results))
        figures[tag].bad = "; ".join(filter(None, (figure("", x).bad for x in results)))
    first = {"generated": sum(x["generated"] for x in runs["b"]),
             "requests": sum(x["requests"] for x in runs["b"]),
             "non2xx": sum(x["non2xx"] for x in runs["b"])}
    return figures, first, first_rows


def _batch_figures(args, port: int, key: str, database_url: str,
                   figures: dict[str, Figure]) -> tuple[list[float], list[float], int]:
    """(d) and (d'), added to `figures`: the latencies of each kind of batch and the rows stored."""
    print(f"  (d) {args.batch_requests} sequential POSTs of {BATCH_UNITS:,} never-seen units ...", flush=True)
    new_latencies = []
    before = cpu_snapshot(args)
    for i in range(args.batch_requests):
        new_latencies.append(batch(port, key, [f"b{i}-{j}" for j in range(BATCH_UNITS)]))
    batch_rows = count_rows(database_url, "b%")
    assigned_runs = max(3, args.batch_requests // 2)
    print(f"  (d') {assigned_runs} sequential POSTs of {BATCH_UNITS:,} already-assigned units ...", flush=True)
    assigned_latencies = [batch(port, key, [f"b{i % args.batch_requests}-{j}" for j in range(BATCH_UNITS)])
                          for i in range(assigned_runs)]
    batch_foreign = foreign_share(before, cpu_snapshot(args))
    figures["d"] = Figure(f"(d)  batch POST {BATCH_UNITS:,} never-seen units", BATCH_UNITS * len(new_latencies)
                          / sum(new_latencies), "units/s", statistics.median(new_latencies),
                          max(new_latencies), "max", requests=len(new_latencies))
    figures["d'"] = Figure(f"(d') batch POST {BATCH_UNITS:,} assigned units",
                           BATCH_UNITS * len(assigned_latencies) / sum(assigned_latencies), "units/s",
                           statistics.median(assigned_latencies), max(assigned_latencies), "max",
                           requests=len(assigned_latencies))
    figures["d"].foreign_cpu = figures["d'"].foreign_cpu = batch_foreign
    return new_latencies, assigned_latencies, batch_rows


def _checks(figures: dict[str, Figure], new_latencies: list[float],
            assigned_latencies: list[float]) -> list[tuple[str, bool, str]]:
    """(label, passed, detail) of each target."""
    baseline = figures["a"].rate
    return [
        (f"repeat (c) >= {TARGET_REPEAT:.0%} of (a)", figures["c"].rate >= TARGET_REPEAT * baseline,
         f"{figures['c'].rate / baseline:.0%}"),
        (f"first-time (b) >= {TARGET_FIRST:.0%} of (a)", figures["b"].rate >= TARGET_FIRST * baseline,
         f"{figures['b'].rate / baseline:.0%}"),
        (f"{BATCH_UNITS:,}-unit batch, never-seen (d) < {TARGET_BATCH_SECONDS:g} s (max of {len(new_latencies)})",
         max(new_latencies) < TARGET_BATCH_SECONDS, f"p50 {_ms(statistics.median(new_latencies))}, "
         f"max {_ms(max(new_latencies))}"),
        (f"{BATCH_UNITS:,}-unit batch, assigned (d') < {TARGET_BATCH_SECONDS:g} s (max of {len(assigned_latencies)})",
         max(assigned_latencies) < TARGET_BATCH_SECONDS, f"p50 {_ms(statistics.median(assigned_latencies))}, "
         f"max {_ms(max(assigned_latencies))}"),
    ]


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _report(args, results: dict) -> None:
    figures = results["figures"]
    baseline = figures["a"].rate
    print()
    print(f"Assignment benchmark: gunicorn {args.workers} sync workers, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s x {args.rounds} interleaved rounds (best shown), PostgreSQL, DEBUG=false")
    print(f"NOTE: wrk, gunicorn and PostgreSQL all share this machine's {os.cpu_count()} cores: absolute figures "
          "are lower than the server alone would do; compare the ratios.")
    print(f"      Load average before / after the run: {results['load_before']} / {_load()} "
          "(anything else running skews the figures).")
    print()
    header = (f"{'figure':<42} {'throughput':>15} {'p50':>9} {'p99 (max)':>17} {'vs (a)':>6}  "
              f"{'rounds min-max':>15}  {'requests':>8}  {'other CPU':>9}")
    print(header)
    print("-" * len(header))
    for tag in ("a", "a'", "c", "b", "d", "d'"):
        f = figures[tag]
        ratio = f"{f.rate / baseline:.0%}" if f.unit == "req/s" else "-"
        tail = f"({_ms(f.p99)})" if f.p99_label == "max" else _ms(f.p99)
        spread = f"{f.spread[0]:,.0f}-{f.spread[1]:,.0f}" if f.spread else "-"
        print(f"{f.name:<42} {f'{f.rate:,.0f} {f.unit}':>15} {_ms(f.p50):>9} {tail:>17} {ratio:>6}  "
              f"{spread:>15}  {f.requests:>8,}  {_pct(f.foreign_cpu):>9}" + (f"  [{f.bad}]" if f.bad else ""))
    print("(a)-(b): wrk, req/s and latency of the best round; (d), (d'): sequential 10,000-unit requests, "
          "units/s over all of them, p50 and (max) of one request.")
    print("other CPU: share of the machine's CPU used meanwhile by processes other than this benchmark's (wrk, "
          "gunicorn, the bench database's PostgreSQL backends, kernel threads); well above 0% = disturbed figure.")
    print()
    print("Targets:")
    for label, ok, detail in results["checks"]:
        print(f"  {'PASS' if ok else 'MISS'}  {label}: {detail}")
    print()
    print("Rows stored (traffic 100%: every requested unit is included, so each must have exactly one row):")
    print(f"  (b) distinct units requested {results['generated']:,} (incl. up to {args.connections} per round in "
          f"flight when wrk stopped), answered 2xx {results['answered']:,}, assignment rows "
          f"{results['first_rows']:,}: {'OK' if results['rows_ok'] else 'MISMATCH'} (answered <= rows <= requested)")
    print(f"  (d) units requested {results['batch_requested']:,}, assignment rows {results['batch_rows']:,}: "
          f"{'OK' if results['batch_ok'] else 'MISMATCH'}")


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
