"""The database-specific code behind one interface: experiments.db.postgresql or experiments.db.portable.

Both modules have the same functions with the same results; PostgreSQL's are the fast paths
(their docstrings say why), the portable ones serve SQLite, the embedded default. The module
is chosen once, on first use, from the configured engine (Django's settings decide it before
any request), so callers never ask which database they run on.
"""

from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from django.db import connection

from experiments.db.rows import Latency

__all__ = ["Latency", "backend", "csv_import_supported", "covariate_sums", "experiment_state_row", "import_csv",
           "insert_new_assignments", "insert_observations", "latency_by_variant", "rebuild_unit_outcomes",
           "store_assignment", "store_assignments", "stored_assignments", "tune_analysis_session"]


@cache
def backend() -> ModuleType:
    """The module for the configured engine, resolved on first use (not at import, before settings)."""
    if connection.vendor == "postgresql":
        from experiments.db import postgresql

        return postgresql
    from experiments.db import portable

    return portable


def stored_assignments(experiment_id: int, units) -> dict[str, int]:
    """{unit: variant id} of the stored assignments among `units` (up to 10,000 per call)."""
    return backend().stored_assignments(experiment_id, units)


def insert_new_assignments(experiment_id: int, rows: list[tuple[str, int]], now: datetime) -> bool:
    """Store first assignments of units none of which is stored: True, or False and nothing stored."""
    return backend().insert_new_assignments(experiment_id, rows, now)


def store_assignments(experiment_id: int, rows: list[tuple[str, int]], now: datetime) -> set[str]:
    """Store first assignments, (unit, variant id) in the order given; existing rows win. The units stored."""
    return backend().store_assignments(experiment_id, rows, now)


def store_assignment(experiment_id: int, unit: str, variant_id: int, now: datetime) -> int | None:
    """Store one first assignment in one statement: its variant id, or None if a stored row won."""
    return backend().store_assignment(experiment_id, unit, variant_id, now)


def experiment_state_row(key: str, unit: str | None) -> dict[str, Any] | None:
    """The experiment's serving columns with the unit's stored variant id (None: no such experiment)."""
    return backend().experiment_state_row(key, unit)


def insert_observations(experiment_id: int, pairing: list, records: list[tuple], now: datetime, *,
                        covariates: bool = False) -> int:
    """Insert observation records, skipping ids already stored or repeated, and add them to the unit sums.

    Records: (variant_id, unit, value, latency_ms, observed_at, idempotency_key, metric_position).
    `covariates`: the experiment has CUPED metrics, so a new unit sum takes its unit's covariate.
    """
    return backend().insert_observations(experiment_id, pairing, records, now, covariates=covariates)


def rebuild_unit_outcomes(experiment_id: int, pairing: list, *, covariates: bool = False) -> int:
    """Recompute an experiment's unit outcomes from its stored observations (and, with `covariates`,
    their units' covariates); returns the row count."""
    return backend().rebuild_unit_outcomes(experiment_id, pairing, covariates=covariates)


def tune_analysis_session() -> None:
    """Settings for the rest of the analysis transaction (nothing to set on the portable side)."""
    backend().tune_analysis_session()


def latency_by_variant(experiment) -> dict[int, Latency]:
    """Mean, median and 95th percentile of `Observation.latency_ms` per variant id."""
    return backend().latency_by_variant(experiment)


def csv_import_supported() -> bool:
    """Whether `import_csv` can import a file inside the database (else the row-by-row path only)."""
    return backend().CSV_IMPORT


def import_csv(*, experiment, path: Path, columns: list[str], now: datetime, fresh: bool,
               on_bytes: Callable[[int], None]) -> tuple[int, int] | None:
    """Import a CSV file inside the database: (accepted, duplicates), or None where that is not supported."""
    return backend().import_csv(experiment=experiment, path=path, columns=columns, now=now, fresh=fresh,
                                on_bytes=on_bytes)


def covariate_sums(experiment_id: int, metrics: dict[int, tuple[str, str]]) -> dict[int, dict[int, tuple]]:
    """CUPED's covariate sums of the A/B metrics {position: (metric_type, aggregation)}, in one query:
    {position: {variant id: (sum x, sum x^2, sum xy)}}."""
    return backend().covariate_sums(experiment_id, metrics)
