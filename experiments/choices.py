"""Every choice the platform stores, as Django `TextChoices`: one source for models, API, admin and reports.

Values shared with the statistics come from `analysis.vocabulary`, so the pure analysis and
the database spell them alike.
"""

from django.db import models

from analysis import vocabulary


class Design(models.TextChoices):
    AB = vocabulary.Design.AB.value, "A/B (unpaired)"
    CHAMPION_CHALLENGER = vocabulary.Design.CHAMPION_CHALLENGER.value, "Champion/challenger (paired, shadow)"


class MetricType(models.TextChoices):
    BINARY = vocabulary.MetricType.BINARY.value, "Binary (0/1, mean = rate)"
    CONTINUOUS = vocabulary.MetricType.CONTINUOUS.value, "Continuous"


class Direction(models.TextChoices):
    INCREASE = vocabulary.Direction.INCREASE.value, "Increase is better"
    DECREASE = vocabulary.Direction.DECREASE.value, "Decrease is better"


class MetricRole(models.TextChoices):
    PRIMARY = vocabulary.MetricRole.PRIMARY.value, "Primary (decides)"
    SECONDARY = vocabulary.MetricRole.SECONDARY.value, "Secondary (to learn from)"
    GUARDRAIL = vocabulary.MetricRole.GUARDRAIL.value, "Guardrail (must not get worse)"


class Aggregation(models.TextChoices):
    SUM = vocabulary.Aggregation.SUM.value, "Sum of the unit's values (binary: any 1)"
    MEAN = vocabulary.Aggregation.MEAN.value, "Mean of the unit's values (units without any left out)"


class Alternative(models.TextChoices):
    TWO_SIDED = vocabulary.PlanAlternative.TWO_SIDED.value, "Two-sided"
    ONE_SIDED = vocabulary.PlanAlternative.ONE_SIDED.value, "One-sided, in the preferred direction"


class Spending(models.TextChoices):
    """The Lan-DeMets alpha-spending function of a design with interim looks (DESIGN.md part 2)."""

    OBRIEN_FLEMING = "obrien_fleming", "O'Brien-Fleming type (spends little early)"
    POCOCK = "pocock", "Pocock type (spends nearly evenly)"


class LookOutcome(models.TextChoices):
    """What an interim look did."""

    SEALED = "sealed", "sealed: the test continues"
    ENDED = "ended", "ended the test"
    NO_DATA = "no_data", "sealed: no data to assess"
    SKIPPED = "skipped", "skipped: a later look was already due"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    ANALYZING = "analyzing", "Analyzing"
    ANALYZED = "analyzed", "Analyzed"
    CONCLUDED = "concluded", "Concluded"
    STOPPED = "stopped", "Stopped"


class Outcome(models.TextChoices):
    PROMOTE = vocabulary.Outcome.PROMOTE.value, "Promote"
    KEEP = vocabulary.Outcome.KEEP.value, "Keep"
    INCONCLUSIVE = vocabulary.Outcome.INCONCLUSIVE.value, "Inconclusive"
    INVALID = vocabulary.Outcome.INVALID.value, "Invalid"


class AuditAction(models.TextChoices):
    """What an audit event records; the label is how the report's audit trail says it."""

    CREATED = "created", "created"
    UPDATED = "updated", "edited"
    TRAFFIC_CHANGED = "traffic_changed", "traffic changed"
    STARTED = "started", "started"
    STOPPED = "stopped", "stopped"
    ANALYSIS_QUEUED = "analysis_queued", "analysis queued"
    ANALYSIS_REQUEUED = "analysis_requeued", "analysis queued again"
    ANALYZED = "analyzed", "analysed"
    LOOK_SEALED = "look_sealed", "interim look taken (sealed: the test continues)"
    LOOK_ENDED = "look_ended", "interim look ended the test"
    PROMOTED = "promoted", "promoted (concluded)"
