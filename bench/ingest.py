"""Observation ingestion throughput: the REST endpoint and import_observations against a raw COPY.

Sets up a dedicated PostgreSQL database (dropped, created, migrated), a service key, a
running `champion_challenger` continuous experiment (observations name their variant, so no
assignment pass is needed) and, unless --no-ab, a running `ab` binary experiment with
100,000 units assigned beforehand (the path that checks each unit's stored assignment).
Then, with the same generated rows each time and each step inserting N rows into an
empty table (TRUNCATE + CHECKPOINT before each; for the application's steps the per-unit
sums it keeps beside the observations, experiments_unitoutcome, are emptied too):

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
  (a2) information: (a) again at the end, to show how much the machine's load drifted.

Targets: (b) >= 25% of (a)'s rows/s, (c) >= 50% of (a)'s rows/s, worker memory flat.
Besides wall time, each step's CPU time per row is printed (the Python side and the
database's backends, from /proc): on a machine shared with other work, wall-time ratios
move with the load, CPU per row much less.

Usage: .venv/bin/python bench/ingest.py [--rows 1000000] [--workers 2] [--clients 2] [--no-ab]
       [--ab-import]   (also time import_observations for the ab experiment)
       [--breakdown]   (after the run: in-process time per stage of one 10,000-row request)
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import free_port, interrupt, manage, recreate_database, redacted, server_env, stop  # noqa: E402

PYTHON = sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_ingest"
CC_KEY = "bench-cc"
AB_KEY = "bench-ab"
WARMUP_KEY = "bench-warmup"
AB_UNITS = 100_000
BATCH = 10_000
TARGET_REST = 0.25
TARGET_IMPORT = 0.50
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

def cc(key):
    definition = dict(
        key=key, name="Benchmark ranker", hypothesis="The challenger model has a lower loss",
        design="champion_challenger", metric_name="loss", metric_type="continuous",
        metric_direction="decrease", baseline_mean=None, baseline_sd=5.0, mde=0.5,
        sample_size_per_variant=None, alpha=0.05, power=0.8, alternative="two-sided",
        duration=timedelta(days=14), grace_period=timedelta(0), traffic_percent=100.0, auto_promote=False,
        variants=[{"key": "champion", "weight": 1.0, "is_control": True, "payload": {}},
                  {"key": "challenger", "weight": 1.0, "is_control": False, "payload": {}}],
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

made = [cc(CC_KEY), cc(WARMUP_KEY)] + ([ab(AB_KEY)] if AB_UNITS else [])
print(json.dumps({e.key: {"id": e.id, "status": e.status, "design": e.design, "metric": e.metric_type,
                          "variants": {v.key: v.id for v in e.variants.all()}} for e in made}))
"""


# -- data -------------------------------------------------------------------------------------

@dataclass
class Dataset:
    """The same rows three ways: REST bodies, a CSV file, and tuples for COPY."""

    key: str
    rows: int
    bodies: list[bytes]
    csv_path: Path
    copy_batches: list[list[tuple]] = field(default_factory=list)


def make_cc(rows: int, experiment: dict, workdir: Path, received_at: datetime) -> Dataset:
    """Champion/challenger: request r-N scored by both models (value = loss, plus latency)."""
    rng = random.Random(42)
    variants = experiment["variants"]
    bodies, copy_batches = [], []
    csv_path = workdir / "cc.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as csv_file:
        csv_file.write("unit,value,variant,id,timestamp,latency_ms\n")
        for start in range(0, rows, BATCH):
            items, tuples, lines = [], [], []
            for i in range(start, min(start + BATCH, rows)):
                unit = f"r-{i // 2:07d}"
                variant = "champion" if i % 2 == 0 else "challenger"
                value = round(rng.gammavariate(2.0, 5.0), 6)
                latency = round(rng.uniform(5.0, 80.0), 3)
                ident = f"o-{i:07d}"
                when = BASE_TIME + timedelta(milliseconds=i)
                stamp = when.isoformat()
                items.append({"unit": unit, "value": value, "variant": variant, "id": ident,
                              "timestamp": stamp, "latency_ms": latency})
                tuples.append((experiment["id"], variants[variant], unit, value, latency, when, received_at, ident))
                lines.append(f"{unit},{value!r},{variant},{ident},{stamp},{latency!r}\n")
            bodies.append(orjson.dumps({"observations": items}))
            copy_batches.append(tuples)
            csv_file.writelines(lines)
    return Dataset(CC_KEY, rows, bodies, csv_path, copy_batches)


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


# -- database ---------------------------------------------------------------------------------

def sql(database_url: str, *statements: str, fetch: bool = False):
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = None
        for statement in statements:
            cursor = conn.execute(statement)
            if fetch and cursor.description:
                result = cursor.fetchall()
        return result


def clean(database_url: str, *tables: str) -> None:
    """Empty the tables, zero the counters and CHECKPOINT, so that each step starts alike."""
    sql(database_url, f"TRUNCATE {', '.join(tables)}", "UPDATE experiments_experiment SET observation_count = 0",
        "CHECKPOINT")


def stored(database_url: str, table: str, experiment_id: int) -> tuple[int, int, int, int]:
    """(rows, distinct ids, the experiment's observation_count, its unit-sum rows) for one experiment."""
    with psycopg.connect(database_url) as conn:
        rows, ids = conn.execute(
            f"SELECT count(*), count(DISTINCT idempotency_key) FROM {table} WHERE experiment_id = %s",
            (experiment_id,)).fetchone()
        counter = conn.execute("SELECT observation_count FROM experiments_experiment WHERE id = %s",
                               (experiment_id,)).fetchone()[0]
        sums = conn.execute("SELECT count(*) FROM experiments_unitoutcome WHERE experiment_id = %s",
                            (experiment_id,)).fetchone()[0]
    return rows, ids, counter, sums


def raw_copy(database_url: str, table: str, dataset: Dataset) -> float:
    """COPY every batch (one COPY statement and one commit each); returns the seconds."""
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        for batch in dataset.copy_batches:
            with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
            conn.commit()
        return time.perf_counter() - started


# -- gunicorn and its workers' memory ---------------------------------------------------------

def children(pid: int) -> list[int]:
    try:
        return sorted(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
        return sorted(found)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB (empty if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M)}

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuMeter(threading.Thread):
    """CPU seconds used during a step by some Python processes and by the database's backends.

    Backends are the PostgreSQL processes connected to the benchmark database (from
    pg_stat_activity, sampled every 0.1 s so that short-lived ones are caught); PostgreSQL's
    shared background processes (WAL writer, checkpointer, autovacuum) are not counted.
    """

    def __init__(self, database_url: str, python_pids: list[int]):
        super().__init__(daemon=True)
        self.database_url = database_url
        self.python_pids = python_pids
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.backends: set[int] = set()
        self._stop_event = threading.Event()
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._sample(initial=True)

    def _sample(self, initial: bool = False) -> None:
        rows = self._conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                  " AND pid <> pg_backend_pid()").fetchall()
        self.backends.update(pid for (pid,) in rows)
        for pid in [*self.python_pids, *self.backends]:
            used = cpu_seconds(pid)
            if used is None:
                continue
            # A process first seen after the start began within the step: count from zero.
            self.first.setdefault(pid, used if initial else 0.0)
            self.last[pid] = used

    def run(self) -> None:
        while not self._stop_event.wait(0.1):
            self._sample()

    def stop(self) -> tuple[float, float]:
        """(Python CPU seconds, PostgreSQL backends' CPU seconds) since the meter was made."""
        self._stop_event.set()
        self.join()
        self._sample()
        self._conn.close()
        used = {pid: self.last[pid] - self.first[pid] for pid in self.last}
        return (sum(used.get(pid, 0.0) for pid in self.python_pids),
                sum(used.get(pid, 0.0) for pid in self.backends))


class MemoryMonitor(threading.Thread):
    """Samples each worker's VmRSS every 0.2 s and records VmHWM at named moments."""

    def __init__(self, pids: list[int], idle: dict[int, dict[str, int]]):
        super().__init__(daemon=True)
        self.pids = pids
        self.idle = idle      # memory before the warm-up requests
        self.peak_rss = {pid: 0 for pid in pids}
        self.marks: dict[str, dict[int, dict[str, int]]] = {}
        self._stop_event = threading.Event()

    def mark(self, name: str) -> None:
        self.marks[name] = {pid: memory_kb(pid) for pid in self.pids}

    def run(self) -> None:
        while not self._stop_event.is_set():
            for pid in self.pids:
                self.peak_rss[pid] = max(self.peak_rss[pid], memory_kb(pid).get("VmRSS", 0))
            self._stop_event.wait(0.2)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def start_gunicorn(env: dict[str, str], workers: int, port: int, workdir: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=open(workdir / "gunicorn.log", "wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited:\n" + (workdir / "gunicorn.log").read_text(errors="replace"))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/healthz")
            status = conn.getresponse().status
            conn.close()
            if status == 200 and len(children(server.pid)) == workers:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz within 30 s:\n"
                     + (workdir / "gunicorn.log").read_text(errors="replace"))


def post(port: int, key: str, token: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", f"/api/v1/experiments/{key}/observations/", body=body,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_all(port: int, key: str, token: str, bodies: list[bytes], clients: int,
             on_half=None) -> tuple[float, int, int]:
    """POST every body from `clients` threads; returns (seconds, accepted, duplicates)."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "accepted": 0, "duplicates": 0, "error": None}

    def client():
        while True:
            with lock:
                if state["error"] or state["next"] >= len(bodies):
                    return
                index = state["next"]
                state["next"] += 1
            status, raw = post(port, key, token, bodies[index])
            with lock:
                if status != 201:
                    state["error"] = f"batch {index}: HTTP {status}: {raw[:400]!r}"
                    return
                answer = orjson.loads(raw)
                state["accepted"] += answer["accepted"]
                state["duplicates"] += answer["duplicates"]
                state["done"] += 1
                if on_half and state["done"] == len(bodies) // 2:
                    on_half()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if state["error"]:
        raise SystemExit(f"POST {key} failed: {state['error']}")
    return seconds, state["accepted"], state["duplicates"]


# -- the run ----------------------------------------------------------------------------------

@dataclass
class Figure:
    tag: str
    name: str
    rows: int
    seconds: float
    target: float | None = None       # share of (a) required
    note: str = ""
    load: str = field(default_factory=lambda: _load())   # 1-minute load average when recorded
    py_cpu: float | None = None       # CPU seconds of the Python side (COPY client, gunicorn workers, command)
    pg_cpu: float | None = None       # CPU seconds of the database's backends

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


@dataclass
class MemoryReport:
    label: str
    monitor: MemoryMonitor


def run_import(env: dict[str, str], dataset: Dataset, workdir: Path) -> tuple[float, int, float, str]:
    """Time import_observations as a subprocess: (seconds, peak RSS kB, CPU seconds, its own last line)."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = workdir / f"time-{dataset.key}.txt"
    command = [PYTHON, "manage.py", "import_observations", dataset.key, str(dataset.csv_path), "--no-progress"]
    use_time = Path("/usr/bin/time").exists()
    if use_time:
        command = ["/usr/bin/time", "-v", "-o", str(timing), *command]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import_observations failed:\n{done.stdout}\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if use_time:
        peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text()).group(1))
    else:
        peak = after.ru_maxrss   # the largest of any child so far: gunicorn's workers are not children
    return seconds, peak, cpu, done.stdout.strip().splitlines()[-1]


def main() -> int:
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

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = server_env(database_url, workdir)
    port = args.port or free_port()
    server = None
    signal.signal(signal.SIGTERM, interrupt)
    begun = time.monotonic()
    print(f"Load average before the run: {Path('/proc/loadavg').read_text().split()[0]} "
          f"({os.cpu_count()} cores; anything else busy skews every figure)", flush=True)
    try:
        print(f"Database {redacted(database_url)}: drop, create, migrate ...", flush=True)
        recreate_database(database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        token = manage(env, "create_service_key", "bench-ingest").strip().splitlines()[-1]
        setup = SETUP.replace("AB_UNITS", str(0 if args.no_ab else AB_UNITS)).replace(
            "CC_KEY", repr(CC_KEY)).replace("WARMUP_KEY", repr(WARMUP_KEY)).replace("AB_KEY", repr(AB_KEY))
        experiments = orjson.loads(manage(env, "shell", "-c", setup).strip().splitlines()[-1])
        sql(database_url, "ANALYZE")
        for key, e in experiments.items():
            print(f"  experiment {key}: {e['design']} {e['metric']}, {e['status']}, variants {list(e['variants'])}")
        if not args.no_ab:
            assigned = sql(database_url, "SELECT count(*) FROM experiments_assignment", fetch=True)[0][0]
            print(f"  {assigned:,} units assigned in {AB_KEY} beforehand")

        print(f"Generating {args.rows:,} rows (REST bodies, CSV, COPY tuples; not timed) ...", flush=True)
        received_at = datetime.now(timezone.utc)
        cc = make_cc(args.rows, experiments[CC_KEY], workdir, received_at)
        ab = None if args.no_ab else make_ab(args.rows, workdir)
        (workdir / "warm").mkdir()
        warm = make_cc(8 * BATCH, experiments[WARMUP_KEY], workdir / "warm", received_at)
        body_mb = sum(map(len, cc.bodies)) / len(cc.bodies) / 1e6
        print(f"  {len(cc.bodies)} bodies of {BATCH:,} observations ({body_mb:.2f} MB each), "
              f"CSV {cc.csv_path.stat().st_size / 1e6:.0f} MB", flush=True)

        figures: list[Figure] = []
        counts: list[tuple[str, int, int, int]] = []
        cc_id = experiments[CC_KEY]["id"]

        print("Each step inserts into an empty table (TRUNCATE + CHECKPOINT before it).", flush=True)
        print("(a) raw COPY into bench_copy ...", flush=True)
        sql(database_url, "DROP TABLE IF EXISTS bench_copy",
            "CREATE TABLE bench_copy (LIKE experiments_observation INCLUDING ALL)")
        clean(database_url, "bench_copy")
        meter = CpuMeter(database_url, [os.getpid()])
        meter.start()
        seconds = raw_copy(database_url, "bench_copy", cc)
        figures.append(Figure("a", "raw COPY, bench_copy (LIKE ... INCLUDING ALL)", args.rows, seconds,
                              py_cpu=(cpu := meter.stop())[0], pg_cpu=cpu[1]))
        counts.append(("(a) bench_copy", *stored(database_url, "bench_copy", cc_id)[:2], None, None))
        clean(database_url, "bench_copy")

        print("(a') raw COPY into experiments_observation (with its foreign keys) ...", flush=True)
        clean(database_url, *OBSERVATION_TABLES)
        meter = CpuMeter(database_url, [os.getpid()])
        meter.start()
        seconds = raw_copy(database_url, "experiments_observation", cc)
        figures.append(Figure("a'", "raw COPY, experiments_observation (+ FKs)", args.rows, seconds,
                              py_cpu=(cpu := meter.stop())[0], pg_cpu=cpu[1], note="information"))
        counts.append(("(a') experiments_observation", *stored(database_url, "experiments_observation", cc_id)[:2],
                       None, None))

        print(f"(b) gunicorn config.wsgi --workers {args.workers} (DEBUG=false) ...", flush=True)
        server = start_gunicorn(env, args.workers, port, workdir)
        pids = children(server.pid)
        monitors: list[MemoryReport] = []
        idle = {pid: memory_kb(pid) for pid in pids}
        # Warm every worker (imports, connection, temp table) on a separate experiment.
        post_all(port, WARMUP_KEY, token, warm.bodies, args.clients)
        clean(database_url, *OBSERVATION_TABLES)

        rest_runs = [(cc, "cc", f"REST POST, {CC_KEY} (champion_challenger continuous)")]
        if ab is not None:
            rest_runs.append((ab, "ab", f"REST POST, {AB_KEY} (ab binary, {AB_UNITS:,} assigned)"))
        for dataset, short, name in rest_runs:
            print(f"  {short}: {len(dataset.bodies)} POSTs of {BATCH:,} from {args.clients} threads ...", flush=True)
            monitor = MemoryMonitor(pids, idle)
            monitor.mark("start")
            monitor.start()
            meter = CpuMeter(database_url, pids)
            meter.start()
            seconds, accepted, duplicates = post_all(port, dataset.key, token, dataset.bodies, args.clients,
                                                     on_half=lambda m=monitor: m.mark("mid"))
            py_cpu, pg_cpu = meter.stop()
            monitor.mark("end")
            monitor.stop()
            monitors.append(MemoryReport(f"(b) {short}", monitor))
            tag = "b" if short == "cc" else "b-ab"
            figures.append(Figure(tag, name, accepted, seconds, TARGET_REST, py_cpu=py_cpu, pg_cpu=pg_cpu,
                                  note=f"{duplicates} duplicates" if duplicates else ""))
            e_id = experiments[dataset.key]["id"]
            counts.append((f"({tag}) experiments_observation", *stored(database_url, "experiments_observation",
                                                                        e_id)))
            clean(database_url, *OBSERVATION_TABLES)
        if children(server.pid) != pids:
            print("WARNING: gunicorn workers were replaced during the run", flush=True)
        stop(server)
        server = None

        for dataset, tag, name in [(cc, "c", f"import_observations, {CC_KEY} CSV")] + (
                [(ab, "c-ab", f"import_observations, {AB_KEY} CSV")] if ab and args.ab_import else []):
            print(f"({tag}) manage.py import_observations {dataset.key} {dataset.csv_path.name} --no-progress ...",
                  flush=True)
            meter = CpuMeter(database_url, [])
            meter.start()
            seconds, peak_kb, py_cpu, own = run_import(env, dataset, workdir)
            figures.append(Figure(tag, name, dataset.rows, seconds, TARGET_IMPORT, py_cpu=py_cpu,
                                  pg_cpu=meter.stop()[1],
                                  note=f"peak RSS {peak_kb / 1024:.0f} MB; says: {_own_rate(own)}"))
            e_id = experiments[dataset.key]["id"]
            counts.append((f"({tag}) experiments_observation", *stored(database_url, "experiments_observation",
                                                                       e_id)))
            clean(database_url, *OBSERVATION_TABLES)

        print("(a2) raw COPY into bench_copy again (drift check: did the machine's load change?) ...", flush=True)
        clean(database_url, "bench_copy")
        meter = CpuMeter(database_url, [os.getpid()])
        meter.start()
        seconds = raw_copy(database_url, "bench_copy", cc)
        figures.append(Figure("a2", "raw COPY, bench_copy, again at the end", args.rows, seconds,
                              py_cpu=(cpu := meter.stop())[0], pg_cpu=cpu[1], note="information: load drift"))
        counts.append(("(a2) bench_copy", *stored(database_url, "bench_copy", cc_id)[:2], None, None))
        clean(database_url, "bench_copy")

        ok = report(args, figures, counts, monitors, time.monotonic() - begun)
        if args.breakdown:
            breakdown(env, experiments, cc, ab)
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _own_rate(line: str) -> str:
    match = re.search(r"in ([\d.]+) s \(([\d,]+) rows/s\)", line)
    return f"{match.group(2)} rows/s in its own {match.group(1)} s" if match else line


def report(args, figures: list[Figure], counts, monitors: list[MemoryReport], total: float) -> bool:
    copies = [f for f in figures if f.tag in ("a", "a2")]
    best = max(copies, key=lambda f: f.rate)
    baseline = best.rate
    baseline_cpu = (best.py_cpu + best.pg_cpu) / best.rows
    print()
    print(f"Ingestion benchmark: {args.rows:,} rows per figure, batches of {BATCH:,}, PostgreSQL, "
          f"gunicorn {args.workers} sync workers, {args.clients} client threads, {os.cpu_count()} cores "
          f"shared by client, server and database")
    print("Each figure inserts the same rows into an empty table (TRUNCATE + CHECKPOINT before each).")
    print("load = the machine's 1-minute load average at the end of the step (this process and gunicorn included).")
    print(f"vs COPY = rows/s over the faster raw COPY into bench_copy, ({best.tag}) {baseline:,.0f} rows/s: (a) at the "
          "start and (a2) at the end, the faster being the one least slowed by other load (the stricter baseline).")
    print()
    header = (f"{'figure':<5} {'what':<56} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'vs COPY':>7} {'load':>5}"
              "  target")
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
        print(f"{'(' + f.tag + ')':<5} {f.name:<56} {f.rows:>10,} {f.seconds:>8.2f} {f.rate:>10,.0f} "
              f"{ratio:>7.0%} {f.load:>5}  {target}" + (f"  [{f.note}]" if f.note else ""))
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
    print()
    print("Rows stored after each step (then truncated):")
    for label, rows, ids, counter, sums in counts:
        ok = rows == args.rows and ids == args.rows and counter in (None, args.rows)
        all_ok &= ok
        counter_text = f", observation_count {counter:,}, unit-sum rows {sums:,}" if counter is not None else ""
        print(f"  {label:<34} {rows:>10,} rows, {ids:>10,} distinct ids{counter_text}  {'OK' if ok else 'MISMATCH'}")
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
    print()
    print(f"Whole run {total:.0f} s; {'all targets met' if all_ok else 'some targets missed'}.")
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


if __name__ == "__main__":
    sys.exit(main())
