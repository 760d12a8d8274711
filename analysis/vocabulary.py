"""The words the statistics and the platform share: designs, metric types, directions, outcomes.

The Django app's choices (`experiments.choices`) take their values from here, so the
analysis and the database can never disagree on a spelling.
"""

from enum import StrEnum


class Design(StrEnum):
    AB = "ab"
    CHAMPION_CHALLENGER = "champion_challenger"


class MetricType(StrEnum):
    BINARY = "binary"
    CONTINUOUS = "continuous"


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class PlanAlternative(StrEnum):
    """The alternative a protocol states; the tests turn one-sided into larger or smaller."""

    TWO_SIDED = "two-sided"
    ONE_SIDED = "one-sided"


class Outcome(StrEnum):
    """The decision of an analysis (DESIGN.md's vocabulary)."""

    PROMOTE = "promote"
    KEEP = "keep"
    INCONCLUSIVE = "inconclusive"
    INVALID = "invalid"


class MetricRole(StrEnum):
    """What a metric is for: the primary decides, a secondary informs, a guardrail must not get worse."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    GUARDRAIL = "guardrail"


class Aggregation(StrEnum):
    """How a unit's observations become its value: their sum (absent = 0) or their mean (absent = left out)."""

    SUM = "sum"
    MEAN = "mean"
