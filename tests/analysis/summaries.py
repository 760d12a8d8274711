"""Helpers of the analysis tests: raw values turned into sufficient statistics, and the tolerance of a reference."""

import numpy as np
import pytest

from analysis.types import AnalysisData, PairedSummary, SampleSummary


def close(expected):
    """Equal to a reference to 1e-9 relative (1e-12 absolute near 0)."""
    return pytest.approx(expected, rel=1e-9, abs=1e-12)


def summary(values) -> SampleSummary:
    """n, sum x and sum x^2 of raw values."""
    values = np.asarray(values, dtype=float)
    return SampleSummary(len(values), float(values.sum()), float((values * values).sum()))


def paired(x, y) -> PairedSummary:
    """The pair sums of champion values x and challenger values y."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return PairedSummary(
        len(x), float(x.sum()), float((x * x).sum()), float(y.sum()), float((y * y).sum()), float((x * y).sum())
    )


def ab_data(values, assigned=None) -> AnalysisData:
    """Per-unit values of every assigned unit (0 for units without an observation)."""
    return AnalysisData(
        arms={key: summary(v) for key, v in values.items()},
        assigned=assigned if assigned is not None else {key: len(v) for key, v in values.items()},
    )


def cc_data(values) -> AnalysisData:
    """values: variant -> one value per unit, NaN where the variant has none; the first key is the champion."""
    champion, *challengers = values
    matrix = np.vstack(list(values.values()))
    seen = ~np.isnan(matrix).all(axis=0)
    pairs = {}
    for key in challengers:
        both = ~np.isnan(values[champion]) & ~np.isnan(values[key])
        pairs[key] = paired(values[champion][both], values[key][both])
    return AnalysisData(
        arms={key: summary(v[~np.isnan(v)]) for key, v in values.items()},
        pairs=pairs,
        incomplete_pairs=int((np.isnan(matrix).any(axis=0) & seen).sum()),
    )
