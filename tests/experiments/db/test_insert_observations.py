"""The two engines' `insert_observations` agree: COPY on PostgreSQL, ORM inserts elsewhere.

Both also keep the per-unit sums (UnitOutcome) the analysis reads; after any sequence of
batches, with repeated ids, they must equal the sums recomputed from the stored observations.
"""

import random

import pytest
from django.utils import timezone

from experiments.db import portable, postgresql
from experiments.models import Observation, UnitOutcome
from experiments.unit_outcomes.write import pairings, unit_outcomes_rebuild
from tests.experiments.builders import start
from tests.experiments.db import on_postgresql

PATHS = pytest.mark.parametrize("insert", [pytest.param(postgresql.insert_observations, marks=on_postgresql),
                                           portable.insert_observations], ids=["copy", "portable"])


def records(experiment, ids):
    variant_id = experiment.variants.get(is_control=True).id
    return [(variant_id, f"u{i}", 1.0, None, timezone.now(), key, 0) for i, key in enumerate(ids)]


def outcomes(experiment) -> dict[tuple[str, int], tuple]:
    return {(o.unit, o.variant_id): (o.count, o.total, o.control_count, o.control_total)
            for o in UnitOutcome.objects.filter(experiment=experiment)}


@pytest.mark.django_db
@PATHS
def test_both_storage_paths_skip_ids_already_stored_or_repeated_in_the_batch(insert):
    experiment = start()
    now = timezone.now()
    pairing = pairings(experiment.design, experiment.variants.all())

    first = insert(experiment.id, pairing, records(experiment, ["a", "b", None, None]), now)
    second = insert(experiment.id, pairing, records(experiment, ["b", "c", "c", None]), now)

    assert (first, second) == (4, 2)
    assert sorted(Observation.objects.exclude(idempotency_key=None).values_list("idempotency_key", flat=True)) == [
        "a", "b", "c"]
    assert Observation.objects.filter(idempotency_key=None).count() == 3
    # Only stored observations are summed: repeats of an id add nothing.
    control = experiment.variants.get(is_control=True).id
    assert outcomes(experiment) == {
        ("u0", control): (1, 1.0, 0, 0.0),   # "a"; the second batch's "b" at u0 was a repeat
        ("u1", control): (2, 2.0, 0, 0.0),   # "b", then "c"
        ("u2", control): (1, 1.0, 0, 0.0),   # None; the second batch's second "c" was a repeat
        ("u3", control): (2, 2.0, 0, 0.0),   # None twice
    }


@pytest.mark.django_db
@PATHS
@pytest.mark.parametrize("design", ["ab", "champion_challenger"])
def test_the_unit_sums_equal_a_recount_after_random_batches_with_repeated_ids(insert, design):
    variants = [{"key": "control", "is_control": True}, {"key": "b"}, {"key": "c"}]
    experiment = start(design=design, metric_type="continuous", baseline_mean=None, baseline_sd=1.0, mde=0.2,
                       variants=variants)
    ids = {v.key: v.id for v in experiment.variants.all()}
    pairing = pairings(experiment.design, experiment.variants.all())
    rng = random.Random(5)
    ab_variant = {f"u{i}": rng.choice(list(ids.values())) for i in range(40)}
    now = timezone.now()
    for _ in range(6):
        batch = []
        for _ in range(rng.randint(1, 60)):
            unit = rng.choice(list(ab_variant))
            variant_id = ab_variant[unit] if design == "ab" else rng.choice(list(ids.values()))
            # Quarters add up exactly in any order, so the comparison can be exact.
            value = rng.randint(-20, 40) / 4
            key = rng.choice([None, f"id-{rng.randint(0, 150)}"])
            batch.append((variant_id, unit, value, None, now, key, 0))
        insert(experiment.id, pairing, batch, now)

    incremental = outcomes(experiment)
    unit_outcomes_rebuild(experiment)

    assert incremental == outcomes(experiment)
    if design == "champion_challenger":
        # One row per (unit, challenger); the champion's values sit on every challenger's row.
        assert {variant for _, variant in incremental} == {ids["b"], ids["c"]}
        stored = Observation.objects.filter(experiment=experiment, variant_id=ids["control"])
        for unit in {o.unit for o in stored}:
            champion = sum(o.value for o in stored if o.unit == unit)
            assert incremental[(unit, ids["b"])][3] == incremental[(unit, ids["c"])][3] == champion
