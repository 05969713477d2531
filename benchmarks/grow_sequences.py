"""L2BG's grow-sequence search (20 trials, a δ shared by the tasks, NSGA-II over gain and parameters) beside
bindgrow's greedy per-task search, on the stream of `benchmarks/grow_sequences.yaml`.

Prints every grow sequence run (δ, final multi-task gain Δ on validation, parameters, mean validation and
test accuracy, whether it is on the Pareto front, the knee's choice), then the greedy search's run scored
the same way, with the compute each spent (training FLOPs, seconds).

    python benchmarks/grow_sequences.py [--trials 20] [--output runs/bench]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from selfgrow.config import from_dict
from selfgrow.grow_sequences import run_sequence, search_in_folder

CONFIG = Path(__file__).with_name("grow_sequences.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--output", default=None, help="folder of the search (default: the config's)")
    args = parser.parse_args()
    data = yaml.safe_load(CONFIG.read_text())
    if args.output:
        data["output"] = args.output
    config = from_dict(data)
    search, folder = search_in_folder(config, n_trials=args.trials)
    greedy = run_sequence(config, None)
    runs = search.sequences
    print(f"\n{search.table()}\n")
    print("| search | sequences run | chosen δ | gain Δ (val) | params | val acc | test acc | train FLOPs | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    chosen = runs[search.chosen]
    print(f"| grow sequences ({search.n_trials} trials, {search.rule}) | {len(runs)} | {chosen.delta:.2f} | "
          f"{chosen.gain:+.4f} | {chosen.params:,} | {chosen.mean_val_accuracy:.4f} | {chosen.mean_test_accuracy:.4f} | "
          f"{sum(s.train_flops for s in runs):.3g} | {sum(s.seconds for s in runs):.0f} |")
    print(f"| greedy per task (bindgrow's search) | 1 | per task | {greedy.gain:+.4f} | {greedy.params:,} | "
          f"{greedy.mean_val_accuracy:.4f} | {greedy.mean_test_accuracy:.4f} | {greedy.train_flops:.3g} | "
          f"{greedy.seconds:.0f} |")
    print(f"\ngreedy bindings {greedy.bindings}, nuclei {greedy.nuclei}; results in {folder}")


if __name__ == "__main__":
    main()
