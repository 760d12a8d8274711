"""A small run of bench/calibration.py's multi-metric scenarios (issue 12), through the worker's code path.

Each cell's definition is planned by `sample_plan` (beta-corrected), frozen by `build_protocol`
and turned into the worker's AnalysisPlan by `protocol_analysis_plan`; simulated per-unit data
go through `analyze`. 150 simulations per scenario give a standard error of about 0.021 on a
93% rejection rate and 0.018 on 5%, so the bounds are loose (about 4 standard errors); the script (3,000 per scenario)
is the precise check.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.services.analysis import protocol_analysis_plan

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "calibration.py"
SIMULATIONS = 150


def load_calibration():
    spec = importlib.util.spec_from_file_location("bench_calibration_metrics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the script's string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


calibration = load_calibration()
CELLS = {cell.name: cell for cell in calibration.metrics_cells()}


@pytest.mark.parametrize("cell", CELLS.values(), ids=lambda cell: cell.name)
def test_each_cell_freezes_a_beta_corrected_plan_with_two_guardrails_and_a_secondary(cell):
    protocol = cell.protocol()
    roles = [m["role"] for m in protocol["metrics"]]
    assert sorted(roles) == ["guardrail", "guardrail", "primary", "secondary"]
    planned = [m for m in protocol["metrics"] if m["power"] is not None]
    assert [m["power"] for m in planned] == pytest.approx([1 - 0.2 / 3] * 3)
    assert sum(m["sets_sample"] for m in protocol["metrics"]) == 1
    plan = cell.plan(protocol)
    assert plan == protocol_analysis_plan(protocol, metric_key=cell.definition["metric_key"])
    assert [m.key for m in plan.metrics] == [m["key"] for m in protocol["metrics"][1:]]
    # Each planned test's statsmodels power at the frozen sample is at least its planned power.
    for entry in planned:
        assert calibration.reference_power(protocol, entry) >= entry["power"] - 1e-3


def test_no_effect_rarely_promotes_and_at_the_mde_each_test_rejects_at_its_statsmodels_power():
    cell = CELLS["champion_challenger continuous"]
    protocol = cell.protocol()
    seeds = np.random.SeedSequence(23).spawn(2)
    null = calibration.simulate_metrics(cell, calibration.scenario_effects(protocol, 0.0), simulations=SIMULATIONS,
                                        rng=np.random.default_rng(seeds[0]), protocol=protocol)
    assert null.promote <= 0.08
    rates = calibration.simulate_metrics(cell, calibration.scenario_effects(protocol, 1.0), simulations=SIMULATIONS,
                                         rng=np.random.default_rng(seeds[1]), protocol=protocol)
    assert rates.promote >= 0.70
    primary, *others = protocol["metrics"]
    assert rates.primary == pytest.approx(calibration.reference_power(protocol, primary), abs=0.1)
    for entry in others:
        if entry["role"] == "guardrail":
            assert rates.non_inferior[entry["key"]] == pytest.approx(
                calibration.reference_power(protocol, entry), abs=0.1)


def test_a_guardrail_harmed_by_its_margin_passes_at_about_alpha():
    cell = CELLS["ab binary"]
    protocol = cell.protocol()
    effects = calibration.scenario_effects(protocol, 2.0, cell.harmed)
    harmed = calibration.simulate_metrics(cell, effects, simulations=SIMULATIONS,
                                          rng=np.random.default_rng(np.random.SeedSequence(29)), protocol=protocol)
    assert harmed.non_inferior[cell.harmed] <= 0.12
    assert harmed.promote <= harmed.non_inferior[cell.harmed]
