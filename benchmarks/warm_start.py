"""Does warm start help the growth search? Trials and halving batches until the chosen point, warm vs cold.

Runs (or reads back) `benchmarks/warm_start.yaml` with `selfgrow bench`, then averages, over the
seeds and over tasks 1.. (task 0 has nothing to warm-start from), the plans' `trials_to_chosen`
(the trials that count against `n_trials` up to the first that evaluated the chosen point) and
`batches_to_chosen`.

    python benchmarks/warm_start.py
"""

from __future__ import annotations

import statistics
from pathlib import Path

from selfgrow.bench import load_bench, run_bench
from selfgrow.report import Results
from selfgrow.report.table import format_table

CONFIG = Path(__file__).with_name("warm_start.yaml")


def main() -> None:
    bench = load_bench(CONFIG)
    comparison = run_bench(bench, quiet=True, resume=True)  # runs what is missing, reads finished runs back
    rows = []
    for label in bench.methods:
        trials, batches = [], []
        for seed in bench.seeds:
            results = Results.load(bench.output / label / f"seed{seed}")
            for plan in results.growth[1:]:
                trials.append(plan["reasons"]["trials_to_chosen"])
                batches.append(plan["reasons"]["batches_to_chosen"])
        stats = next(r["stats"] for r in comparison["rows"] if r["method"] == label)
        rows.append([label, len(trials), statistics.fmean(trials), statistics.fmean(batches),
                     stats["average_incremental_accuracy"]["mean"], stats["train_flops_total"]["mean"]])
    print(comparison["header"])
    print(format_table(rows, ["search", "plans", "trials to chosen", "batches to chosen", "avg inc acc",
                              "train FLOPs"]))


if __name__ == "__main__":
    main()
