"""The preregistered protocol: built from a definition at start, canonical JSON, SHA-256."""

import hashlib
import json
from datetime import datetime
from typing import Any

from analysis.pipeline import hypothesis_test_name
from experiments.definitions.durations import iso_duration
from experiments.definitions.planning import planned_sample


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, no NaN: the same protocol always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def protocol_hash(protocol: dict[str, Any]) -> str:
    """SHA-256 hex digest of the protocol's canonical JSON."""
    return hashlib.sha256(canonical_json(protocol).encode("utf-8")).hexdigest()


def build_protocol(definition: dict[str, Any], *, started_at: datetime) -> dict[str, Any]:
    """Everything the analysis will be held to, frozen at start.

    `traffic_percent` is left out on purpose: it is the one setting that may change while
    running (a ramp), and it changes who is included, not how the test is run.
    """
    mde, sizes = planned_sample(definition)
    ends_at = started_at + definition["duration"]
    return {
        "design": definition["design"],
        "metric": {
            "name": definition["metric_name"],
            "type": definition["metric_type"],
            "direction": definition["metric_direction"],
        },
        "baseline_mean": definition.get("baseline_mean"),
        "baseline_sd": definition.get("baseline_sd"),
        "mde": mde,
        "alpha": definition["alpha"],
        "power": definition["power"],
        "alternative": definition["alternative"],
        "variants": [
            {"key": v["key"], "weight": v["weight"], "is_control": bool(v.get("is_control"))}
            for v in definition["variants"]
        ],
        "sample_size_per_variant": sizes,
        "test": hypothesis_test_name(definition["design"], definition["metric_type"]),
        "duration": iso_duration(definition["duration"]),
        "grace_period": iso_duration(definition["grace_period"]),
        "started_at": started_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "unlocks_at": (ends_at + definition["grace_period"]).isoformat(),
    }
