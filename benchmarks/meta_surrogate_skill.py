"""How well does the knowledge base's surrogate rank a search's candidates? Read from the cold runs of a bench.

For every cold search of a held-out dataset of `benchmarks/meta_surrogate.yaml` (run it first with
`benchmarks/meta_warm_start.py --config benchmarks/meta_surrogate.yaml`), the surrogate is fitted on
past searches and scores the search's distinct complete candidates; reported: the mean Kendall tau
between its predictions and the measured scores (searches with fewer than three candidates or
constant scores left out), and how often its first proposal is a point the search measured within
`EPS` of its best (or did not measure at all). Past searches: the other datasets' cold runs (what
the warm rows consult), and, as a ceiling on what any prior could learn, the same dataset's other
runs (the other class order for mnist and fashion, the other seeds for cifar10).

    python benchmarks/meta_surrogate_skill.py
"""

from __future__ import annotations

import statistics
from pathlib import Path

from optuna.distributions import json_to_distribution
from scipy.stats import kendalltau

from selfgrow.report.table import format_table
from selfgrow.search.meta import Entry, KnowledgeBase, Surrogate

BASES = Path(__file__).resolve().parent.parent / "bench_runs" / "meta_surrogate" / "bases"
HELD_OUT = ("cifar10", "mnist", "fashion")
EPS = 0.005


def main() -> None:
    cold = {path.name[:-len("-cold.journal")]: KnowledgeBase(str(path)).entries()
            for path in sorted(BASES.glob("*-cold.journal"))}
    rows = []
    for held in HELD_OUT:
        others = [e for stream, entries in cold.items() if stream.split(".")[0] != held for e in entries]
        rows.append([held, "other datasets", *skill(lambda e: others, cold[held])])
        if f"{held}.shuffled" in cold:
            same = cold[f"{held}.shuffled"]
            rows.append([held, "its other class order", *skill(lambda e: same, cold[held])])
        else:
            rows.append([held, "its other seeds", *skill(lambda e: [o for o in cold[held] if o.run != e.run],
                                                         cold[held])])
    print(format_table(rows, ["held-out", "fitted on", "searches", "Kendall tau", "first proposal within eps",
                              "first proposal unmeasured"]))


def skill(pool_for, searches: list[Entry]) -> list[object]:
    """Searches scored, mean tau, and the first proposal's hits and unmeasured count over `searches`."""
    taus, hits, unmeasured = [], 0, 0
    for entry in searches:
        space = {k: json_to_distribution(v) for k, v in entry.space.items()}
        surrogate = Surrogate.fit(pool_for(entry), entry.features, space, {k: 1.0 for k in space})
        measured = {_key(c["params"]): c["accuracy"] for c in entry.candidates if c["status"] == "complete"}
        first = measured.get(_key(surrogate.propose(1)[0]))
        unmeasured += first is None
        hits += first is not None and first >= max(measured.values()) - EPS
        if len(measured) >= 3:
            predicted, _ = surrogate.predict([dict(k) for k in measured])
            tau = kendalltau(predicted, list(measured.values())).statistic
            if tau == tau:  # NaN when the scores are all equal
                taus.append(tau)
    return [len(taus), f"{statistics.fmean(taus):.2f}", f"{hits} of {len(searches)}", unmeasured]


def _key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


if __name__ == "__main__":
    main()
