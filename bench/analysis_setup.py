"""The analysis benchmark's data: experiments made through the services, rows loaded inside PostgreSQL."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import psycopg

OBSERVATIONS = "experiments_observation"
ASSIGNMENTS = "experiments_assignment"
OUTCOMES = "experiments_unitoutcome"
COVARIATES = "experiments_covariate"
# The definition fields every benchmark experiment shares.
COMMON_FIELDS = dict(alpha=0.05, power=0.8, alternative="two-sided", duration=timedelta(days=14),
                     grace_period=timedelta(0), traffic_percent=100.0, auto_promote=False)


def django_setup(env: dict[str, str]):
    """Set Django up in this process, on the benchmark's database and settings."""
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "SECRET_KEY",
                                           "ALLOWED_HOSTS", "CELERY_BROKER_URL", "LOG_LEVEL", "VAR_DIR")})
    import django
    django.setup()


def create_experiments(size: int, cc: bool, *, ab: bool = True, metrics: bool = False,
                       cuped: bool = False) -> dict[str, dict]:
    """Create and start the experiments through the services; return ids and variant ids.

    `ab` (binary, one metric), `cc` (champion/challenger, continuous), `metrics` (an `ab`
    test with three metrics: conversion, revenue and a mean-aggregated latency guardrail) and
    `cuped` (the same three metrics, each with `cuped: true`).
    """
    from experiments.services.definition import experiment_create
    from experiments.services.lifecycle import experiment_start

    definitions = {}
    if ab:
        definitions["ab"] = dict(
            key=f"bench-ab-{size}", name=f"Benchmark checkout ({size:,} observations)",
            hypothesis="A green button raises conversion", design="ab", metric_name="conversion",
            metric_type="binary", metric_direction="increase", baseline_mean=0.10, baseline_sd=None,
            mde=0.01, sample_size_per_variant=None,
            variants=[{"key": "control", "weight": 1.0, "is_control": True, "payload": {}},
                      {"key": "green", "weight": 1.0, "is_control": False, "payload": {}}], **COMMON_FIELDS)
    if cc:
        definitions["cc"] = dict(
            key=f"bench-cc-{size}", name=f"Benchmark ranker ({size:,} observations)",
            hypothesis="The challenger model has a lower loss", design="champion_challenger",
            metric_name="loss", metric_type="continuous", metric_direction="decrease", baseline_mean=None,
            baseline_sd=5.0, mde=0.5, sample_size_per_variant=None,
            variants=[{"key": "champion", "weight": 1.0, "is_control": True, "payload": {}},
                      {"key": "challenger", "weight": 1.0, "is_control": False, "payload": {}}], **COMMON_FIELDS)
    if metrics:
        definitions["metrics"] = three_metrics_definition(size)
    if cuped:
        three = definitions.get("metrics") or three_metrics_definition(size)
        definitions["cuped"] = dict(
            three, key=f"bench-cuped-{size}", name=f"Benchmark checkout, three CUPED metrics ({size:,} observations)",
            cuped=True, metrics=[dict(m, cuped=True) for m in three["metrics"]])
    made = {}
    for name, definition in definitions.items():
        experiment = experiment_start(experiment=experiment_create(actor=None, definition=definition), actor=None)
        made[name] = {"id": experiment.id, "key": experiment.key,
                      "variants": [v.id for v in experiment.variants.order_by("position", "id")]}
    return made


def three_metrics_definition(size: int) -> dict:
    """The `metrics` experiment's definition: binary conversion, revenue (sum), a latency guardrail (mean)."""
    return dict(
        key=f"bench-metrics-{size}", name=f"Benchmark checkout, three metrics ({size:,} observations)",
        hypothesis="A green button raises conversion without slowing the page down", design="ab",
        metric_name="conversion", metric_key="conversion", metric_type="binary", metric_direction="increase",
        metric_aggregation="sum", baseline_mean=0.10, baseline_sd=None, mde=0.01, sample_size_per_variant=None,
        variants=[{"key": "control", "weight": 1.0, "is_control": True, "payload": {}},
                  {"key": "green", "weight": 1.0, "is_control": False, "payload": {}}],
        metrics=[
            {"key": "revenue", "name": "Revenue per user", "role": "secondary", "metric_type": "continuous",
             "direction": "increase", "aggregation": "sum", "baseline_mean": None, "baseline_sd": None,
             "margin": None},
            {"key": "latency_ms", "name": "Page latency", "role": "guardrail", "metric_type": "continuous",
             "direction": "decrease", "aggregation": "mean", "baseline_mean": 200.0, "baseline_sd": 40.0,
             "margin": 5.0},
        ], **COMMON_FIELDS)


def sum_units(experiment_ids: list[int]) -> None:
    """Recompute the per-unit sums the ingestion service would have kept (the load went around it)."""
    from django.db import connection, transaction

    from experiments.models import Experiment
    from experiments.unit_outcomes.write import unit_outcomes_rebuild

    for experiment_id in experiment_ids:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '1GB'")
            unit_outcomes_rebuild(Experiment.objects.get(pk=experiment_id))


def resolve_arms(experiment_id: int) -> float:
    """Give the loaded covariates their arm as the beat's resolver would (experiments.db.covariate_arms):
    the load assigned every unit after its covariate arrived, so the first run resolves them all.
    Returns its time in seconds (the caller vacuums the covariates afterwards, as autovacuum would)."""
    from experiments.services.covariates import covariate_arms_resolve

    started = time.perf_counter()
    covariate_arms_resolve(experiment_id=experiment_id)
    return time.perf_counter() - started


def make_due(experiment_ids: list[int], counts: dict[int, int]) -> None:
    """Move the test period into the past and mark the analysis queued, as the sweep would."""
    from django.utils import timezone

    from experiments.choices import Status
    from experiments.models import Experiment

    now = timezone.now()
    for experiment_id in experiment_ids:
        Experiment.objects.filter(pk=experiment_id).update(
            started_at=now - timedelta(days=15), ends_at=now - timedelta(days=1),
            status=Status.ANALYZING, analysis_queued_at=now, observation_count=counts[experiment_id])


def _indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str, str | None]]:
    """(name, CREATE INDEX statement, constraint name or None) of every non-primary-key index."""
    return conn.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid), c.conname
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('u', 'x')
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
        """, [table]).fetchall()


def load(conn: psycopg.Connection, made: dict[str, dict], size: int) -> None:
    """Load the experiments' assignments and observations inside PostgreSQL, indexes rebuilt afterwards."""
    units = size // 2
    saved = {table: _indexes(conn, table) for table in (OBSERVATIONS, ASSIGNMENTS)}
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")   # no FK triggers while loading
        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        conn.execute("SELECT setseed(0.42)")
        for table, indexes in saved.items():
            for name, _, constraint in indexes:
                if constraint:
                    conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
                else:
                    conn.execute(f'DROP INDEX "{name}"')
        if "ab" in made:
            _load_ab(conn, made["ab"], size, units)
        if "metrics" in made:
            _load_metrics(conn, made["metrics"], size, units)
        if "cuped" in made:
            _load_metrics(conn, made["cuped"], size, units)
            _load_covariates(conn, made["cuped"], units)
        if "cc" in made:
            _load_cc(conn, made["cc"], units)
        for table, indexes in saved.items():
            for name, definition, constraint in indexes:
                conn.execute(definition)
                if constraint:
                    conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" UNIQUE USING INDEX "{name}"')
    for table in (OBSERVATIONS, ASSIGNMENTS, COVARIATES):
        conn.execute(f"VACUUM ANALYZE {table}")


UNIT_SQL = "'user-' || lpad(u::text, 9, '0')"


def _assign_units(conn: psycopg.Connection, experiment: dict, units: int) -> tuple[str, str]:
    """Assign `units` units about 50/50 by a hash of the unit; returns the SQL of unit u and of its variant id."""
    control, green = experiment["variants"]
    variant = f"CASE WHEN hashtext({UNIT_SQL}) & 1 = 0 THEN {control} ELSE {green} END"
    conn.execute(
        f"""
        INSERT INTO {ASSIGNMENTS} (experiment_id, unit, variant_id, assigned_at)
        SELECT %s, {UNIT_SQL}, {variant}, now() - interval '15 days' + u * (interval '13 days' / %s)
        FROM generate_series(0, %s - 1) AS u
        """, [experiment["id"], units, units])
    return UNIT_SQL, variant


def _load_ab(conn: psycopg.Connection, ab: dict, size: int, units: int) -> None:
    control, _ = ab["variants"]
    unit, variant = _assign_units(conn, ab, units)
    conn.execute(
        f"""
        INSERT INTO {OBSERVATIONS}
            (experiment_id, variant_id, unit, value, latency_ms, observed_at, received_at, idempotency_key)
        SELECT %s, v, {unit}, (random() < CASE WHEN v = {control} THEN 0.05 ELSE 0.053 END)::int, NULL,
               at, at + interval '2 seconds', 'o-' || i
        FROM (SELECT i, u, {variant} AS v, now() - interval '15 days' + i * (interval '14 days' / %s) AS at
              FROM (SELECT i, floor(random() * %s)::int AS u FROM generate_series(0, %s - 1) AS i) AS drawn
             ) AS rows
        """, [ab["id"], size, units, size])


def _load_cc(conn: psycopg.Connection, cc: dict, units: int) -> None:
    champion, challenger = cc["variants"]
    request = "'r-' || md5(u::text)"
    conn.execute(
        f"""
        INSERT INTO {ASSIGNMENTS} (experiment_id, unit, variant_id, assigned_at)
        SELECT %s, {request}, %s, now() - interval '15 days' + u * (interval '13 days' / %s)
        FROM generate_series(0, %s - 1) AS u
        """, [cc["id"], champion, units, units])
    # Champion loss ~ Gamma(2, 5) (sum of two exponentials), challenger = champion + Normal(-0.1, 5).
    conn.execute(
        f"""
        INSERT INTO {OBSERVATIONS}
            (experiment_id, variant_id, unit, value, latency_ms, observed_at, received_at, idempotency_key)
        SELECT %s, v.id, {request}, CASE WHEN v.champion THEN loss ELSE loss - 0.1 + noise END,
               20 + 60 * random(), at, at + interval '1 hour', 'o-' || u || '-' || v.id
        FROM (SELECT u, -5 * ln(1 - random()) - 5 * ln(1 - random()) AS loss,
                     5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS noise,
                     now() - interval '15 days' + u * (interval '13 days' / %s) AS at
              FROM generate_series(0, %s - 1) AS u) AS requests
        CROSS JOIN (VALUES (%s::bigint, true), (%s::bigint, false)) AS v (id, champion)
        """, [cc["id"], units, units, champion, challenger])


# Share of the observations per metric position (conversion, revenue, latency).
METRIC_SHARES = (0.4, 0.2, 0.4)


def _load_metrics(conn: psycopg.Connection, experiment: dict, size: int, units: int) -> None:
    """U = N/2 units assigned as in `_load_ab`; N observations, each for a unit drawn at random and
    a metric drawn with METRIC_SHARES: conversion 0/1 (5% / 5.3% per observation), revenue
    Gamma(2, 25) (mean 50), latency Normal(200, 40) ms (+1 ms for green), aggregated by mean."""
    control, _ = experiment["variants"]
    unit, variant = _assign_units(conn, experiment, units)
    first, second = METRIC_SHARES[0], METRIC_SHARES[0] + METRIC_SHARES[1]
    conn.execute(
        f"""
        INSERT INTO {OBSERVATIONS} (experiment_id, variant_id, unit, value, latency_ms, observed_at, received_at,
                                    idempotency_key, metric_position)
        SELECT %s, v, {unit},
               CASE m WHEN 0 THEN (random() < CASE WHEN v = {control} THEN 0.05 ELSE 0.053 END)::int
                      WHEN 1 THEN round((-25 * ln(1 - random()) - 25 * ln(1 - random()))::numeric, 2)::float8
                      ELSE round((200 + CASE WHEN v = {control} THEN 0 ELSE 1 END
                                  + 40 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 1)::float8
               END,
               NULL, at, at + interval '2 seconds', 'o-' || i, m
        FROM (SELECT i, u, {variant} AS v, m, now() - interval '15 days' + i * (interval '14 days' / %s) AS at
              FROM (SELECT i, u, CASE WHEN r < {first} THEN 0 WHEN r < {second} THEN 1 ELSE 2 END AS m
                    FROM (SELECT i, floor(random() * %s)::int AS u, random() AS r
                          FROM generate_series(0, %s - 1) AS i) AS drawn) AS picked
             ) AS rows
        """, [experiment["id"], size, units, size])


# Share of the units with a covariate per metric (the others count as x = 0).
COVARIATE_SHARE = 0.85


def _load_covariates(conn: psycopg.Connection, experiment: dict, units: int) -> None:
    """A covariate per unit and metric for COVARIATE_SHARE of the units: conversion 0/1 at 10%,
    revenue Gamma(2, 25), latency Normal(200, 40). Drawn independently of the observations: the
    scenario measures time, and an x that predicts nothing must leave the answer unadjusted (theta near 0)."""
    conn.execute(
        f"""
        INSERT INTO {COVARIATES} (experiment_id, metric_position, unit, value, received_at)
        SELECT %s, m, {UNIT_SQL},
               CASE m WHEN 0 THEN (random() < 0.1)::int::float8
                      WHEN 1 THEN round((-25 * ln(1 - random()) - 25 * ln(1 - random()))::numeric, 2)::float8
                      ELSE round((200 + 40 * sqrt(-2 * ln(1 - random()))
                                  * cos(2 * pi() * random()))::numeric, 1)::float8
               END, now() - interval '20 days'
        FROM generate_series(0, %s - 1) AS u CROSS JOIN generate_series(0, 2) AS m
        WHERE random() < {COVARIATE_SHARE}
        """, [experiment["id"], units])
