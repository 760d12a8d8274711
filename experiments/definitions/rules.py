"""The rules an experiment definition must follow; `services.definition` is the one caller.

A definition is a flat dict of model field names plus `variants`, a list of dicts with
`key`, `weight`, `is_control` and `payload`. `definition_errors` returns every broken rule
keyed by the field path a client sent (`metric.type`, `variants[1].weight`), so that the
API and the admin reject exactly the same definitions with the same words.
"""

import math
from datetime import timedelta
from typing import Any

from analysis.errors import AnalysisError
from analysis.looks import MIN_FRACTION_STEP
from analysis.sequential import MAX_LOOKS, SPENDING_FUNCTIONS, validate_looks
from experiments.choices import Aggregation, Direction, MetricRole, MetricType
from experiments.definitions.planning import guardrail_sample, primary_sample, sample_plan
from experiments.limits import (
    MAX_ABS_BASELINE,
    MAX_DURATION_DAYS,
    MAX_METRICS,
    MAX_SAMPLE_SIZE,
    MAX_TRAFFIC_PERCENT,
    MAX_WEIGHT,
    MIN_SAMPLE_SIZE,
    text_problem,
)

# Model field name -> the path a REST client uses for it.
FIELD_PATHS = {"metric_name": "metric.name", "metric_type": "metric.type", "metric_direction": "metric.direction",
               "metric_key": "metric.key", "metric_aggregation": "metric.aggregation"}

SEASONALITY_DAYS = 7
MAX_DURATION = timedelta(days=MAX_DURATION_DAYS)
# Text fields of a definition, checked for what PostgreSQL cannot store (NUL, lone surrogates).
TEXT_FIELDS = ("key", "name", "hypothesis", "metric_name", "stop_reason")


def _path(field: str) -> str:
    return FIELD_PATHS.get(field, field)


def definition_errors(definition: dict[str, Any]) -> dict[str, list[str]]:
    """Every rule the definition breaks, as {field path: [message, ...]}; empty when valid."""
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(_path(field), []).append(message)

    for rules in (_text_errors, _number_errors, _baseline_errors, _timing_errors, _metric_errors, _cuped_errors,
                  _look_errors):
        rules(definition, fail)
    _variant_errors(definition.get("variants") or [], fail)

    if not errors:
        _planning_errors(definition, fail)
    return errors


def _planning_errors(definition: dict[str, Any], fail) -> None:
    """A plan statsmodels cannot solve, on the field of the test that cannot be planned."""
    try:
        sample_plan(definition)
        return
    except AnalysisError:
        pass
    try:
        primary_sample(definition, definition["power"])
    except AnalysisError as error:
        fail("mde" if definition.get("mde") is not None else "sample_size_per_variant", str(error))
        return
    for index, metric in enumerate(definition.get("metrics") or []):
        if metric.get("role") == MetricRole.GUARDRAIL:
            try:
                guardrail_sample(definition, metric, definition["power"])
            except AnalysisError as error:
                fail(f"metrics[{index}].margin", str(error))
                return
    fail("power", "The power corrected for the guardrails, 1 - (1 - power) / (guardrails + 1), cannot be planned; "
                  "lower the power or use fewer guardrails.")


def _text_errors(definition: dict[str, Any], fail) -> None:
    for field in TEXT_FIELDS:
        value = definition.get(field)
        problem = text_problem(value) if isinstance(value, str) else None
        if problem:
            fail(field, problem)


def _number_errors(definition: dict[str, Any], fail) -> None:
    for field in ("baseline_mean", "baseline_sd", "mde"):
        value = definition.get(field)
        if isinstance(value, (int, float)) and not -MAX_ABS_BASELINE <= value <= MAX_ABS_BASELINE:
            fail(field, f"Must be a finite number with |{field}| <= {MAX_ABS_BASELINE:g}.")
    for field in ("alpha", "power"):
        value = definition.get(field)
        if value is None or not 0 < value < 1:
            fail(field, "Must be strictly between 0 and 1.")
    mde, sample_size = definition.get("mde"), definition.get("sample_size_per_variant")
    if (mde is None) == (sample_size is None):
        fail("mde", "Give exactly one of mde and sample_size_per_variant.")
    if mde is not None and mde <= 0:
        fail("mde", "Must be positive.")
    if sample_size is not None and not MIN_SAMPLE_SIZE <= sample_size <= MAX_SAMPLE_SIZE:
        fail("sample_size_per_variant", f"Must be an integer from {MIN_SAMPLE_SIZE} to {MAX_SAMPLE_SIZE}.")


def _baseline_errors(definition: dict[str, Any], fail) -> None:
    design, metric_type, mde = definition.get("design"), definition.get("metric_type"), definition.get("mde")
    baseline_mean, baseline_sd = definition.get("baseline_mean"), definition.get("baseline_sd")
    if design == "ab" and metric_type == "binary":
        if baseline_mean is None or not 0 < baseline_mean < 1:
            fail("baseline_mean", "A binary metric needs a baseline rate strictly between 0 and 1.")
        elif mde is not None and mde > 0 and not 0 < baseline_mean + mde < 1:
            fail("mde", "baseline_mean + mde must stay strictly between 0 and 1.")
        if baseline_sd is not None and baseline_sd <= 0:
            fail("baseline_sd", "Must be positive when given.")
    elif baseline_sd is None or baseline_sd <= 0:
        what = "the paired difference" if design == "champion_challenger" else "the metric"
        fail("baseline_sd", f"Needs a positive standard deviation of {what}.")


def _timing_errors(definition: dict[str, Any], fail) -> None:
    traffic = definition.get("traffic_percent")
    if traffic is None or not 0 < traffic <= MAX_TRAFFIC_PERCENT:
        fail("traffic_percent", f"Must be greater than 0 and at most {MAX_TRAFFIC_PERCENT:g}.")
    duration = definition.get("duration")
    if not isinstance(duration, timedelta) or duration <= timedelta(0):
        fail("duration", "Must be a positive ISO 8601 duration, e.g. P14D or PT30S.")
    elif duration > MAX_DURATION:
        fail("duration", f"Must be at most {MAX_DURATION_DAYS} days (P{MAX_DURATION_DAYS}D).")
    grace = definition.get("grace_period")
    if not isinstance(grace, timedelta) or grace < timedelta(0):
        fail("grace_period", "Must be an ISO 8601 duration of zero or more, e.g. PT0S or P2D.")
    elif grace > MAX_DURATION:
        fail("grace_period", f"Must be at most {MAX_DURATION_DAYS} days (P{MAX_DURATION_DAYS}D).")


def _metric_errors(definition: dict[str, Any], fail) -> None:
    """The primary's aggregation, and every secondary metric and guardrail (`metrics[i]`)."""
    if definition.get("metric_aggregation") == Aggregation.MEAN and definition.get("metric_type") == MetricType.BINARY:
        fail("metric_aggregation", "The mean of a unit's values applies to continuous metrics; a binary metric "
                                   "takes any 1 (aggregation sum).")
    metrics = definition.get("metrics") or []
    if len(metrics) + 1 > MAX_METRICS:
        fail("metrics", f"Give at most {MAX_METRICS} metrics (one primary); got {len(metrics) + 1}.")
    seen = {definition.get("metric_key"): "the primary metric"}
    for index, metric in enumerate(metrics):
        path = f"metrics[{index}]"
        for field in ("key", "name"):
            value = metric.get(field)
            problem = text_problem(value) if isinstance(value, str) else None
            if problem:
                fail(f"{path}.{field}", problem)
        key = metric.get("key")
        if key in seen:
            fail(f"{path}.key", f"Duplicate metric key {key!r} (also {seen[key]}).")
        else:
            seen[key] = path
        if metric.get("aggregation") == Aggregation.MEAN and metric.get("metric_type") == MetricType.BINARY:
            fail(f"{path}.aggregation", "The mean of a unit's values applies to continuous metrics; a binary "
                                        "metric takes any 1 (aggregation sum).")
        for field in ("baseline_mean", "baseline_sd", "margin"):
            value = metric.get(field)
            if isinstance(value, (int, float)) and not -MAX_ABS_BASELINE <= value <= MAX_ABS_BASELINE:
                fail(f"{path}.{field}", f"Must be a finite number with |{field}| <= {MAX_ABS_BASELINE:g}.")
        if metric.get("baseline_sd") is not None and metric["baseline_sd"] <= 0:
            fail(f"{path}.baseline_sd", "Must be positive when given.")
        if metric.get("role") == MetricRole.GUARDRAIL:
            _guardrail_errors(definition.get("design"), metric, path, fail)
        elif metric.get("margin") is not None:
            fail(f"{path}.margin", "Only a guardrail has a margin.")


def _cuped_errors(definition: dict[str, Any], fail) -> None:
    """CUPED (DESIGN.md part 2): A/B only; `expected_correlation` rho in [0, 1), only with `cuped`."""
    design = definition.get("design")
    items = [("", definition)] + [(f"metrics[{i}].", m) for i, m in enumerate(definition.get("metrics") or [])]
    for prefix, metric in items:
        cuped, rho = metric.get("cuped"), metric.get("expected_correlation")
        if cuped and design == "champion_challenger":
            fail(f"{prefix}cuped", "CUPED applies to A/B tests only: a champion/challenger pair already removes "
                                   "a unit's own variance.")
        if rho is None:
            continue
        if not isinstance(rho, (int, float)) or isinstance(rho, bool) or not math.isfinite(rho) or not 0 <= rho < 1:
            fail(f"{prefix}expected_correlation", "Must be a finite number in [0, 1).")
        elif not cuped:
            fail(f"{prefix}expected_correlation", "Only a metric with cuped true has an expected correlation.")


def _look_errors(definition: dict[str, Any], fail) -> None:
    """Interim looks (DESIGN.md part 2): 1 to 10 increasing fractions in (0, 1], the last 1; a known spending."""
    looks = definition.get("looks")
    if looks is not None:
        if not isinstance(looks, list) or any(isinstance(f, bool) or not isinstance(f, (int, float)) for f in looks):
            fail("looks", "Must be a list of numbers: the information fractions of the looks, e.g. [0.5, 1].")
        else:
            try:
                validate_looks(looks)
            except AnalysisError as error:
                fail("looks", f"{str(error)[0].upper()}{str(error)[1:]} (1 to {MAX_LOOKS} increasing fractions "
                              "in (0, 1], the last 1).")
            else:
                # Looks closer than this carry no information of their own, and solving their boundaries
                # would cost seconds (analysis.sequential's grid); analysis.looks skips them the same way.
                if any(later - earlier < MIN_FRACTION_STEP for earlier, later in zip([0.0, *looks], looks)):
                    fail("looks", f"Each look must come at least {MIN_FRACTION_STEP:g} of the information after "
                                  f"the previous one (the first at {MIN_FRACTION_STEP:g} or later); got {looks}.")
    spending = definition.get("spending")
    if spending is not None and spending not in SPENDING_FUNCTIONS:
        fail("spending", f"Must be one of {', '.join(SPENDING_FUNCTIONS)}; got {spending!r}.")


def _guardrail_errors(design: str | None, metric: dict[str, Any], path: str, fail) -> None:
    """A margin > 0 and the baseline its planning needs (DESIGN.md part 2, "Planning")."""
    margin, baseline_mean, baseline_sd = metric.get("margin"), metric.get("baseline_mean"), metric.get("baseline_sd")
    if margin is None or not margin > 0:
        fail(f"{path}.margin", "A guardrail needs a positive margin: the largest harm accepted, in the "
                               "per-unit value's units.")
    if design == "ab" and metric.get("metric_type") == MetricType.BINARY:
        if baseline_mean is None or not 0 < baseline_mean < 1:
            fail(f"{path}.baseline_mean", "A binary guardrail needs a baseline rate strictly between 0 and 1.")
        elif margin is not None and margin > 0:
            harmed = baseline_mean - margin if metric.get("direction") == Direction.INCREASE else baseline_mean + margin
            if not 0 < harmed < 1:
                fail(f"{path}.margin", f"The baseline moved by the margin in the harmful direction ({harmed:g}) "
                                       "must stay strictly between 0 and 1.")
    elif baseline_sd is None:  # a non-positive one is refused for every metric
        what = "the paired difference" if design == "champion_challenger" else "the metric"
        fail(f"{path}.baseline_sd", f"A guardrail needs a positive standard deviation of {what} to be planned.")


def _variant_errors(variants: list[dict[str, Any]], fail) -> None:
    if len(variants) < 2:
        fail("variants", "Give at least two variants.")
    controls = [index for index, variant in enumerate(variants) if variant.get("is_control")]
    if len(controls) != 1:
        fail("variants", f"Exactly one variant must have is_control true; found {len(controls)}.")
    seen: dict[str, int] = {}
    for index, variant in enumerate(variants):
        weight = variant.get("weight")
        if weight is None or not weight > 0:
            fail(f"variants[{index}].weight", "Must be positive.")
        elif weight > MAX_WEIGHT:
            fail(f"variants[{index}].weight", f"Must be at most {MAX_WEIGHT:g}.")
        key = variant.get("key")
        problem = text_problem(key) if isinstance(key, str) else None
        if problem:
            fail(f"variants[{index}].key", problem)
        problem = _payload_problem(variant.get("payload"))
        if problem:
            fail(f"variants[{index}].payload", problem)
        if key in seen:
            fail(f"variants[{index}].key", f"Duplicate variant key {key!r} (also variants[{seen[key]}]).")
        else:
            seen[key] = index


def _payload_problem(payload: Any) -> str | None:
    """A text problem of any string (or object key) inside a JSON payload, or None."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def definition_warnings(definition: dict[str, Any]) -> list[str]:
    """Advice that does not block: short tests are exposed to weekly seasonality."""
    duration = definition.get("duration")
    if isinstance(duration, timedelta) and duration < timedelta(days=SEASONALITY_DAYS):
        return [
            f"The duration is shorter than {SEASONALITY_DAYS} days: weekday and weekend "
            "behaviour differ, so the result may not hold over a whole week."
        ]
    return []
