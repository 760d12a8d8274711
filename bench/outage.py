"""How the analysis queue heals, timed with the production defaults: a broker outage and a killed worker.

Sets up a dedicated PostgreSQL database (dropped and recreated) and its own throwaway Redis on
a free loopback port (never the machine's), then:

  broker   a Celery worker with beat runs; Redis is stopped; an experimenter asks for the
           analysis of an ended experiment over REST (in-process client): the answer's status
           and time; Redis is started again; the time until the result is stored, nobody acting.
  worker   a worker starts the analysis of another ended experiment and is killed with SIGKILL
           while inside it (another connection holds the experiment's row, so the worker is
           caught waiting in the analysis); a new worker with beat starts; the time from the
           kill until exactly one result is stored.

The sweep interval and requeue delay are the settings' defaults (ANALYSIS_SWEEP_SECONDS 60,
ANALYSIS_REQUEUE_SECONDS 120) unless given. Prints the figures; exit code 1 when a result is
missing or doubled.

Usage: .venv/bin/python bench/outage.py [--sweep-seconds 60] [--requeue-seconds 120]
       (env BENCH_DATABASE_URL: the database it drops and recreates; default .../bench_outage)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
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

from bench.common import PYTHON, free_port, interrupt, manage, recreate_database, redacted, server_env

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_outage"


def start_redis(port: int, workdir: Path) -> subprocess.Popen:
    return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_worker(env: dict[str, str], workdir: Path, *, beat: bool) -> subprocess.Popen:
    log = open(workdir / f"worker-{time.monotonic_ns()}.log", "w")
    return subprocess.Popen([PYTHON, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
                             f"--hostname=outage-{time.monotonic_ns()}@%h", *(["--beat"] if beat else [])],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    """Signal the worker's process group (it leads one) and wait for it."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(condition, timeout: float) -> float | None:
    """Seconds until condition() held, or None after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def ended_experiment(key: str):
    from django.utils import timezone

    from experiments.models import Experiment
    from experiments.services.assignment import assignments_for_units
    from experiments.services.lifecycle import experiment_start
    from tests.factories import ExperimentFactory

    experiment = experiment_start(experiment=ExperimentFactory(key=key), actor=None)
    assignments_for_units(experiment_key=key, units=[f"u{i}" for i in range(200)])
    now = timezone.now()
    Experiment.objects.filter(pk=experiment.pk).update(started_at=now - timedelta(days=15),
                                                       ends_at=now - timedelta(seconds=1))
    return Experiment.objects.get(pk=experiment.pk)


def results(experiment) -> int:
    from experiments.models import AnalysisResult

    return AnalysisResult.objects.filter(experiment=experiment).count()


def broker_outage(env, workdir, redis_port, token) -> bool:
    from django.test import Client

    from experiments.models import Experiment

    experiment = ended_experiment("outage-broker")
    worker = start_worker(env, workdir, beat=True)
    try:
        time.sleep(5)  # the worker and beat are up
        subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        started = time.monotonic()
        response = client.post(f"/api/v1/experiments/{experiment.key}/analyze/")
        answered = time.monotonic() - started
        queued_at = Experiment.objects.get(pk=experiment.pk).analysis_queued_at
        print(f"broker down:  POST analyze -> {response.status_code} in {answered:.2f} s "
              f"({response.json()['detail']!r}); analysis_queued_at {queued_at}")
        time.sleep(10)
        start_redis(redis_port, workdir)  # stopped by main() through redis-cli, like the first
        healed = wait_for(lambda: results(experiment) > 0, 300)
        print(f"broker back:  the result was stored {healed:.1f} s after Redis answered again"
              if healed is not None else "broker back:  NO result within 300 s")
        return healed is not None and results(experiment) == 1 and response.status_code == 202
    finally:
        kill(worker)


def worker_killed(env, workdir, database_url) -> bool:
    from experiments.services.analysis import experiment_request_analysis

    experiment = ended_experiment("outage-worker")
    experiment_request_analysis(experiment=experiment, actor=None)  # queued; no worker runs yet
    blocker = psycopg.connect(database_url, autocommit=False)
    blocker.execute("SELECT id FROM experiments_experiment WHERE id = %s FOR UPDATE", [experiment.pk])
    first = start_worker(env, workdir, beat=False)
    second = None
    try:
        # Polled on a connection of its own: inside the blocker's transaction the statistics
        # views would show the same snapshot every time.
        with psycopg.connect(database_url, autocommit=True) as watcher:
            waiting = wait_for(lambda: watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()[0] > 0, 120)
        if waiting is None:
            print("worker:       the first worker never started the analysis")
            return False
        kill(first, signal.SIGKILL)
        blocker.rollback()
        killed = time.monotonic()
        second = start_worker(env, workdir, beat=True)
        done = wait_for(lambda: results(experiment) > 0, 600)
        time.sleep(2)
        print(f"worker:       killed mid-analysis; exactly {results(experiment)} result stored "
              f"{time.monotonic() - killed - 2:.1f} s after the kill" if done is not None
              else "worker:       NO result within 600 s of the kill")
        return done is not None and results(experiment) == 1
    finally:
        blocker.close()
        kill(first, signal.SIGKILL)
        if second is not None:
            kill(second)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-seconds", type=float, default=60.0)
    parser.add_argument("--requeue-seconds", type=int, default=120)
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        print("bench/outage.py needs redis-server (apt-get install redis-server)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupt)
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    workdir = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    redis_port = free_port()
    redis = start_redis(redis_port, workdir)
    try:
        recreate_database(database_url)
        env = server_env(database_url, workdir)
        env.update(CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0", SECURE_PROXY="false",
                   ALLOWED_HOSTS="127.0.0.1,testserver",
                   ANALYSIS_SWEEP_SECONDS=str(args.sweep_seconds), ANALYSIS_REQUEUE_SECONDS=str(args.requeue_seconds))
        manage(env, "migrate", "--noinput")
        token = manage(env, "shell", "-c", "from tests.factories import UserFactory; from experiments.models "
                       "import UserToken; print(UserToken.objects.create_key(name='b', user=UserFactory("
                       "is_superuser=True))[1])").strip().splitlines()[-1]
        os.environ.update(env)
        import django

        django.setup()
        print(f"database {redacted(database_url)}, throwaway Redis on 127.0.0.1:{redis_port}, "
              f"sweep every {args.sweep_seconds:g} s, requeue after {args.requeue_seconds} s")
        ok = broker_outage(env, workdir, redis_port, token)
        ok = worker_killed(env, workdir, database_url) and ok
        return 0 if ok else 1
    finally:
        subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True)
        redis.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
