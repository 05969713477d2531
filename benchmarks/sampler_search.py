"""Which sampler finds good growth soonest? Random, TPE, NSGA-II and GP on one task's space, best score after k trials.

A tabular benchmark (as NAS-Bench-101 does for architectures): before task 1 of Split-MNIST
class-IL (the `searched` row of `split_mnist_class.yaml`: MLP 784-64-64 after task 0, replay 500 +
LwF, 2 epochs), every point of the `searched` space (each hidden layer widened by 1x, 1.5x, 2x or 3x,
and 0-1 layers inserted at each of the two depth points: 64 points) is grown and trained once
as the search trains a candidate (`--epochs` on `--fraction` of the task), and its score (mean
validation accuracy over tasks 0 and 1), standard error and inference FLOPs are stored. Each sampler
then runs the real search loop (`selfgrow.search.run_search`, halving batches of 4, no pruning)
against that table for `--trials` trials, with `--seeds` seeds; the table makes the samplers' runs
cost nothing, so only their choices differ.

Reported, mean over seeds after k trials: the best score found, the hypervolume of the found
(score, FLOPs) points (FLOPs normalised by the space's largest; reference point score 0 and
cost 1.1), and the regret of the default rule's pick (the best table score minus the score of the
point the parsimony rule picks among the found points, against the same rule over the whole
table).

`--hidden` sets the starting net's widths (the row's 64 64 by default) and `--factors` the widening
factors, so that the same benchmark runs on a space whose scores differ (a small start, where width
pays) as well as on the row's, where they hardly do.

    python benchmarks/sampler_search.py                        # builds the table, then the samplers
    python benchmarks/sampler_search.py --trials 24 --seeds 3
    python benchmarks/sampler_search.py --hidden 8 8 --factors 1 2 4 8 --output bench_runs/sampler_search_small
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from growth_probe import probe_learner, space_points, with_heads

from selfgrow.growth import build_grower
from selfgrow.growth.base import Grower, GrowthPlan
from selfgrow.growth.candidates import CandidateTraining
from selfgrow.report.table import format_table
from selfgrow.search import SAMPLERS, Proposal, SearchSettings, run_search, select

ROOT = Path(__file__).resolve().parent
BENCH = ROOT / "split_mnist_class.yaml"
SPACE = {"width_factors": [1.0, 1.5, 2.0, 3.0], "max_deepen": 1}


def hypervolume(points: list[tuple[float, float]], cost_ref: float = 1.1) -> float:
    """Area dominated by (score to maximise, cost to minimise) points, above score 0 and left of `cost_ref`.

    Sorted by cost, each point raises the covered height to its score from its cost up to the next
    point's cost (the staircase of the front).
    """
    front = sorted(p for p in points if p[1] < cost_ref)
    front.sort(key=lambda p: p[1])
    area, height = 0.0, 0.0
    costs = [c for _, c in front] + [cost_ref]
    for (score, cost), following in zip(front, costs[1:]):
        height = max(height, score)
        area += height * (following - cost)
    return area


class TableBuilder(Grower):
    """Trains every point of the space once before task 1 and stores its result; no growth."""

    name = "table"

    def __init__(self, space_grower: Any, epochs: int, fraction: float, table: dict[str, Any]) -> None:
        self.space_grower, self.epochs, self.fraction, self.table = space_grower, epochs, fraction, table

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        if task.index != 1:
            return GrowthPlan()
        from selfgrow.nets.cost import inference_flops

        for params in space_points(self.space_grower, learner, task):
            ops = self.space_grower.ops_for(learner.net, params)
            key = json.dumps(ops, sort_keys=True)
            grown = GrowthPlan(ops=ops).apply(learner.net)[0]
            result = CandidateTraining(learner, task, ops, self.fraction, seed=len(self.table)).train_to(self.epochs)
            self.table[key] = {"params": params, "score": result["accuracy"], "se": result["se"],
                               "flops": int(inference_flops(grown, None))}
        return GrowthPlan()


def build_table(args: argparse.Namespace) -> dict[str, Any]:
    """Train every point of the space once before task 1 (see the module docstring)."""
    table: dict[str, Any] = {}
    builder = TableBuilder(build_grower("searched", **space_of(args)), args.epochs, args.fraction, table)
    learner, stream = probe_learner(BENCH, "searched", args.output, builder,
                                    net_options={"hidden": args.hidden} if args.hidden else None)
    learner.learn(stream.tasks[0])
    builder.plan(with_heads(learner, stream.tasks[1]), stream.tasks[1])
    return {"space": space_of(args), "space_net": learner.net.spec, "points": list(table.values())}


def space_of(args: argparse.Namespace) -> dict[str, Any]:
    """The `searched` space of the run: the row's, with `--factors` as its widening factors when given."""
    return {**SPACE, "width_factors": args.factors} if args.factors else dict(SPACE)


def run_sampler(table: dict[str, Any], space: dict[str, Any], sampler: str, seed: int, trials: int) -> list[dict]:
    """The records of one search of `trials` trials over the table (the candidates' results looked up)."""
    by_params = {json.dumps(p["params"], sort_keys=True): p for p in table["points"]}

    class Lookup:
        spent_flops = 0.0

        def __init__(self, entry: dict[str, Any]) -> None:
            self.entry = entry

        def train_to(self, epochs: int) -> dict[str, Any]:
            return {"accuracy": self.entry["score"], "se": self.entry["se"]}

    def entry(params: dict[str, Any]) -> dict[str, Any]:
        return by_params[json.dumps(params, sort_keys=True)]

    def propose(params: dict[str, Any]) -> Proposal:
        found = entry(params)
        return Proposal(key=json.dumps(params, sort_keys=True), cost=float(found["flops"]))

    settings = SearchSettings(n_trials=trials, sampler=sampler, epochs=[1], halving_batch=4, seed=seed,
                              n_startup_trials=4, population_size=8)
    return run_search(settings, f"{sampler}-{seed}", space, propose, lambda p: Lookup(entry(p))).records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--output", type=Path, default=Path("bench_runs/sampler_search"))
    parser.add_argument("--hidden", type=int, nargs="+", default=None, help="starting widths (default: the row's)")
    parser.add_argument("--factors", type=float, nargs="+", default=None, help="widening factors (default: 1 1.5 2 3)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "table.json"
    if path.exists():
        table = json.loads(path.read_text())
    else:
        started = time.perf_counter()
        table = build_table(args)
        table["seconds"] = time.perf_counter() - started
        path.write_text(json.dumps(table))
    from optuna.distributions import CategoricalDistribution, IntDistribution

    example = table["points"][0]["params"]
    declared = table["space"]
    space = {k: (CategoricalDistribution(declared["width_factors"]) if k.startswith("widen:")
                 else IntDistribution(0, declared["max_deepen"])) for k in example}
    top_flops = max(p["flops"] for p in table["points"])
    whole = [(p["score"], p["flops"]) for p in table["points"]]
    best_score = max(s for s, _ in whole)
    rule_best = table["points"][select(whole, "parsimony", errors=[p["se"] for p in table["points"]])]["score"]
    checkpoints = [k for k in (4, 8, 12, 16, 24, 32, 48) if k <= args.trials]
    rows = []
    for sampler in SAMPLERS:
        runs = [run_sampler(table, space, sampler, seed, args.trials) for seed in range(args.seeds)]
        for k in checkpoints:
            best, volume, regret = [], [], []
            for records in runs:
                found = [r for r in records[:k] if r["status"] == "complete"]
                pts = [(r["accuracy"], r["cost"]) for r in found]
                best.append(max(s for s, _ in pts))
                volume.append(hypervolume([(s, c / top_flops) for s, c in pts]))
                pick = select(pts, "parsimony", errors=[r.get("se", 0.0) for r in found])
                regret.append(rule_best - pts[pick][0])
            rows.append([sampler, k, statistics.fmean(best), statistics.fmean(volume), statistics.fmean(regret)])
    print(f"table: {len(table['points'])} points, best score {best_score:.4f}, parsimony over the table "
          f"{rule_best:.4f}; built in {table.get('seconds', 0):.0f} s")
    print(format_table(rows, ["sampler", "trials", "best score", "hypervolume", "parsimony regret"]))
    (args.output / "summary.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
