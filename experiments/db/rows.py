"""What the database layer hands back, the same from either engine."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """One variant's latency in milliseconds over its observations that carry one."""

    variant_id: int
    count: int
    mean: float
    p50: float
    p95: float
