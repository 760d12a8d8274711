"""Time the import's two SQL passes (check the rows, then sum them per unit) on a staged file, storing nothing.

For the cost of the `metric` column in `import_observations` (bench/README.md, "ingest.py"):
the same 1,000,000 rows as bench/ingest.py, with one metric and spread over three, are staged
as the import stages them (experiments.db.postgresql_csv), then each pass runs twice as a
`SELECT count(*)` over its SQL; all rolled back.

Needs the database bench/ingest.py leaves (its experiments bench-cc and bench-cc-metrics):
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_ingest_main .venv/bin/python bench/probes/import_passes.py
"""

import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import server_env  # noqa: E402
from bench.ingest_data import CC_KEY, CC_METRICS_KEY, METRICS, make_cc  # noqa: E402

ROWS = 1_000_000


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="probe-import-"))
    os.environ.update(server_env(os.environ.get("BENCH_DATABASE_URL",
                                                "postgres://postgres@127.0.0.1:5432/bench_ingest"), workdir))
    import django
    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone as django_timezone

    from experiments.db import postgresql_csv
    from experiments.db.postgresql_sums import summed_rows_sql
    from experiments.models import Experiment
    from experiments.unit_outcomes.write import pairings

    received_at = datetime.now(timezone.utc)
    for key, metrics in ((CC_KEY, ()), (CC_METRICS_KEY, METRICS)):
        experiment = Experiment.objects.get(key=key)
        described = {"id": experiment.id, "variants": {v.key: v.id for v in experiment.variants.all()}}
        path = make_cc(ROWS, described, workdir, received_at, key=key, metrics=metrics).csv_path
        columns = path.open().readline().strip().split(",")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{postgresql_csv.WORK_MEM}'")
            started = time.perf_counter()
            postgresql_csv.stage_csv(cursor.cursor, path, columns, numbered=False, on_bytes=lambda n: None)
            print(f"{key}: stage {time.perf_counter() - started:.2f} s", flush=True)
            sql = postgresql_csv._checked_sql(experiment, set(columns), django_timezone.now(), joined=False,
                                              ordered=False)
            passes = {
                "check": f"SELECT count(*) FROM ({sql.checked}) AS checked WHERE unit IS NOT NULL",
                "sums": f"SELECT count(*) FROM ({summed_rows_sql(f'({sql.typed})', pairings(experiment.design, experiment.variants.all()))}) AS summed",
            }
            for name, query in passes.items():
                for _ in range(2):
                    started = time.perf_counter()
                    cursor.execute(query, sql.params)
                    count = cursor.fetchone()[0]
                    print(f"{key}: {name} pass {count:,} rows in {time.perf_counter() - started:.2f} s", flush=True)
            transaction.set_rollback(True)


if __name__ == "__main__":
    try:
        main()
    finally:
        for leftover in Path(tempfile.gettempdir()).glob("probe-import-*"):
            shutil.rmtree(leftover, ignore_errors=True)
