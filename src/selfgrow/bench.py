"""`selfgrow bench`: several methods on the same stream with the same seeds, compared side by side.

A bench file is YAML with `base` (a run config), `methods` (label -> overrides merged into the
base; `method: NAME` picks a baseline preset), optional `seeds` (default: the base seed), `name`,
`output` (default `bench_runs/<name>`), `workers` (parallel processes, default 1) and
`transfer_reference` (the label of an independent learner: the CTrL transfer T(S) of every method
is its last-task accuracy minus that learner's). Each (method, seed) runs in
`<output>/<label>/seed<k>/`, a normal run folder. An output folder that already holds runs of the
bench is used again only with `resume` (`selfgrow bench --resume`): then a finished run is read back
(its row says so, with the date of its results) and a killed one resumed, so an interrupted bench
re-run only computes what is missing; without it the bench stops before any work. The comparison
(mean ± std over seeds) is printed as a table and written as `comparison.json`, `comparison.csv`
and plots. `data_dir` (`--data-dir`) is the data root of every run.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import platform
import statistics
import sys
import time
from datetime import datetime
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from selfgrow import metrics
from selfgrow.atomic import atomic_write_text
from selfgrow.config import from_dict
from selfgrow.errors import SelfgrowError, did_you_mean
from selfgrow.experiment import run, saved_config_differences
from selfgrow.factories import apply_method
from selfgrow.plugins import load_plugins
from selfgrow.progress import progress_bar
from selfgrow.report import Results
from selfgrow.report.table import format_table

BENCH_KEYS = ("name", "base", "methods", "seeds", "output", "workers", "transfer_reference")

# (column, key of Results.summary() or a bench-computed value)
COLUMNS = [
    ("avg acc", "average_accuracy"),
    ("avg inc acc", "average_incremental_accuracy"),
    ("forgetting (eq 5.2)", "forgetting"),
    ("max forgetting", "max_forgetting"),
    ("transfer T(S)", "transfer"),
    ("params", "params"),
    ("inference FLOPs", "inference_flops"),
    ("train FLOPs", "train_flops_total"),
    ("memory MB", "memory_mb"),
    ("seconds", "wall_seconds"),
]
COUNT_KEYS = ("params", "inference_flops", "train_flops_total")  # shown as whole numbers with separators


@dataclass
class Bench:
    """A parsed bench file."""

    name: str
    base: dict[str, Any]
    methods: dict[str, dict[str, Any]]
    seeds: list[int]
    output: Path
    workers: int = 1
    transfer_reference: str | None = None
    data_dir: str | None = None
    plugins: list[str] = field(default_factory=list)

    def jobs(self) -> list[tuple[str, int, dict[str, Any]]]:
        """(label, seed, plain run config) for every run of the bench."""
        out = []
        for label, overrides in self.methods.items():
            for seed in self.seeds:
                config = merge(self.base, overrides or {})
                config.update(name=f"seed{seed}", seed=seed, output=str(self.output / label))
                if self.data_dir is not None:
                    config["data_dir"] = self.data_dir
                if self.plugins:
                    config["plugins"] = list(dict.fromkeys([*config.get("plugins", []), *self.plugins]))
                out.append((label, seed, config))
        return out


def load_bench(path: str | Path, output: str | Path | None = None, workers: int | None = None,
               data_dir: str | Path | None = None, plugins: list[str] | None = None) -> Bench:
    """Read and check a bench file; `output`, `workers` and `data_dir` (the data root) override the file's values,
    `plugins` join every run's (each job imports them; they are imported here too, so a bad one stops the bench now)."""
    path = Path(path)
    if not path.is_file():
        raise SelfgrowError(f"Bench file {str(path)!r} does not exist; give a YAML file with `base` and `methods`.")
    spec = yaml.safe_load(path.read_text()) or {}
    for key in spec:
        if key not in BENCH_KEYS:
            raise SelfgrowError(f"Unknown bench key {key!r} in {path}; accepted: {', '.join(BENCH_KEYS)}."
                                + did_you_mean(key, BENCH_KEYS))
    if not spec.get("methods"):
        raise SelfgrowError(f"Bench file {path} lists no `methods`; give at least one label: overrides.")
    name = spec.get("name", path.stem)
    base = spec.get("base", {})
    seeds = [int(s) for s in spec.get("seeds", [base.get("seed", 0)])]
    reference = spec.get("transfer_reference")
    if reference is not None and reference not in spec["methods"]:
        raise SelfgrowError(f"transfer_reference {reference!r} is not one of the methods: {', '.join(spec['methods'])}.")
    bench = Bench(name, base, spec["methods"], seeds, Path(output or spec.get("output") or Path("bench_runs") / name),
                  int(workers or spec.get("workers", 1)), reference, None if data_dir is None else str(data_dir),
                  list(plugins or []))
    for _, _, config in bench.jobs():
        load_plugins(config.get("plugins") or [])
        apply_method(from_dict(config))  # every run's config is valid before any work starts
    return bench


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: override values win, nested mappings merge."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _run_dir(config: dict[str, Any]) -> Path:
    return Path(config["output"]) / config["name"]


def _used(run_dir: Path) -> bool:
    """Whether a run folder holds (part of) a run."""
    return any((run_dir / name).exists() for name in ("config.yaml", "results.json", "checkpoints"))


def finished_results(config: dict[str, Any]) -> Results | None:
    """The results of the job's run folder when it holds a finished run of this very configuration; None when
    it holds nothing or an unfinished run; a run of another configuration is refused."""
    run_dir = _run_dir(config)
    if (run_dir / "config.yaml").exists():
        differing = saved_config_differences(run_dir, from_dict(config))
        if differing:
            raise SelfgrowError(
                f"{str(run_dir)!r} holds a run of another configuration (it differs in {', '.join(differing)}); "
                "delete that folder to rerun it, or give the bench another --output."
            )
    if (run_dir / "results.json").exists():
        done = Results.load(run_dir)
        if done.n_done == done.run.get("tasks"):
            return done
    return None


def run_job(config: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Run (or resume, or read back) one run of the bench; returns its results as plain data."""
    if threads:
        torch.set_num_threads(threads)
    run_dir = _run_dir(config)
    done = finished_results(config)
    if done is not None:
        return done.to_dict()
    if _used(run_dir):
        return run(from_dict(config), resume_dir=run_dir, quiet=True).to_dict()
    return run(from_dict(config), quiet=True).to_dict()


def run_bench(bench: Bench, only: list[str] | None = None, quiet: bool = False, resume: bool = False) -> dict[str, Any]:
    """Run every job (in `bench.workers` processes), then write and return the comparison.

    `only`: the method labels to run (each must be one of the bench's). `resume`: use an output folder that
    already holds runs of the bench (finished ones are read back, killed ones resumed); without it such a
    folder stops the bench before any work.
    """
    for label in only or []:
        if label not in bench.methods:
            raise SelfgrowError(f"Unknown method label {label!r} in --only; accepted: the labels of bench "
                                f"{bench.name!r}: {', '.join(bench.methods)}.{did_you_mean(label, bench.methods)}")
    jobs = [j for j in bench.jobs() if not only or j[0] in only]
    used = [_run_dir(config) for _, _, config in jobs if _used(_run_dir(config))]
    if used and not resume:
        raise SelfgrowError(
            f"The bench output {str(bench.output)!r} already holds {len(used)} run(s) of this bench (e.g. "
            f"{str(used[0].relative_to(bench.output))!r}); reuse them with --resume, or give another --output "
            "(or delete that folder) to run them afresh."
        )
    results: dict[tuple[str, int], Results] = {}
    pending = []
    for label, seed, config in jobs:  # finished runs are read back (and said so) before any work starts
        done = finished_results(config) if resume else None
        if done is None:
            pending.append((label, seed, config))
            continue
        results[label, seed] = done
        stamp = datetime.fromtimestamp((_run_dir(config) / "results.json").stat().st_mtime)
        _say(quiet, f"{label} seed {seed}: reused the finished run in {_run_dir(config)} (results of "
                    f"{stamp:%Y-%m-%d %H:%M}, {done.summary().get('wall_seconds', 0.0):.0f} s then); nothing trained now")
    resumed = {(label, seed) for label, seed, config in pending if _used(_run_dir(config))}  # killed runs
    started = time.perf_counter()

    def finished(label: str, seed: int, config: dict[str, Any]) -> str:
        again = "resumed and " if (label, seed) in resumed else ""
        return f"{label} seed {seed}: {again}done ({time.perf_counter() - started:.0f} s since start)"

    bar = progress_bar(len(pending), "bench", "run", False if quiet else None)
    if bench.workers <= 1:
        for label, seed, config in pending:
            bar.set_postfix_str(f"{label} seed {seed}")
            results[label, seed] = Results.from_dict(run_job(config))
            bar.update()
            _say(quiet, finished(label, seed, config))
    else:
        threads = max(1, torch.get_num_threads() // bench.workers)
        with ProcessPoolExecutor(bench.workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_job, config, threads): (label, seed, config) for label, seed, config in pending}
            for future in as_completed(futures):
                label, seed, config = futures[future]
                results[label, seed] = Results.from_dict(future.result())
                bar.update()
                _say(quiet, finished(label, seed, config))
    bar.close()
    comparison = compare(bench, results)
    write_comparison(bench.output, comparison, results)
    _say(quiet, "\n" + comparison["header"] + "\n\n" + comparison_table(comparison) + "\n\nGrowth, per method:\n"
         + selection_notes(comparison))
    return comparison


def compare(bench: Bench, results: dict[tuple[str, int], Results]) -> dict[str, Any]:
    """Mean and std over seeds of each method's headline metrics (transfer against the reference)."""
    rows = []
    for label in bench.methods:
        runs = [results[label, s] for s in bench.seeds if (label, s) in results]
        if not runs:
            continue
        per_seed = []
        for seed in bench.seeds:
            if (label, seed) not in results:
                continue
            res = results[label, seed]
            summary = res.summary()
            reference = results.get((bench.transfer_reference, seed)) if bench.transfer_reference else None
            if reference is not None and reference.n_done == res.n_done:
                summary["transfer"] = metrics.ctrl_transfer(res.matrix(), reference.matrix()[-1][-1])
            per_seed.append(summary)
        stats = {}
        for _, key in COLUMNS:
            values = [s[key] for s in per_seed if s.get(key) is not None and not _nan(s[key])]
            if values:
                stats[key] = {"mean": statistics.fmean(values),
                              "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}
        curves = [[sum(r) / len(r) for r in res.accuracy] for res in runs]
        rows.append({"method": label, "seeds": len(runs), "stats": stats,
                     "mean_seen_accuracy": [statistics.fmean(c) for c in zip(*curves)],
                     "selection": selection_of(runs[0])})
    header = (f"bench {bench.name} | seeds {bench.seeds} | {time.strftime('%Y-%m-%d')} | "
              f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
              f"{bench.workers} worker(s) | torch {torch.__version__}")
    return {"header": header, "columns": [c for c, _ in COLUMNS], "keys": [k for _, k in COLUMNS], "rows": rows}


def selection_of(results: Results) -> str:
    """How the method's grower chose its last growth: its rule and, for a search, the objectives it weighed."""
    if not results.growth:
        return ""
    reasons = results.growth[-1].get("reasons", {})
    text = f"rule: {reasons.get('rule', 'not stated')}"
    if reasons.get("objectives"):
        text += "; objectives: " + "; ".join(reasons["objectives"])
    return text


def selection_notes(comparison: dict[str, Any]) -> str:
    """One line per method: the rule and objectives behind its growth (what every bench row must name)."""
    return "\n".join(f"- {r['method']}: {r['selection']}" for r in comparison["rows"] if r.get("selection"))


def comparison_table(comparison: dict[str, Any]) -> str:
    """The comparison as an aligned text table (mean ± std when several seeds ran)."""
    keys = comparison["keys"]
    present = [i for i, k in enumerate(keys) if any(k in r["stats"] for r in comparison["rows"])]
    rows = [[r["method"]] + [_cell(r["stats"].get(keys[i]), keys[i] in COUNT_KEYS) for i in present]
            for r in comparison["rows"]]
    return format_table(rows, ["method"] + [comparison["columns"][i] for i in present])


def write_comparison(output: Path, comparison: dict[str, Any], results: dict[tuple[str, int], Results]) -> None:
    """comparison.json, comparison.csv and the plots, written atomically into `output`."""
    from selfgrow.report.bench_plots import bench_figures

    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / "comparison.json", json.dumps(comparison, indent=1))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "seeds"] + [f"{k}_{s}" for k in comparison["keys"] for s in ("mean", "std")])
    for r in comparison["rows"]:
        writer.writerow([r["method"], r["seeds"]] + [r["stats"].get(k, {}).get(s, "") for k in comparison["keys"]
                                                     for s in ("mean", "std")])
    atomic_write_text(output / "comparison.csv", buf.getvalue())
    bench_figures(comparison, output / "plots")


def _cell(stat: dict[str, float] | None, count: bool = False) -> object:
    """A table cell: the mean (± std over several seeds); counts (params, FLOPs) as whole numbers with separators."""
    if stat is None:
        return None
    mean, std = stat["mean"], stat["std"]
    whole = count or abs(mean) >= 1000
    if stat["n"] == 1:
        return round(mean) if count else mean
    return f"{mean:,.0f} ± {std:,.0f}" if whole else f"{mean:.4f} ± {std:.4f}"


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _say(quiet: bool, message: str) -> None:
    """A line for the person watching, written through tqdm so that it does not break the progress bar."""
    if not quiet:
        tqdm.write(message, file=sys.stdout)
