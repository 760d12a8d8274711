"""The assignment benchmark's clients: HTTP requests, wrk runs and their parsing, other processes' CPU share."""

from __future__ import annotations

from http.client import HTTPConnection
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

EXPERIMENT_KEY = "bench-ab"
REPEAT_UNITS = 1_000
BATCH_UNITS = 10_000
ASSIGNMENT_PATH = f"/api/v1/experiments/{EXPERIMENT_KEY}/assignment/?unit="
BATCH_PATH = "/api/v1/assignments/"

# Every request a never-seen unit: "<prefix>-<thread>-<counter>". done() prints how many
# requests each thread generated (= distinct units requested, including those in flight
# when wrk stopped).
LUA_FIRST_TIME = f"""
local threads = {{}}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  prefix = args[1] or "n"
end
function request()
  counter = counter + 1
  return wrk.format("GET", "{ASSIGNMENT_PATH}" .. prefix .. "-" .. tid .. "-" .. counter)
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("counter") end
  io.write(string.format("BENCH_GENERATED %d\\n", total))
end
"""

# Cycling over the REPEAT_UNITS units "r-0" .. "r-999" (each thread from its own offset).
LUA_REPEAT = f"""
local threads = {{}}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  counter = tid * 397
end
function request()
  counter = counter + 1
  return wrk.format("GET", "{ASSIGNMENT_PATH}r-" .. (counter % {REPEAT_UNITS}))
end
"""


@dataclass
class Figure:
    name: str
    rate: float            # requests/s, or units/s for batches
    unit: str              # "req/s" or "units/s"
    p50: float             # seconds
    p99: float | None      # seconds (max for the sequential batches)
    p99_label: str = "p99"
    requests: int = 0
    bad: str = ""          # non-2xx responses and socket errors, if any
    spread: tuple[float, float] | None = None   # min and max throughput over the rounds
    foreign_cpu: float | None = None            # share of the machine other processes used meanwhile


# -- HTTP -------------------------------------------------------------------------------------

def http(port: int, method: str, path: str, key: str, body: dict | None = None, timeout: float = 60):
    """One request on a fresh connection: (status, body bytes)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def batch(port: int, key: str, units: list[str]) -> float:
    """POST one batch and check the answer; returns the seconds from sending to the last byte."""
    started = time.perf_counter()
    status, raw = http(port, "POST", BATCH_PATH, key, {"units": units, "experiment": EXPERIMENT_KEY})
    elapsed = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"POST {BATCH_PATH} answered {status}: {raw[:300]!r}")
    answers = json.loads(raw)["assignments"]
    if len(answers) != len(units) or any(a["unit"] != u or not a["in_experiment"] for a, u in zip(answers, units)):
        raise SystemExit("The batch answer does not match the request.")
    return elapsed


# -- wrk --------------------------------------------------------------------------------------

_DURATION = re.compile(r"([\d.]+)(us|ms|s|m)\b")
_SCALE = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"Unreadable wrk duration {text!r}")
    return float(match.group(1)) * _SCALE[match.group(2)]


def wrk(args, port: int, key: str, path: str, script: Path | None = None, script_args: tuple = (),
         duration: int | None = None) -> dict:
    """One wrk run against `path`: req/s, p50, p99, requests, errors and other processes' CPU share."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration or args.duration}s",
               "--latency", "-H", f"Authorization: Bearer {key}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(f"http://127.0.0.1:{port}{path}")
    if script_args:
        command += ["--", *script_args]
    before = cpu_snapshot(args)
    done = subprocess.run(command, capture_output=True, text=True)
    after = cpu_snapshot(args)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{out}\n{done.stderr}")
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _seconds(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99": _seconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0,
        "socket_errors": m.group(0) if (m := re.search(r"Socket errors:.*", out)) else "",
        "generated": int(m.group(1)) if (m := re.search(r"BENCH_GENERATED (\d+)", out)) else None,
        "foreign_cpu": foreign_share(before, after),
    }
    return result


def cpu_snapshot(args) -> tuple[float, dict[str, int]]:
    """(seconds, CPU ticks so far of every process that is someone else's, children included).

    Not someone else's: this script and its ancestors, the gunicorn process group, the
    PostgreSQL backends of the bench database, and what everyone shares (kernel threads,
    which do the loopback networking; init; PostgreSQL's postmaster and auxiliary
    processes such as the WAL writer). Counting the others' processes (with their
    finished children) rather than subtracting ours from the machine's busy time keeps a
    database connection that CONN_MAX_AGE recycles from looking like someone else's work.
    """
    mine = {str(os.getpid())}
    pid = os.getppid()
    while pid > 1:
        mine.add(str(pid))
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    others: dict[str, int] = {}
    # A backend is "postgres: 15/main: USER DB HOST(PORT) STATE"; the rest are auxiliary processes.
    backend = re.compile(r"postgres: [^:]+: \S+ (\S+) (\S+\(\d+\)|\[local\])")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if pid in mine or pid == "1":
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, pgid = int(stat[1]), int(stat[2])
        if pid == "2" or ppid == 2 or pgid == args.server_pgid:
            continue
        if "postgres" in cmdline.split(" ", 1)[0]:
            match = backend.match(cmdline)
            if match is None or match.group(1) == args.db_name:
                continue  # postmaster, auxiliary process, or a backend of the bench database
        others[pid] = sum(int(x) for x in stat[11:15])  # utime, stime, cutime, cstime
    return time.monotonic(), others


def foreign_share(before, after) -> float:
    """Share of the machine's CPU that other processes used between two snapshots."""
    ticks = sum(total - before[1].get(pid, 0) for pid, total in after[1].items())
    elapsed = after[0] - before[0]
    return max(0.0, ticks / os.sysconf("SC_CLK_TCK") / (elapsed * (os.cpu_count() or 1)))


def figure(name: str, result: dict) -> Figure:
    """A wrk run's figure, its non-2xx answers and socket errors noted."""
    bad = []
    if result["non2xx"]:
        bad.append(f"{result['non2xx']} non-2xx")
    if result["socket_errors"]:
        bad.append(result["socket_errors"])
    return Figure(name, result["rps"], "req/s", result["p50"], result["p99"],
                  requests=result["requests"], bad="; ".join(bad))


def count_rows(database_url: str, like: str) -> int:
    """The experiment's assignment rows whose unit is LIKE `like`."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM experiments_assignment a JOIN experiments_experiment e ON e.id = a.experiment_id"
            " WHERE e.key = %s AND a.unit LIKE %s", (EXPERIMENT_KEY, like),
        ).fetchone()[0]
