"""What the platform records and never edits: the analysis result and the audit trail."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from experiments.choices import AuditAction, LookOutcome, Outcome
from experiments.limits import MAX_KEY_LENGTH
from experiments.models.definition import Experiment


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


class InterimLook(models.Model):
    """One interim look of a design with several: taken once, never edited.

    A sealed look's `statistics` (each comparison's information fraction, Z and boundary) are
    shown to nobody until the test has ended; the later looks read their fractions, which the
    boundaries are recomputed at. The last look is the analysis itself (`AnalysisResult`).
    """

    experiment = models.ForeignKey(
        Experiment, on_delete=models.PROTECT, related_name="interim_looks", verbose_name="experiment",
    )
    index = models.PositiveSmallIntegerField("look", help_text="1 for the first look.")
    taken_at = models.DateTimeField("taken at")
    outcome = models.CharField("outcome", max_length=16, choices=LookOutcome.choices)
    reason = models.TextField("reason", blank=True, help_text="Why a look assessed nothing (no data, skipped).")
    statistics = models.JSONField(
        "statistics", default=list, blank=True,
        help_text="Per comparison: information fraction, Z and boundary (sealed until the test ends).",
    )

    class Meta:
        ordering = ["experiment", "index"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "index"], name="interim_look_once"),
            models.CheckConstraint(condition=Q(outcome__in=LookOutcome.values), name="interim_look_outcome_valid"),
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableResultError("An interim look cannot be changed.")
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.experiment.key}: look {self.index} ({self.outcome})"
