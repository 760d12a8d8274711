"""How a 10,000-unit batch of first assignments is best written: the three statements, interleaved.

Each round makes 10,000 new units and runs, in a random order and each rolled back: the
INSERT ... ON CONFLICT DO NOTHING RETURNING from two JSON arrays (store_assignments), the
same INSERT without ON CONFLICT, and a binary COPY (insert_new_assignments); then the COPY
and the plain INSERT of 10,000 stored units, which fail at their first row. Times are the
client's (sending, the statement, the answer), in ms. Needs the database bench/assignment.py
leaves (its experiment 'bench-ab'):

    .venv/bin/python bench/probes/assignment_batch_insert.py postgres://postgres@127.0.0.1:5432/bench_main [rounds]
"""

import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime

import psycopg

TABLE = "experiments_assignment"
COLUMNS = "(experiment_id, unit, variant_id, assigned_at)"
FROM_JSON = ("SELECT %(e)s, unit, variant_id::bigint, %(now)s FROM ROWS FROM (json_array_elements_text(%(u)s::json), "
             "json_array_elements_text(%(v)s::json)) AS new(unit, variant_id)")
ON_CONFLICT = f"INSERT INTO {TABLE} {COLUMNS} {FROM_JSON} ON CONFLICT (experiment_id, unit) DO NOTHING RETURNING unit"
PLAIN = f"INSERT INTO {TABLE} {COLUMNS} {FROM_JSON}"
COPY = f"COPY {TABLE} {COLUMNS} FROM STDIN (FORMAT BINARY)"


def write(cursor, kind: str, experiment_id: int, rows: list[tuple[str, int]], now: datetime) -> None:
    if kind == "copy":
        with cursor.copy(COPY) as copy:
            copy.set_types(["int8", "varchar", "int8", "timestamptz"])
            for unit, variant_id in rows:
                copy.write_row((experiment_id, unit, variant_id, now))
        return
    cursor.execute(ON_CONFLICT if kind == "on conflict" else PLAIN,
                   {"e": experiment_id, "now": now, "u": json.dumps([u for u, _ in rows]),
                    "v": json.dumps([v for _, v in rows])})
    if kind == "on conflict":
        cursor.fetchall()


def timed(connection, kind: str, experiment_id: int, rows, now) -> float:
    start = time.perf_counter()
    try:
        with connection.transaction(force_rollback=True), connection.cursor() as cursor:
            write(cursor, kind, experiment_id, rows, now)
    except psycopg.errors.UniqueViolation:
        pass
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "postgres://postgres@127.0.0.1:5432/bench_main"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    with psycopg.connect(url, autocommit=True) as connection:
        experiment_id, = connection.execute("SELECT id FROM experiments_experiment WHERE key = 'bench-ab'").fetchone()
        variants = [v for v, in connection.execute(
            "SELECT id FROM experiments_variant WHERE experiment_id = %s ORDER BY id", [experiment_id])]
        stored = connection.execute(f"SELECT unit, variant_id FROM {TABLE} WHERE experiment_id = %s ORDER BY unit "
                                    "LIMIT 10000", [experiment_id]).fetchall()
        times: dict[str, list[float]] = {}
        for round_ in range(rounds):
            units = sorted(f"probe{round_}-{random.getrandbits(40)}" for _ in range(10_000))
            rows = [(unit, random.choice(variants)) for unit in units]
            now = datetime.now(UTC)
            for kind in random.sample(["on conflict", "plain", "copy"], 3):
                times.setdefault(f"new units, {kind}", []).append(timed(connection, kind, experiment_id, rows, now))
            for kind in random.sample(["plain", "copy"], 2):
                times.setdefault(f"stored units (fails), {kind}", []).append(
                    timed(connection, kind, experiment_id, stored, now))
    for label, values in times.items():
        print(f"{label:32} median {statistics.median(values):6.1f}  ({', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
