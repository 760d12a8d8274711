"""Where the CUPED analysis's time goes: every SQL statement of `analysis_run` timed, and a cProfile.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cuped .venv/bin/python bench/probes/analysis_profile.py

Runs `analysis_run` once in this process on the largest experiment `bench/analysis.py --only-cuped`
left loaded (its stored result forgotten first, as bench/analysis.py's rounds do), with Django's
`execute_wrapper` timing each statement; prints the total, the slowest statements and the
cumulative profile. This is how session 9 found the resolver's catch-up UPDATE reading every
covariate (bench/README.md, CUPED). Run it twice: the first run also warms the cache.
"""

import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import psycopg  # noqa: E402

from bench.analysis import _reset  # noqa: E402
from bench.common import server_env  # noqa: E402

URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_cuped")


def main() -> None:
    os.environ.update(server_env(URL, Path(tempfile.mkdtemp()), broker_db=13))
    import django
    django.setup()
    from django.db import connection

    from experiments.services.analysis import analysis_run

    with psycopg.connect(URL, autocommit=True) as conn:
        (experiment_id,) = conn.execute(
            "SELECT id FROM experiments_experiment WHERE key LIKE 'bench-cuped-%' ORDER BY id DESC").fetchone()
        _reset(conn, experiment_id)

    statements = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((time.perf_counter() - started, " ".join(sql.split())[:140]))

    connection.ensure_connection()
    profile = cProfile.Profile()
    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        profile.enable()
        result = analysis_run(experiment_id=experiment_id)
        profile.disable()
    total = time.perf_counter() - started
    print(f"analysis_run {total:.2f} s ({result.outcome}); SQL {sum(t for t, _ in statements):.2f} s "
          f"in {len(statements)} statements; load average {os.getloadavg()[0]:.2f}")
    for seconds, sql in sorted(statements, reverse=True)[:8]:
        print(f"  {seconds:7.3f} s  {sql}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(20)


if __name__ == "__main__":
    main()
