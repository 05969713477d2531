"""Do the warm start's nearest past tasks rank growth points as the new task does? (issue 18, on tables)

The meta_tabular bench (`meta_tabular.py`) trains every point of meta_wide's space (64 points) before tasks 1-3 of
Split-MNIST, Split-Fashion-MNIST and digits, each also in its seeded class order: 18 tables, with each task's
meta-features. A warm start can only help when the past tasks it consults rank the points as the new task's table
does. Here, leaving one dataset out, each held-out table is compared by Kendall tau with the other datasets' tables
(the same 64 points), and the mean tau of the k past tasks picked by:

- *distance*: the library's task distance (`selfgrow.search.meta.transfer.nearest`, every meta-feature weighted
  equally, each scaled by its spread over the past tasks and the new one), as the warm start picks them;
- *learnt*: the same features, each weighted by how much its difference predicts disagreement between two past
  tasks' rankings (minus the Spearman correlation between the feature's scaled squared difference and the pair's
  tau, floored at 0), learnt on the base alone;
- *oracle*: the k past tasks whose tables agree best with the held-out one (what a perfect distance would pick);
- *first m scores*: the k past tasks whose tables agree best with the held-out table on m of its points only (drawn
  at random, `--draws` times: what a search could read from its first m trials), for m in `--observed`;
- *any*: the mean over all past tasks (what a random pick gives on average).

What their points are worth: the regret of the k tasks' best points on the held-out table (its best score minus the
best held-out score among them), beside that of the k points of best mean score over the whole base (*consensus*,
what `warm_start: {consensus: k}` proposes) and of k past tasks drawn at random (*any*).

The noise ceiling is the tau between a held-out table and its twin (the same task's points trained again with other
growth draws and batch order), for the datasets' own class order.

    python benchmarks/meta_neighbours.py --tables bench_runs/meta_tabular    # tables as meta_tabular.py builds them
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
from pathlib import Path
from typing import Any

from meta_tabular import DATASETS, streams, tables
from meta_warm_start import dataset
from proxy_fidelity import kendall_tau
from scipy.stats import spearmanr

from selfgrow.search.meta.base import Entry
from selfgrow.search.meta.features import FEATURES
from selfgrow.search.meta.transfer import _finite, _spread, nearest  # the distance's own scaling

TASKS = [1, 2, 3]


def point_scores(table: dict[str, Any]) -> dict[str, float]:
    return {json.dumps(p["params"], sort_keys=True): p["score"] for p in table["points"]}


def agreement(a: dict[str, float], b: dict[str, float]) -> float:
    """Kendall tau between two tables' scores of the same points."""
    keys = sorted(a)
    return kendall_tau([a[k] for k in keys], [b[k] for k in keys])


def entry(name: tuple[str, int], table: dict[str, Any]) -> Entry:
    """A past search of `name` (stream, task) as the knowledge base holds one, for `nearest` to rank."""
    return Entry(run=name[0], task=name[1], grower="searched", features=table["features"], space={}, candidates=[],
                 chosen={}, best={}, task_key=f"{name[0]}/{name[1]}")


def scaled_squares(features: list[dict[str, float]], a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Per meta-feature, ((a - b) / spread)^2 with the spread of its distinct values over `features`, as `nearest`."""
    out = {}
    for name in FEATURES:
        spread = _spread({f[name] for f in features if _finite(f.get(name))})
        if spread > 0 and _finite(a.get(name)) and _finite(b.get(name)):
            out[name] = ((a[name] - b[name]) / spread) ** 2
    return out


def learnt_weights(base: list[tuple[str, int]], built: dict, scores: dict) -> dict[str, float]:
    """Each feature's weight: minus the Spearman correlation, over pairs of past tasks of different datasets, between
    its scaled squared difference and the pair's ranking agreement, floored at 0."""
    features = [built[n]["features"] for n in base]
    pairs = [(a, b) for a, b in itertools.combinations(base, 2) if dataset(a[0]) != dataset(b[0])]
    taus = [agreement(scores[a], scores[b]) for a, b in pairs]
    squares = [scaled_squares(features, built[a]["features"], built[b]["features"]) for a, b in pairs]
    weights = {}
    for name in FEATURES:
        kept = [(s[name], t) for s, t in zip(squares, taus) if name in s]
        weights[name] = max(0.0, -float(spearmanr(*zip(*kept)).statistic)) if len(kept) > 2 else 0.0
    return weights


def weighted_nearest(base: list[tuple[str, int]], built: dict, me: tuple[str, int], weights: dict[str, float],
                     k: int) -> list[tuple[str, int]]:
    features = [built[n]["features"] for n in [*base, me]]

    def distance(other: tuple[str, int]) -> float:
        squares = scaled_squares(features, built[me]["features"], built[other]["features"])
        total = sum(weights[n] for n in squares)
        return sum(weights[n] * s for n, s in squares.items()) / total if total > 0 else math.inf

    return sorted(base, key=distance)[:k]


def from_first_scores(scores: dict, me: tuple[str, int], base: list[tuple[str, int]], m: int, k: int,
                      draw: int) -> list[tuple[str, int]]:
    """The k past tasks whose scores agree best (Kendall tau) with `me`'s on m of its points drawn at random
    (draw `draw`), ties broken by the base's order."""
    points = random.Random(f"{me}:{m}:{draw}").sample(sorted(scores[me]), m)
    observed = {p: scores[me][p] for p in points}
    return sorted(base, key=lambda b: -agreement(observed, {p: scores[b][p] for p in points}))[:k]


def regret(scores: dict, me: tuple[str, int], chosen: list[tuple[str, int]]) -> float:
    """How far the best of the `chosen` past tasks' best points falls below `me`'s best, on `me`'s table: what their
    proposals are worth to the new task's search."""
    proposals = [max(scores[b], key=scores[b].get) for b in chosen]
    return max(scores[me].values()) - max(scores[me][p] for p in proposals)


def consensus_points(scores: dict, base: list[tuple[str, int]], n: int) -> list[str]:
    """The `n` points of best mean score over the `base` tables, each relative to its table's mean (what the warm
    start's `consensus` proposes, here from full tables)."""
    relative = {b: statistics.fmean(scores[b].values()) for b in base}
    points = sorted(scores[base[0]])
    return sorted(points, key=lambda p: -statistics.fmean(scores[b][p] - relative[b] for b in base))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=Path, default=Path("bench_runs/meta_tabular"))
    parser.add_argument("--k", type=int, default=3, help="past tasks consulted (the warm start's k)")
    parser.add_argument("--observed", type=int, nargs="*", default=[4, 8], help="m of the first-m-scores rows")
    parser.add_argument("--draws", type=int, default=20, help="random draws of the m observed points")
    args = parser.parse_args()
    held_out = list(DATASETS)
    built = tables(args.tables, TASKS, held_out)
    names = [(s, t) for s in streams(held_out) for t in TASKS]
    scores = {n: point_scores(built[n]) for n in names}
    picked: dict[str, list[float]] = {"distance": [], "learnt": [], "oracle": [], "any": []}
    regrets: dict[str, list[float]] = {}
    for held in held_out:
        base = [n for n in names if dataset(n[0]) != held]
        weights = learnt_weights(base, built, scores)
        print(f"{held} held out, learnt weights: {({n: round(w, 2) for n, w in weights.items() if w > 0})}")
        for me in (n for n in names if dataset(n[0]) == held):
            true = {b: agreement(scores[me], scores[b]) for b in base}
            ranked = nearest([entry(b, built[b]) for b in base], built[me]["features"], "searched")
            choices = {"distance": [(e.run, e.task) for e, _ in ranked[: args.k]],
                       "learnt": weighted_nearest(base, built, me, weights, args.k),
                       "oracle": sorted(base, key=lambda b: -true[b])[: args.k]}
            for kind, chosen in choices.items():
                picked[kind].append(statistics.fmean(true[b] for b in chosen))
                regrets.setdefault(kind, []).append(regret(scores, me, chosen))
            for m in args.observed:
                draws = [from_first_scores(scores, me, base, m, args.k, draw) for draw in range(args.draws)]
                picked.setdefault(f"first {m} scores", []).append(statistics.fmean(
                    statistics.fmean(true[b] for b in chosen) for chosen in draws))
                regrets.setdefault(f"first {m} scores", []).append(statistics.fmean(
                    regret(scores, me, chosen) for chosen in draws))
            regrets.setdefault("consensus", []).append(
                max(scores[me].values()) - max(scores[me][p] for p in consensus_points(scores, base, args.k)))
            regrets.setdefault("any", []).append(statistics.fmean(
                regret(scores, me, random.Random(f"{me}:any:{draw}").sample(base, args.k))
                for draw in range(args.draws)))
            picked["any"].append(statistics.fmean(true.values()))
            listed = {kind: ", ".join(f"{b[0]}/{b[1]} {true[b]:.2f}" for b in chosen) for kind, chosen in choices.items()}
            print(f"  {me[0]} task {me[1]}: " + "; ".join(f"{kind} {text}" for kind, text in listed.items()))
    twins = [agreement(scores[(s, t)], point_scores(built[s + "-holdout", t])) for s in held_out for t in TASKS]
    print(f"mean tau with the held-out table, k = {args.k}: "
          + ", ".join(f"{kind} {statistics.fmean(v):.3f}" for kind, v in picked.items()))
    print(f"noise ceiling (a table against its twin, {len(twins)} tables): {statistics.fmean(twins):.3f}")
    print("regret of the consulted tasks' best points on the held-out table (its best score minus the best of "
          "theirs; 'consensus': the k points of best mean score over the base instead; 'any': k past tasks drawn at "
          "random): " + ", ".join(f"{kind} {statistics.fmean(v):.4f}" for kind, v in regrets.items()))


if __name__ == "__main__":
    main()
