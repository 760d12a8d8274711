"""Numbers and sentences for stakeholders: how a result is written down in plain language.

Binary metrics are shown in percent (means) and percentage points (effects); continuous
ones in the metric's own units. An effect is printed with as many decimals as its interval
is precise (one significant digit of the interval's half-width, at least one decimal), so
that "1.0 points (95% interval 0.2 to 1.8)" neither hides a small effect nor pretends to a
precision the data do not have. Pure functions over the stored results document.
"""

import math
from collections.abc import Mapping

from experiments.choices import Direction, MetricRole, MetricType

MAX_DECIMALS = 6
UNIT_SUFFIXES = {"_ms": "ms"}


def metric_label(metric_name: str) -> str:
    """checkout_conversion -> checkout conversion."""
    return metric_name.replace("_", " ").replace("-", " ").strip()


def display_scale(metric_type: str) -> float:
    """Binary effects read in percentage points and means in percent; continuous as stored."""
    return 100.0 if metric_type == MetricType.BINARY else 1.0


def decimals_for(half_width: float | None) -> int:
    """Decimals that show the first significant digit of an interval's half-width (1 to 6)."""
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return 2
    return max(1, min(MAX_DECIMALS, -math.floor(math.log10(half_width))))


def number(value: float | None, decimals: int, *, signed: bool = False) -> str:
    """A fixed-point number, or an en dash for a missing one."""
    if value is None:
        return "–"
    # round() first so that -0.04 prints as 0.0: a reader takes "-0.0" for a negative effect.
    rounded = round(value, decimals) or 0.0
    return f"{rounded:+.{decimals}f}" if signed else f"{rounded:.{decimals}f}"


def percent(value: float | None, decimals: int = 1, *, signed: bool = False) -> str:
    """A share as a percentage: 0.1008 -> 10.1%."""
    return "–" if value is None else number(value * 100, decimals, signed=signed) + "%"


def p_value_text(p: float | None) -> str:
    """Two significant digits: 0.012, 0.41, 1; below 0.001 as '< 0.001' (never scientific notation)."""
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def p_clause(p: float | None, name: str = "p") -> str:
    """'p = 0.012', or 'p < 0.001' (never 'p = < 0.001')."""
    text = p_value_text(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def interval_level(alpha: float, challengers: int) -> float:
    """The preregistered interval level 1 - alpha / k (Bonferroni split over k challengers)."""
    return 1 - alpha / max(1, challengers)


def level_text(level: float) -> str:
    """0.95 -> 95%, 0.975 -> 97.5%, 0.98333 -> 98.3%."""
    return f"{round(level * 100, 1):g}%"


def half_width(comparison: dict, scale: float) -> float | None:
    """Half the interval's width in display units; a one-sided interval uses its closed end."""
    low, high, effect = comparison.get("ci_low"), comparison.get("ci_high"), comparison.get("effect")
    if low is not None and high is not None:
        return (high - low) / 2 * scale
    if effect is not None and (low is not None or high is not None):
        return abs(effect - (low if low is not None else high)) * scale
    return None


def interval_text(low: float | None, high: float | None, decimals: int, unit: str = "") -> str:
    """'0.2 to 1.8 points', or for a one-sided interval 'at least 0.2 points' / 'at most -0.2 points'."""
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{number(low, decimals)} to {number(high, decimals)}{suffix}"
    if low is not None:
        return f"at least {number(low, decimals)}{suffix}"
    if high is not None:
        return f"at most {number(high, decimals)}{suffix}"
    return "–"


def _change(comparison: dict, metric_type: str) -> tuple[str, str, float | None, float | None, int]:
    """(verb, amount, low, high, decimals) of an effect in display units; a negative one 'lowered' the metric."""
    scale = display_scale(metric_type)
    effect = comparison["effect"] * scale
    low = comparison["ci_low"] * scale if comparison["ci_low"] is not None else None
    high = comparison["ci_high"] * scale if comparison["ci_high"] is not None else None
    verb = "raised" if effect >= 0 else "lowered"
    if effect < 0:
        # "lowered by 1.0 (0.2 to 1.8)" reads better than "by -1.0 (-1.8 to -0.2)": flip the interval too.
        effect, low, high = -effect, (-high if high is not None else None), (-low if low is not None else None)
    decimals = decimals_for(half_width(comparison, scale))
    unit = "points" if metric_type == MetricType.BINARY else ""
    return verb, f"{number(effect, decimals)} {unit}".rstrip(), low, high, decimals


def _variant_noun(design: str, key: str) -> str:
    return f"the {key} model" if design == "champion_challenger" else f"the {key} variant"


def promote_sentence(*, design: str, metric_name: str, metric_type: str, comparison: dict, level: float,
                     challengers: int) -> str:
    """'The green variant raised checkout conversion by 1.0 points (95% interval 0.2 to 1.8), p = 0.012:
    promote green.' A negative effect 'lowered' the metric, stated as a positive amount."""
    verb, amount, low, high, decimals = _change(comparison, metric_type)
    kind = "interval" if low is not None and high is not None else "one-sided interval:"
    p_name = "Holm-adjusted p" if challengers > 1 else "p"
    p_text = p_clause(comparison["adjusted_p_value"], p_name)
    subject = _variant_noun(design, comparison["variant"])
    return (f"{subject[0].upper()}{subject[1:]} {verb} {metric_label(metric_name)} by {amount} "
            f"({level_text(level)} {kind} {interval_text(low, high, decimals)}), {p_text}: "
            f"promote {comparison['variant']}.")


def decision_sentence(*, design: str, metric_name: str, metric_type: str, document: dict, control: str,
                      alpha: float, mde: float | None, level: float,
                      metric_names: Mapping[str, str] | None = None) -> str:
    """One plain-language sentence for the decision; only promote claims an effect.

    A challenger that a guardrail held back is named with that guardrail's estimate and bound
    (`held_back_clauses`); without one the sentence is part 1's. `metric_names` maps the
    guardrails' keys to their names (the document holds keys only).
    """
    decision = document["decision"]
    challengers = len(document["comparisons"])
    metric = metric_label(metric_name)
    held = held_back_clauses(design=design, metric_name=metric_name, document=document, names=metric_names or {})
    if decision["outcome"] == "promote":
        winner = next(c for c in document["comparisons"] if c["variant"] == decision["variant"])
        return " ".join([promote_sentence(design=design, metric_name=metric_name, metric_type=metric_type,
                                          comparison=winner, level=level, challengers=challengers),
                         *(f"{_capitalised(clause)}." for clause in held)])
    if decision["outcome"] == "keep":
        if held:
            return f"{_capitalised('; '.join(held))}: keep {control}."
        scale = display_scale(metric_type)
        unit = " points" if metric_type == MetricType.BINARY else ""
        minimum = number(mde * scale, decimals_for(mde * scale)) if mde else ""
        detectable = (f" Effects smaller than the preregistered minimum of {minimum}{unit} could have gone unnoticed."
                      if mde else "")
        return (f"No challenger changed {metric} significantly (alpha = {alpha:g}) although every variant reached "
                f"its planned sample: keep {control}. This is no proof that the variants are identical."
                f"{detectable}")
    if decision["outcome"] == "inconclusive":
        reached = document["checks"]["sample_size_reached"]
        order = [v["key"] for v in document.get("variants", [])] or list(reached)
        short = [key for key in order if not reached.get(key, True)]
        below = f" ({', '.join(short)} stayed below the planned sample size)" if short else ""
        if held:
            return (f"Inconclusive{below}: {'; '.join(held)}. Keep {control} for now; with too little data this is "
                    "no evidence of harm either.")
        return (f"Inconclusive{below}: no challenger was significant, and with too little data this test cannot "
                f"tell whether any of them changes {metric}. Keep {control} for now; this is neither a win nor "
                "evidence of no effect.")
    return (f"{decision['reason']} No effect can be read from this test, whichever way the numbers point, "
            "and nothing is promoted.")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def effect_unit(metric: dict) -> str:
    """What a metric's effects are counted in within a sentence: 'points' for a binary metric, else its unit.

    A definition has no unit field; a key ending in `_ms` (DESIGN.md's `latency_ms`) is in
    milliseconds. Any other continuous metric is written without a unit, as part 1 writes it.
    """
    if metric["type"] == MetricType.BINARY:
        return "points"
    return next((unit for suffix, unit in UNIT_SUFFIXES.items() if metric["key"].endswith(suffix)), "")


def sentence_name(name: str) -> str:
    """A metric's name inside a sentence: 'Page latency' -> 'page latency' ('LCP' or 'iOS crashes' stay)."""
    label = metric_label(name)
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def harmful_margin(metric: dict) -> float:
    """A guardrail's null value, its margin on the harmful side: -margin when an increase is better, else +margin."""
    return -metric["margin"] if metric["direction"] == Direction.INCREASE else metric["margin"]


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def margin_text(metric: dict) -> str:
    """The preregistered margin as given, signed on the harmful side: '+5 ms', '-0.5 points'."""
    return _with_unit(f"{round(harmful_margin(metric) * display_scale(metric['type']), 10):+g}", effect_unit(metric))


def _within(metric: dict, comparison: dict) -> str:
    """'within +5 ms (estimate +1.2 ms, bound +3.4 ms)'; the estimate's decimals follow its bound's distance."""
    scale, unit = display_scale(metric["type"]), effect_unit(metric)
    decimals = decimals_for(half_width(comparison, scale))
    estimate = _with_unit(number(comparison["effect"] * scale, decimals, signed=True), unit)
    bound = _with_unit(number(comparison["bound"] * scale, decimals, signed=True), unit)
    return f"within {margin_text(metric)} (estimate {estimate}, bound {bound})"


def _guardrail_result(metric: dict, comparison: dict, subject: str) -> str:
    if comparison.get("not_computable_reason"):
        return f"{subject} could not be assessed ({comparison['not_computable_reason']})"
    if comparison["non_inferior"]:
        return f"{subject} stayed {_within(metric, comparison)}"
    return f"{subject} was not shown to stay {_within(metric, comparison)}"


def guardrail_verdict(metric: dict, comparison: dict, *, name: str) -> str:
    """'held: green's page latency stayed within +5 ms (estimate +1.2 ms, bound +3.4 ms)', else
    'not shown: green's page latency was not shown to stay within ...' or 'not computable: ...'."""
    word = ("not computable" if comparison.get("not_computable_reason") else
            "held" if comparison["non_inferior"] else "not shown")
    subject = f"{comparison['variant']}'s {sentence_name(name)}"
    return f"{word}: {_guardrail_result(metric, comparison, subject)}"


def held_back_clauses(*, design: str, metric_name: str, document: dict, names: Mapping[str, str]) -> list[str]:
    """Per challenger significantly better on the primary but not shown non-inferior on a guardrail:
    'the green variant raised checkout conversion by 1.1 points, but page latency was not shown to
    stay within +5 ms (estimate +7.0 ms, bound +9.1 ms)'. None for a document without `metrics`."""
    metrics = document.get("metrics") or []
    if not metrics:
        return []
    primary = metrics[0]
    sign = 1 if primary["direction"] == Direction.INCREASE else -1
    guardrails = [m for m in metrics if m["role"] == MetricRole.GUARDRAIL]
    clauses = []
    for comparison in document["comparisons"]:
        if comparison["effect"] is None or not comparison["significant"] or sign * comparison["effect"] <= 0:
            continue
        failed = [_guardrail_result(m, c, sentence_name(names.get(m["key"], m["key"])))
                  for m in guardrails for c in m["comparisons"]
                  if c["variant"] == comparison["variant"] and not c["non_inferior"]]
        if failed:
            verb, amount, *_ = _change(comparison, primary["type"])
            clauses.append(f"{_variant_noun(design, comparison['variant'])} {verb} {sentence_name(metric_name)} "
                           f"by {amount}, but {' and '.join(failed)}")
    return clauses


def cuped_sentence(metric_name: str, comparison: dict) -> str | None:
    """"using the covariate cut the variance of <metric> by 46%" for a CUPED comparison; None otherwise.

    A comparison whose covariate had no variance was not adjusted: it says so instead.
    """
    cuped = comparison.get("cuped")
    if not cuped:
        return None
    if cuped.get("theta") is None:
        return f"the covariate of {metric_name} has no variance, so its comparison is unadjusted"
    return f"using the covariate cut the variance of {metric_name} by {cuped['variance_reduction']:.0%}"
