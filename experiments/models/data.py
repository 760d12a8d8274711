"""What services send: stored first assignments, observations, and the per-unit sums kept from them."""

from django.db import models

from experiments.limits import MAX_ID_LENGTH, MAX_UNIT_LENGTH
from experiments.models.definition import Experiment, Variant


def protect_within_experiment(collector, field, sub_objs, using):
    """PROTECT, with the referencing rows looked up by experiment as well as by variant.

    A variant's rows all belong to its experiment, so adding the experiment to Django's
    `variant_id IN (...)` finds the same rows, through the (experiment, ...) index instead of
    a scan of the whole table: the table keeps no index of the variant alone (every row
    inserted pays for each index). One row is enough to refuse the deletion.
    """
    deleted = [variant.pk for variant in collector.data.get(field.related_model, ())]
    experiments = Variant._base_manager.using(using).filter(pk__in=deleted).values("experiment_id")
    blocking = sub_objs.filter(experiment_id__in=experiments)[:1]
    if blocking:
        models.PROTECT(collector, field, blocking, using)


# Django evaluates the related rows before calling an on_delete unless it says it will.
protect_within_experiment.lazy_sub_objs = True


class Assignment(models.Model):
    """The stored first answer for an included unit: sticky, it always wins over the hash.

    For champion/challenger the variant is the champion (the one served) and the row
    itself records that the request was sampled for shadow scoring.
    """

    # No FK constraints in the database, as for Observation: checking them locks the parent rows
    # for every first assignment and costs more at commit than the insert (bench/README.md); the
    # serving service writes only ids it has read. Django still applies CASCADE and PROTECT.
    # Two indexes only, the primary key and the unique (experiment, unit) one, which carries
    # the variant: a first assignment writes one entry per index, and a 10,000-unit batch's
    # INSERT is most of its time (bench/README.md). The per-variant counts (progress, the
    # analysis) read that index alone; the experiment's other lookups use its prefix.
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="assignments", verbose_name="experiment",
        db_constraint=False, db_index=False,
    )
    unit = models.CharField("unit", max_length=MAX_UNIT_LENGTH, help_text="User id (A/B) or request id (champion/challenger).")
    variant = models.ForeignKey(Variant, on_delete=protect_within_experiment, related_name="+",
                                verbose_name="variant", db_constraint=False, db_index=False)
    assigned_at = models.DateTimeField("assigned at", auto_now_add=True)

    class Meta:
        constraints = [
            # INCLUDE (variant_id) on PostgreSQL: the stored variant is read from the index.
            models.UniqueConstraint(fields=["experiment", "unit"], include=["variant"],
                                    name="assignment_unique_unit_per_experiment"),
        ]

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
            # The id before the metric: clients send ids in increasing order (timestamps,
            # counters), so the index grows at its right edge even when a batch interleaves
            # several metrics; led by the metric, each row of such a batch went down the tree
            # to its metric's part (1.5 us a row of an import, bench/README.md).
            models.UniqueConstraint(
                fields=["experiment", "idempotency_key", "metric_position"],
                name="observation_id_unique_per_experiment_metric",
            ),
        ]
        indexes = [models.Index(fields=["experiment", "variant", "unit"], name="observation_by_variant_unit")]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.unit}={self.value}"


class Covariate(models.Model):
    """A unit's value of a metric before the test (CUPED): one per (experiment, metric, unit).

    Needs no assignment (it may arrive before the unit is ever assigned); the analysis counts a
    unit without one as 0.
    """

    pk = models.CompositePrimaryKey("experiment_id", "metric_position", "unit")
    # No database foreign-key constraint, as for Observation: written in bulk by the ingestion
    # service, which has just read the experiment.
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="+", verbose_name="experiment",
        db_constraint=False, db_index=False,
    )
    metric_position = models.PositiveSmallIntegerField("metric", db_default=0, help_text="As Observation's.")
    unit = models.CharField("unit", max_length=MAX_UNIT_LENGTH)
    value = models.FloatField("value", help_text="Any finite number.")
    received_at = models.DateTimeField("received at", auto_now_add=True)
    # The unit's arm, kept while the test runs so that the analysis need not join every covariate
    # to its assignment (experiments.db.covariate_arms says who sets it, and when). No database
    # constraint, as for the other ids; a variant is only ever deleted with its experiment.
    variant = models.ForeignKey(
        Variant, on_delete=models.DO_NOTHING, related_name="+", verbose_name="variant", db_constraint=False,
        db_index=False, null=True, blank=True,
        help_text="The unit's assigned variant; empty until the unit is assigned.",
    )

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.unit}~{self.value}"


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
    # CUPED: the unit's covariate of this metric, kept at ingestion so that the analysis's x*y
    # is a plain aggregate of these rows (experiments.db.covariate_arms).
    covariate = models.FloatField(
        "covariate", null=True, blank=True,
        help_text="CUPED metrics (A/B): the unit's covariate of this metric; empty without one.",
    )

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.unit}/{self.variant_id}"
