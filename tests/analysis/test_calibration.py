"""A small run of bench/calibration.py: every design x metric keeps its false-positive rate and power.

400 simulations per scenario give a standard error of about 0.011 on a 5% rate and 0.02 on
80% power, so the bounds are loose; the full script (10,000 per scenario) is the precise check.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "calibration.py"
SIMULATIONS = 400


def load_calibration():
    spec = importlib.util.spec_from_file_location("bench_calibration", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the script's string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


calibration = load_calibration()


@pytest.mark.parametrize("cell", calibration.CELLS, ids=lambda cell: cell.name)
def test_aa_false_positives_stay_near_alpha_and_ab_power_near_plan(cell):
    n = cell.planned_n()
    seeds = np.random.SeedSequence(17).spawn(2)
    aa = calibration.simulate(cell, effect=0.0, simulations=SIMULATIONS, rng=np.random.default_rng(seeds[0]), n=n)
    ab = calibration.simulate(cell, effect=cell.mde, simulations=SIMULATIONS, rng=np.random.default_rng(seeds[1]), n=n)
    assert 0.015 <= aa.significant <= 0.09
    assert 0.72 <= ab.significant_in_direction <= 0.88


def test_mcnemar_with_continuity_correction_is_conservative_by_about_one_point():
    n = calibration.CELLS[3].planned_n()
    assert 0.040 <= calibration.mcnemar_rejection_rate(n, 0.0) <= 0.045
    assert calibration.mcnemar_rejection_rate(n, 0.0, correction=False) == pytest.approx(0.05, abs=0.002)
