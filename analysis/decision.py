"""The experiment's decision from its checks, comparisons and guardrails: invalid, promote, inconclusive or keep."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analysis.errors import AnalysisError
from analysis.non_inferiority import null_value
from analysis.validation import one_of, positive
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
class GuardrailOutcome:
    """What the decision needs from one challenger's guardrail: whether it was shown non-inferior, and why not.

    `effect` and `bound` are the estimate and its harmful-side bound; a guardrail that could
    not be computed has both None, a reason, and is not non-inferior. `margin` and
    `direction` (the guardrail's better direction) say where the harmful edge lies.
    """

    metric: str
    non_inferior: bool
    effect: float | None
    bound: float | None
    margin: float
    direction: str
    not_computable_reason: str | None = None

    def __post_init__(self) -> None:
        computed = self.not_computable_reason is None
        if computed != (self.effect is not None) or computed != (self.bound is not None):
            raise AnalysisError(f"{self.metric}: give an effect and a bound, or a reason they could not be computed")
        if not computed and self.non_inferior:
            raise AnalysisError(f"{self.metric}: a guardrail that was not computed cannot be non-inferior")
        positive(f"margin of {self.metric}", self.margin)
        one_of(f"direction of {self.metric}", self.direction, Direction)


@dataclass(frozen=True)
class Decision:
    """The outcome, the promoted variant (only for promote) and the reason.

    The reason is one sentence, preceded by one for each winner its guardrails held back.
    """

    outcome: Outcome
    variant: str | None
    reason: str


def decide(
    *,
    direction: str,
    failed_checks: Sequence[str],
    challengers: Sequence[ChallengerOutcome],
    sample_size_reached: Mapping[str, bool],
    guardrails: Mapping[str, Sequence[GuardrailOutcome]] | None = None,
) -> Decision:
    """DESIGN.md's decision rule, applied in order.

    `guardrails` maps a challenger to its guardrails' outcomes (none: no guardrail).

    1. invalid if a check failed (`failed_checks` holds each failure as a clause).
    2. If a comparison could not be computed: invalid when every variant reached its planned
       sample size (enough data and still no answer means the data are broken, for example a
       metric that never fires), else inconclusive (too little data yet). No challenger is
       promoted then, since the one that could not be assessed might be the better one.
    3. promote the eligible challenger with the largest effect in the preferred direction
       (largest for "increase", most negative for "decrease"; the first in order on a tie):
       eligible = significant in the preferred direction and non-inferior on every guardrail
       (one that could not be computed was not shown non-inferior). One significant in the
       other direction is never promoted. A challenger held back by its guardrails is named
       first in the reason, with each guardrail's estimate and bound.
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
    held = {c.variant: failing for c in winners if (failing := _failing(guardrails, c.variant))}
    eligible = [c for c in winners if c.variant not in held]
    held_back = "".join(f"{_held_back(c, held[c.variant])}. " for c in winners if c.variant in held)
    if eligible:
        best = max(eligible, key=lambda c: sign * c.effect)
        among = " of the challengers within their guardrails" if held else ""
        return Decision(
            Outcome.PROMOTE, best.variant,
            f"{held_back}Promote {best.variant}: it is significantly better than the control with an effect of "
            f"{best.effect:+.4g}, the largest in the preferred direction ({direction}){among}.",
        )
    decision = _no_winner(challengers, short, held)
    return Decision(decision.outcome, None, held_back + decision.reason)


def _failing(guardrails: Mapping[str, Sequence[GuardrailOutcome]] | None, variant: str) -> list[GuardrailOutcome]:
    """The challenger's guardrails that were not shown non-inferior."""
    return [g for g in (guardrails or {}).get(variant, ()) if not g.non_inferior]


def _held_back(challenger: ChallengerOutcome, failing: Sequence[GuardrailOutcome]) -> str:
    """Why a significant challenger was held back, one clause per failing guardrail, e.g.

    green is significantly better on the primary metric (effect +0.011), but latency_ms was
    not shown to stay within +5 (estimate +7.0, bound +9.1)
    """
    clauses = [
        f"{g.metric} could not be computed ({g.not_computable_reason})" if g.not_computable_reason is not None
        else f"{g.metric} was not shown to stay within {null_value(g.margin, g.direction):+g} "
             f"(estimate {_estimate(g.effect)}, bound {_estimate(g.bound)})"
        for g in failing
    ]
    return (
        f"{challenger.variant} is significantly better on the primary metric (effect "
        f"{_estimate(challenger.effect)}), but {' and '.join(clauses)}"
    )


def _estimate(value: float) -> str:
    """Signed, 4 significant digits, and a decimal point so a whole number reads as an estimate (+7.0)."""
    text = f"{value:+.4g}"
    return text if "." in text or "e" in text else f"{text}.0"


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


def _no_winner(
    challengers: Sequence[ChallengerOutcome], short: Sequence[str], held: Mapping[str, object]
) -> Decision:
    """Rules 4 and 5: inconclusive while a variant is short of its planned size, else keep.

    `held` are the challengers significantly better but held back by a guardrail.
    """
    wrong_way = [c.variant for c in challengers if c.significant and c.variant not in held]
    within = " that stays within its guardrails" if held else ""
    no_winner = f"no challenger{within} is significantly better than the control"
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
