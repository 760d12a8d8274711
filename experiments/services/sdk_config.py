"""The configuration a client needs to assign locally: every serving experiment's definition, with its ETag.

Clients (clients/python) poll it every few seconds with `If-None-Match`, so the document is
built in two queries and hashed: an unchanged configuration costs them an empty 304.
"""

from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import orjson

from experiments.choices import Status
from experiments.models import Experiment, Variant
from experiments.services.assignment import LIVE_STATUSES

# Live experiments serve assigned units (or the winner); a stopped one serves the control to
# everyone, which a client must know too, rather than keep serving its last variants.
SDK_STATUSES = (*LIVE_STATUSES, Status.STOPPED)


@dataclass(frozen=True)
class SdkConfig:
    """The document as JSON bytes and its ETag (a quoted SHA-256 of those bytes)."""

    body: bytes
    etag: str


def sdk_config_document() -> dict[str, Any]:
    """`{"experiments": [...]}`: key, design, status, salt, traffic_percent, variants, concluded_variant, ends_at.

    Variants come in the order the recipe walks the weights (position, then id); drafts are
    never listed; experiments are ordered by key so that the same state gives the same bytes.
    """
    experiments = list(
        Experiment.objects.filter(status__in=SDK_STATUSES).order_by("key")
        .values("id", "key", "design", "status", "salt", "traffic_percent", "ends_at", "concluded_variant_id")
    )
    variants: dict[int, list[dict[str, Any]]] = {e["id"]: [] for e in experiments}
    keys_by_id: dict[int, str] = {}
    rows = (Variant.objects.filter(experiment_id__in=variants).order_by("experiment_id", "position", "id")
            .values("id", "experiment_id", "key", "weight", "payload", "is_control"))
    for row in rows:
        keys_by_id[row["id"]] = row["key"]
        variants[row["experiment_id"]].append(
            {"key": row["key"], "weight": row["weight"], "payload": row["payload"], "is_control": row["is_control"]})
    return {"experiments": [
        {
            "key": e["key"], "design": e["design"], "status": e["status"], "salt": e["salt"],
            "traffic_percent": e["traffic_percent"], "variants": variants[e["id"]],
            "concluded_variant": keys_by_id.get(e["concluded_variant_id"]),
            "ends_at": e["ends_at"].isoformat() if e["ends_at"] else None,
        }
        for e in experiments
    ]}


def sdk_config() -> SdkConfig:
    """The document serialised once (sorted keys: payloads hash the same whatever their order) and its ETag."""
    body = orjson.dumps(sdk_config_document(), option=orjson.OPT_SORT_KEYS)
    return SdkConfig(body=body, etag=f'"{sha256(body).hexdigest()}"')
