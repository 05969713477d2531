"""Which sampler finds good growth soonest? Random, TPE, NSGA-II, GP and cost-gp on one task's space, after k trials.

A tabular benchmark (as NAS-Bench-101 does for architectures): before task 1 of Split-MNIST
class-IL (the `searched` row of `split_mnist_class.yaml`: MLP 784-64-64 after task 0, replay 500 +
LwF, 2 epochs), every point of the `searched` space (each hidden layer widened by 1x, 1.5x, 2x or 3x,
and 0-1 layers inserted at each of the two depth points: 64 points) is grown and trained once
as the search trains a candidate (`--epochs` on `--fraction` of the task), and its score (mean
validation accuracy over tasks 0 and 1), standard error and inference FLOPs are stored. Each sampler
then runs the real search loop (`selfgrow.search.run_search`, halving batches of 4, no pruning)
against that table for `--trials` trials, with `--seeds` seeds; the table makes the samplers' runs
cost nothing, so only their choices differ.

Also printed: Kendall tau between the table's scores and the points' inference FLOPs (how much capacity alone
ranks them). Reported, mean over seeds after k trials: the best score found, the hypervolume of the found
(score, FLOPs) points (FLOPs normalised by the space's largest; reference point score 0 and
cost 1.1), and the regret of the default rule's pick (the best table score minus the score of the
point the parsimony rule picks among the found points, against the same rule over the whole
table).

With `--holdout` every point is trained a second time from other random streams (growth draws,
batch order) into a held-out table, and each sampler's best find (its highest first-table score) is
also reported at its held-out score: a sampler that only finds the first table's lucky draws gains
nothing there (the winner's curse). Each model-based sampler is also compared with random search
seed by seed (the same seeds): the mean difference after k trials and its standard error over seeds.

With `--max-flops` the points above that many inference FLOPs are over the budget, proposed as a
search with `max_flops` proposes them: told to the sampler untrained (PRUNED) and, up to 4 x the
trials, turned away without counting (`selfgrow.search.engine`; "after k trials" is after the k-th
trial that counts); every measure is then taken over the points within the budget (a search that
found none after k trials counts the lowest score within it, what falling back to the smallest net
gives at worst).

`--hidden` sets the starting net's widths (the row's 64 64 by default) and `--factors` the widening
factors, so that the same benchmark runs on a space whose scores differ (a small start, where width
pays) as well as on the row's, where they hardly do.

    python benchmarks/sampler_search.py                        # builds the table, then the samplers
    python benchmarks/sampler_search.py --trials 24 --seeds 3
    python benchmarks/sampler_search.py --hidden 8 8 --factors 1 2 4 8 --output bench_runs/sampler_search_small
    python benchmarks/sampler_search.py --hidden 8 8 --factors 1 2 4 8 --seeds 20 --holdout
    python benchmarks/sampler_search.py --hidden 8 8 --factors 1 2 4 8 --seeds 20 --holdout --max-flops 51008
    python benchmarks/sampler_search.py --samplers tpe nsga2 ...   # a subset (random always runs)

cost-gp (the growth search's default) reads each point's cost from the table as a search reads it from
`Proposal.cost` before training (`selfgrow.search.cost_gp`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from growth_probe import probe_learner, space_points, with_heads
from proxy_fidelity import kendall_tau

from selfgrow.growth import build_grower
from selfgrow.growth.base import Grower, GrowthPlan
from selfgrow.growth.candidates import CandidateTraining
from selfgrow.report.table import format_table
from selfgrow.search import SAMPLERS, Proposal, SearchSettings, run_search, select
from selfgrow.search.engine import Later, Screen, counts

ROOT = Path(__file__).resolve().parent
BENCH = ROOT / "split_mnist_class.yaml"
SPACE = {"width_factors": [1.0, 1.5, 2.0, 3.0], "max_deepen": 1}
HOLDOUT_SEED_OFFSET = 500_009  # the held-out table's candidates draw from other streams


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
    """Trains every point of the space once before task `task_index` and stores its result; no growth."""

    name = "table"

    def __init__(self, space_grower: Any, epochs: int, fraction: float, table: dict[str, Any], seed_offset: int = 0,
                 task_index: int = 1) -> None:
        self.space_grower, self.epochs, self.fraction, self.table = space_grower, epochs, fraction, table
        self.seed_offset, self.task_index = seed_offset, task_index

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        if task.index != self.task_index:
            return GrowthPlan()
        from selfgrow.nets.cost import inference_flops

        for params in space_points(self.space_grower, learner, task):
            ops = self.space_grower.ops_for(learner.net, params)
            key = json.dumps(ops, sort_keys=True)
            grown = GrowthPlan(ops=ops).apply(learner.net)[0]
            result = CandidateTraining(learner, task, ops, self.fraction, seed=len(self.table) + self.seed_offset,
                                       repeat=1 if self.seed_offset else 0).train_to(self.epochs)
            self.table[key] = {"params": params, "score": result["accuracy"], "se": result["se"],
                               "flops": int(inference_flops(grown, None))}
        return GrowthPlan()


def build_table(bench_file: Path, method: str, space: dict[str, Any], epochs: int, fraction: float, output: Path,
                net_options: dict[str, Any] | None = None, seed_offset: int = 0, task_index: int = 1,
                features: bool = False, stream_options: dict[str, Any] | None = None,
                run_seed: int | None = None) -> dict[str, Any]:
    """Train every point of the `searched` `space` once before task `task_index` of `method` in `bench_file` (the
    earlier tasks learnt without growth; see the module docstring); a `seed_offset` gives every candidate other
    growth draws and another batch order (the held-out table), a `run_seed` the whole run another seed (other samples
    of the stream, other training of the earlier tasks). With `features`, also the task's meta-features
    (`selfgrow.search.meta.features`), as a search that records into a knowledge base computes them;
    `stream_options` over the method's stream's (e.g. another dataset)."""
    table: dict[str, Any] = {}
    builder = TableBuilder(build_grower("searched", **space), epochs, fraction, table, seed_offset, task_index)
    learner, stream = probe_learner(bench_file, method, output, builder, net_options=net_options,
                                    stream_options=stream_options, seed=run_seed)
    for task in stream.tasks[:task_index]:
        learner.learn(task)
    task = stream.tasks[task_index]
    builder.plan(with_heads(learner, task), task)
    out = {"space": space, "space_net": learner.net.spec, "points": list(table.values())}
    if features:
        from selfgrow.search.meta.features import task_features

        out["features"] = task_features(learner, task)[0]
    return out


def point_key(params: dict[str, Any]) -> str:
    """A table point's key: its parameters as sorted JSON."""
    return json.dumps(params, sort_keys=True)


def table_values(table: dict[str, Any], field: str) -> dict[str, Any]:
    """Each point's `field` ("score", "flops", ...) by its `point_key`."""
    return {point_key(p["params"]): p[field] for p in table["points"]}


def table_space(table: dict[str, Any]) -> dict[str, Any]:
    """The Optuna search space of a table's points (widening factors categorical, insertions 0..max_deepen)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    declared = table["space"]
    return {k: (CategoricalDistribution(declared["width_factors"]) if k.startswith("widen:")
                else IntDistribution(0, declared["max_deepen"])) for k in table["points"][0]["params"]}


def space_of(args: argparse.Namespace) -> dict[str, Any]:
    """The `searched` space of the run: the row's, with `--factors` as its widening factors when given."""
    return {**SPACE, "width_factors": args.factors} if args.factors else dict(SPACE)


def run_sampler(table: dict[str, Any], space: dict[str, Any], sampler: str, seed: int, trials: int,
                max_flops: float | None = None, enqueue: Sequence[dict[str, Any]] = (),
                prior: Sequence[tuple[dict[str, Any], float]] = (), screen: Screen | None = None,
                later: Later | None = None) -> list[dict]:
    """The records of one search of `trials` trials over the table (the candidates' results looked up, each
    spending its point's inference FLOPs, which rank the points' training costs; those over `max_flops` proposed
    as over the budget); `enqueue`: points tried first, `prior`: the cost-gp sampler's, `screen`: what turns
    sampled points away untrained, `later`: points enqueued after the first trials (as `run_search` takes them)."""
    by_params = {point_key(p["params"]): p for p in table["points"]}

    class Lookup:
        def __init__(self, entry: dict[str, Any]) -> None:
            self.entry = entry
            self.spent_flops = float(entry["flops"])

        def train_to(self, epochs: int) -> dict[str, Any]:
            return {"accuracy": self.entry["score"], "se": self.entry["se"]}

    def entry(params: dict[str, Any]) -> dict[str, Any]:
        return by_params[point_key(params)]

    def propose(params: dict[str, Any]) -> Proposal:
        found = entry(params)
        over = max_flops is not None and found["flops"] > max_flops
        return Proposal(key=point_key(params), cost=float(found["flops"]),
                        over_budget=f"{found['flops']} inference FLOPs > max_flops {max_flops}" if over else None)

    settings = SearchSettings(n_trials=trials, sampler=sampler, epochs=[1], halving_batch=4, seed=seed,
                              n_startup_trials=4, population_size=8)
    return run_search(settings, f"{sampler}-{seed}", space, propose, lambda p: Lookup(entry(p)), enqueue=enqueue,
                      prior=prior, screen=screen, later=later).records


def cached_table(path: Path, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The table at `path`, built by `build` (and stored there) when absent."""
    if path.exists():
        return json.loads(path.read_text())
    started = time.perf_counter()
    table = build()
    table["seconds"] = time.perf_counter() - started
    path.write_text(json.dumps(table))
    return table


def found_measures(records: list[dict[str, Any]], top_flops: float, rule_best: float,
                   second: dict[str, float], fallback: dict[str, Any]) -> list[float]:
    """Of the complete candidates among `records`: best score, hypervolume, parsimony regret and, with a held-out
    table (`second`: params key -> score), the held-out score of the best-scoring one; with none complete, those
    of the `fallback` table point alone."""
    alone = {"accuracy": fallback["score"], "cost": float(fallback["flops"]), "se": fallback["se"],
             "params": fallback["params"]}
    found = [r for r in records if r["status"] == "complete"] or [alone]
    pts = [(r["accuracy"], r["cost"]) for r in found]
    pick = select(pts, "parsimony", errors=[r.get("se", 0.0) for r in found])
    out = [max(s for s, _ in pts), hypervolume([(s, c / top_flops) for s, c in pts]), rule_best - pts[pick][0]]
    if second:
        best = max(found, key=lambda r: (r["accuracy"], -r["cost"]))
        out.append(second[point_key(best["params"])])
    return out


def first_trials(records: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The records of a search up to its `k`-th trial that counts against `n_trials` (points turned away untrained
    on the way included)."""
    out, counted = [], 0
    for record in records:
        if counted == k:
            break
        out.append(record)
        counted += counts(record)
    return out


def paired_difference(ours: list[list[float]], random: list[list[float]], index: int) -> tuple[float, float]:
    """Mean over seeds of (ours - random) for measure `index`, and its standard error (seeds paired)."""
    diffs = [a[index] - b[index] for a, b in zip(ours, random)]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    return statistics.fmean(diffs), se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--output", type=Path, default=Path("bench_runs/sampler_search"))
    parser.add_argument("--hidden", type=int, nargs="+", default=None, help="starting widths (default: the row's)")
    parser.add_argument("--factors", type=float, nargs="+", default=None, help="widening factors (default: 1 1.5 2 3)")
    parser.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS),
                        help="the samplers compared (default: all; random is always among them)")
    parser.add_argument("--max-flops", type=float, default=None,
                        help="points above these inference FLOPs are over the budget (default: none)")
    parser.add_argument("--holdout", action="store_true",
                        help="also train every point a second time (other growth draws and batch order) and report the "
                             "second table's score of each sampler's best find (free of the winner's curse)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    net_options = {"hidden": args.hidden} if args.hidden else None

    def build(seed_offset: int = 0) -> dict[str, Any]:
        return build_table(BENCH, "searched", space_of(args), args.epochs, args.fraction, args.output, net_options,
                           seed_offset)

    table = cached_table(args.output / "table.json", build)
    holdout = None
    if args.holdout:
        holdout = cached_table(args.output / "table-holdout.json", lambda: build(HOLDOUT_SEED_OFFSET))
    space = table_space(table)
    within = [p for p in table["points"] if args.max_flops is None or p["flops"] <= args.max_flops]
    top_flops = max(p["flops"] for p in within)
    whole = [(p["score"], p["flops"]) for p in within]
    best_score = max(s for s, _ in whole)
    rule_best = within[select(whole, "parsimony", errors=[p["se"] for p in within])]["score"]
    lowest = min(within, key=lambda p: p["score"])
    second = table_values(holdout, "score") if holdout else {}
    checkpoints = [k for k in (4, 8, 12, 16, 24, 32, 48) if k <= args.trials]
    rows, per_seed = [], {}
    samplers = [*dict.fromkeys([*args.samplers, "random"])]
    for sampler in samplers:
        runs = [run_sampler(table, space, sampler, seed, args.trials, args.max_flops) for seed in range(args.seeds)]
        for k in checkpoints:
            measured = [found_measures(first_trials(records, k), top_flops, rule_best, second, lowest)
                        for records in runs]
            per_seed[sampler, k] = measured
            rows.append([sampler, k, *(statistics.fmean(m[i] for m in measured) for i in range(len(measured[0])))])
    budget = f" ({len(within)} within max_flops {args.max_flops:.0f})" if args.max_flops else ""
    print(f"table: {len(table['points'])} points{budget}, best score {best_score:.4f}, parsimony over the table "
          f"{rule_best:.4f}; built in {table.get('seconds', 0):.0f} s")
    capacity = kendall_tau([p["score"] for p in table["points"]], [p["flops"] for p in table["points"]])
    within_capacity = f", {kendall_tau([p['score'] for p in within], [p['flops'] for p in within]):.2f} within max_flops"
    print(f"Kendall tau between the table's scores and inference FLOPs: {capacity:.2f}"
          f"{within_capacity if args.max_flops else ''}")
    headers = ["sampler", "trials", "best score", "hypervolume", "parsimony regret"]
    if holdout:
        top = max(table["points"], key=lambda p: p["score"])
        print(f"held-out table: the first table's best point re-measured {second[point_key(top['params'])]:.4f}"
              f", the held-out table's own best {max(second.values()):.4f}")
        headers.append("best find, re-measured")
    print(format_table(rows, headers))
    pairs = []
    for sampler in samplers:
        if sampler == "random":
            continue
        for k in checkpoints:
            for i in ([0, 3] if holdout else [0]):
                mean, se = paired_difference(per_seed[sampler, k], per_seed["random", k], i)
                pairs.append([sampler, k, headers[2 + i], mean, se])
    print(format_table(pairs, ["sampler", "trials", "measure", "minus random (mean over seeds)", "standard error"]))
    summary = "summary.json" if args.max_flops is None else f"summary-max-flops-{args.max_flops:.0f}.json"
    (args.output / summary).write_text(json.dumps({"rows": rows, "paired": pairs}, indent=1))


if __name__ == "__main__":
    main()
