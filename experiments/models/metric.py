"""The secondary metrics and guardrails of an experiment (the primary is the experiment's own metric fields)."""

from typing import NamedTuple

from django.db import models
from django.db.models import Q
from django.utils.text import slugify

from experiments.choices import Aggregation, Design, Direction, MetricRole, MetricType
from experiments.limits import MAX_KEY_LENGTH


def default_metric_key(name: str) -> str:
    """Part 1's rule for the primary's key: slugify(metric.name) ("primary" if nothing is left)."""
    return slugify(name or "") or "primary"


class ObservedMetric(NamedTuple):
    """What an observation naming a metric is stored under, whether its value must be 0 or 1, and
    whether it uses CUPED (A/B only), so that its unit sums carry the unit's covariate."""

    position: int
    binary: bool
    cuped: bool = False


def observed_metrics(experiment) -> dict[str, ObservedMetric]:
    """{key: ObservedMetric} of every metric observations may name, the primary (position 0) first.

    The one place that maps `metric` keys to `metric_position`, for the REST and row-by-row
    path (experiments.services.ingestion) and the in-database CSV import alike.
    """
    ab = experiment.design == Design.AB
    metrics = {experiment.metric_key: ObservedMetric(0, experiment.metric_type == MetricType.BINARY,
                                                     ab and bool(experiment.cuped))}
    for metric in experiment.metrics.all():
        metrics[metric.key] = ObservedMetric(metric.position, metric.metric_type == MetricType.BINARY,
                                             ab and bool(metric.cuped))
    return metrics


class Metric(models.Model):
    """A secondary metric (to learn from) or a guardrail (must not get worse) of an experiment.

    Frozen with the protocol at start; `position` (1, 2, ...) is what observations carry in
    `metric_position`, 0 being the primary.
    """

    experiment = models.ForeignKey(
        "experiments.Experiment", on_delete=models.CASCADE, related_name="metrics", verbose_name="experiment",
    )
    position = models.PositiveSmallIntegerField("position", help_text="1, 2, ... in the order of definition.")
    key = models.SlugField("key", max_length=MAX_KEY_LENGTH, help_text="What observations name in `metric`.")
    name = models.CharField("name", max_length=MAX_KEY_LENGTH)
    role = models.CharField(
        "role", max_length=16, choices=[c for c in MetricRole.choices if c[0] != MetricRole.PRIMARY],
        default=MetricRole.SECONDARY,
        help_text="Secondary: reported, never decides. Guardrail: a challenger is promoted only if it is "
        "shown not to be worse than the control by more than the margin.",
    )
    metric_type = models.CharField("type", max_length=16, choices=MetricType.choices)
    direction = models.CharField("direction", max_length=16, choices=Direction.choices, default=Direction.INCREASE)
    aggregation = models.CharField("aggregation", max_length=16, choices=Aggregation.choices,
                                   default=Aggregation.SUM)
    baseline_mean = models.FloatField("baseline mean", null=True, blank=True)
    baseline_sd = models.FloatField("baseline standard deviation", null=True, blank=True)
    margin = models.FloatField(
        "margin", null=True, blank=True,
        help_text="Guardrails: the largest harm accepted, in the per-unit value's units (5 = 5 ms more).",
    )

    cuped = models.BooleanField(
        "CUPED", default=False, help_text="Adjust this metric by each unit's covariate (A/B only).",
    )
    expected_correlation = models.FloatField(
        "expected correlation", null=True, blank=True,
        help_text="Planning only: the correlation expected between covariate and metric, in [0, 1).",
    )

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="metric_key_unique_per_experiment"),
            models.UniqueConstraint(fields=["experiment", "position"], name="metric_position_unique_per_experiment"),
            models.CheckConstraint(condition=Q(position__gte=1), name="metric_position_after_primary"),
            models.CheckConstraint(condition=Q(margin__isnull=True) | Q(margin__gt=0), name="metric_margin_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.key}"
