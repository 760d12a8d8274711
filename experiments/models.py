"""Experiments, their variants, the audit trail and the keys that services authenticate with.

`Metric` (the secondary metrics and guardrails) lives in experiments.metric_model and is
exported from here with the others.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey

from experiments import permissions as permission_names
from experiments.choices import Aggregation, Alternative, AuditAction, Design, Direction, MetricType, Outcome, Status
from experiments.limits import MAX_ID_LENGTH, MAX_KEY_LENGTH, MAX_NAME_LENGTH, MAX_UNIT_LENGTH
from experiments.metric_model import Metric, default_metric_key
from experiments.querysets import ExperimentQuerySet

__all__ = ["AnalysisResult", "Assignment", "AuditEvent", "Experiment", "ImmutableResultError", "Metric", "Observation",
           "ServiceKey", "UnitOutcome", "UserToken", "Variant", "new_salt"]


def new_salt() -> str:
    """A random salt, fixed when an experiment is created, that keys its assignment hashes."""
    return secrets.token_hex(16)


class Experiment(models.Model):
    """A preregistered test: its definition while a draft, its frozen protocol once started."""

    key = models.SlugField(
        "key", max_length=MAX_KEY_LENGTH, unique=True,
        help_text="Stable identifier used in URLs and by services, e.g. checkout-button.",
    )
    name = models.CharField("name", max_length=MAX_NAME_LENGTH, help_text="A short human-readable title.")
    hypothesis = models.TextField(
        "hypothesis", blank=True, help_text="What you expect to happen and why, in one or two sentences.",
    )
    design = models.CharField(
        "design", max_length=32, choices=Design.choices, default=Design.AB,
        help_text="A/B: each user sees one variant. Champion/challenger: every sampled request is "
        "scored by the champion (served) and by each challenger (logged only).",
    )
    metric_name = models.CharField(
        "metric", max_length=MAX_KEY_LENGTH, help_text="The one primary metric the decision is based on.",
    )
    metric_type = models.CharField(
        "metric type", max_length=16, choices=MetricType.choices,
        help_text="Binary for a 0/1 outcome such as a conversion; continuous for revenue, a loss, a duration.",
    )
    metric_direction = models.CharField(
        "direction", max_length=16, choices=Direction.choices, default=Direction.INCREASE,
        help_text="Whether a higher or a lower value of the metric is better.",
    )
    # The primary metric's key (what observations name) and aggregation; the other metrics
    # are `Metric` rows. The primary stays in these part-1 fields, so a part-1 experiment
    # reads, plans and hashes exactly as before.
    metric_key = models.SlugField(
        "metric key", max_length=MAX_KEY_LENGTH, blank=True,
        help_text="What observations name in `metric`; derived from the metric's name when left empty.",
    )
    metric_aggregation = models.CharField(
        "aggregation", max_length=16, choices=Aggregation.choices, default=Aggregation.SUM,
        help_text="How a unit's values become its metric: their sum (binary: any 1), or their mean.",
    )
    baseline_mean = models.FloatField(
        "baseline mean", null=True, blank=True,
        help_text="The control's current mean (the conversion rate for a binary metric).",
    )
    baseline_sd = models.FloatField(
        "baseline standard deviation", null=True, blank=True,
        help_text="Standard deviation per unit (of the paired difference for champion/challenger); "
        "required unless the metric is binary A/B.",
    )
    mde = models.FloatField(
        "minimum detectable effect", null=True, blank=True,
        help_text="The smallest absolute change worth detecting, in the metric's units "
        "(0.01 = one percentage point for a rate). Give this or the sample size.",
    )
    sample_size_per_variant = models.PositiveIntegerField(
        "sample size per variant", null=True, blank=True,
        help_text="Units you can afford for the control; the detectable effect is then computed. "
        "Give this or the minimum detectable effect.",
    )
    alpha = models.FloatField(
        "alpha", default=0.05,
        help_text="False-positive rate you accept (0.05 = 5%); split evenly across challengers.",
    )
    power = models.FloatField(
        "power", default=0.8, help_text="Chance of detecting a true effect of the MDE size (0.8 = 80%).",
    )
    alternative = models.CharField(
        "alternative", max_length=16, choices=Alternative.choices, default=Alternative.TWO_SIDED,
        help_text="Two-sided detects a change either way; one-sided only in the preferred direction.",
    )
    duration = models.DurationField(
        "duration", help_text="How long the test runs once started (ISO 8601, e.g. P14D). Use whole weeks.",
    )
    grace_period = models.DurationField(
        "grace period", default="0",
        help_text="Extra time after the end for late observations (ground truth) before the analysis.",
    )
    traffic_percent = models.FloatField(
        "traffic percent", default=100.0,
        help_text="Share of units included (sampled requests for champion/challenger); "
        "the only setting that may change while running.",
    )
    auto_promote = models.BooleanField(
        "auto-promote", default=False, help_text="Apply the decision automatically after the analysis.",
    )
    salt = models.CharField(
        "salt", max_length=64, default=new_salt, editable=False,
        help_text="Random value fixed at creation that keys the assignment hashes.",
    )
    status = models.CharField(
        "status", max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True,
        help_text="draft -> running -> analyzing -> analyzed -> concluded, or running -> stopped.",
    )
    protocol = models.JSONField(
        "protocol", null=True, blank=True, editable=False,
        help_text="The preregistered protocol frozen at start (canonical JSON).",
    )
    protocol_hash = models.CharField(
        "protocol hash", max_length=64, blank=True, editable=False,
        help_text="SHA-256 of the canonical JSON of the frozen protocol.",
    )
    started_at = models.DateTimeField("started at", null=True, blank=True, editable=False)
    ends_at = models.DateTimeField("ends at", null=True, blank=True, editable=False)
    stop_reason = models.TextField("stop reason", blank=True, editable=False)
    concluded_variant = models.ForeignKey(
        "Variant", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False,
        verbose_name="concluded variant", help_text="Served to every unit once the experiment is concluded.",
    )
    concluded_at = models.DateTimeField("concluded at", null=True, blank=True, editable=False)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="follow_ups", editable=False,
        verbose_name="follow-up of", help_text="The concluded experiment whose winner is this one's control.",
    )
    analysis_queued_at = models.DateTimeField(
        "analysis queued at", null=True, blank=True, editable=False,
        help_text="When the analysis was last queued; the sweep re-queues one that never finished.",
    )
    observation_count = models.BigIntegerField(
        "observations", default=0, editable=False,
        help_text="Observations stored so far (kept by ingestion, so that progress never counts millions of rows).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name="created by", editable=False,
    )
    created_at = models.DateTimeField("created at", auto_now_add=True)
    updated_at = models.DateTimeField("updated at", auto_now=True)

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(alpha__gt=0, alpha__lt=1), name="experiment_alpha_in_0_1"),
            models.CheckConstraint(condition=Q(power__gt=0, power__lt=1), name="experiment_power_in_0_1"),
            models.CheckConstraint(
                condition=Q(traffic_percent__gt=0, traffic_percent__lte=100),
                name="experiment_traffic_in_0_100",
            ),
            models.CheckConstraint(condition=Q(mde__isnull=True) | Q(mde__gt=0), name="experiment_mde_positive"),
            models.CheckConstraint(
                condition=Q(baseline_sd__isnull=True) | Q(baseline_sd__gt=0),
                name="experiment_baseline_sd_positive",
            ),
            models.CheckConstraint(
                condition=Q(mde__isnull=False, sample_size_per_variant__isnull=True)
                | Q(mde__isnull=True, sample_size_per_variant__isnull=False),
                name="experiment_mde_xor_sample_size",
            ),
            models.CheckConstraint(condition=Q(status__in=Status.values), name="experiment_status_valid"),
            models.CheckConstraint(condition=Q(design__in=Design.values), name="experiment_design_valid"),
            models.CheckConstraint(
                condition=Q(started_at__isnull=True) | Q(ends_at__gt=models.F("started_at")),
                name="experiment_ends_after_start",
            ),
        ]
        permissions = list(permission_names.CUSTOM)

    def __str__(self) -> str:
        return self.key

    def save(self, *args, **kwargs):
        if not self.metric_key:  # part 1's default, wherever the experiment comes from
            self.metric_key = default_metric_key(self.metric_name)
        super().save(*args, **kwargs)

    @property
    def unlocks_at(self):
        """When results become visible: the end of the test period plus the grace period."""
        return self.ends_at + self.grace_period if self.ends_at else None


class Variant(models.Model):
    """One arm of an experiment; exactly one per experiment is the control (the champion)."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="variants", verbose_name="experiment",
    )
    key = models.SlugField("key", max_length=MAX_KEY_LENGTH, help_text="Identifier of the arm, e.g. control or green.")
    weight = models.FloatField(
        "weight", default=1.0, help_text="Relative share of included units (A/B); must be positive.",
    )
    is_control = models.BooleanField(
        "control", default=False, help_text="The current version (the champion for champion/challenger).",
    )
    payload = models.JSONField(
        "payload", default=dict, blank=True, help_text="JSON served with the assignment, e.g. {\"color\": \"green\"}.",
    )
    position = models.PositiveSmallIntegerField(
        "position", default=0, help_text="Order of definition; the hash maps onto cumulative weights in this order.",
    )

    class Meta:
        ordering = ["experiment", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_key_unique_per_experiment"),
            # "At most one" is enforced here; "at least one" needs the whole set and is
            # checked by the definition rules before any write.
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="variant_one_control_per_experiment",
            ),
            models.CheckConstraint(condition=Q(weight__gt=0), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}/{self.key}"


class Assignment(models.Model):
    """The stored first answer for an included unit: sticky, it always wins over the hash.

    For champion/challenger the variant is the champion (the one served) and the row
    itself records that the request was sampled for shadow scoring.
    """

    # No FK constraints in the database, as for Observation: checking them locks the parent rows
    # for every first assignment and costs more at commit than the insert (bench/README.md); the
    # serving service writes only ids it has read. No index of experiment_id alone: the unique
    # (experiment, unit) index serves it. Django still applies CASCADE and PROTECT.
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="assignments", verbose_name="experiment",
        db_constraint=False, db_index=False,
    )
    unit = models.CharField("unit", max_length=MAX_UNIT_LENGTH, help_text="User id (A/B) or request id (champion/challenger).")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="+", verbose_name="variant",
                                db_constraint=False)
    assigned_at = models.DateTimeField("assigned at", auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "unit"], name="assignment_unique_unit_per_experiment"),
        ]
        indexes = [models.Index(fields=["experiment", "variant"], name="assignment_by_variant")]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.unit}"


class Observation(models.Model):
    """One value for a unit (and, for champion/challenger, for a variant): the raw outcome data.

    Written in bulk (COPY on PostgreSQL), only ever aggregated in SQL (the per-unit sums).
    """

    id = models.BigAutoField(primary_key=True)
    # No foreign-key constraints in the database on this table: checking them costs more
    # per row than the whole COPY (bench/ingest.py), and every id written here comes from
    # the experiment's own variants, looked up by the ingestion service in the same
    # transaction. Django still applies CASCADE and PROTECT on deletes made through the ORM.
    # Nor single-column indexes: the (experiment, variant, unit) index serves every lookup.
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="observations", verbose_name="experiment",
        db_constraint=False, db_index=False,
    )
    variant = models.ForeignKey(
        Variant, on_delete=models.PROTECT, related_name="+", verbose_name="variant", db_constraint=False,
        db_index=False,
    )
    unit = models.CharField("unit", max_length=MAX_UNIT_LENGTH)
    # 0: the primary metric; n: the Metric at position n. A number, not a foreign key: the
    # metrics are frozen at start, before any observation, and a small integer keeps the
    # hot path and the unique index small.
    metric_position = models.PositiveSmallIntegerField("metric", db_default=0)
    value = models.FloatField("value", help_text="0/1 for a binary metric, any finite number otherwise.")
    latency_ms = models.FloatField("latency (ms)", null=True, blank=True)
    observed_at = models.DateTimeField("observed at", help_text="When it happened, as the service says (or arrival).")
    received_at = models.DateTimeField("received at", auto_now_add=True)
    idempotency_key = models.CharField(
        "id", max_length=MAX_ID_LENGTH, null=True, blank=True,
        help_text="The client's id for this observation: a retry with the same id is stored once.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "metric_position", "idempotency_key"],
                name="observation_id_unique_per_experiment_metric",
            ),
        ]
        indexes = [models.Index(fields=["experiment", "variant", "unit"], name="observation_by_variant_unit")]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.unit}={self.value}"


class UnitOutcome(models.Model):
    """A unit's observations summed at ingestion: the rows the analysis aggregates.

    A/B: one row per unit that has observations, under its variant: how many and their sum
    (the per-unit metric is the sum, or for a binary metric whether the sum is above 0).
    Champion/challenger: one row per (unit, challenger), pairing that challenger's
    observations of the unit (`count`, `total`) with the champion's (`control_count`,
    `control_total`), so that the paired summaries are one plain aggregate over one row per
    pair. Grouping every observation by unit at analysis time instead costs many times more
    than the aggregate, while keeping these sums costs the ingestion one upsert per unit and
    batch (figures in bench/README.md).

    Written in the same transaction as the observations it sums, only for observations
    actually stored (not for repeated ids); `unit_outcomes_rebuild` recomputes it from them.
    """

    pk = models.CompositePrimaryKey("experiment_id", "metric_position", "unit", "variant_id")
    # No database foreign-key constraints, as for Observation: the ids come from the
    # ingestion service, which has just checked them.
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="+", verbose_name="experiment",
        db_constraint=False, db_index=False,
    )
    metric_position = models.PositiveSmallIntegerField("metric", db_default=0, help_text="As Observation's.")
    unit = models.CharField("unit", max_length=MAX_UNIT_LENGTH)
    variant = models.ForeignKey(
        Variant, on_delete=models.PROTECT, related_name="+", verbose_name="variant", db_constraint=False,
        db_index=False, help_text="A/B: the unit's variant. Champion/challenger: the challenger of the pair.",
    )
    count = models.PositiveIntegerField("observations")
    total = models.FloatField("sum of values")
    control_count = models.PositiveIntegerField(
        "champion's observations", default=0, help_text="Champion/challenger only (0 for A/B).",
    )
    control_total = models.FloatField("sum of the champion's values", default=0.0)

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.unit}/{self.variant_id}"


class ImmutableResultError(Exception):
    """An analysis result is never changed or deleted once stored."""


class AnalysisResult(models.Model):
    """The one, immutable result of an experiment's preregistered analysis (DESIGN.md's results JSON)."""

    experiment = models.OneToOneField(
        Experiment, on_delete=models.PROTECT, related_name="result", verbose_name="experiment",
    )
    protocol_hash = models.CharField("protocol hash", max_length=64, help_text="The protocol it was run under.")
    analyzed_at = models.DateTimeField("analyzed at")
    outcome = models.CharField("decision", max_length=16, choices=Outcome.choices)
    winner = models.CharField("winning variant", max_length=MAX_KEY_LENGTH, blank=True)
    document = models.JSONField("result", help_text="Variants, comparisons, checks and decision, as served.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values),
                name="result_outcome_valid",
            ),
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableResultError("An analysis result cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableResultError("An analysis result cannot be deleted.")

    def __str__(self) -> str:
        return f"{self.experiment.key}: {self.outcome}"


class AuditEvent(models.Model):
    """One recorded change of an experiment: who did what, when and why. Never edited."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="audit_events", verbose_name="experiment",
    )
    action = models.CharField("action", max_length=32, choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name="actor",
    )
    actor_label = models.CharField(
        "actor label", max_length=150, help_text="Username (or 'system') kept even if the user is deleted.",
    )
    at = models.DateTimeField("at", auto_now_add=True, db_index=True)
    reason = models.TextField("reason", blank=True)
    details = models.JSONField("details", default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.experiment.key}: {self.action} by {self.actor_label}"


class ServiceKey(AbstractAPIKey):
    """A hashed key for a service: may fetch assignments and post observations, nothing else."""

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "service key"
        verbose_name_plural = "service keys"


class UserToken(AbstractAPIKey):
    """A person's hashed personal API token; it carries that person's permissions."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name="user",
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "personal token"
        verbose_name_plural = "personal tokens"
