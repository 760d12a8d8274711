"""The platform's published assignment recipe (docs/assignment.md) over one experiment of the SDK configuration.

H(text) = the first 8 bytes of SHA-256(text) as a big-endian integer / 2**64 (clamped below 1);
a unit is in iff H("in:" + salt + ":" + unit) < traffic_percent / 100; its variant is the first
whose cumulative weight share exceeds H("v:" + salt + ":" + unit), the last taking the rest.
"""

from bisect import bisect_right
from datetime import datetime
from hashlib import sha256

_TWO_POW_64 = float(2**64)
_BELOW_ONE = 1.0 - 2.0**-53
_from_bytes = int.from_bytes


def unit_hash(text: str) -> float:
    """H(text), uniform in [0, 1)."""
    value = _from_bytes(sha256(text.encode("utf-8")).digest()[:8], "big") / _TWO_POW_64
    return value if value < 1.0 else _BELOW_ONE


class ServingExperiment:
    """One experiment of `GET /api/v1/sdk/config/`, prepared for assigning: prefixes, bounds, answers."""

    __slots__ = ("key", "design", "status", "salt", "traffic_percent", "ends_at", "variants", "control",
                 "concluded", "shadow", "is_champion_challenger", "_in_prefix", "_v_prefix", "_threshold",
                 "_keys", "_bounds", "_payloads")

    def __init__(self, document: dict):
        self.key: str = document["key"]
        self.design: str = document["design"]
        self.status: str = document["status"]
        self.salt: str = document["salt"]
        self.traffic_percent = float(document["traffic_percent"])
        ends_at = document.get("ends_at")
        self.ends_at = datetime.fromisoformat(ends_at).timestamp() if ends_at else float("-inf")
        self.variants = [(v["key"], float(v["weight"]), v.get("payload") or {}, bool(v["is_control"]))
                         for v in document["variants"]]
        self._keys = tuple(key for key, _, _, _ in self.variants)
        self._payloads = {key: payload for key, _, payload, _ in self.variants}
        self.control = next(key for key, _, _, is_control in self.variants if is_control)
        self.concluded = document.get("concluded_variant")
        self.shadow = [key for key, _, _, is_control in self.variants if not is_control]
        self.is_champion_challenger = self.design == "champion_challenger"
        self._in_prefix = f"in:{self.salt}:"
        self._v_prefix = f"v:{self.salt}:"
        self._threshold = self.traffic_percent / 100.0
        # The weights are added with a plain loop, as the server does (a compensated sum could
        # differ in the last bit); the last variant takes every hash above the other bounds.
        total = 0.0
        for _, weight, _, _ in self.variants:
            total += weight
        cumulative, bounds = 0.0, []
        for _, weight, _, _ in self.variants[:-1]:
            cumulative += weight
            bounds.append(cumulative / total)
        self._bounds = tuple(bounds)

    def payload(self, variant: str) -> dict:
        return self._payloads[variant]

    def is_included(self, unit: str) -> bool:
        return unit_hash(self._in_prefix + unit) < self._threshold

    def hashed_variant(self, unit: str) -> str:
        return self._keys[bisect_right(self._bounds, unit_hash(self._v_prefix + unit))]

    def answer(self, unit: str, variant: str, in_experiment: bool, shadow: bool = False) -> dict:
        """The REST endpoint's assignment document."""
        return {"experiment": self.key, "unit": unit, "variant": variant, "payload": self._payloads[variant],
                "in_experiment": in_experiment, "shadow": list(self.shadow) if shadow else []}

    def included_answer(self, unit: str) -> dict:
        """The answer for a unit the experiment holds: the champion with its shadows, or its hashed variant."""
        if self.is_champion_challenger:
            return self.answer(unit, self.control, True, shadow=True)
        return self.answer(unit, self.hashed_variant(unit), True)
