"""L2BG's random-growth experiment scored by the paper's objective: the final multi-task gain Δ (validation) of
bindgrow with RSA-guided binding and expansion against the random control, same δ, seeds 0-2.

The setting is a bench file of that experiment (`--config`, default `benchmarks/bindgrow_random_growth.yaml`:
its base, seeds and two guides); each run is scored by `selfgrow.grow_sequences.run_sequence` (Δ over the
final JointNet's validation accuracies against the single-task baselines, parameters, mean test accuracy),
in `--workers` processes of 1 torch thread each (default: one process of torch's threads).

    python benchmarks/bindgrow_random_gain.py [--config FILE] [--workers 2] [--seeds 3 4 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from selfgrow.config import from_dict
from selfgrow.grow_sequences import run_sequence

CONFIG = Path(__file__).with_name("bindgrow_random_growth.yaml")


def score(job: tuple[dict, int]) -> object:
    """One guide's run at one seed, scored (in a worker: one torch thread when the parent asks for workers)."""
    import torch

    data, threads = job
    if threads:
        torch.set_num_threads(threads)
    data = copy.deepcopy(data)
    delta = data["growth"]["options"].pop("delta")
    return run_sequence(from_dict(data), delta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="default: the bench file's")
    args = parser.parse_args()
    bench = yaml.safe_load(args.config.read_text())
    bench["seeds"] = args.seeds or bench["seeds"]
    jobs = [({**copy.deepcopy(bench["base"]), **copy.deepcopy(method), "seed": seed, "output": "/tmp"},
             1 if args.workers > 1 else 0) for method in bench["methods"].values() for seed in bench["seeds"]]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            scored = list(pool.map(score, jobs))
    else:
        scored = [score(job) for job in jobs]
    print("| guide | gain Δ (val), seeds " + " / ".join(map(str, bench["seeds"])) + " | mean ± std | params | test acc |")
    print("|---|---|---|---|---|")
    for k, guide in enumerate(bench["methods"]):
        runs = scored[k * len(bench["seeds"]):(k + 1) * len(bench["seeds"])]
        gains = [r.gain for r in runs]
        print(f"| {guide} | {' / '.join(f'{g:+.4f}' for g in gains)} | {statistics.fmean(gains):+.4f} ± "
              f"{statistics.stdev(gains):.4f} | {statistics.fmean(r.params for r in runs):,.0f} | "
              f"{statistics.fmean(r.mean_test_accuracy for r in runs):.4f} |")


if __name__ == "__main__":
    main()
