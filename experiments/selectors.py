"""Reads: experiments as definitions and lookups by key (stored assignments: experiments.db)."""

from typing import Any

from django.db.models import Count

from analysis.checks import sample_ratio_mismatch
from experiments.choices import Design
from experiments.models import Assignment, Experiment


def experiment_get(key: str, *, for_update: bool = False) -> Experiment:
    """The experiment with this key (variants prefetched), or Experiment.DoesNotExist."""
    queryset = Experiment.objects.with_variants().select_related("concluded_variant", "previous")
    if for_update:
        queryset = queryset.select_for_update()
    return queryset.get(key=key)


def experiment_progress(experiment: Experiment) -> dict[str, Any]:
    """Assigned units per variant, the live sample ratio p-value and the share of the plan.

    Counts only: nothing here depends on an outcome, so it may be shown while locked.
    For champion/challenger every sampled unit is scored by every variant, so each variant
    counts the sampled units, and there is no split to check.
    """
    variants = list(experiment.variants.all())
    # COUNT(*), not COUNT(id): the unique (experiment, unit) index carries the variant, so the
    # count is an index-only scan; the id would need the table's rows.
    counts = dict(
        Assignment.objects.filter(experiment=experiment)
        .values_list("variant_id").annotate(units=Count("*")).values_list("variant_id", "units")
    )
    if experiment.design == Design.CHAMPION_CHALLENGER:
        sampled = sum(counts.values())
        units = {v.key: sampled for v in variants}
        sample_ratio_p_value = None
    else:
        units = {v.key: counts.get(v.id, 0) for v in variants}
        sample_ratio_p_value = (
            sample_ratio_mismatch([units[v.key] for v in variants], [v.weight for v in variants]).p_value
            if sum(units.values()) else None
        )
    planned = (experiment.protocol or {}).get("sample_size_per_variant") or {}
    planned_total = sum(planned.values())
    return {
        "units": units,
        "observations": experiment.observation_count,
        "sample_ratio_p_value": sample_ratio_p_value,
        "share_of_plan": sum(units.values()) / planned_total if planned_total else None,
    }


__all__ = ["experiment_get", "experiment_progress"]
