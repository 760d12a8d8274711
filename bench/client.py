"""The Python client's local assignment against the raw recipe, and its exposures flushed to a local server.

    .venv/bin/python bench/client.py [--units 1000000] [--exposures 200000] [--workers 4] [--rounds 3]
    (env BENCH_DATABASE_URL: the database it drops; default postgres://postgres@127.0.0.1:5432/experiments_h6_bench)

(1) `Client.assign()` over N distinct units (a fresh answer dict each, no per-unit cache),
    traffic 100 %, so every call also queues the unit's exposure (the per-process dedup set
    and the queue are part of the cost), against the raw recipe written inline below (two
    SHA-256 hashes and the weight walk, docs/assignment.md's snippet) in the same process.
    Target: 2x or less. Also shown: the same units assigned again (dedup hit, nothing queued).
(2) M units assigned locally, then the time from the first flush to the last exposure stored
    (`POST .../exposures/`, 10,000 per request) on gunicorn with sync workers on 127.0.0.1.
    Target: 50,000 units/s or more. The rows are counted in the database afterwards.
"""

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "clients" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from experiments_client import Client

from bench.common import free_port, interrupt, manage, recreate_database, redacted, server_env, spawn_gunicorn, stop

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/experiments_h6_bench"
TARGET_RATIO = 2.0
TARGET_UNITS_PER_SECOND = 50_000

CREATE_EXPERIMENTS = """
from experiments.management.commands.setup_demo import demo_definition
from experiments.services.definition import experiment_create
from experiments.services.lifecycle import experiment_start
for key in ("bench-assign", "bench-exposures"):
    definition = demo_definition()
    definition.update(key=key, name="Benchmark " + key, traffic_percent=100)
    experiment_start(experiment=experiment_create(actor=None, definition=definition), actor=None)
print("ok")
"""


def raw_recipe(salt: str, weights: list[tuple[str, float]], units: list[str]) -> float:
    """docs/assignment.md's client snippet, inline: seconds for every unit."""
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for unit in units:
        n = int.from_bytes(sha256(f"in:{salt}:{unit}".encode()).digest()[:8], "big")
        if min(n / 2**64, 1 - 2**-53) >= 1.0:   # traffic 100 %: everyone is in
            continue
        cumulative, bounds = 0.0, []
        for key, weight in weights:
            cumulative += weight
            bounds.append((cumulative, key))
        n = int.from_bytes(sha256(f"v:{salt}:{unit}".encode()).digest()[:8], "big")
        h_v = min(n / 2**64, 1 - 2**-53)
        next((key for bound, key in bounds if h_v < bound / cumulative), weights[-1][0])
    return time.perf_counter() - started


def timed_assign(client: Client, key: str, units: list[str]) -> float:
    assign = client.assign
    started = time.perf_counter()
    for unit in units:
        assign(key, unit)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1_000_000, help="distinct units for (1) (default 1,000,000)")
    parser.add_argument("--exposures", type=int, default=200_000, help="units flushed in (2) (default 200,000)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (1), interleaved; best shown (default 3)")
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-client-"))
    env = server_env(database_url, workdir)
    server = None
    signal.signal(signal.SIGTERM, interrupt)
    try:
        print(f"Database {redacted(database_url)}: drop, create, migrate ...", flush=True)
        recreate_database(database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        key = manage(env, "create_service_key", "bench-client").strip().splitlines()[-1]
        manage(env, "shell", "--no-imports", "-c", CREATE_EXPERIMENTS)
        server = spawn_gunicorn(env, args.workers, port, workdir)
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_up(base_url, server, workdir)
        print(f"gunicorn config.wsgi --workers {args.workers} on {base_url} (DEBUG=false); "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        ok = _assign_figures(args, base_url, key)
        ok &= _exposure_figures(args, base_url, key, database_url)
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_up(base_url: str, server: subprocess.Popen, workdir: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited:\n" + (workdir / "gunicorn.log").read_text(errors="replace"))
        try:
            urllib.request.urlopen(base_url + "/healthz", timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 30 s.")


def _assign_figures(args, base_url: str, key: str) -> bool:
    units = [f"user-{i}" for i in range(args.units)]
    probe = Client(base_url, key, start=False)   # no background thread: nothing is flushed while timing
    probe.refresh()
    state = probe._experiments["bench-assign"]
    salt, weights = state.salt, [(k, w) for k, w, _, _ in state.variants]
    raw, fresh, again = [], [], []
    for _ in range(args.rounds):
        raw.append(raw_recipe(salt, weights, units))
        client = Client(base_url, key, start=False, max_queue=args.units + 1)
        client.refresh()
        fresh.append(timed_assign(client, "bench-assign", units))
        again.append(timed_assign(client, "bench-assign", units))
        assert client.stats["dropped"] == 0 and len(client._exposures) == args.units
        del client
    n = args.units
    best_raw, best_fresh, best_again = min(raw), min(fresh), min(again)
    print(f"\n(1) assign() over {n:,} distinct units, best of {args.rounds} (traffic 100 %: every unit queued)")
    print(f"    {'figure':<58}{'total':>9}{'per unit':>11}{'vs raw':>8}")
    for label, seconds in (("raw recipe inline (2 x SHA-256 + weight walk)", best_raw),
                           ("Client.assign(), first time (dedup set + exposure queued)", best_fresh),
                           ("Client.assign(), same units again (dedup hit)", best_again)):
        print(f"    {label:<58}{seconds:>8.2f}s{seconds / n * 1e6:>9.2f}us{seconds / best_raw:>7.2f}x")
    ratio = best_fresh / best_raw
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"  {verdict}  assign() first time <= {TARGET_RATIO:g}x the raw recipe: {ratio:.2f}x "
          f"(rounds raw {min(raw):.2f}-{max(raw):.2f}s, assign {min(fresh):.2f}-{max(fresh):.2f}s)")
    return ratio <= TARGET_RATIO


def _exposure_figures(args, base_url: str, key: str, database_url: str) -> bool:
    client = Client(base_url, key, start=False, max_queue=args.exposures + 1)
    client.refresh()
    for i in range(args.exposures):
        client.assign("bench-exposures", f"exposed-{i}")
    started = time.perf_counter()
    client.flush_now()
    seconds = time.perf_counter() - started
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT COUNT(*) FROM experiments_assignment a JOIN experiments_experiment e ON e.id = a.experiment_id "
            "WHERE e.key = 'bench-exposures'").fetchone()[0]
    rate = args.exposures / seconds
    print(f"\n(2) {args.exposures:,} exposures flushed ({-(-args.exposures // 10_000)} requests of <= 10,000 units, "
          f"up to 4 at a time, the client's default senders)")
    print(f"    first flush to last exposure stored: {seconds:.2f}s = {rate:,.0f} units/s; rows stored {stored:,}; "
          f"stats {client.stats}")
    ok = rate >= TARGET_UNITS_PER_SECOND and stored == args.exposures
    print(f"  {'PASS' if ok else 'FAIL'}  >= {TARGET_UNITS_PER_SECOND:,} units/s and every exposure stored once")
    return ok


if __name__ == "__main__":
    sys.exit(main())
