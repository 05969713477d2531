"""Does a stream run again search less when the knowledge base holds its earlier runs? Real runs (issue 18).

`meta_tabular.py` (kinds *rerun*, *rerun, not own* and *twin*) measures this on tables, where a candidate's score is
looked up. Here the runs are real, in the setting of `meta_wide.yaml`'s Split-MNIST row (`--row`): its earlier runs
(seeds 10-12) record their searches into a base; then seeds 0-2 run *cold* (recording nothing), *again* (cold with
another search seed: the control), *own* (`own: alone`, the grower's default warm start from that base until
2026-12-07: each task's earlier runs from a net within 1.5x of its parameters consulted alone, all their searches
pooled into a model whose 2k best points are tried right after no growth),
*not-own* (`own: off`, the default since: the k nearest past searches' chosen and best points) and *own-target*
(`own: alone`, `transfer: target`:
every earlier run of the task, whatever its net's size, consulted alone, its widening factors carried as the widths
they grew to; `--kinds` runs a subset, cold always runs). The grower's default sampler
(cost-gp) replaces the row's, k and max_distance are the warm start's defaults but max_distance 10, as meta_wide's
rows use (a later task's net differs from one run to the next). Measures as `meta_warm_start.py`: trials and search
FLOPs until the best score so far is within EPS of the cold search's final best, and the symmetric measure; the
runs' average incremental accuracy. Finished runs are read back, so a rerun only computes what is missing.

    python benchmarks/meta_rerun.py [--config benchmarks/meta_wide.yaml --row mnist-cold --output bench_runs/meta_rerun]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
from pathlib import Path
from typing import Any

from meta_warm_start import EPS, best, headline, plans, ratios, symmetric, until

from selfgrow.bench import load_bench, run_bench
from selfgrow.report.table import format_table

ROOT = Path(__file__).resolve().parent
KINDS = ("cold", "again", "own", "not-own", "own-target")
AGAIN_SEED = 100  # the control's search seed, as meta_wide_prior_again.yaml's


def with_growth(row: dict[str, Any], **options: Any) -> dict[str, Any]:
    """`row` (a bench method's overrides) with its growth options updated by `options` and the default sampler."""
    out = copy.deepcopy(row)
    growth = out["growth"]["options"]
    growth.pop("sampler", None)
    growth.update(options)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "meta_wide.yaml")
    parser.add_argument("--row", default="mnist-cold")
    parser.add_argument("--output", type=Path, default=Path("bench_runs/meta_rerun"))
    parser.add_argument("--earlier-seeds", type=int, nargs="+", default=[10, 11, 12])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args()
    kinds = ["cold", *(kind for kind in args.kinds if kind != "cold")]
    config, output = args.config.resolve(), args.output.resolve()
    os.chdir(ROOT.parent)  # the bench files' paths are relative to the repository
    source = load_bench(config, output)
    row, stream = source.methods[args.row], args.row.removesuffix("-cold")
    journal = output / "bases" / f"{stream}-earlier.journal"
    earlier = dataclasses.replace(source, seeds=args.earlier_seeds,
                                  methods={f"{stream}-earlier": with_growth(row, record=str(journal))})
    run_bench(earlier, quiet=True, resume=True)
    warm = {"from": str(journal), "max_distance": 10}
    methods = {
        f"{stream}-cold": with_growth(row, record=None),
        f"{stream}-again": with_growth(row, record=None, seed=AGAIN_SEED),
        f"{stream}-own": with_growth(row, record=None, warm_start={**warm, "own": "alone"}),
        f"{stream}-not-own": with_growth(row, record=None, warm_start={**warm, "own": "off"}),
        f"{stream}-own-target": with_growth(row, record=None,
                                            warm_start={**warm, "own": "alone", "transfer": "target"}),
    }
    bench = dataclasses.replace(source, seeds=args.seeds, methods={f"{stream}-{kind}": methods[f"{stream}-{kind}"]
                                                                   for kind in kinds})
    comparison = run_bench(bench, quiet=True, resume=True)
    print(comparison["header"])
    print(f"eps = {EPS}; base: {len(args.earlier_seeds)} earlier runs of {args.row} (seeds {args.earlier_seeds})")
    totals, rows = {}, []
    cold = plans(bench, f"{stream}-cold")
    for kind in kinds:
        pairs = [(plan, c) for plan, c in zip(plans(bench, f"{stream}-{kind}"), cold) if best(c) is not None]
        totals[kind] = [until(plan, best(c)) for plan, c in pairs]
        consulted = [len(plan["reasons"].get("knowledge", {}).get("consulted", [])) for plan, _ in pairs]
        own = sum(bool(plan["reasons"].get("knowledge", {}).get("pooled", {}).get("same task")) for plan, _ in pairs)
        rows.append([kind, len(pairs), sum(r[0] for r in totals[kind]) / len(pairs), sum(r[1] for r in totals[kind]),
                     sum(not r[2] for r in totals[kind]), f"{own} own, {sum(consulted)} tasks consulted",
                     *headline(comparison, f"{stream}-{kind}")])
    print(format_table(rows, ["search", "searches", "trials to cold's best", "search FLOPs to it", "not reached",
                              "consulted", "avg inc acc", "train FLOPs"]))
    ratios(totals, "every task")
    symmetric(bench, [stream], kinds)


if __name__ == "__main__":
    main()
