"""CUPED's precomputed columns: each covariate's arm and each unit outcome's covariate, kept while the test runs.

The analysis needs, per CUPED metric and arm, the sums of x, x^2 and x*y (x a unit's covariate,
y its value). Joining every covariate to its unit's assignment and outcome at analysis time
costs 5-8x reading the rows (bench/README.md, CUPED), so the join is made while the data
arrive, as `UnitOutcome` already does for observations, and the analysis is plain aggregates
(experiments.db.cuped_statistics):

- `Covariate.variant_id`, the unit's arm. Set by covariate ingestion for the units already
  assigned, and for the units assigned later (the usual case: covariates are loaded in draft)
  by `resolve_arms`, run by beat and once more at the start of the analysis. The assignment
  hot path does no work for it.
- `UnitOutcome.covariate`, the unit's covariate of the row's metric. Set by observation
  ingestion on every new outcome row of an experiment with CUPED metrics, and by covariate
  ingestion on the outcome rows already stored.

`resolve_arms` keeps a per-experiment watermark on the assignment primary key
(`Experiment.covariate_arms_through`): each run resolves every assignment after it, which is
idempotent (only covariates without an arm are set), and then moves it only past assignments
older than `SETTLED`, because assignment ids are taken when a row is inserted, not when it
commits: a transaction may commit a lower id after a higher one. An assignment is one short
statement (or a batch of the exposures endpoint), so one committed more than a minute after
its `assigned_at` is not expected; the margin is what makes skipping below the watermark safe.

Concurrency (PostgreSQL; every write path runs in READ COMMITTED, so each statement sees what
was committed before it started). Two races would leave a column empty for good:

1. A covariate batch and an observation batch of the same unit committing together: the new
   outcome row does not see the uncommitted covariate, and the covariate's UPDATE of the
   outcomes does not see the uncommitted outcome row.
2. A covariate import whose snapshot predates an assignment, while the resolver, which sees
   the assignment but not the uncommitted covariate, moves its watermark past it.

Both are made impossible rather than repaired at analysis (a repair would have to re-join the
covariates, the very join this module removes): a transaction-level advisory lock per
experiment, taken exclusively by covariate ingestion and shared by observation ingestion and
the resolver, before their first statement. Observation batches and the resolver never wait
for each other, only for a covariate batch of the same experiment (covariates are normally
loaded in draft, before any observation), and a non-CUPED experiment takes no lock at all.
SQLite runs one writer at a time: the portable paths need no lock.
"""

from datetime import datetime, timedelta

from django.db import connection

from experiments.models import Assignment, Covariate, Experiment, UnitOutcome

ASSIGNMENTS = Assignment._meta.db_table
COVARIATES = Covariate._meta.db_table
OUTCOMES = UnitOutcome._meta.db_table
EXPERIMENTS = Experiment._meta.db_table
# How long after its `assigned_at` an assignment is taken to be committed (see the module's docstring).
SETTLED = timedelta(minutes=1)
# The advisory lock's first key: this module's locks, apart from any other use of advisory locks.
_LOCK_SPACE = 14


def _lock(experiment_id: int, function: str) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # The two-int form: the space, then the id folded into an int (a collision only serialises more).
        cursor.execute(f"SELECT {function}({_LOCK_SPACE}, (%s::bigint %% 2147483647)::int)", [experiment_id])


def lock_for_covariates(experiment_id: int) -> None:
    """Wait for the experiment's observation batches and resolver runs in flight, and keep them out
    until this transaction ends (module docstring: why)."""
    _lock(experiment_id, "pg_advisory_xact_lock")


def lock_for_observations(experiment_id: int) -> None:
    """Wait for a covariate batch of the experiment in flight, and keep the next out until this
    transaction ends; other observation batches go on (module docstring: why)."""
    _lock(experiment_id, "pg_advisory_xact_lock_shared")


def covariate_of_outcomes_sql(source: str) -> str:
    """UPDATE setting the covariate of the stored outcome rows of `source`'s (metric_position, unit, value).

    One named parameter, `experiment_id`. The outcome's primary key leads with (experiment,
    metric, unit): one index probe per covariate.
    """
    return (f"UPDATE {OUTCOMES} AS o SET covariate = new.value FROM {source} AS new "
            "WHERE o.experiment_id = %(experiment_id)s AND o.metric_position = new.metric_position "
            "AND o.unit = new.unit")


def resolve_arms(experiment_id: int, positions: list[int], watermark: int, now: datetime) -> tuple[int, int]:
    """Give its arm to every covariate without one whose unit was assigned after `watermark`; returns
    (covariates resolved, the new watermark: the last assignment id assigned before `now - SETTLED`).

    `positions`: the experiment's metric positions. Naming them lets the covariates' primary key
    (experiment, metric, unit) be probed once per new assignment: without them PostgreSQL scanned
    every covariate of the experiment on each run, even with nothing to resolve (1.6 s at 12.75M
    covariates, on every beat run and every analysis; bench/README.md, CUPED).

    Within the caller's transaction, which must store the watermark. Plain SQL that PostgreSQL and
    SQLite both run (UPDATE ... FROM).
    """
    lock_for_observations(experiment_id)   # shared: only a covariate batch in flight is waited for
    params = {"experiment_id": experiment_id, "watermark": watermark, "settled": now - SETTLED}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(id) FROM {ASSIGNMENTS} WHERE experiment_id = %(experiment_id)s AND id > %(watermark)s "
            "AND assigned_at < %(settled)s", params)
        settled = cursor.fetchone()[0]
        cursor.execute(
            f"UPDATE {COVARIATES} SET variant_id = a.variant_id FROM {ASSIGNMENTS} AS a "
            f"WHERE a.experiment_id = %(experiment_id)s AND a.id > %(watermark)s "
            f"AND {COVARIATES}.experiment_id = %(experiment_id)s "
            f"AND {COVARIATES}.metric_position IN ({', '.join(str(int(p)) for p in positions)}) "
            f"AND {COVARIATES}.unit = a.unit "
            f"AND {COVARIATES}.variant_id IS NULL", params)
        resolved = cursor.rowcount
    return resolved, max(watermark, settled or 0)
