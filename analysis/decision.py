"""The experiment's decision from its checks and comparisons: invalid, promote, inconclusive or keep."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analysis.errors import AnalysisError
from analysis.validation import one_of
from analysis.vocabulary import Direction, Outcome


@dataclass(frozen=True)
class ChallengerOutcome:
    """What the decision needs from one comparison: the effect and whether it is significant.

    A comparison that could not be computed has effect None, significant False and a reason.
    """

    variant: str
    effect: float | None
    significant: bool
    not_computable_reason: str | None = None

    def __post_init__(self) -> None:
        if (self.effect is None) != (self.not_computable_reason is not None):
            raise AnalysisError(f"{self.variant}: give an effect or a reason it could not be computed, not both")
        if self.effect is not None and not math.isfinite(self.effect):
            raise AnalysisError(f"{self.variant}: the effect must be finite, got {self.effect}")
        if self.effect is None and self.significant:
            raise AnalysisError(f"{self.variant}: a comparison that was not computed cannot be significant")


@dataclass(frozen=True)
class Decision:
    """The outcome, the promoted variant (only for promote) and a one-sentence reason."""

    outcome: Outcome
    variant: str | None
    reason: str


def decide(
    *,
    direction: str,
    failed_checks: Sequence[str],
    challengers: Sequence[ChallengerOutcome],
    sample_size_reached: Mapping[str, bool],
) -> Decision:
    """DESIGN.md's decision rule, applied in order.

    1. invalid if a check failed (`failed_checks` holds each failure as a clause).
    2. If a comparison could not be computed: invalid when every variant reached its planned
       sample size (enough data and still no answer means the data are broken, for example a
       metric that never fires), else inconclusive (too little data yet). No challenger is
       promoted then, since the one that could not be assessed might be the better one.
    3. promote the significant challenger with the largest effect in the preferred direction
       (largest for "increase", most negative for "decrease"; the first in order on a tie);
       one significant in the other direction is never promoted.
    4. inconclusive if any variant is below its planned sample size.
    5. keep.
    """
    one_of("direction", direction, Direction)
    short = [key for key, reached in sample_size_reached.items() if not reached]

    if failed_checks:
        return Decision(Outcome.INVALID, None, f"The analysis is invalid because {' and '.join(failed_checks)}.")

    broken = [c for c in challengers if c.not_computable_reason is not None]
    if broken:
        return _not_computed(broken, short)

    sign = 1 if direction == Direction.INCREASE else -1
    winners = [c for c in challengers if c.significant and sign * c.effect > 0]
    if winners:
        best = max(winners, key=lambda c: sign * c.effect)
        return Decision(
            Outcome.PROMOTE, best.variant,
            f"Promote {best.variant}: it is significantly better than the control with an effect of "
            f"{best.effect:+.4g}, the largest in the preferred direction ({direction}).",
        )
    return _no_winner(challengers, short)


def _not_computed(broken: Sequence[ChallengerOutcome], short: Sequence[str]) -> Decision:
    """Rule 2: invalid when every variant reached its planned size, else inconclusive."""
    what = "; ".join(f"{c.variant}: {c.not_computable_reason}" for c in broken)
    if not short:
        return Decision(
            Outcome.INVALID, None,
            f"The analysis is invalid because a comparison could not be computed although every variant "
            f"reached its planned sample size ({what}).",
        )
    return Decision(
        Outcome.INCONCLUSIVE, None,
        f"The result is inconclusive because a comparison could not be computed yet and "
        f"{_names(short)} {_is_are(short)} below the planned sample size ({what}).",
    )


def _no_winner(challengers: Sequence[ChallengerOutcome], short: Sequence[str]) -> Decision:
    """Rules 4 and 5: inconclusive while a variant is short of its planned size, else keep."""
    wrong_way = [c.variant for c in challengers if c.significant]
    no_winner = "no challenger is significantly better than the control"
    if wrong_way:
        no_winner += f" ({_names(wrong_way)} {_is_are(wrong_way)} significantly worse)"
    if short:
        return Decision(
            Outcome.INCONCLUSIVE, None,
            f"The result is inconclusive because {no_winner} and {_names(short)} "
            f"{_is_are(short)} below the planned sample size.",
        )
    return Decision(
        Outcome.KEEP, None, f"Keep the control because {no_winner} with every variant at its planned sample size."
    )


def _names(keys: Sequence[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} and {keys[-1]}"


def _is_are(keys: Sequence[str]) -> str:
    return "is" if len(keys) == 1 else "are"
