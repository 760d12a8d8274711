"""Serving sticky assignments: the stored answer if there is one, else the hash, stored first.

This is on every request path of the services that call us, so it is written for few
round trips: one query reads the experiment with the unit's stored assignment, and a first
assignment is one INSERT ... ON CONFLICT DO NOTHING RETURNING (a batch of never-seen units,
one COPY on PostgreSQL). When another request stored the unit first, nothing is returned
and the stored row is read back: that is what makes two concurrent first requests agree
(the row that won the race is what both return).
"""

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from cachetools import LRUCache
from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from experiments import db, hashing
from experiments.choices import Design, Status
from experiments.errors import WrongState
from experiments.models import Assignment, Experiment, Variant


@dataclass(frozen=True)
class ServedVariant:
    id: int
    key: str
    weight: float
    is_control: bool
    payload: dict


@dataclass(frozen=True)
class ExperimentState:
    """What serving needs of an experiment, read in one query."""

    id: int
    key: str
    salt: str
    status: str
    design: str
    traffic_percent: float
    ends_at: Any
    concluded_variant_id: int | None
    variants: tuple[ServedVariant, ...]

    @property
    def control(self) -> ServedVariant:
        return next(v for v in self.variants if v.is_control)

    @property
    def weights(self) -> tuple[tuple[str, float], ...]:
        return tuple((v.key, v.weight) for v in self.variants)

    def variant(self, *, key: str | None = None, id: int | None = None) -> ServedVariant:
        return next(v for v in self.variants if v.key == key or v.id == id)

    @property
    def accepts_new_units(self) -> bool:
        """New units enter only while running and within the preregistered test period."""
        return self.status == Status.RUNNING and timezone.now() < self.ends_at


class AssignmentAnswer(NamedTuple):
    """One unit's answer, as DESIGN.md's assignment JSON.

    A NamedTuple rather than a frozen dataclass: a 10,000-unit batch builds 10,000 of them,
    and a frozen dataclass's __init__ costs several times a tuple's.
    """

    experiment: str
    unit: str
    variant: str
    payload: dict
    in_experiment: bool
    shadow: tuple[str, ...] = ()

    def for_unit(self, unit: str) -> "AssignmentAnswer":
        """The same answer for another unit (cheaper than `_replace`, which goes through `_make`)."""
        return AssignmentAnswer(self.experiment, unit, self.variant, self.payload, self.in_experiment, self.shadow)

    def as_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "unit": self.unit, "variant": self.variant,
                "payload": self.payload, "in_experiment": self.in_experiment, "shadow": list(self.shadow)}


# Variants cannot change once an experiment has started, so they are cached per process
# (never for drafts, whose variants may still be edited). The key includes the random salt
# because SQLite may give a deleted experiment's id to a new one.
_started_variants: dict[tuple[int, str], tuple[ServedVariant, ...]] = {}

_STATE_FIELDS = ("id", "key", "salt", "status", "design", "traffic_percent", "ends_at", "concluded_variant_id")

# Experiments that serve something to a unit asking for "every experiment": running ones,
# ended ones still serving their assigned variants, and concluded ones serving the winner.
LIVE_STATUSES = (Status.RUNNING, Status.ANALYZING, Status.ANALYZED, Status.CONCLUDED)


def _variants_of(experiment_id: int, salt: str, status: str) -> tuple[ServedVariant, ...]:
    cached = _started_variants.get((experiment_id, salt))
    if cached is not None:
        return cached
    variants = tuple(
        ServedVariant(**row) for row in Variant.objects.filter(experiment_id=experiment_id)
        .order_by("position", "id").values("id", "key", "weight", "is_control", "payload")
    )
    if status != Status.DRAFT:
        _started_variants[(experiment_id, salt)] = variants
    return variants


def _state(row: dict[str, Any]) -> ExperimentState:
    return ExperimentState(
        **{name: row[name] for name in _STATE_FIELDS}, variants=_variants_of(row["id"], row["salt"], row["status"])
    )


class _ServingCache:
    """Per-process memory of what serving reads on every request (bench/assignment.py).

    A stored assignment never changes, so (salt, unit) -> variant id is kept in an LRU (the
    least recently read or stored entry goes first when it is full). An
    experiment's state (status, traffic, concluded variant) can change, so it is kept for
    `ASSIGNMENT_STATE_CACHE_SECONDS` only: a stop, a promotion or a ramp reaches every worker
    within that time. `ends_at` never changes once started, so the end of the test period is
    always exact. Drafts are never cached (a start must take effect at once).
    """

    MAX_ASSIGNMENTS = 200_000

    def __init__(self, *, max_assignments: int = MAX_ASSIGNMENTS):
        self.states: dict[str, tuple[float, ExperimentState]] = {}
        # A hit moves the entry to the recent end: units that keep coming back stay cached.
        self.assignments: LRUCache[tuple[str, str], int] = LRUCache(maxsize=max_assignments)

    def state(self, key: str) -> ExperimentState | None:
        entry = self.states.get(key)
        return entry[1] if entry and entry[0] > time.monotonic() else None

    def remember_state(self, state: ExperimentState) -> None:
        ttl = settings.ASSIGNMENT_STATE_CACHE_SECONDS
        if ttl > 0 and state.status != Status.DRAFT:
            self.states[state.key] = (time.monotonic() + ttl, state)

    def assignment(self, state: ExperimentState, unit: str) -> int | None:
        return self.assignments.get((state.salt, unit))

    def remember_assignment(self, state: ExperimentState, unit: str, variant_id: int) -> None:
        if settings.ASSIGNMENT_STATE_CACHE_SECONDS > 0:
            self.assignments[(state.salt, unit)] = variant_id   # evicts the least recently used when full


serving_cache = _ServingCache()


def experiment_state(key: str, *, unit: str | None = None) -> tuple[ExperimentState, int | None]:
    """The experiment and, when a unit is given, the variant id stored for it, in one round trip.

    A repeat request within the state cache's lifetime needs no query at all.
    """
    state = serving_cache.state(key)
    if state is not None and unit is not None:
        stored = serving_cache.assignment(state, unit)
        if stored is not None:
            return state, stored
    state, stored = _experiment_state_from_database(key, unit)
    serving_cache.remember_state(state)
    if stored is not None:
        serving_cache.remember_assignment(state, unit, stored)
    return state, stored


def _experiment_state_from_database(key: str, unit: str | None) -> tuple[ExperimentState, int | None]:
    row = db.experiment_state_row(key, unit)
    if row is None:
        raise Experiment.DoesNotExist(f"No experiment with key {key!r}.")
    return _state(row), row["stored_variant_id"]


def _answer(state: ExperimentState, unit: str, variant: ServedVariant | None) -> AssignmentAnswer:
    """The answer for a unit given its stored (or just stored) variant; None means not in."""
    if state.status == Status.CONCLUDED:
        # The decision is applied: everyone gets the concluded variant, and nobody is in a test.
        served = state.variant(id=state.concluded_variant_id)
        return AssignmentAnswer(state.key, unit, served.key, served.payload, False)
    if variant is None or state.status == Status.STOPPED:
        control = state.control
        return AssignmentAnswer(state.key, unit, control.key, control.payload, False)
    if state.design == Design.CHAMPION_CHALLENGER:
        champion = state.control
        shadow = tuple(v.key for v in state.variants if not v.is_control)
        return AssignmentAnswer(state.key, unit, champion.key, champion.payload, True, shadow)
    return AssignmentAnswer(state.key, unit, variant.key, variant.payload, True)


def first_variant(state: ExperimentState, unit: str) -> ServedVariant | None:
    """The hash's answer for a unit never seen: None when outside the traffic or no longer taking units.

    This is the published recipe (experiments.hashing) with the serving rules around it; the
    exposures endpoint stores what a client computed with it, and clients/python mirrors it.
    """
    if not state.accepts_new_units:
        return None
    if not hashing.is_included(state.salt, unit, state.traffic_percent):
        return None
    if state.design == Design.CHAMPION_CHALLENGER:
        # Every sampled request is served by the champion and shadow-scored by the challengers.
        return state.control
    return state.variant(key=hashing.choose_variant(state.salt, unit, state.weights))


def first_variants(state: ExperimentState, units: list[str]) -> dict[str, ServedVariant]:
    """`first_variant` of many never-seen units: {unit: variant} of those the hash includes.

    The state's rules (still taking units, weights, variants by key) are read once per batch
    rather than once per unit, which is most of a 10,000-unit batch's Python time.
    """
    if not state.accepts_new_units:
        return {}
    salt, traffic = state.salt, state.traffic_percent
    included = [unit for unit in units if hashing.is_included(salt, unit, traffic)]
    if state.design == Design.CHAMPION_CHALLENGER:
        return dict.fromkeys(included, state.control)
    weights, by_key = state.weights, {v.key: v for v in state.variants}
    return {unit: by_key[hashing.choose_variant(salt, unit, weights)] for unit in included}


def check_servable(state: ExperimentState) -> None:
    """WrongState (409) for a draft: it serves nothing, to the REST endpoints or to clients."""
    if state.status == Status.DRAFT:
        raise WrongState(f"Experiment {state.key!r} is a draft: start it before asking for assignments.",
                         status=state.status)


def _store_one(state: ExperimentState, unit: str, variant: ServedVariant) -> int:
    """Store one first assignment in one statement; a row stored concurrently wins."""
    variant_id = db.store_assignment(state.id, unit, variant.id, timezone.now())
    if variant_id is None:   # another request stored the unit first: its row is the answer
        variant_id = db.stored_assignments(state.id, [unit])[unit]
    serving_cache.remember_assignment(state, unit, variant_id)
    return variant_id


def _sorted_rows(firsts: dict[str, ServedVariant]) -> list[tuple[str, int]]:
    # Sorted, so that two batches over the same units take the unique index's locks in the
    # same order (in request order, concurrent overlapping batches could deadlock).
    return sorted((unit, variant.id) for unit, variant in firsts.items())


def store_first_assignments(state: ExperimentState, firsts: dict[str, ServedVariant]) -> tuple[dict[str, int], int]:
    """Store first assignments (existing rows win): every unit's stored variant id, and how many this call stored.

    The units were looked up and not found, so the insert without ON CONFLICT is tried first;
    a unit stored meanwhile makes it store nothing, and the insert that skips stored units follows.
    """
    ordered = _sorted_rows(firsts)
    now = timezone.now()
    if db.insert_new_assignments(state.id, ordered, now):
        return {unit: variant.id for unit, variant in firsts.items()}, len(ordered)
    inserted = db.store_assignments(state.id, ordered, now)
    stored = {unit: variant.id for unit, variant in firsts.items() if unit in inserted}
    raced = [unit for unit in firsts if unit not in inserted]   # stored by another request since it was read
    if raced:
        stored.update(db.stored_assignments(state.id, raced))
    return stored, len(inserted)


def assignment_for_unit(*, experiment_key: str, unit: str) -> AssignmentAnswer:
    """One unit's sticky assignment in one experiment, stored before it is returned.

    With the experiment's state cached (never a draft's), a unit this worker has stored or
    read is answered from memory, and a unit it has not seen goes straight to the insert when
    the experiment still takes new units and the hash includes it: one round trip instead of
    a look-up and an insert. That is safe because a unit's first variant is the hash's
    whichever request stores it (weights never change once started), and a row stored
    meanwhile wins (`_store_one` reads it back).
    """
    cached = serving_cache.state(experiment_key)
    if cached is not None:
        remembered = serving_cache.assignment(cached, unit)
        if remembered is not None:
            return _answer(cached, unit, cached.variant(id=remembered))
        if cached.accepts_new_units:
            first = first_variant(cached, unit)
            if first is not None:
                return _answer(cached, unit, cached.variant(id=_store_one(cached, unit, first)))
    state, stored_variant_id = experiment_state(experiment_key, unit=unit)
    check_servable(state)
    if stored_variant_id is not None:
        return _answer(state, unit, state.variant(id=stored_variant_id))
    first = first_variant(state, unit)
    if first is None:
        return _answer(state, unit, None)
    return _answer(state, unit, state.variant(id=_store_one(state, unit, first)))


def assignments_for_units(*, experiment_key: str, units: list[str]) -> list[AssignmentAnswer]:
    """Many units of one experiment, answered in request order (duplicates answered alike)."""
    state, _ = experiment_state(experiment_key)
    check_servable(state)
    return _answers_in_bulk(state, units)


def _answers_in_bulk(state: ExperimentState, units: list[str]) -> list[AssignmentAnswer]:
    distinct = list(dict.fromkeys(units))
    # Insert first, look up after a failure: a batch of never-seen units (the costly kind) is
    # then one COPY (PostgreSQL), without the look-up of 10,000 units that finds none. A batch with
    # a stored unit fails at its first stored unit in sorted order (for assigned units, at the
    # first row), stores nothing, and takes the look-up path (bench/README.md).
    firsts = first_variants(state, distinct)
    if firsts and db.insert_new_assignments(state.id, _sorted_rows(firsts), timezone.now()):
        stored = {unit: variant.id for unit, variant in firsts.items()}
        # Units the hash leaves out (traffic below 100%, or no longer taking units) have no
        # row to make, but a stored row always wins, so they are looked up all the same.
        stored.update(db.stored_assignments(state.id, [unit for unit in distinct if unit not in firsts]))
    else:
        stored = db.stored_assignments(state.id, distinct)
        new = {unit: variant for unit, variant in firsts.items() if unit not in stored}
        if new:
            stored.update(store_first_assignments(state, new)[0])
    # An answer depends on the unit only through its stored variant, so the rules in `_answer`
    # run once per variant (and once for "not in") and each unit gets a copy: a fifth of the
    # time `_answer` per unit took to build a 10,000-unit answer (bench/assignment.py).
    by_variant = {v.id: _answer(state, "", v) for v in state.variants}
    not_in = _answer(state, "", None)
    return [by_variant.get(stored.get(unit), not_in).for_unit(unit) for unit in units]


def assignments_for_live_experiments(*, unit: str) -> list[AssignmentAnswer]:
    """One unit's assignment in every live experiment (see LIVE_STATUSES), ordered by key."""
    stored = Assignment.objects.filter(experiment=OuterRef("pk"), unit=unit).values("variant_id")[:1]
    rows = (
        Experiment.objects.filter(status__in=LIVE_STATUSES).order_by("key")
        .annotate(stored_variant_id=Subquery(stored)).values(*_STATE_FIELDS, "stored_variant_id")
    )
    answers = []
    for row in rows:
        state = _state(row)
        if row["stored_variant_id"] is not None:
            answers.append(_answer(state, unit, state.variant(id=row["stored_variant_id"])))
        else:
            answers.extend(_answers_in_bulk(state, [unit]))
    return answers
