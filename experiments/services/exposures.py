"""Storing the assignments a client computed locally (its exposures), with the server's own recipe.

A client that assigns from the SDK configuration sends the units it put in an experiment;
each is checked against the same rules the REST endpoints serve (experiments.services.
assignment): a unit the hash includes, while the experiment still takes new units, gets its
hashed variant stored; a stored row is never changed. Sending the same units again is harmless.
"""

from dataclasses import dataclass

from experiments import db
from experiments.services.assignment import (
    check_servable,
    experiment_state,
    first_variants,
    store_first_assignments,
)


@dataclass(frozen=True)
class ExposureCounts:
    """What became of a batch's distinct units: newly stored, stored before, or not included by the hash."""

    stored: int
    existing: int
    not_included: int

    def as_dict(self) -> dict[str, int]:
        return {"stored": self.stored, "existing": self.existing, "not_included": self.not_included}


def exposures_store(*, experiment_key: str, units: list[str]) -> ExposureCounts:
    """Store the first assignment of every unit the hash includes (existing rows win); count each distinct unit once.

    Experiment.DoesNotExist for an unknown key, WrongState for a draft. After `ends_at`, and
    once stopped or concluded, no new unit enters: such units count as not included.
    `stored` counts the rows this request wrote (RETURNING), so concurrent requests for one
    unit count it once between them.
    """
    state, _ = experiment_state(experiment_key)
    check_servable(state)
    distinct = list(dict.fromkeys(units))
    existing = db.stored_assignments(state.id, distinct)
    firsts = first_variants(state, [unit for unit in distinct if unit not in existing])
    inserted = store_first_assignments(state, firsts)[1] if firsts else 0
    # A unit another request stored since it was read counts as existing, not stored.
    return ExposureCounts(stored=inserted, existing=len(existing) + len(firsts) - inserted,
                          not_included=len(distinct) - len(firsts) - len(existing))
