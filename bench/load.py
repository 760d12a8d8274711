"""Mixed traffic against a real server, then a proof in the database that nothing was lost or doubled.

Sets up a dedicated PostgreSQL database (dropped and recreated), a service key, a running A/B
experiment (`load-ab`, traffic 100%) and a running champion/challenger one (`load-cc`), starts
`gunicorn config.wsgi --workers W` (sync workers, DEBUG off, Redis broker) on 127.0.0.1, and runs
N client threads for S seconds, each sending at random:

  assign-one    GET /api/v1/experiments/load-ab/assignment/?unit=U   a new unit, a unit asked
                before (by any client), or a "hot" new unit that several clients ask at once
  assign-batch  POST /api/v1/assignments/ {"units": [...], "experiment": "load-ab"}, new and old units
  observe       POST .../observations/ 50 new observations with client-chosen ids, to load-ab
                (units already assigned) or load-cc (each names its variant); some batches also
                repeat ids already accepted
  observe-retry POST .../observations/ a body already answered, resent as it was (same ids),
                by any client, possibly while another client resends it too

A request that gets no answer (a socket error) is sent again, body unchanged, up to 5 times, as a
client with idempotency ids would. Then it proves, in the database:

  observations  rows = distinct ids = sum of `accepted`; accepted + duplicates = items sent in
                every answered request; distinct ids sent = rows; observation_count = rows
  assignments   rows = distinct units asked; no unit with two rows; each unit's stored variant
                is the one every answer gave

It prints requests, errors by status, p50 and p99 latency per kind, and the proof; the exit code
is 1 when the proof fails (or a request was never answered), 0 otherwise.

Usage: .venv/bin/python bench/load.py [--clients 32] [--seconds 60] [--workers 4] [--port P]
       (env BENCH_DATABASE_URL: the database it drops and recreates; default .../bench_load)
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, free_port, interrupt, manage, recreate_database, redacted, server_env, stop

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_load"
HOST = "127.0.0.1"  # loopback only, always
AB_KEY, CC_KEY = "load-ab", "load-cc"
KINDS = ("assign-one", "assign-batch", "observe", "observe-retry")
MIX = {"assign-one": 0.50, "assign-batch": 0.15, "observe": 0.25, "observe-retry": 0.10}
BATCH_UNITS = (20, 200)        # units per batch assignment (min, max)
OBSERVATIONS_PER_BATCH = 50
ATTEMPTS = 5                   # sends of one request that gets no answer
TIMEOUT = 30.0                 # seconds per request

CREATE_EXPERIMENTS = f"""
import json
from datetime import timedelta
from experiments.services.definition import experiment_create
from experiments.services.lifecycle import experiment_start

def definition(key, design, metric_type, direction, variants, **numbers):
    return dict(key=key, name=key, hypothesis="Load test", design=design, metric_name="m",
                metric_type=metric_type, metric_direction=direction, sample_size_per_variant=None,
                alpha=0.05, power=0.8, alternative="two-sided", duration=timedelta(days=14),
                grace_period=timedelta(0), traffic_percent=100.0, auto_promote=False,
                variants=[{{"key": k, "weight": 1.0, "is_control": i == 0, "payload": {{"v": k}}}}
                          for i, k in enumerate(variants)], **numbers)

made = [
    definition({AB_KEY!r}, "ab", "binary", "increase", ["control", "green"],
               baseline_mean=0.10, baseline_sd=None, mde=0.01),
    definition({CC_KEY!r}, "champion_challenger", "continuous", "decrease", ["champion", "challenger"],
               baseline_mean=None, baseline_sd=5.0, mde=0.5),
]
made = [experiment_start(experiment=experiment_create(actor=None, definition=d), actor=None) for d in made]
print(json.dumps({{e.key: e.status for e in made}}))
"""


# -- what the clients share --------------------------------------------------------------------

@dataclass
class Shared:
    """Everything the clients learn, behind one lock (appends only)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    asked_units: set[str] = field(default_factory=set)           # every unit asked (answered or not)
    assigned: list[str] = field(default_factory=list)             # units answered in_experiment
    variants: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    answered_bodies: list[tuple[str, bytes, int]] = field(default_factory=list)  # (key, body, items)
    sent_ids: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    accepted: collections.Counter = field(default_factory=collections.Counter)
    duplicates: collections.Counter = field(default_factory=collections.Counter)
    items: collections.Counter = field(default_factory=collections.Counter)
    mismatched_counts: int = 0                                  # accepted + duplicates != items
    unanswered: int = 0                                          # requests with no answer after ATTEMPTS
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(collections.Counter))


def _send(port: int, token: str, method: str, path: str, body: bytes | None) -> tuple[int | str, bytes]:
    """One HTTP request on a fresh loopback connection: (status, body), or (error name, b"")."""
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, b""
    finally:
        conn.close()


def _request(shared: Shared, kind: str, port: int, token: str, method: str, path: str,
             body: bytes | None = None) -> tuple[int | None, bytes]:
    """Send until answered (at most ATTEMPTS times, body unchanged); record latency and status."""
    for _ in range(ATTEMPTS):
        started = time.perf_counter()
        status, raw = _send(port, token, method, path, body)
        elapsed = time.perf_counter() - started
        with shared.lock:
            shared.statuses[kind][status] += 1
            if isinstance(status, int):
                shared.latencies[kind].append(elapsed)
        if isinstance(status, int):
            return status, raw
        time.sleep(0.05)
    with shared.lock:
        shared.unanswered += 1
    return None, b""


def _client(number: int, port: int, token: str, deadline: float, shared: Shared, seed: int) -> None:
    rng = random.Random(seed * 1000 + number)
    kinds, weights = list(MIX), list(MIX.values())
    counter = 0
    while time.monotonic() < deadline:
        counter += 1
        kind = rng.choices(kinds, weights)[0]
        if kind == "assign-one":
            _assign_one(rng, number, counter, port, token, shared)
        elif kind == "assign-batch":
            _assign_batch(rng, number, counter, port, token, shared)
        elif kind == "observe" or not shared.answered_bodies:
            _observe(rng, number, counter, port, token, shared)
        else:
            _observe_retry(rng, port, token, shared)


def _known_unit(rng: random.Random, shared: Shared) -> str | None:
    with shared.lock:
        return rng.choice(shared.assigned) if shared.assigned else None


def _record_assignments(shared: Shared, answers: list[dict]) -> None:
    with shared.lock:
        for answer in answers:
            shared.variants[answer["unit"]].add(answer["variant"])
            if answer["in_experiment"]:
                shared.assigned.append(answer["unit"])


def _assign_one(rng, number, counter, port, token, shared) -> None:
    roll = rng.random()
    if roll < 0.15:
        unit = f"hot-{int(time.monotonic() * 20)}"  # the same new unit for everyone within 50 ms
    elif roll < 0.45:
        unit = _known_unit(rng, shared) or f"n{number}-{counter}"
    else:
        unit = f"n{number}-{counter}"
    with shared.lock:
        shared.asked_units.add(unit)
    status, raw = _request(shared, "assign-one", port, token, "GET",
                           f"/api/v1/experiments/{AB_KEY}/assignment/?unit={urllib.parse.quote(unit)}")
    if status == 200:
        _record_assignments(shared, [json.loads(raw)])


def _assign_batch(rng, number, counter, port, token, shared) -> None:
    size = rng.randint(*BATCH_UNITS)
    units = {f"b{number}-{counter}-{i}" for i in range(size - size // 4)}
    for _ in range(size // 4):
        if (unit := _known_unit(rng, shared)) is not None:
            units.add(unit)
    units = sorted(units)
    with shared.lock:
        shared.asked_units.update(units)
    body = json.dumps({"units": units, "experiment": AB_KEY}).encode()
    status, raw = _request(shared, "assign-batch", port, token, "POST", "/api/v1/assignments/", body)
    if status == 200:
        _record_assignments(shared, json.loads(raw)["assignments"])


def _observe(rng, number, counter, port, token, shared) -> None:
    items = []
    use_ab = rng.random() < 0.5 and len(shared.assigned) > 0
    key = AB_KEY if use_ab else CC_KEY
    for i in range(OBSERVATIONS_PER_BATCH):
        ident = f"o{number}-{counter}-{i}"
        if use_ab:
            items.append({"unit": _known_unit(rng, shared), "value": int(rng.random() < 0.1), "id": ident})
        else:
            items.append({"unit": f"r{number}-{counter}-{i // 2}", "value": round(rng.gammavariate(2.0, 5.0), 4),
                          "variant": "champion" if i % 2 == 0 else "challenger", "id": ident,
                          "latency_ms": round(rng.uniform(5, 80), 2)})
    # One batch in five also repeats ten items of a batch already answered (their ids, as they were).
    with shared.lock:
        earlier = [b for b in shared.answered_bodies[-200:] if b[0] == key]
    if earlier and rng.random() < 0.2:
        old = json.loads(rng.choice(earlier)[1])["observations"]
        items[:10] = rng.sample(old, min(10, len(old)))
    _post_observations(shared, "observe", port, token, key, json.dumps({"observations": items}).encode(), items)


def _observe_retry(rng, port, token, shared) -> None:
    with shared.lock:
        key, body, _ = rng.choice(shared.answered_bodies)
    _post_observations(shared, "observe-retry", port, token, key, body, json.loads(body)["observations"])


def _post_observations(shared, kind, port, token, key, body: bytes, items: list[dict]) -> None:
    status, raw = _request(shared, kind, port, token, "POST", f"/api/v1/experiments/{key}/observations/", body)
    if status is None:
        with shared.lock:  # never answered: the ids may or may not be stored (counted in unanswered)
            shared.sent_ids[key].update(item["id"] for item in items)
        return
    if status != 201:
        return  # all or nothing: a refused batch stores nothing
    answer = json.loads(raw)
    with shared.lock:
        shared.sent_ids[key].update(item["id"] for item in items)
        shared.accepted[key] += answer["accepted"]
        shared.duplicates[key] += answer["duplicates"]
        shared.items[key] += len(items)
        if answer["accepted"] + answer["duplicates"] != len(items):
            shared.mismatched_counts += 1
        shared.answered_bodies.append((key, body, len(items)))


# -- the proof ---------------------------------------------------------------------------------

def _prove(database_url: str, shared: Shared) -> list[tuple[str, bool, str]]:
    checks = []
    with psycopg.connect(database_url) as conn:
        ids = dict(conn.execute("SELECT key, id FROM experiments_experiment").fetchall())
        for key in (AB_KEY, CC_KEY):
            rows, distinct, count = conn.execute(
                "SELECT count(*), count(DISTINCT o.idempotency_key), max(e.observation_count)"
                " FROM experiments_experiment e LEFT JOIN experiments_observation o ON o.experiment_id = e.id"
                " WHERE e.id = %s", (ids[key],)).fetchone()
            rows = rows if distinct else 0  # LEFT JOIN: one all-NULL row when there is none
            accepted, duplicates, items = shared.accepted[key], shared.duplicates[key], shared.items[key]
            sent = len(shared.sent_ids[key])
            ok = rows == distinct == accepted == sent == count
            checks.append((f"observations {key}", ok,
                           f"rows {rows:,}, distinct ids {distinct:,}, sum(accepted) {accepted:,}, distinct ids "
                           f"sent {sent:,}, observation_count {count:,}; items sent {items:,} = accepted + "
                           f"duplicates ({duplicates:,})" + ("" if accepted + duplicates == items else " NOT")))
        checks.append(("observation answers", shared.mismatched_counts == 0,
                       f"{shared.mismatched_counts} answer(s) where accepted + duplicates != items"))
        stored = dict(conn.execute(
            "SELECT a.unit, v.key FROM experiments_assignment a JOIN experiments_variant v ON v.id = a.variant_id"
            " WHERE a.experiment_id = %s", (ids[AB_KEY],)).fetchall())
        rows = conn.execute("SELECT count(*) FROM experiments_assignment WHERE experiment_id = %s",
                            (ids[AB_KEY],)).fetchone()[0]
        doubled = conn.execute(
            "SELECT count(*) FROM (SELECT unit FROM experiments_assignment WHERE experiment_id = %s"
            " GROUP BY unit HAVING count(*) > 1) d", (ids[AB_KEY],)).fetchone()[0]
    asked = shared.asked_units
    missing, extra = asked - stored.keys(), stored.keys() - asked
    inconsistent = sum(1 for unit, seen in shared.variants.items() if seen != {stored.get(unit)})
    checks.append(("assignments", rows == len(asked) and not missing and not extra and doubled == 0,
                   (f"distinct units asked {len(asked):,}, rows {rows:,}, units with two rows {doubled}, "
                    f"asked without a row {len(missing)}, rows never asked {len(extra)}")))
    checks.append(("assigned variants", inconsistent == 0,
                   f"{len(shared.variants):,} units answered; {inconsistent} whose answers or row disagree"))
    checks.append(("every request answered", shared.unanswered == 0,
                   f"{shared.unanswered} request(s) unanswered after {ATTEMPTS} attempts"))
    return checks


# -- the run -----------------------------------------------------------------------------------

def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _report(args, shared: Shared, elapsed: float, checks) -> None:
    print()
    print(f"Mixed load: {args.clients} client threads for {args.seconds} s ({elapsed:.1f} s with the requests in "
          f"flight), gunicorn {args.workers} sync workers, PostgreSQL, DEBUG=false; load average {_load()}")
    header = f"{'kind':<14} {'requests':>9} {'req/s':>7} {'p50':>9} {'p99':>9}  statuses"
    print(header)
    print("-" * len(header) + "-" * 20)
    total = 0
    for kind in KINDS:
        statuses = shared.statuses.get(kind, collections.Counter())
        count = sum(statuses.values())
        total += count
        spread = ", ".join(f"{status}: {n:,}" for status, n in sorted(statuses.items(), key=lambda x: str(x[0])))
        latencies = shared.latencies.get(kind, [])
        print(f"{kind:<14} {count:>9,} {count / elapsed:>7.0f} {_ms(_percentile(latencies, 0.5)):>9} "
              f"{_ms(_percentile(latencies, 0.99)):>9}  {spread or '-'}")
    errors = collections.Counter()
    for kind, statuses in shared.statuses.items():
        for status, n in statuses.items():
            if not (isinstance(status, int) and status < 400):
                errors[status] += n
    print(f"{'all':<14} {total:>9,} {total / elapsed:>7.0f}")
    print("errors by status: " + (", ".join(f"{s}: {n:,}" for s, n in sorted(errors.items(), key=lambda x: str(x[0])))
                                  or "none"))
    print()
    print("Proof in the database:")
    for label, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}: {detail}")


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _wait_until_ready(port: int, server: subprocess.Popen, workdir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited:\n" + (workdir / "gunicorn.log").read_text(errors="replace"))
        status, _ = _send(port, "-", "GET", "/healthz/ready", None)
        if status == 200:
            return
        time.sleep(0.2)
    raise SystemExit("gunicorn was not ready within 60 s.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="client threads (default 32)")
    parser.add_argument("--seconds", type=float, default=60, help="how long the clients send (default 60)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--port", type=int, default=0, help="server port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the clients (default 1)")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    port = args.port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    env = server_env(database_url, workdir)
    server: subprocess.Popen | None = None
    signal.signal(signal.SIGTERM, interrupt)
    try:
        print(f"Database {redacted(database_url)}: drop, create, migrate ...", flush=True)
        recreate_database(database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        token = manage(env, "create_service_key", "load").strip().splitlines()[-1]
        print("Experiments:", manage(env, "shell", "--no-imports", "-c", CREATE_EXPERIMENTS).strip().splitlines()[-1])
        print(f"gunicorn config.wsgi --workers {args.workers} --bind {HOST}:{port} (DEBUG=false)", flush=True)
        with open(workdir / "gunicorn.log", "wb") as log:  # the server keeps its own copy of the file
            server = subprocess.Popen(
                [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "--workers", str(args.workers),
                 "--bind", f"{HOST}:{port}", "--log-level", "warning"],
                cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
            )
        _wait_until_ready(port, server, workdir)

        shared = Shared()
        print(f"{args.clients} clients for {args.seconds:g} s ...", flush=True)
        started = time.monotonic()
        deadline = started + args.seconds
        threads = [threading.Thread(target=_client, args=(n, port, token, deadline, shared, args.seed),
                                    name=f"client-{n}", daemon=True) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:  # each stops at the deadline, after its request in flight
            thread.join(timeout=args.seconds + ATTEMPTS * TIMEOUT + 10)
        elapsed = time.monotonic() - started
        if any(thread.is_alive() for thread in threads):
            print("Some clients did not stop in time.", file=sys.stderr)
            return 1
        checks = _prove(database_url, shared)
        _report(args, shared, elapsed, checks)
        return 0 if all(ok for _, ok, _ in checks) else 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
