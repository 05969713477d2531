"""Does the growth knowledge base make the search cheaper? Leave one dataset out, warm against cold (issue 18).

Runs a bench file (`benchmarks/meta_warm_start.yaml` by default; `--config` names another, e.g.
`benchmarks/meta_surrogate.yaml`, or `benchmarks/meta_wide.yaml`: a wide space, 16 trials) in two
phases: first every `<stream>-cold` run, each recording its searches into the journal its `record`
option names; then, per held-out dataset (a stream with a `-warm` row; a stream's dataset is its
label before the first "."), a base of the cold entries of the other datasets' streams
(`bases/<dataset>-others.journal`) and a misleading one (`<dataset>-bad`: the same entries with
every score mirrored, 1 - accuracy, and their chosen and best points replaced by their least
accurate candidate), and the warm and bad runs that consult them. A stream may also have an
`<stream>-again` row: the cold run with another search seed (the grower's `seed`), consulting nothing, the
control that says how often a second search of the same setting reaches the first's best. Finished runs
are read back, so a rerun only computes what is missing.

Measure, per search (stream, seed, task): the cold search's final best score; the trials, and the
search FLOPs spent by them, until each search's best score so far comes within `EPS` of it
(candidates in trial order, complete ones only; points the surrogate screened untrained, or the budget
turned away, are not trials). A search that never gets there counts at its full budget and is
reported as not reached. Also the run's average incremental accuracy.

    python benchmarks/meta_warm_start.py [--config FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from selfgrow.bench import load_bench, run_bench
from selfgrow.search.engine import counts
from selfgrow.search.meta import Entry, KnowledgeBase
from selfgrow.report import Results
from selfgrow.report.table import format_table

CONFIG = Path(__file__).with_name("meta_warm_start.yaml")
KINDS = ("cold", "warm", "bad", "again")
EPS = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    config = parser.parse_args().config.resolve()
    os.chdir(Path(__file__).resolve().parent.parent)  # the bench files' paths are relative to the repository
    bench = load_bench(config)
    colds = [label[:-len("-cold")] for label in bench.methods if label.endswith("-cold")]
    held_out = [label[:-len("-warm")] for label in bench.methods if label.endswith("-warm")]
    run_bench(bench, only=[f"{s}-cold" for s in colds], quiet=True, resume=True)
    build_bases(bench, colds, held_out)
    comparison = run_bench(bench, quiet=True, resume=True)
    print(comparison["header"])
    print(f"eps = {EPS}; trials and search FLOPs until the best score so far is within eps of the cold search's "
          "final best; not reached = searches that never got there (counted at their full budget)")
    kinds = [kind for kind in KINDS if any(label.endswith(f"-{kind}") for label in bench.methods)]
    rows, totals, firsts = [], {kind: [] for kind in kinds}, {kind: [] for kind in kinds}
    for stream in held_out:
        searches = {kind: plans(bench, f"{stream}-{kind}") for kind in kinds}
        for kind in kinds:
            pairs = [(plan, cold) for plan, cold in zip(searches[kind], searches["cold"]) if best(cold) is not None]
            reached = [until(plan, best(cold)) for plan, cold in pairs]
            totals[kind] += reached
            firsts[kind] += [r for r, (_, cold) in zip(reached, pairs) if cold["reasons"]["task"] == 0]
            rows.append([stream, kind, len(reached), statistics.fmean(r[0] for r in reached),
                         sum(r[1] for r in reached), sum(not r[2] for r in reached),
                         *headline(comparison, f"{stream}-{kind}")])
    for kind in kinds:
        reached = totals[kind]
        rows.append(["all", kind, len(reached), statistics.fmean(r[0] for r in reached), sum(r[1] for r in reached),
                     sum(not r[2] for r in reached), "", ""])
    print(format_table(rows, ["stream", "search", "searches", "trials to cold's best", "search FLOPs to it",
                              "not reached", "avg inc acc", "train FLOPs"]))
    ratios(totals, "all streams, all tasks")
    ratios(firsts, "all streams, first task only: the same net as cold's, whatever the earlier choices")
    symmetric(bench, held_out, kinds)


def symmetric(bench: Any, held_out: list[str], kinds: list[str]) -> None:
    """Print, per kind, cold's trials over the kind's to reach the lower of the pair's two final bests: a measure
    without the winner's curse of "cold's best" (the pair's lower best is reached by both searches)."""
    print("symmetric measure: trials until within eps of the lower of the two searches' final bests, cold's over the "
          "other's")
    for kind in [k for k in kinds if k != "cold"]:
        every, first = ([], []), ([], [])
        for stream in held_out:
            for plan, cold in zip(plans(bench, f"{stream}-{kind}"), plans(bench, f"{stream}-cold")):
                if best(plan) is None or best(cold) is None:
                    continue
                target = min(best(plan), best(cold))
                for scope in (every, first) if cold["reasons"]["task"] == 0 else (every,):
                    scope[0].append(until(cold, target)[0])
                    scope[1].append(until(plan, target)[0])
        print(f"{kind}: {statistics.fmean(every[0]) / statistics.fmean(every[1]):.2f}x fewer trials on every task "
              f"({len(every[0])} searches), {statistics.fmean(first[0]) / statistics.fmean(first[1]):.2f}x on the "
              f"first ({len(first[0])})")


def ratios(totals: dict[str, list[tuple[int, float, bool]]], scope: str) -> None:
    """Print how many times fewer trials and search FLOPs each kind but cold spent than cold over `totals`."""
    cold_trials = statistics.fmean(r[0] for r in totals["cold"])
    cold_flops = sum(r[1] for r in totals["cold"])
    for kind in [k for k in totals if k != "cold"]:
        print(f"{kind}: {cold_trials / statistics.fmean(r[0] for r in totals[kind]):.2f}x fewer trials, "
              f"{cold_flops / sum(r[1] for r in totals[kind]):.2f}x fewer search FLOPs than cold, "
              f"{sum(not r[2] for r in totals[kind])} of {len(totals[kind])} not reached ({scope})")


def build_bases(bench: Any, colds: list[str], held_out: list[str]) -> None:
    """Per held-out dataset, the base of the other datasets' cold entries and its misleading twin (made anew),
    beside the cold journals."""
    journals = {s: Path(bench.methods[f"{s}-cold"]["growth"]["options"]["record"]) for s in colds}
    write_bases(journals, held_out, next(iter(journals.values())).parent)


def write_bases(journals: dict[str, Path], held_out: list[str], folder: Path) -> None:
    """In `folder`, per held-out stream, `<stream>-others.journal`: the entries of the `journals` (stream -> its
    cold base) of the other datasets, and `<stream>-bad.journal`: their misleading twins (both made anew)."""
    entries = {s: KnowledgeBase(str(path)).entries() for s, path in journals.items()}
    for stream in held_out:
        others = [e for s in journals if dataset(s) != dataset(stream) for e in entries[s]]
        for name, chosen in ((f"{stream}-others", lambda e: e), (f"{stream}-bad", misleading)):
            fresh_base(folder / f"{name}.journal", map(chosen, others))


def fresh_base(path: Path, entries: Iterable[Entry]) -> KnowledgeBase:
    """A knowledge base at `path` made anew, holding `entries`."""
    path.unlink(missing_ok=True)
    base = KnowledgeBase(str(path))
    for entry in entries:
        base.record(entry)
    return base


def dataset(stream: str) -> str:
    """"mnist.shuffled" -> "mnist": streams of one dataset never inform each other's held-out searches."""
    return stream.split(".", 1)[0]


def misleading(entry: Entry) -> Entry:
    """`entry` with every score mirrored (1 - accuracy) and its chosen and best points replaced by its least
    accurate complete candidate: a prior that points the wrong way, to the nearest points and to a surrogate."""
    complete = [c for c in entry.candidates if c["status"] == "complete"]
    worst = min(complete, key=lambda c: c["accuracy"])["params"] if complete else entry.chosen
    mirrored = [{**c, "accuracy": 1.0 - c["accuracy"]} if c["status"] == "complete" else c for c in entry.candidates]
    return Entry(**{**entry.__dict__, "candidates": mirrored, "chosen": dict(worst), "best": dict(worst)})


def plans(bench: Any, label: str) -> list[dict[str, Any]]:
    """The growth plans of every seed's run of `label`, in (seed, task) order."""
    return [plan for seed in bench.seeds for plan in Results.load(bench.output / label / f"seed{seed}").growth]


def best(plan: dict[str, Any]) -> float | None:
    """The search's best complete score (None for a plan without a search, e.g. an exhausted budget)."""
    scores = [c["accuracy"] for c in plan["candidates"] if c["status"] == "complete"]
    return max(scores) if scores else None


def until(plan: dict[str, Any], target: float) -> tuple[int, float, bool]:
    """Trials and FLOPs until a complete candidate of `plan` scores within EPS of `target`, and whether one did."""
    spent = 0.0
    trials = [c for c in plan["candidates"] if counts(c)]
    for number, candidate in enumerate(trials, 1):
        spent += candidate.get("spent_flops") or 0.0
        if candidate["status"] == "complete" and candidate["accuracy"] >= target - EPS:
            return number, spent, True
    return len(trials), spent, False


def headline(comparison: dict[str, Any], label: str) -> list[str]:
    """Mean ± std over seeds of the run's average incremental accuracy, and its mean training FLOPs."""
    stats = next(r["stats"] for r in comparison["rows"] if r["method"] == label)
    accuracy = stats["average_incremental_accuracy"]
    return [f"{accuracy['mean']:.4f} ± {accuracy['std']:.4f}", f"{stats['train_flops_total']['mean']:.3e}"]


if __name__ == "__main__":
    main()
