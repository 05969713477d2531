"""Run several methods on one stream with one seed and print a side-by-side table (markdown).

The input YAML has `base` (a run config) and `methods` (label -> config overrides, merged into
base; `method: NAME` picks a baseline preset). Each method runs in `<output>/<label>`; a method
whose run folder already has all its tasks is read back instead of recomputed, and a killed one is
resumed.

    python benchmarks/compare.py benchmarks/split_mnist_class.yaml
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import torch
import yaml

from selfgrow.config import from_dict
from selfgrow.experiment import run
from selfgrow.report import Results
from selfgrow.report.table import format_table

COLUMNS = ["method", "avg acc", "avg inc acc", "forgetting (eq 5.2)", "max forgetting", "params",
           "inference FLOPs", "train FLOPs", "memory MB", "seconds"]


def merge(base: dict, overrides: dict) -> dict:
    """Recursive dict merge: override values win, nested mappings merge."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_method(base: dict, label: str, overrides: dict, output: Path) -> Results:
    """Run (or resume, or read back) one method of the comparison."""
    config = from_dict(merge(base, {**overrides, "name": label, "output": str(output)}))
    run_dir = output / label
    if (run_dir / "results.json").exists():
        done = Results.load(run_dir)
        if done.n_done == done.run.get("tasks"):
            return done
        return run(None, resume_dir=run_dir, quiet=True)
    return run(config, quiet=True)


def row(label: str, results: Results) -> list:
    s = results.summary()
    return [label, s["average_accuracy"], s["average_incremental_accuracy"], s["forgetting"], s["max_forgetting"],
            s["params"], s["inference_flops"], s["train_flops_total"], s["memory_mb"], s["wall_seconds"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--output", type=Path, default=None, help="folder of the runs (default: bench_runs/<stem>)")
    parser.add_argument("--only", nargs="*", default=None, help="labels to run (default: all)")
    args = parser.parse_args()
    spec = yaml.safe_load(args.config.read_text())
    output = args.output or Path("bench_runs") / args.config.stem
    rows = []
    for label, overrides in spec["methods"].items():
        if args.only and label not in args.only:
            continue
        started = time.perf_counter()
        results = run_method(spec["base"], label, overrides or {}, output)
        rows.append(row(label, results))
        print(f"{label}: done in {time.perf_counter() - started:.0f} s", flush=True)
    table = format_table(rows, COLUMNS)
    header = (f"{args.config} | {time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} torch threads | torch {torch.__version__}")
    print("\n" + header + "\n\n" + table)
    (output / "comparison.json").write_text(json.dumps({"header": header, "columns": COLUMNS, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
