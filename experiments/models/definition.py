"""An experiment's definition: the experiment (its primary metric included) and its variants."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from experiments import permissions as permission_names
from experiments.choices import Aggregation, Alternative, Design, Direction, MetricType, Spending, Status
from experiments.limits import MAX_KEY_LENGTH, MAX_NAME_LENGTH
from experiments.models.metric import default_metric_key
from experiments.querysets import ExperimentQuerySet


def default_looks() -> list[float]:
    """Part 1's fixed horizon: one look, at the end."""
    return [1.0]


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
    # CUPED (DESIGN.md part 2): A/B only; frozen and hashed only when asked for, so a part-1
    # protocol hashes as before.
    cuped = models.BooleanField(
        "CUPED", default=False,
        help_text="Adjust the primary metric by each unit's covariate (its value before the test).",
    )
    expected_correlation = models.FloatField(
        "expected correlation", null=True, blank=True,
        help_text="Planning only: the correlation expected between covariate and metric, in [0, 1).",
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
    # Interim looks (DESIGN.md part 2): frozen and hashed only with more than one look, so a
    # part-1 protocol (one look at the end) hashes as before.
    looks = models.JSONField(
        "looks", default=default_looks, blank=True,
        help_text="Information fractions of the planned looks, increasing, the last 1, at most 10, "
        "e.g. [0.5, 1]; [1] is one analysis at the end.",
    )
    spending = models.CharField(
        "alpha spending", max_length=16, choices=Spending.choices, default=Spending.OBRIEN_FLEMING,
        help_text="How the looks share alpha (Lan-DeMets): O'Brien-Fleming spends little early, Pocock evenly.",
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
    ended_early_at = models.DateTimeField(
        "ended early at", null=True, blank=True, editable=False,
        help_text="When an interim look ended the test (its boundary was crossed): the lock lifted then.",
    )
    analysis_queued_at = models.DateTimeField(
        "analysis queued at", null=True, blank=True, editable=False,
        help_text="When the analysis was last queued; the sweep re-queues one that never finished.",
    )
    observation_count = models.BigIntegerField(
        "observations", default=0, editable=False,
        help_text="Observations stored so far (kept by ingestion, so that progress never counts millions of rows).",
    )
    # CUPED: the assignments whose covariates have their arm (experiments.db.covariate_arms).
    covariate_arms_through = models.BigIntegerField(
        "covariate arms resolved through", default=0, editable=False,
        help_text="CUPED: every assignment up to this id has given its arm to its unit's covariates.",
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
        """When results become visible: the end of the test period plus the grace period, or the
        interim look that ended the test."""
        if self.ended_early_at is not None:
            return self.ended_early_at
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
