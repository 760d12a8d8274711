"""A small run of bench/calibration_cuped.py: CUPED keeps its A/A rate, reduces the variance by rho^2, plans less.

300 simulations per cell (SE about 0.013 on a 5% rate), so the bounds are loose; the script is the precise check.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "calibration_cuped.py"


def load():
    spec = importlib.util.spec_from_file_location("bench_calibration_cuped", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cuped = load()


@pytest.mark.parametrize("kind, rho", [("normal", 0.5), ("normal", 0.8), ("binary", cuped.binary_rho())])
def test_aa_rate_and_variance_reduction(kind, rho):
    fpr, _, reduction, _ = cuped.simulate(kind, rho, n=200, effect=0.0, simulations=300,
                                          rng=np.random.default_rng(1))
    assert 0.01 <= fpr <= 0.10
    assert reduction == pytest.approx(rho * rho, abs=0.03)


def test_planned_sample_with_cuped_is_smaller_by_about_one_minus_rho_squared():
    without = cuped.planned_n(None)
    assert without == 1571
    for rho in cuped.RHOS:
        assert cuped.planned_n(rho) == pytest.approx(without * (1 - rho * rho), rel=0.01)
