"""Scenario (c) of one multi-metric calibration cell with other seeds: the harmed guardrail's non_inferior share.

bench/calibration.py runs each scenario once, with its default seed; this repeats scenario (c)
(primary at 2 x MDE, one guardrail's true harm = its margin) of one cell with the given seeds,
through the same code, to tell the test's own size from simulation noise (bench/README.md,
"Several metrics"):
    .venv/bin/python bench/probes/calibration_harm_scenario.py [--cell 2] [--simulations 5000] [--seeds 7 8 9]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import calibration  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", type=int, default=2, help="index into calibration.metrics_cells() (2: cc continuous)")
    parser.add_argument("--simulations", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    args = parser.parse_args()
    calibration.django_setup()
    cell = calibration.metrics_cells()[args.cell]
    protocol = cell.protocol()
    effects = calibration.scenario_effects(protocol, 2.0, cell.harmed)
    for seed in args.seeds:
        rates = calibration.simulate_metrics(cell, effects, simulations=args.simulations,
                                             rng=np.random.default_rng(seed), protocol=protocol)
        print(f"{cell.name}, seed {seed}: {cell.harmed} non_inferior {rates.non_inferior[cell.harmed]:.4f} "
              f"over {args.simulations} simulations", flush=True)


if __name__ == "__main__":
    main()
