"""Warm-start kinds of the tabular bench averaged over runs of the held-out streams, each run one measurement.

`meta_tabular.py` reports each kind's "x fewer trials" (and FLOPs) to the cold search's best with a standard error
over search seeds, for one run of the held-out streams (`--held-out-run N`). Between runs the same kind moves by more
than that error (BENCHMARKS.md, "Another run of the stream"), so a claim about a warm start has to hold across runs.
This reads the summary files of several such benches (one per run; each must hold the reference kind), takes each
run's value as one observation, and prints per kind: the runs, the mean and the standard error over runs of x fewer
trials and x fewer FLOPs, and, paired run by run, the difference from the reference kind (by default `again`, the
second cold search: what noise reads), its standard error, the paired t and on how many runs the kind is ahead, for
x fewer trials and for x fewer FLOPs.

    python benchmarks/meta_across_runs.py bench_runs/first_r*/summary-*.json
    python benchmarks/meta_across_runs.py bench_runs/first_r*/summary-*.json --reference warm --scope mnist
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from selfgrow.report.table import format_table

TRIALS, FLOPS = 4, 5  # columns of a summary row: x fewer trials, x fewer FLOPs (meta_tabular's `report`)


def run_values(summaries: list[dict[str, list[list[Any]]]], scope: str, column: int) -> dict[str, list[float]]:
    """Kind -> its value of `column` in each summary's `scope` (the held-out datasets joined by spaces), in the
    summaries' order; a kind missing from a summary is missing from every run's list, so runs stay paired."""
    values: dict[str, list[float]] = {}
    for summary in summaries:
        if scope not in summary:
            raise SystemExit(f"a summary has no scope {scope!r}; accepted: one of {sorted(summary)}")
        for row in summary[scope]:
            values.setdefault(row[0], []).append(row[column])
    return {kind: found for kind, found in values.items() if len(found) == len(summaries)}


def mean_se(values: list[float]) -> tuple[float, float]:
    """The mean of `values` and its standard error (nan with one value)."""
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return statistics.fmean(values), se


def paired(ours: list[float], reference: list[float]) -> tuple[float, float, float, int]:
    """Run by run, ours minus the reference: the mean, its standard error, the paired t (nan without spread) and the
    number of runs on which ours is ahead."""
    diffs = [a - b for a, b in zip(ours, reference)]
    mean, se = mean_se(diffs)
    t = mean / se if se and not math.isnan(se) else math.nan
    return mean, se, t, sum(d > 0 for d in diffs)


def rows(summaries: list[dict[str, list[list[Any]]]], scope: str, reference: str) -> list[list[Any]]:
    """One row per kind found in every summary: runs, per-run x fewer trials, their mean ± SE, the FLOPs' mean ± SE,
    and the paired differences in x fewer trials and in x fewer FLOPs from `reference`."""
    trials, flops = run_values(summaries, scope, TRIALS), run_values(summaries, scope, FLOPS)
    if reference not in trials:
        raise SystemExit(f"--reference {reference!r} is not a kind of every summary; accepted: one of {sorted(trials)}")
    out = []
    for kind, values in trials.items():
        mean, se = mean_se(values)
        flops_mean, flops_se = mean_se(flops[kind])
        pairs = ((values, trials[reference]), (flops[kind], flops[reference]))
        versus = ["" if kind == reference else "{:+.2f} ± {:.2f} (t {:+.1f}; ahead on {})".format(*paired(*pair))
                  for pair in pairs]
        out.append([kind, len(values), " ".join(f"{v:.2f}" for v in values), f"{mean:.2f} ± {se:.2f}",
                    f"{flops_mean:.2f} ± {flops_se:.2f}", *versus])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", type=Path, nargs="+", help="meta_tabular summary files, one per run")
    parser.add_argument("--reference", default="again", help="the kind every other is paired with (default: again)")
    parser.add_argument("--scope", default="mnist fashion digits",
                        help="the held-out datasets of the rows read, joined by spaces (default: all three)")
    args = parser.parse_args()
    summaries = [json.loads(path.read_text()) for path in args.summaries]
    headers = ["search", "runs", "x fewer trials per run", "mean ± SE over runs", "x fewer FLOPs, mean ± SE",
               f"trials: minus {args.reference}, paired by run", f"FLOPs: minus {args.reference}, paired by run"]
    print(f"{len(summaries)} runs: " + ", ".join(str(path) for path in args.summaries))
    print(format_table(rows(summaries, args.scope, args.reference), headers))


if __name__ == "__main__":
    main()
