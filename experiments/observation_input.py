"""Parsing raw observation items (from JSON or a CSV/JSON Lines file) into typed rows.

This runs on up to 10,000 items per request, so it is a plain loop rather than a DRF
serializer (whose per-field cost dominates at that size). Every problem is collected, keyed
by the item's path (`observations[3].value`), so that one answer lists them all.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from experiments.limits import (
    MAX_ABS_VALUE,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_LATENCY_MS,
    MAX_UNIT_LENGTH,
    text_problem,
)

FIELDS = frozenset({"unit", "value", "variant", "id", "timestamp", "latency_ms", "metric"})


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """One parsed observation; `variant`, `id`, `timestamp`, `latency_ms` and `metric` may be None.

    `metric` is the metric's key as sent (None: the primary); the ingestion service resolves it.
    """

    index: int
    unit: str
    value: float
    variant: str | None
    id: str | None
    timestamp: datetime | None
    latency_ms: float | None
    metric: str | None = None


class ItemErrors:
    """Problems found in a batch, keyed by field path, with the offending item indexes."""

    def __init__(self, prefix: str = "observations"):
        self.prefix = prefix
        self.by_path: dict[str, list[str]] = {}
        self.indexes: set[int] = set()

    def add(self, index: int, field: str, message: str) -> None:
        self.by_path.setdefault(f"{self.prefix}[{index}].{field}", []).append(message)
        self.indexes.add(index)

    def __bool__(self) -> bool:
        return bool(self.by_path)


def _finite_number(value: Any) -> float | None:
    # bool is an int in Python, but true/false is not a measurement.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _identifier(value: Any, max_length: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text if text.strip() and len(text) <= max_length and text_problem(text) is None else None


def _identifier_message(value: Any, what: str) -> str:
    """The message for a refused identifier: the text problem when that is the reason."""
    problem = text_problem(value) if isinstance(value, str) else None
    return problem or what


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A timestamp without an offset is taken as UTC, the platform's time zone.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_shared_fields(item: dict, index: int, errors: ItemErrors,
                        allowed: frozenset[str]) -> tuple[bool, str | None, float | None, str | None]:
    """What an observation and a covariate item have in common: no field outside `allowed`, a
    `unit`, a finite `value` within MAX_ABS_VALUE and an optional `metric` key. (ok, unit, value,
    metric); every problem goes to `errors`."""
    ok = True
    unknown = item.keys() - allowed
    if unknown:
        errors.add(index, sorted(unknown)[0], f"Unknown field; allowed: {', '.join(sorted(allowed))}.")
        ok = False
    unit = _identifier(item.get("unit"), MAX_UNIT_LENGTH)
    if unit is None:
        errors.add(index, "unit", _identifier_message(
            item.get("unit"), f"Required: a non-empty string of at most {MAX_UNIT_LENGTH} characters."))
        ok = False
    value = _finite_number(item.get("value"))
    if value is None or not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
        errors.add(index, "value", f"Required: a finite number with |value| <= {MAX_ABS_VALUE:g}.")
        ok = False
    metric = item.get("metric")
    if metric is not None and _identifier(metric, MAX_KEY_LENGTH) is None:
        errors.add(index, "metric", _identifier_message(metric, "Must be a metric key."))
        ok = False
    return ok, unit, value, metric and str(metric)


def parse_items(items: list[Any], errors: ItemErrors, *, first_index: int = 0) -> list[ObservationRow]:
    """Typed rows for the items that parse; every problem goes to `errors`."""
    rows = []
    for offset, item in enumerate(items):
        index = first_index + offset
        if not isinstance(item, dict):
            errors.add(index, "item", "Each observation must be a JSON object.")
            continue
        ok, unit, value, metric = parse_shared_fields(item, index, errors, FIELDS)
        variant = item.get("variant")
        if variant is not None and _identifier(variant, MAX_KEY_LENGTH) is None:
            errors.add(index, "variant", _identifier_message(variant, "Must be a variant key."))
            ok = False
        idempotency_key = item.get("id")
        if idempotency_key is not None:
            idempotency_key = _identifier(idempotency_key, MAX_ID_LENGTH)
            if idempotency_key is None:
                errors.add(index, "id", _identifier_message(
                    item.get("id"), f"Must be a non-empty string of at most {MAX_ID_LENGTH} characters."))
                ok = False
        timestamp = item.get("timestamp")
        if timestamp is not None:
            timestamp = _timestamp(timestamp)
            if timestamp is None:
                errors.add(index, "timestamp", "Must be an ISO 8601 date-time, e.g. 2026-11-26T14:00:00Z.")
                ok = False
        latency = item.get("latency_ms")
        if latency is not None:
            latency = _finite_number(latency)
            if latency is None or not 0 <= latency <= MAX_LATENCY_MS:
                errors.add(index, "latency_ms", f"Must be a number of milliseconds in [0, {MAX_LATENCY_MS:g}].")
                ok = False
        if ok:
            rows.append(ObservationRow(index, unit, value, variant and str(variant), idempotency_key,
                                       timestamp, latency, metric))
    return rows
