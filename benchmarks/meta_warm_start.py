"""Does the growth knowledge base make the search cheaper? Leave one stream out, warm against cold (issue 18).

Runs `benchmarks/meta_warm_start.yaml` in two phases: first every stream's cold runs, which
record their searches into one journal per stream; then, per held-out stream, a base of the other
streams' entries (`<stream>-others`) and a misleading one (`<stream>-bad`: the same entries with
their chosen and best points replaced by their least accurate candidate), and the warm and bad
runs that consult them. Finished runs are read back, so a rerun only computes what is missing.

Measure, per search (stream, seed, task): the cold search's final best score; the trials, and the
search FLOPs spent by them, until each search's best score so far comes within `EPS` of it
(candidates in trial order, complete ones only). A search that never gets there counts at its
full budget and is reported as not reached. Also the run's average incremental accuracy.

    python benchmarks/meta_warm_start.py
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from selfgrow.bench import load_bench, run_bench
from selfgrow.search.meta import Entry, KnowledgeBase
from selfgrow.report import Results
from selfgrow.report.table import format_table

CONFIG = Path(__file__).with_name("meta_warm_start.yaml")
STREAMS = ("digits", "mnist", "fashion", "cifar10")
KINDS = ("cold", "warm", "bad")
EPS = 0.005


def main() -> None:
    os.chdir(CONFIG.parent.parent)  # the bench file's paths are relative to the repository
    bench = load_bench(CONFIG)
    run_bench(bench, only=[f"{s}-cold" for s in STREAMS], quiet=True, resume=True)
    build_bases(bench.output / "bases")
    comparison = run_bench(bench, quiet=True, resume=True)
    print(comparison["header"])
    print(f"eps = {EPS}; trials and search FLOPs until the best score so far is within eps of the cold search's "
          "final best; not reached = searches that never got there (counted at their full budget)")
    rows, totals = [], {kind: [] for kind in KINDS}
    for stream in STREAMS:
        searches = {kind: plans(bench, f"{stream}-{kind}") for kind in KINDS}
        for kind in KINDS:
            reached = [until(plan, best(cold)) for plan, cold in zip(searches[kind], searches["cold"])
                       if best(cold) is not None]
            totals[kind] += reached
            rows.append([stream, kind, len(reached), statistics.fmean(r[0] for r in reached),
                         sum(r[1] for r in reached), sum(not r[2] for r in reached),
                         *headline(comparison, f"{stream}-{kind}")])
    for kind in KINDS:
        reached = totals[kind]
        rows.append(["all", kind, len(reached), statistics.fmean(r[0] for r in reached), sum(r[1] for r in reached),
                     sum(not r[2] for r in reached), "", ""])
    print(format_table(rows, ["stream", "search", "searches", "trials to cold's best", "search FLOPs to it",
                              "not reached", "avg inc acc", "train FLOPs"]))
    cold_trials = statistics.fmean(r[0] for r in totals["cold"])
    cold_flops = sum(r[1] for r in totals["cold"])
    for kind in ("warm", "bad"):
        print(f"{kind}: {cold_trials / statistics.fmean(r[0] for r in totals[kind]):.2f}x fewer trials, "
              f"{cold_flops / sum(r[1] for r in totals[kind]):.2f}x fewer search FLOPs than cold (all streams)")


def build_bases(folder: Path) -> None:
    """Per held-out stream, the base of the other streams' cold entries and its misleading twin (made anew)."""
    entries = {s: KnowledgeBase(str(folder / f"{s}.journal")).entries() for s in STREAMS}
    for held_out in STREAMS:
        others = [e for s in STREAMS if s != held_out for e in entries[s]]
        for name, chosen in ((f"{held_out}-others", lambda e: e), (f"{held_out}-bad", misleading)):
            path = folder / f"{name}.journal"
            path.unlink(missing_ok=True)
            base = KnowledgeBase(str(path))
            for entry in others:
                base.record(chosen(entry))


def misleading(entry: Entry) -> Entry:
    """`entry` with its chosen and best points replaced by its least accurate complete candidate."""
    complete = [c for c in entry.candidates if c["status"] == "complete"]
    worst = min(complete, key=lambda c: c["accuracy"])["params"] if complete else entry.chosen
    return Entry(**{**entry.__dict__, "chosen": dict(worst), "best": dict(worst)})


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
    for number, candidate in enumerate(plan["candidates"], 1):
        spent += candidate.get("spent_flops") or 0.0
        if candidate["status"] == "complete" and candidate["accuracy"] >= target - EPS:
            return number, spent, True
    return len(plan["candidates"]), spent, False


def headline(comparison: dict[str, Any], label: str) -> list[str]:
    """Mean ± std over seeds of the run's average incremental accuracy, and its mean training FLOPs."""
    stats = next(r["stats"] for r in comparison["rows"] if r["method"] == label)
    accuracy = stats["average_incremental_accuracy"]
    return [f"{accuracy['mean']:.4f} ± {accuracy['std']:.4f}", f"{stats['train_flops_total']['mean']:.3e}"]


if __name__ == "__main__":
    main()
