"""Does the search's proxy rank growth candidates as full training does? Kendall tau, regret, noise ceiling.

In the Split-CIFAR-10 growth bench's setting (`split_cifar10_growth.yaml`, method
`fixed-small-pyramid`: ResNet of 4/8/16/32 channels, herding replay of 500 + LwF, seed 0), before
tasks 0 and 1 every point of a grower's space is grown from the learner's net and trained:

- by each proxy: an independent short run, scored as the search scores (mean validation accuracy
  over the seen tasks and the new one); proxies "25% data, e epochs" (e = 2, 4, 6: one run scored
  after each) and "all data, e epochs" (e = 1, 2, 3), each at the bench's constant learning rate and
  annealed ("cosine": every rung annealed to 0 over its steps, as `proxy_schedule: cosine_steps`
  trains; "one cosine": one rung to the last epoch count); "mean of 3 runs": two proxies scored by
  the mean of three independent runs (as `repeats: 3` scores); "extrapolated": the constant-lr runs'
  scores after each of their epoch counts extrapolated to the full training's 6 epochs on a line in the log
  of the full-data epochs trained (learning-curve extrapolation; no training of its own); "25% data, lr 1e-3"
  and "lr 4e-3" (the bench's 2e-3 halved and doubled, the same draws as "25% data"); and "25% data, best of 3
  lrs": per candidate the best validation score of the three (a per-candidate learning rate);
- in full (the bench's 6 epochs on all the task's data), `--seeds` times with different growth draws
  and batch orders. The ground truth is the mean over those seeds of the seen tasks' mean *test*
  accuracy (1,000 images per class: less noisy than the 100 validation images the search has).

Each proxy run is also measured on the test split (rows "(test split)"): the proxy's ranking once the
100-per-class validation sample's noise is taken out, which says whether a proxy fails by its
training or by the data it is scored on.

Reported per task and proxy: Kendall tau (tau-b) between proxy scores and the ground truth, the
noise ceiling (mean tau between two seeds of full training), and the regret: the best ground truth
minus the ground truth of the proxy's pick, for the pick of the highest proxy score and for the pick
of the default rule (parsimony: the cheapest candidate within one standard error of the best proxy
score) and for that of the rule under a training budget (capacity: the costliest within it). The
seed-to-seed spread is the mean over candidates of the std of their full scores. Between tasks the
learner trains the un-grown net on the task (as `fixed` would), so task 1's candidates all start
from the same trained net.

Beside the trained proxies, two scores need no training ("no training" rows): the grown net's inference FLOPs (each
candidate's `flops`; larger ranks higher) and NASWOT (its `zero_cost`; Mellor et al. 2021, "Neural Architecture
Search without Training"): the log-determinant of the kernel K[i, j] = N_A - Hamming(c_i, c_j) of the binary ReLU
codes c of a batch of the task's training images (here 128, seeded), computed on the grown net as it is (inherited
weights, new units as the growth operators make them, batch statistics in BatchNorm as at the paper's
initialisation). Deviation: the paper scores untrained nets of a NAS cell space; here the candidates are growths of
the learner's net, trained or not. Their regret columns take the score's highest pick for every rule (no standard error).
"NASWOT filter, then P" rows score a trained proxy P behind NASWOT as a first filter (a searched grower's
`zero_cost: naswot`): only the candidates at or above the median NASWOT score of the probed points are trained and
picked from, the others rank below them, tied (the grower's filter takes the median of the points scored before each
one, in the order the sampler asks them; here of all of them at once).

How far full training itself tells the candidates apart is printed per task beside the table (`reliability`):
the candidates' mean test accuracies, their spread against the spread of one candidate's seeds, and ICC(1,1), the
share of one full training's variance that lies between candidates (the noise ceiling reads the same thing as one
Kendall tau per pair of seeds). `--train-per-class N` and `--epochs E` probe a less reduced setting than the bench's
(N training images per class instead of 1,000; E epochs of full training, and of the learner's own training between
tasks, instead of 6), into a folder of its own: do candidates become distinguishable with more data and training?

Every finished candidate is appended to `<output>/candidates.jsonl`, so a killed run resumes where it
stopped, and a proxy added to `PROXIES` later is measured for the candidates already there (their
ground truth kept); the summary is printed and written to `<output>/summary.json`.

    python benchmarks/proxy_fidelity.py --grower searched            # 16 points: each stage 1x or 2x
    python benchmarks/proxy_fidelity.py --grower compound            # phi x alpha grid
    python benchmarks/proxy_fidelity.py --full-schedule cosine       # ground truth trained with a cosine lr
    python benchmarks/proxy_fidelity.py --grower searched-wide --sample 16 --max-flops 13062304 \
        --proxies "25% data" "25% data, run 2" "25% data, run 3" "all data" --part 0/2   # and --part 1/2 beside it

`--sample N` probes N points drawn uniformly (seeded) among those within `--max-flops`, the same
points before every task, as a search's random sampler draws them; `--part K/N` probes every N-th of
them from the K-th, so N processes share a probe (each appends to its own `candidates-K.jsonl`).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from growth_probe import probe_learner, space_points, with_heads

from selfgrow.growth import build_grower
from selfgrow.growth.base import Grower, GrowthPlan
from selfgrow.growth.candidates import CandidateTraining, candidate_seed, repeats_error
from selfgrow.growth.zero_cost import naswot, naswot_batch
from selfgrow.report.table import format_table
from selfgrow.search import select
from selfgrow.train import accuracy

ROOT = Path(__file__).resolve().parent
BENCH = ROOT / "split_cifar10_growth.yaml"
# space name -> (grower, its options)
SPACES = {
    "searched": ("searched", {"width_factors": [1.0, 2.0], "max_deepen": 0,
                              "layers": ["stage.0", "stage.1", "stage.2", "stage.3"]}),
    # searched-budget-wide's space (every width group 1x, 2x or 4x: 6,561 points, probed by `--sample`)
    "searched-wide": ("searched", {"width_factors": [1.0, 2.0, 4.0], "max_deepen": 0,
                                   "layers": [f"stage.{s}{block}" for s in range(4) for block in ("", ".block.0")]}),
    "compound": ("compound", {"max_phi": 2, "phi_step": 0.5, "fit_coefficients": True,
                              "alpha_grid": [1.0, 1.2, 1.4, 1.6, 1.8]}),
}
# name -> (data fraction, epochs scored after, learning-rate schedule of each rung, run): schedule None keeps the
# bench's constant lr; "cosine_steps" anneals to 0 over each rung's steps and restarts at the next rung (SGDR), as a
# search with `proxy_schedule: cosine_steps` trains its rungs ("one cosine": a single rung, annealed once); run k > 0
# is an independent repeat (other growth draws and batch order) of the proxy of run 0, for the means below
PROXIES = {
    "25% data": (0.25, [2, 4, 6], None, 0),
    "all data": (1.0, [1, 2, 3], None, 0),
    "25% data, cosine": (0.25, [2, 4, 6], "cosine_steps", 0),
    "all data, cosine": (1.0, [1, 2, 3], "cosine_steps", 0),
    "25% data, one cosine": (0.25, [6], "cosine_steps", 0),
    "all data, one cosine": (1.0, [3], "cosine_steps", 0),
    "25% data, run 2": (0.25, [2, 4, 6], None, 1),
    "25% data, run 3": (0.25, [2, 4, 6], None, 2),
    "25% data, one cosine, run 2": (0.25, [6], "cosine_steps", 1),
    "25% data, one cosine, run 3": (0.25, [6], "cosine_steps", 2),
    "25% data, lr 1e-3": (0.25, [2, 4, 6], None, 0),
    "25% data, lr 4e-3": (0.25, [2, 4, 6], None, 0),
}
# proxies trained at another learning rate than the bench's 2e-3 (the same growth draws and batch order as "25% data")
LRS = {"25% data, lr 1e-3": 1e-3, "25% data, lr 4e-3": 4e-3}
# proxies scored, per candidate and epoch count, by the run of the best validation score among runs at several
# learning rates (a per-candidate learning rate chosen on the validation split, as a small lr grid would choose it)
BEST_LR = {"25% data, best of 3 lrs": ["25% data", "25% data, lr 1e-3", "25% data, lr 4e-3"]}
# proxies scored by the mean of independent runs (as `repeats: 3` scores a candidate)
MEANS = {
    "25% data, mean of 3 runs": ["25% data", "25% data, run 2", "25% data, run 3"],
    "25% data, one cosine, mean of 3 runs": ["25% data, one cosine", "25% data, one cosine, run 2",
                                             "25% data, one cosine, run 3"],
}
# proxies scored by extrapolating a run's scores after each of its epoch counts to the full training's (Domhan et al.
# 2015, "Speeding up automatic hyperparameter optimization of deep neural networks by extrapolation of learning
# curves"; here one family, score linear in the log of the full-data epochs trained, fitted by least squares)
EXTRAPOLATED = {"25% data, extrapolated": "25% data", "all data, extrapolated": "all data"}
FULL_EPOCHS = 6
ZERO_COST = ("inference FLOPs", "NASWOT")  # the "no training" rows' scores, larger ranking higher


def zero_cost(learner: Any, task: Any, ops: list) -> dict[str, float]:
    """The score without training that a record does not already hold (its inference FLOPs are its "flops"): the grown
    net's NASWOT score on a seeded batch of the task's training images."""
    grown = GrowthPlan(ops=ops).apply(learner.net)[0]
    return {"NASWOT": naswot(grown, naswot_batch(task))}


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b of two score lists (ties in either list count as neither concordant nor discordant)."""
    concordant = discordant = ties_a = ties_b = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0 and db == 0:
            continue
        if da == 0:
            ties_a += 1
        elif db == 0:
            ties_b += 1
        elif (da > 0) == (db > 0):
            concordant += 1
        else:
            discordant += 1
    denominator = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def train_candidate(learner: Any, task: Any, ops: list, fraction: float, seed: int, epochs: list[int],
                    test: bool, schedule: str | None = None, lr: float | None = None) -> list[dict[str, Any]]:
    """One independent run of a candidate: its search score after each of `epochs` (and test accuracy).

    `schedule` and `lr` replace the bench's learning-rate schedule and learning rate (None: keep them).
    """
    evaluation = CandidateTraining(learner, task, ops, fraction, seed=seed)
    changes = {"seed": seed % 1_000_000, **({"schedule": schedule} if schedule else {}), **({"lr": lr} if lr else {})}
    evaluation.trainer = dataclasses.replace(evaluation.trainer, **changes)
    out = []
    for e in epochs:
        result = evaluation.train_to(e)
        entry = {"epochs": e, "score": result["accuracy"], "se": result["se"]}
        if test:
            seen = [*learner.seen, task]
            scores = [accuracy(evaluation.net, t, learner.scenario, "test") for t in seen]
            entry["test"] = sum(scores) / len(scores)
        out.append(entry)
    return out


class Probe(Grower):
    """Measures every candidate before each of the first tasks, then keeps the net as it is (no growth)."""

    name = "probe"

    def __init__(self, space_grower: Any, args: argparse.Namespace, done: dict[str, Any], log: Path) -> None:
        self.space_grower, self.args, self.done, self.log = space_grower, args, done, log

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        """Measure this part's candidates before `task` on the global random stream's copy, so that the learner's own
        training between tasks, and with it every later task's candidates, is the same whatever this process probed."""
        with torch.random.fork_rng(devices=[]):
            return self._measure(learner, task)

    def _measure(self, learner: Any, task: Any) -> GrowthPlan:
        if task.index >= self.args.tasks:
            return GrowthPlan()
        part, parts = self.args.part
        for params in probed_points(self.space_grower, learner, task, self.args)[part::parts]:
            ops = self.space_grower.ops_for(learner.net, params)
            key = f"{task.index}/{json.dumps(ops, sort_keys=True)}"
            record = self.done.get(key)
            if record is not None and "zero_cost" not in record:  # measured before the scores without training
                record["zero_cost"] = zero_cost(learner, task, ops)
                self.done[key] = record
                with self.log.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            if record is not None and all(name in record["proxies"] for name in self.args.proxies):
                continue
            started = time.perf_counter()
            if record is None:  # a new candidate; a known one only gets the proxies added since it was measured
                record = {"task": task.index, "params": params, "ops": ops,
                          "flops": grown_flops(learner, task, ops), "zero_cost": zero_cost(learner, task, ops),
                          "proxies": {}, "full": [], "seconds": 0.0}
            base = candidate_seed(0, task.index, json.dumps(ops, sort_keys=True))
            for name, (fraction, epochs, schedule, run) in PROXIES.items():
                if name in self.args.proxies and name not in record["proxies"]:
                    record["proxies"][name] = train_candidate(learner, task, ops, fraction, base + 17 + 100 * run,
                                                              epochs, True, schedule, LRS.get(name))
            for k in range(len(record["full"]), self.args.seeds):
                record["full"].append(train_candidate(learner, task, ops, 1.0, base + 1000 * (k + 1),
                                                      [self.args.epochs], True, self.args.full_schedule)[-1])
            record["seconds"] += time.perf_counter() - started
            self.done[key] = record
            with self.log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"task {task.index} {params}: full test {[round(r['test'], 3) for r in record['full']]} "
                  f"({record['seconds']:.0f} s)", flush=True)
        return GrowthPlan()


def grown_flops(learner: Any, task: Any, ops: list) -> int:
    """Inference FLOPs of the learner's net grown by `ops` (the task's head only in task-IL)."""
    from selfgrow.nets.cost import inference_flops

    grown = GrowthPlan(ops=ops).apply(learner.net)[0]
    return int(inference_flops(grown, task.index if learner.scenario == "task" else None))


def probed_points(grower: Any, learner: Any, task: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The points probed before `task`: every point of the space, or `args.sample` of them drawn uniformly
    (seed 0) among those within `args.max_flops`."""
    points = space_points(grower, learner, task)
    if args.sample is None:
        return points
    random.Random(0).shuffle(points)
    chosen = []
    for params in points:
        if len(chosen) == args.sample:
            break
        if args.max_flops is None or grown_flops(learner, task, grower.ops_for(learner.net, params)) <= args.max_flops:
            chosen.append(params)
    return chosen


def part_of(text: str) -> tuple[int, int]:
    """`--part K/N` as (K, N), refused in one sentence unless 0 <= K < N."""
    try:
        part, parts = (int(x) for x in text.split("/"))
    except ValueError:
        part, parts = -1, 0
    if not 0 <= part < parts:
        raise argparse.ArgumentTypeError(f"--part {text!r} is invalid; accepted: K/N with 0 <= K < N, e.g. 0/2")
    return part, parts


def mean_proxies(measured: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The `MEANS` proxies whose runs were all measured: per epoch count, the runs' mean score and test accuracy,
    the standard error holding the validation sample's and the runs' spread (as `RepeatedTraining` scores)."""
    out = {}
    for name, runs in MEANS.items():
        if not all(run in measured for run in runs):
            continue
        out[name] = []
        for entries in zip(*(measured[run] for run in runs)):
            scores = [e["score"] for e in entries]
            entry = {"epochs": entries[0]["epochs"], "score": statistics.fmean(scores),
                     "se": repeats_error(scores, [e["se"] for e in entries])}
            if all("test" in e for e in entries):
                entry["test"] = statistics.fmean(e["test"] for e in entries)
            out[name].append(entry)
    return out


def best_lr_proxies(measured: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The `BEST_LR` proxies whose runs were all measured: per epoch count, the entry (score, error, test accuracy and
    the learning rate's run) of the run with the highest validation score, the first listed on a tie."""
    out = {}
    for name, runs in BEST_LR.items():
        if all(run in measured for run in runs):
            epochs = zip(*(measured[run] for run in runs))
            out[name] = [dict(max(entries, key=lambda e: e["score"])) for entries in epochs]
    return out


def extrapolation_weights(trained: list[float], target: float) -> list[float]:
    """The weights w with sum(w_i * s_i) the least-squares line s = a + b log(t) through scores s_i after `trained`
    full-data epochs t_i (at least two distinct), evaluated at `target` epochs."""
    x = [math.log(t) for t in trained]
    mean = statistics.fmean(x)
    spread = sum((xi - mean) ** 2 for xi in x)
    if spread == 0:
        raise ValueError(f"extrapolation needs two distinct epoch counts; got {trained}")
    return [1 / len(x) + (xi - mean) * (math.log(target) - mean) / spread for xi in x]


def extrapolated_proxies(measured: dict[str, list[dict[str, Any]]],
                         full_epochs: int = FULL_EPOCHS) -> dict[str, list[dict[str, Any]]]:
    """The `EXTRAPOLATED` proxies whose run was measured: the run's scores after each epoch count (in full-data
    epochs: epochs x its data fraction) extrapolated to the full training's `full_epochs` on a line in log epochs, and
    its test accuracy the same way; the standard error treats the scores' validation errors as independent (they share
    the validation split, so it understates the error by up to a factor of about 2: what the parsimony and capacity
    picks read)."""
    out = {}
    for name, source in EXTRAPOLATED.items():
        if source not in measured:
            continue
        entries = measured[source]
        weights = extrapolation_weights([e["epochs"] * PROXIES[source][0] for e in entries], full_epochs)
        entry = {"epochs": entries[-1]["epochs"], "score": sum(w * e["score"] for w, e in zip(weights, entries)),
                 "se": math.sqrt(sum((w * e["se"]) ** 2 for w, e in zip(weights, entries)))}
        if all("test" in e for e in entries):
            entry["test"] = sum(w * e["test"] for w, e in zip(weights, entries))
        out[name] = [entry]
    return out


def summarise(records: list[dict[str, Any]], task: int, full_epochs: int = FULL_EPOCHS) -> list[list[Any]]:
    """Rows (task, proxy, tau, ceiling, regret of best pick, of parsimony's pick and of capacity's, spread)."""
    cands = [r for r in records if r["task"] == task]
    truth = [statistics.fmean(f["test"] for f in r["full"]) for r in cands]
    seeds = len(cands[0]["full"])
    pairs = list(itertools.combinations(range(seeds), 2))
    ceiling = statistics.fmean(kendall_tau([r["full"][a]["test"] for r in cands], [r["full"][b]["test"] for r in cands])
                               for a, b in pairs) if pairs else float("nan")
    spread = statistics.fmean(statistics.stdev(f["test"] for f in r["full"]) for r in cands) if seeds > 1 else float("nan")
    rows = []
    cands = [{**r, "proxies": {**r["proxies"], **mean_proxies(r["proxies"]),
                               **extrapolated_proxies(r["proxies"], full_epochs), **best_lr_proxies(r["proxies"])}}
             for r in cands]
    measured = [name for name in [*PROXIES, *MEANS, *EXTRAPOLATED, *BEST_LR]
                if all(name in r["proxies"] for r in cands)]
    proxies = [(name, i) for name in measured for i in range(len(cands[0]["proxies"][name]))]
    on_test = [(name, i, "test") for name, i in proxies if "test" in cands[0]["proxies"][name][i]]
    measured = [{"inference FLOPs": r["flops"], **r.get("zero_cost", {})} for r in cands]
    naswot_scores = [m["NASWOT"] for m in measured] if all("NASWOT" in m for m in measured) else None
    passed = [score >= statistics.median(naswot_scores) for score in naswot_scores] if naswot_scores else None
    for name, i, split in [(name, i, "score") for name, i in proxies] + [("full, one seed", None, "score")] + on_test:
        entries = [r["full"][0] if i is None else r["proxies"][name][i] for r in cands]
        scores = [e[split] for e in entries]
        errors = [e["se"] for e in entries]  # the validation-size error: the parsimony pick's test twin is indicative
        label = name if i is None else f"{name}, {entries[0]['epochs']} epochs"
        label += " (test split)" if split == "test" else " (val score)" if i is None else ""
        rows.append([task, label, len(cands), *_fidelity(scores, errors, cands, truth, ceiling), spread])
        if passed and i is not None and split == "score":
            rows.append([task, f"NASWOT filter, then {label}", sum(passed),
                         *_fidelity(scores, errors, cands, truth, ceiling, passed), spread])
    for name in (n for n in ZERO_COST if all(n in m for m in measured)):
        scores = [m[name] for m in measured]
        regret = max(truth) - truth[max(range(len(cands)), key=lambda c: scores[c])]
        rows.append([task, f"{name} (no training)", len(cands), kendall_tau(scores, truth), ceiling, regret, regret,
                     regret, spread])
    return rows


def _fidelity(scores: list[float], errors: list[float], cands: list[dict[str, Any]], truth: list[float],
              ceiling: float, passed: list[bool] | None = None) -> list[float]:
    """Kendall tau of `scores` with the truth, the ceiling, and the regrets of the best pick, parsimony's and
    capacity's. With `passed` (NASWOT's first filter: the candidates at or above the median NASWOT score), only the
    passed candidates are trained and picked from; the others rank below them, tied (the search never scores them)."""
    kept = [c for c in range(len(cands)) if passed is None or passed[c]]
    below = min(scores) - 1.0  # one tied rank under every trained candidate
    ranked = [scores[c] if passed is None or passed[c] else below for c in range(len(cands))]
    best_pick = max(kept, key=lambda c: (scores[c], -cands[c]["flops"]))
    points = [(scores[c], cands[c]["flops"]) for c in kept]
    rule_picks = [kept[select(points, rule, errors=[errors[c] for c in kept])] for rule in ("parsimony", "capacity")]
    return [kendall_tau(ranked, truth), ceiling, max(truth) - truth[best_pick],
            *(max(truth) - truth[pick] for pick in rule_picks)]


def reliability(records: list[dict[str, Any]], task: int) -> list[Any]:
    """How far full training itself tells the candidates of `task` apart: (task, candidates, seeds, lowest and
    highest mean test accuracy, std of the candidates' means, mean std of a candidate's seeds, ICC(1,1)). ICC(1,1)
    (Shrout and Fleiss 1979, one-way random effects) is the share of one full training's variance that lies between
    candidates: (MSB - MSW) / (MSB + (k - 1) MSW) over k seeds each; 0 when the candidates differ no more than
    seeds do, 1 when seeds agree exactly. Better estimated than the noise ceiling (one Kendall tau per seed pair)."""
    cands = [r for r in records if r["task"] == task]
    runs = [[f["test"] for f in r["full"]] for r in cands]
    k = min(len(r) for r in runs)
    means = [statistics.fmean(r[:k]) for r in runs]
    if k < 2 or len(runs) < 2:
        return [task, len(runs), k, min(means), max(means), float("nan"), float("nan"), float("nan")]
    between = statistics.stdev(means)
    within = statistics.fmean(statistics.variance(r[:k]) for r in runs)  # MSW
    msb = k * between**2
    icc = (msb - within) / (msb + (k - 1) * within) if msb + (k - 1) * within > 0 else float("nan")
    return [task, len(runs), k, min(means), max(means), between, math.sqrt(within), icc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grower", choices=sorted(SPACES), default="searched")
    parser.add_argument("--seeds", type=int, default=3, help="full-training seeds per candidate (ground truth)")
    parser.add_argument("--tasks", type=int, default=2, help="probe tasks 0 .. tasks-1")
    parser.add_argument("--output", type=Path, default=Path("bench_runs/proxy_fidelity"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--full-schedule", choices=["cosine", "step"], default=None,
                        help="learning-rate schedule of the full-training ground truth (default: the bench's constant lr)")
    parser.add_argument("--sample", type=int, default=None,
                        help="probe this many points drawn uniformly (default: all)")
    parser.add_argument("--max-flops", type=float, default=None, help="sampled points within these inference FLOPs")
    parser.add_argument("--proxies", nargs="*", choices=list(PROXIES), default=list(PROXIES),
                        help="the proxies measured (default: all)")
    parser.add_argument("--part", type=part_of, default=(0, 1), help="K/N: probe every N-th point from the K-th")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help="training images per class (default: the bench's 1,000), for a less reduced setting")
    parser.add_argument("--epochs", type=int, default=FULL_EPOCHS,
                        help="epochs of full training (the ground truth) and of the learner's own training between "
                             f"tasks (default: the bench's {FULL_EPOCHS})")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    setting = (f"-{args.train_per_class}pc" if args.train_per_class else "") + (
        f"-{args.epochs}ep" if args.epochs != FULL_EPOCHS else "")
    output = args.output / (args.grower + (f"-{args.full_schedule}" if args.full_schedule else "") + setting)
    output.mkdir(parents=True, exist_ok=True)
    log = output / ("candidates.jsonl" if args.part[1] == 1 else f"candidates-{args.part[0]}.jsonl")
    done = {}
    for path in sorted(output.glob("candidates*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            done[f"{record['task']}/{json.dumps(record['ops'], sort_keys=True)}"] = record
    grower, options = SPACES[args.grower]
    probe = Probe(build_grower(grower, **options, mode="split"), args, done, log)
    learner, stream = probe_learner(
        BENCH, "fixed-small-pyramid", output, probe,
        stream_options={"max_train_per_class": args.train_per_class} if args.train_per_class else None,
        trainer_options={"epochs": args.epochs} if args.epochs != FULL_EPOCHS else None)
    for task in stream.tasks[: args.tasks - 1]:
        learner.learn(task)
        total = sum(float(p.detach().double().sum()) for p in learner.net.parameters())
        print(f"after task {task.index}: the learner's net sums to {total!r} (equal in every part)", flush=True)
    probe.plan(with_heads(learner, stream.tasks[args.tasks - 1]), stream.tasks[args.tasks - 1])
    records = list(done.values())
    rows = [row for t in range(args.tasks) for row in summarise(records, t, args.epochs)]
    headers = ["task", "proxy", "candidates", "Kendall tau", "noise ceiling", "regret (best)", "regret (parsimony)",
               "regret (capacity)", "seed spread"]
    print(format_table(rows, headers))
    truth = [reliability(records, t) for t in range(args.tasks)]
    truth_headers = ["task", "candidates", "seeds", "lowest truth", "highest truth", "std of candidate means",
                     "seed std", "ICC(1,1)"]
    print(format_table(truth, truth_headers))
    (output / "summary.json").write_text(json.dumps({"headers": headers, "rows": rows, "truth_headers": truth_headers,
                                                     "truth": truth}, indent=1))


if __name__ == "__main__":
    main()
