"""`selfgrow compare`: bench rows compared seed by seed, over one or several bench output folders.

Runs of one bench with the same seed share their data subset, class order and initial net, so one seed
can lift or sink every method alike (on the Split-CIFAR-10 growth bench the seed's own spread is as large
as the methods' differences). A difference taken per seed removes that shared part. Per method: the mean
± std over its finished runs of one summary metric. Against a reference method, over the seeds both ran:
the mean ± std of the per-seed differences, the paired t statistic (mean / (std / sqrt n)), and the
difference in units of the two methods' pooled std over those seeds, sqrt((s_a^2 + s_b^2) / 2): the
issues' "ahead by more than one standard deviation" reads > 1 there. Seeds run in several output folders
(seeds 0-4 in one bench run, 5-9 in another) join into one row per method; unfinished runs are left out
and counted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfgrow.errors import SelfgrowError, did_you_mean
from selfgrow.report.results import Results
from selfgrow.report.table import format_table

DEFAULT_METRIC = "average_incremental_accuracy"


@dataclass
class BenchRuns:
    """The finished runs found under bench output folders, by method label and seed, and the unfinished ones."""

    runs: dict[str, dict[int, Results]] = field(default_factory=dict)
    unfinished: list[Path] = field(default_factory=list)


def collect(folders: Sequence[str | Path]) -> BenchRuns:
    """Every `<folder>/<label>/seed<k>/results.json` of the `folders`; a (label, seed) found twice is refused."""
    found = BenchRuns()
    where: dict[tuple[str, int], Path] = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise SelfgrowError(f"{str(folder)!r} is not a folder; accepted: output folders of `selfgrow bench`.")
        run_dirs = sorted(folder.glob("*/seed*/results.json"))
        if not run_dirs:
            raise SelfgrowError(f"{str(folder)!r} holds no bench run (<label>/seed<k>/results.json); "
                                "accepted: output folders of `selfgrow bench`.")
        for path in run_dirs:
            label, seed_name = path.parent.parent.name, path.parent.name
            if not seed_name[4:].isdigit():
                continue
            seed = int(seed_name[4:])
            if (label, seed) in where:
                raise SelfgrowError(f"{label} seed {seed} is in both {str(where[label, seed])!r} and "
                                    f"{str(path.parent)!r}; give each seed of a method once.")
            where[label, seed] = path.parent
            results = Results.load(path.parent)
            if results.n_done != results.run.get("tasks"):
                found.unfinished.append(path.parent)
                continue
            found.runs.setdefault(label, {})[seed] = results
    return found


def metric_values(runs: dict[str, dict[int, Results]], metric: str) -> dict[str, dict[int, float]]:
    """label -> seed -> the runs' summary `metric` (a key of `Results.summary`)."""
    values: dict[str, dict[int, float]] = {}
    for label, by_seed in runs.items():
        for seed, results in by_seed.items():
            summary = results.summary()
            if metric not in summary:
                raise SelfgrowError(f"Unknown metric {metric!r}; accepted: {', '.join(summary)}."
                                    f"{did_you_mean(metric, list(summary))}")
            if summary[metric] is not None and not math.isnan(summary[metric]):
                values.setdefault(label, {})[seed] = float(summary[metric])
    return values


def paired_rows(values: dict[str, dict[int, float]], reference: str | None) -> list[dict[str, Any]]:
    """One row per method: seeds, mean, std; against `reference` (a label of `values`), the paired difference's
    seeds, mean, std, t and its size in pooled standard deviations (None where fewer than 2 seeds are shared)."""
    if reference is not None and reference not in values:
        raise SelfgrowError(f"Unknown reference method {reference!r}; accepted: {', '.join(values)}."
                            f"{did_you_mean(reference, list(values))}")
    rows = []
    for label, by_seed in values.items():
        row: dict[str, Any] = {"method": label, "seeds": sorted(by_seed), "mean": statistics.fmean(by_seed.values()),
                               "std": _std(list(by_seed.values()))}
        if reference is not None and label != reference:
            row["paired"] = paired_difference(by_seed, values[reference])
        rows.append(row)
    return rows


def paired_difference(ours: dict[int, float], theirs: dict[int, float]) -> dict[str, Any] | None:
    """The per-seed differences ours - theirs over the shared seeds: mean, std, paired t and the mean over the
    pooled std of the two methods on those seeds; None with fewer than 2 shared seeds."""
    shared = sorted(set(ours) & set(theirs))
    if len(shared) < 2:
        return None
    differences = [ours[s] - theirs[s] for s in shared]
    mean, std = statistics.fmean(differences), statistics.stdev(differences)
    pooled = math.sqrt((_std([ours[s] for s in shared]) ** 2 + _std([theirs[s] for s in shared]) ** 2) / 2)
    if std > 0:
        t = mean / (std / math.sqrt(len(shared)))
    else:  # the same difference on every seed
        t = math.copysign(math.inf, mean) if mean else 0.0
    return {"seeds": shared, "mean": mean, "std": std, "t": t, "in_stds": mean / pooled if pooled > 0 else None}


def paired_table(rows: list[dict[str, Any]], reference: str | None) -> str:
    """The rows as an aligned text table."""
    headers = ["method", "seeds", "mean ± std"]
    if reference is not None:
        headers += [f"minus {reference}, paired (seeds)", "t", "in pooled stds"]
    table = []
    for row in rows:
        big = abs(row["mean"]) >= 1e4  # a count (FLOPs, parameters, bytes), not an accuracy
        cells = [row["method"], _seeds(row["seeds"]), f"{_number(row['mean'], big)} ± {_number(row['std'], big)}"]
        if reference is not None:
            paired = row.get("paired")
            if row["method"] == reference:
                cells += ["(reference)", None, None]
            elif paired is None:
                cells += ["fewer than 2 shared seeds", None, None]
            else:
                stds = paired["in_stds"]
                cells += [f"{_number(paired['mean'], big, '+')} ± {_number(paired['std'], big)} "
                          f"({len(paired['seeds'])})",
                          f"{paired['t']:.2f}", None if stds is None else f"{stds:+.2f}"]
        table.append(cells)
    return format_table(table, headers)


def _number(value: float, big: bool, sign: str = "") -> str:
    """An accuracy to 4 decimals, or (`big`) a count in scientific notation; `sign` "+" always shows the sign."""
    return f"{value:{sign}.3e}" if big else f"{value:{sign}.4f}"


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _seeds(seeds: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    spans: list[list[int]] = []
    for seed in seeds:
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


__all__ = ["DEFAULT_METRIC", "BenchRuns", "collect", "metric_values", "paired_difference", "paired_rows",
           "paired_table"]
