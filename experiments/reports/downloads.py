"""The result as files: the stored JSON document as is, and one CSV row per comparison."""

import csv
import io

CSV_COLUMNS = (
    "experiment", "protocol_hash", "variant", "vs", "variant_units", "variant_mean", "vs_units", "vs_mean",
    "effect", "relative_effect", "ci_low", "ci_high", "interval_level", "p_value", "adjusted_p_value",
    "significant", "decision", "decided_variant",
)


def _number(value) -> str:
    # repr() round-trips a float exactly; an empty field is a missing value (an open interval end).
    return "" if value is None else repr(value)


def result_csv(document: dict, *, interval_level: float) -> str:
    """CSV text: a header, then one row per challenger with both variants' units and means."""
    variants = {v["key"]: v for v in document["variants"]}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for comparison in document["comparisons"]:
        variant, vs = variants[comparison["variant"]], variants[comparison["vs"]]
        writer.writerow([
            document["experiment"], document["protocol_hash"], comparison["variant"], comparison["vs"],
            variant["units"], _number(variant["mean"]), vs["units"], _number(vs["mean"]),
            _number(comparison["effect"]), _number(comparison["relative_effect"]),
            _number(comparison["ci_low"]), _number(comparison["ci_high"]), repr(interval_level),
            _number(comparison["p_value"]), _number(comparison["adjusted_p_value"]),
            "true" if comparison["significant"] else "false",
            document["decision"]["outcome"], document["decision"]["variant"] or "",
        ])
    return buffer.getvalue()
