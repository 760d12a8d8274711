"""Storing observations: every rule checked first, then all rows or none, retries harmless.

Each observation belongs to the metric it names in `metric` (the primary when absent), stored
as its `metric_position`; an `id` is unique per (experiment, metric). The rows are stored, an
`id` seen before under the same metric skipped and counted, and added to the per-unit sums
of their metric (`UnitOutcome`) the analysis reads by experiments.db's `insert_observations`: on
PostgreSQL through COPY and one statement, no row through the ORM (see its docstring).
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from experiments import db
from experiments.choices import Design
from experiments.errors import RuleViolation
from experiments.lock import ensure_taking_observations
from experiments.models import observed_metrics
from experiments.models import Experiment, Variant
from experiments.observation_input import ItemErrors, ObservationRow
from experiments.unit_outcomes.write import pairings


@dataclass(frozen=True)
class IngestResult:
    """How many observations were stored, and how many repeated an `id` already stored."""

    accepted: int
    duplicates: int


def _resolve(experiment: Experiment, variants: list[Variant], metrics: dict, rows: list[ObservationRow],
             errors: ItemErrors) -> list[tuple[int, int, ObservationRow]]:
    """Each row's (variant id, metric position, row), checked against the design's rules; problems go to `errors`."""
    variant_ids = {v.key: v.id for v in variants}
    primary = metrics[experiment.metric_key]
    paired = experiment.design == Design.CHAMPION_CHALLENGER
    assigned: dict[str, int] = {}
    if not paired:
        assigned = db.stored_assignments(experiment.id, {row.unit for row in rows})
    keys_by_id = {variant_id: key for key, variant_id in variant_ids.items()}
    resolved = []
    for row in rows:
        metric = primary if row.metric is None else metrics.get(row.metric)
        if metric is None:
            errors.add(row.index, "metric", f"Unknown metric {row.metric!r}; this experiment's metrics: "
                                            f"{', '.join(metrics)}.")
        elif metric.binary and row.value not in (0.0, 1.0):
            errors.add(row.index, "value", "A binary metric takes 0 or 1.")
        if row.variant is not None and row.variant not in variant_ids:
            errors.add(row.index, "variant", f"Unknown variant {row.variant!r}.")
            continue
        if paired:
            if row.variant is None:
                errors.add(row.index, "variant", "Required for champion/challenger: which model scored it.")
                continue
            variant_id = variant_ids[row.variant]
        else:
            variant_id = assigned.get(row.unit)
            if variant_id is None:
                errors.add(row.index, "unit", "This unit was never assigned to the experiment (or was outside "
                                              "its traffic).")
                continue
            if row.variant is not None and variant_ids[row.variant] != variant_id:
                errors.add(row.index, "variant", f"The unit was assigned {keys_by_id[variant_id]!r}, "
                                                 f"not {row.variant!r}.")
                continue
        if metric is not None:
            resolved.append((variant_id, metric.position, row))
    return resolved


@transaction.atomic
def observations_ingest(*, experiment: Experiment, rows: list[ObservationRow]) -> IngestResult:
    """Check every rule for every row, then store them all (RuleViolation and nothing stored if any fails)."""
    now = timezone.now()
    ensure_taking_observations(experiment, now)
    errors = ItemErrors()
    variants = list(experiment.variants.all())
    metrics = observed_metrics(experiment)
    resolved = _resolve(experiment, variants, metrics, rows, errors)
    if errors:
        raise RuleViolation(
            f"{len(errors.indexes)} observation(s) break a rule; nothing was stored.",
            errors=errors.by_path, indexes=sorted(errors.indexes),
        )
    records = [
        (variant_id, row.unit, row.value, row.latency_ms, row.timestamp or now, row.id, position)
        for variant_id, position, row in resolved
    ]
    pairing = pairings(experiment.design, variants)
    # CUPED metrics: each new unit sum takes its unit's covariate (experiments.db.covariate_arms).
    covariates = any(metric.cuped for metric in metrics.values())
    inserted = db.insert_observations(experiment.id, pairing, records, now, covariates=covariates) if records else 0
    Experiment.objects.filter(pk=experiment.pk).update(observation_count=F("observation_count") + inserted)
    return IngestResult(accepted=inserted, duplicates=len(records) - inserted)
