"""The result as files: the stored JSON document as is, and one CSV row per (metric, challenger) comparison."""

import csv
import io

from experiments.choices import MetricRole

# Part 1's columns first and in their order, so that a script reading them by position keeps
# working; the columns that several metrics need come last. `metric` and `role` name the row's
# metric (part 1's rows are the primary's); `margin` and `non_inferior` are a guardrail's
# (empty otherwise), whose `ci_low` / `ci_high` hold only the bound on the harmful side.
CSV_COLUMNS = (
    "experiment", "protocol_hash", "variant", "vs", "variant_units", "variant_mean", "vs_units", "vs_mean",
    "effect", "relative_effect", "ci_low", "ci_high", "interval_level", "p_value", "adjusted_p_value",
    "significant", "decision", "decided_variant",
    "metric", "role", "margin", "non_inferior",
)


def _number(value) -> str:
    # repr() round-trips a float exactly; an empty field is a missing value (an open interval end).
    return "" if value is None else repr(value)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def metric_entries(document: dict, *, primary_key: str) -> list[dict]:
    """The document's `metrics`; for a document stored before several metrics existed, the primary's one entry."""
    if document.get("metrics"):
        return document["metrics"]
    return [{"key": primary_key, "role": MetricRole.PRIMARY.value, "margin": None,
             "variants": document["variants"], "comparisons": document["comparisons"]}]


def result_csv(document: dict, *, interval_level: float, primary_key: str) -> str:
    """CSV text: a header, then per metric (primary first) one row per challenger with both variants' units
    and means."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for metric in metric_entries(document, primary_key=primary_key):
        variants = {v["key"]: v for v in metric["variants"]}
        for comparison in metric["comparisons"]:
            variant, vs = variants[comparison["variant"]], variants[comparison["vs"]]
            writer.writerow([
                document["experiment"], document["protocol_hash"], comparison["variant"], comparison["vs"],
                variant["units"], _number(variant["mean"]), vs["units"], _number(vs["mean"]),
                _number(comparison["effect"]), _number(comparison["relative_effect"]),
                _number(comparison["ci_low"]), _number(comparison["ci_high"]), repr(interval_level),
                _number(comparison["p_value"]), _number(comparison["adjusted_p_value"]),
                _flag(comparison["significant"]),
                document["decision"]["outcome"], document["decision"]["variant"] or "",
                metric["key"], metric["role"], _number(metric["margin"]), _flag(comparison.get("non_inferior")),
            ])
    return buffer.getvalue()
