"""The ingestion benchmark's steps: COPY, REST posts and import_observations, with their CPU and memory meters."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psycopg

from bench.common import PYTHON, ROOT, spawn_gunicorn
from bench.ingest_data import COLUMNS, Dataset

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


def stored(database_url: str, table: str, experiment_id: int) -> tuple[int, int, int, int, int]:
    """(rows, distinct ids, the experiment's observation_count, its unit-sum rows, metrics observed) for one experiment."""
    with psycopg.connect(database_url) as conn:
        rows, ids, metrics = conn.execute(
            f"SELECT count(*), count(DISTINCT idempotency_key), count(DISTINCT metric_position) FROM {table} "
            "WHERE experiment_id = %s", (experiment_id,)).fetchone()
        counter = conn.execute("SELECT observation_count FROM experiments_experiment WHERE id = %s",
                               (experiment_id,)).fetchone()[0]
        sums = conn.execute("SELECT count(*) FROM experiments_unitoutcome WHERE experiment_id = %s",
                            (experiment_id,)).fetchone()[0]
    return rows, ids, counter, sums, metrics


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


def psql_copy(database_url: str, table: str, path: Path, columns: str = COLUMNS) -> tuple[float, float]:
    """`psql \\copy` of a CSV file of the table's columns into `table`, in one COPY: (seconds, psql's CPU seconds).

    The floor a database engineer would reach for: no application, one statement, one commit.
    """
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = ["psql", database_url, "-X", "-q", "-v", "ON_ERROR_STOP=1",
               "-c", f"\\copy {table} ({columns}) FROM '{path}' WITH (FORMAT csv)"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"psql \\copy failed:\n{done.stdout}\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


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
    """Start gunicorn and wait (up to 30 s) until it answers /healthz with all its workers up."""
    server = spawn_gunicorn(env, workers, port, workdir)
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


# -- figures and the import -------------------------------------------------------------------

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


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def own_rate(line: str) -> str:
    """The rows/s and seconds import_observations reports for itself, from its last line."""
    match = re.search(r"in ([\d.]+) s \(([\d,]+) rows/s\)", line)
    return f"{match.group(2)} rows/s in its own {match.group(1)} s" if match else line
