"""The analysis benchmark's SQL: timed statements, EXPLAIN of the application's queries, the former queries."""

from __future__ import annotations

import json
import time

import psycopg

from bench.analysis_setup import ASSIGNMENTS, COVARIATES, OBSERVATIONS, OUTCOMES

BARE = f"""SELECT variant_id, count(*), sum(value), sum(value * value)
FROM {OBSERVATIONS} WHERE experiment_id = %s GROUP BY variant_id"""
# The floor of an experiment with several metrics (issue 12): the same aggregate per metric and variant.
BARE_METRICS = f"""SELECT metric_position, variant_id, count(*), sum(value), sum(value * value)
FROM {OBSERVATIONS} WHERE experiment_id = %s GROUP BY metric_position, variant_id"""
# With CUPED (issue 14) the floor reads the covariates too: the same aggregate over their rows.
BARE_COVARIATES = f"""SELECT metric_position, count(*), sum(value), sum(value * value)
FROM {COVARIATES} WHERE experiment_id = %s GROUP BY metric_position"""
# Information: the least any analysis-time CUPED must do beyond reading the rows, each covariate joined to
# its unit's arm (covariates arrive before assignments, so they cannot carry the arm), as bare SQL.
BARE_COVARIATE_JOIN = f"""SELECT c.metric_position, a.variant_id, count(*), sum(c.value), sum(c.value * c.value)
FROM {COVARIATES} c JOIN {ASSIGNMENTS} a ON a.experiment_id = c.experiment_id AND a.unit = c.unit
WHERE c.experiment_id = %s GROUP BY c.metric_position, a.variant_id"""


def timed_sql(conn: psycopg.Connection, sql: str, params: list, *, settings: dict[str, str] | None = None,
               runs: int = 2) -> tuple[float, list]:
    """Run a statement `runs` times in its own transaction; the last run's time and rows."""
    seconds, rows = 0.0, []
    for _ in range(runs):
        with conn.transaction():
            for name, value in (settings or {}).items():
                conn.execute(f"SET LOCAL {name} = '{value}'")
            start = time.perf_counter()
            rows = conn.execute(sql, params).fetchall()
            seconds = time.perf_counter() - start
    return seconds, rows


def paired_sql(conn: psycopg.Connection, experiment_id: int, statements: list[tuple[str, list]],
                settings: dict[str, str], runs: int, bare_sql: str = BARE) -> tuple[float, float]:
    """Like analysis.py's _paired for SQL run from here: (seconds, bare seconds) of the median-ratio round after the first."""
    rounds = []
    for _ in range(runs):
        bare, _ = timed_sql(conn, bare_sql, [experiment_id], runs=1)
        seconds = sum(timed_sql(conn, sql, params, settings=settings, runs=1)[0] for sql, params in statements)
        rounds.append((seconds, bare))
    measured = sorted(rounds[1:] or rounds, key=lambda r: r[0] / r[1])
    return measured[(len(measured) - 1) // 2]


# -- EXPLAIN --------------------------------------------------------------------------------------

def explain_application_queries(experiment_id: int) -> list[tuple[str, list, dict]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every query on the data tables that the analysis's reading
    (`analysis_inputs`: the CUPED resolver's catch-up UPDATE, the summaries, the covariates' sums)
    runs, under the analysis's work_mem. Each runs twice, as EXPLAIN ANALYZE and then for real (the
    code goes on with its answer), which the resolver's UPDATE allows: it only sets arms still empty,
    so the second run finds nothing."""
    from django.conf import settings
    from django.db import connection, transaction

    from experiments.models import Experiment
    from experiments.services.analysis import analysis_inputs, analysis_plan

    captured = []

    def explain(execute, sql, params, many, context):
        summary = OUTCOMES in sql or ASSIGNMENTS in sql or COVARIATES in sql
        verb = sql.lstrip().upper()
        if summary and verb.startswith(("WITH", "SELECT", "UPDATE")):
            context["cursor"].execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = context["cursor"].fetchone()[0]
            kept = params if isinstance(params, dict) else list(params or [])
            captured.append((sql, kept, json.loads(plan) if isinstance(plan, str) else plan))
        return execute(sql, params, many, context)

    experiment = Experiment.objects.get(pk=experiment_id)
    with transaction.atomic(), connection.execute_wrapper(explain):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = %s", [settings.ANALYSIS_WORK_MEM])
        analysis_inputs(experiment, analysis_plan(experiment))
    return captured


def _plan_lines(plan: dict, depth: int = 0) -> list[str]:
    """One line per plan node: type, loops, rows, time, and memory / spill figures."""
    kind = plan["Node Type"]
    if plan.get("Strategy") in ("Hashed", "Sorted", "Mixed") and kind == "Aggregate":
        kind = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate", "Mixed": "MixedAggregate"}[plan["Strategy"]]
    if plan.get("Partial Mode") in ("Partial", "Finalize"):
        kind = f"{plan['Partial Mode']} {kind}"
    if plan.get("Parallel Aware"):
        kind = "Parallel " + kind
    on = plan.get("Index Name") or plan.get("Relation Name") or plan.get("CTE Name")
    keys = plan.get("Group Key") or plan.get("Hash Cond") or plan.get("Sort Key") or plan.get("Merge Cond")
    bits = [f"{kind}{' on ' + on if on else ''}{' by ' + str(keys) if keys else ''}",
            f"loops={plan.get('Actual Loops')}", f"rows={plan.get('Actual Rows')}",
            f"time={plan.get('Actual Total Time', 0) / 1000:.2f}s"]
    if "HashAgg Batches" in plan:
        bits.append(f"batches={plan['HashAgg Batches']} mem={plan.get('Peak Memory Usage', 0) // 1024}MB "
                    f"disk={plan.get('Disk Usage', 0) // 1024}MB"
                    + (f" planned_partitions={plan['Planned Partitions']}" if plan.get("Planned Partitions") else ""))
    if "Hash Batches" in plan:
        bits.append(f"batches={plan['Hash Batches']} (planned {plan.get('Original Hash Batches')}) "
                    f"mem={plan.get('Peak Memory Usage', 0) // 1024}MB")
    if "Sort Method" in plan:
        bits.append(f"{plan['Sort Method']} {plan.get('Sort Space Used', 0) // 1024}MB "
                    f"{plan.get('Sort Space Type', '')}")
    if "Workers Launched" in plan:
        bits.append(f"workers={plan['Workers Launched']}/{plan.get('Workers Planned')}")
    if plan.get("Temp Written Blocks"):
        bits.append(f"temp_written={plan['Temp Written Blocks'] * 8 // 1024}MB")
    if "Heap Fetches" in plan:
        bits.append(f"heap_fetches={plan['Heap Fetches']}")
    lines = ["    " + "  " * depth + "-> " + "  ".join(bits)]
    for child in plan.get("Plans", []):
        lines += _plan_lines(child, depth + 1)
    return lines


def explain_summary(explained: dict) -> list[str]:
    jit = explained.get("JIT", {}).get("Timing", {}).get("Total", 0) / 1000
    lines = [f"    planning {explained['Planning Time'] / 1000:.3f} s, execution "
             f"{explained['Execution Time'] / 1000:.2f} s (of which JIT compilation {jit:.2f} s)"]
    return lines + _plan_lines(explained["Plan"])


def spills(plan: dict) -> list[str]:
    found = []
    if plan.get("Disk Usage") or (plan.get("HashAgg Batches", 1) > 1):
        found.append(f"{plan['Node Type']} ({plan.get('Group Key')}) spilled: {plan.get('HashAgg Batches')} batches, "
                     f"{plan.get('Disk Usage', 0) // 1024} MB on disk (per process), loops={plan.get('Actual Loops')}")
    if plan.get("Hash Batches", 1) > 1:
        found.append(f"Hash ({plan.get('Hash Cond')}) spilled: {plan['Hash Batches']} batches")
    for child in plan.get("Plans", []):
        found += spills(child)
    return found


# -- alternatives (SQL run from the bench, same transaction settings) ---------------------------------

# What the analysis ran before ingestion kept per-unit sums (UnitOutcome): every observation
# grouped by unit at analysis time. Timed beside the application to show what the sums buy.
AB_ASSIGNED = f"SELECT variant_id, COUNT(*) FROM {ASSIGNMENTS} WHERE experiment_id = %s GROUP BY variant_id"
AB_GROUPED = f"""SELECT variant_id, COUNT(*), SUM(v), SUM(v * v) FROM (
    SELECT variant_id, unit, MAX(value) AS v FROM {OBSERVATIONS} WHERE experiment_id = %s AND value <> 0
    GROUP BY variant_id, unit) AS per_unit GROUP BY variant_id"""
CC_GROUPED = """SELECT COUNT(x), SUM(x), SUM(x * x), COUNT(y), SUM(y), SUM(y * y),
    COUNT(*) FILTER (WHERE x IS NOT NULL AND y IS NOT NULL), SUM(x * y) FILTER (WHERE x IS NOT NULL AND y IS NOT NULL),
    COUNT(*) FILTER (WHERE x IS NULL OR y IS NULL)
    FROM (SELECT unit, AVG(value) FILTER (WHERE variant_id = %s) AS x, AVG(value) FILTER (WHERE variant_id = %s) AS y
          FROM experiments_observation WHERE experiment_id = %s GROUP BY unit) AS per_unit"""


def alternatives(conn: psycopg.Connection, work_mem: str, name: str, experiment: dict) -> list[tuple]:
    """(label, seconds, bare seconds) of the former observation-grouping queries, run once (warm cache)."""
    settings = {"work_mem": work_mem}
    if name == "ab":
        statements = [(AB_GROUPED, [experiment["id"]]), (AB_ASSIGNED, [experiment["id"]])]
        label = "ab: GROUP BY variant, unit over the observations + assigned counts"
    else:
        champion, challenger = experiment["variants"]
        statements = [(CC_GROUPED, [champion, challenger, experiment["id"]])]
        label = "cc: GROUP BY unit over the observations (one FILTER pass)"
    return [(label, *paired_sql(conn, experiment["id"], statements, settings, runs=1))]
