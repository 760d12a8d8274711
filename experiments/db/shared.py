"""Plain SQL that PostgreSQL and SQLite both run, for the assignment service's hot path.

Both engine modules re-export these functions, so callers see one interface either way.
Plain SQL rather than the ORM: on the hot path, building the equivalent ORM query cost more
than running it (bench/assignment.py).
"""

from typing import Any

from django.db import connection

from experiments.models import Assignment, Experiment

STATE_COLUMNS = ("id", "key", "salt", "status", "design", "traffic_percent", "ends_at", "concluded_variant_id",
                 "stored_variant_id")

_STATE_SQL = (
    "SELECT e.id, e.key, e.salt, e.status, e.design, e.traffic_percent, e.ends_at, e.concluded_variant_id, "
    f"a.variant_id FROM {Experiment._meta.db_table} e "
    f"LEFT JOIN {Assignment._meta.db_table} a ON a.experiment_id = e.id AND a.unit = %(unit)s "
    "WHERE e.key = %(key)s"
)

_STORE_ONE_SQL = (
    f"INSERT INTO {Assignment._meta.db_table} (experiment_id, unit, variant_id, assigned_at) "
    "VALUES (%(experiment_id)s, %(unit)s, %(variant_id)s, %(now)s) "
    "ON CONFLICT (experiment_id, unit) DO NOTHING RETURNING variant_id"
)


def experiment_state_row(key: str, unit: str | None) -> dict[str, Any] | None:
    """The experiment's serving columns (STATE_COLUMNS) with the unit's stored variant id, in one query.

    None when there is no experiment with this key; `stored_variant_id` is None when the unit
    has no stored assignment (or no unit is given).
    """
    with connection.cursor() as cursor:
        cursor.execute(_STATE_SQL, {"unit": unit, "key": key})
        row = cursor.fetchone()
    return None if row is None else dict(zip(STATE_COLUMNS, row))


def store_assignment(experiment_id: int, unit: str, variant_id: int, now) -> int | None:
    """Store one first assignment in one statement: its variant id, or None if a stored row won."""
    with connection.cursor() as cursor:
        cursor.execute(_STORE_ONE_SQL, {"experiment_id": experiment_id, "unit": unit, "variant_id": variant_id,
                                        "now": now})
        inserted = cursor.fetchone()
    return inserted[0] if inserted else None
