"""Helpers of the analysis tests: raw values turned into sufficient statistics, and the tolerance of a reference."""

import numpy as np
import pytest

from analysis.types import PairedSummary, SampleSummary


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
