"""L2BG's random-growth experiment scored by the paper's objective: the final multi-task gain Δ (validation) of
bindgrow with RSA-guided binding and expansion against the random control, same δ, seeds 0-2.

The setting is `benchmarks/bindgrow_random_growth.yaml` (its base and its two guides); each run is scored by
`selfgrow.grow_sequences.run_sequence` (Δ over the final JointNet's validation accuracies against the
single-task baselines, parameters, mean test accuracy).

    python benchmarks/bindgrow_random_gain.py
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

import yaml

from selfgrow.config import from_dict
from selfgrow.grow_sequences import run_sequence

CONFIG = Path(__file__).with_name("bindgrow_random_growth.yaml")


def main() -> None:
    bench = yaml.safe_load(CONFIG.read_text())
    print("| guide | gain Δ (val), seeds 0-2 | mean ± std | params | test acc |")
    print("|---|---|---|---|---|")
    for guide, method in bench["methods"].items():
        runs = []
        for seed in bench["seeds"]:
            data = {**copy.deepcopy(bench["base"]), **copy.deepcopy(method), "seed": seed, "output": "/tmp"}
            delta = data["growth"]["options"].pop("delta")
            runs.append(run_sequence(from_dict(data), delta))
        gains = [r.gain for r in runs]
        print(f"| {guide} | {' / '.join(f'{g:+.4f}' for g in gains)} | {statistics.fmean(gains):+.4f} ± "
              f"{statistics.stdev(gains):.4f} | {statistics.fmean(r.params for r in runs):,.0f} | "
              f"{statistics.fmean(r.mean_test_accuracy for r in runs):.4f} |")


if __name__ == "__main__":
    main()
