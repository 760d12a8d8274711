"""Time the CUPED analysis again on the experiment `bench/analysis.py --only-cuped` left loaded, without reloading it.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cuped .venv/bin/python bench/probes/analysis_remeasure.py

The same measurement as bench/analysis.py (its `_paired`: a bare round of the floor's aggregates, then
`analysis_run` in a fresh subprocess, the first round only warming the cache, the median ratio kept),
for a change of the analysis's queries measured on the same data (loading 10M rows and resolving the
covariates' arms takes about 13 minutes). Prints the floor, the analysis and the ratios.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import psycopg  # noqa: E402

from bench import analysis as bench  # noqa: E402
from bench.common import server_env  # noqa: E402

URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_cuped")


def main() -> None:
    env = server_env(URL, Path(tempfile.mkdtemp()), broker_db=13)
    with psycopg.connect(URL, autocommit=True) as conn:
        (experiment_id,) = conn.execute(
            "SELECT id FROM experiments_experiment WHERE key LIKE 'bench-cuped-%' ORDER BY id DESC").fetchone()
        for sql in bench.FLOORS["cuped"]:
            bench.timed_sql(conn, sql, [experiment_id], runs=1)  # warms the cache
        figures = bench._paired(env, conn, experiment_id, "app", runs=4, bare_sqls=bench.FLOORS["cuped"])
    print(f"bare {figures['bare_s']:.2f} s, analysis {figures['analysis_s']:.2f} s, ratio {figures['ratio']:.2f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in figures['ratios'])}); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
