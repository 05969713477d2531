"""Re-run the fast rows of BENCHMARKS.md and say, per row and column, whether today's code gives the published value.

A table of BENCHMARKS.md takes part when the line above it is a marker

    <!-- reproduce: benchmarks/FILE.yaml -->
    <!-- reproduce: benchmarks/FILE.yaml only: label1 label2 -->

naming the bench file whose command produced it (and, with `only:`, the rows fast enough to re-run
here; the others are listed as skipped). A row's method label is its first cell up to " (". Each
bench runs once into a temporary folder (`selfgrow bench --config FILE --only LABELS`), then each
numeric cell is compared with the same column of the new comparison:

- accuracies and forgetting: within 0.01 (runs are bit-identical on one machine and CPU type; on
  another CPU the last-bit differences of the matrix kernels move SGD a little);
- parameters and inference FLOPs: exactly (within 0.5: a mean over seeds is published rounded to a whole number);
- train FLOPs (printed with 3 significant digits): within 0.5%;
- memory MB (printed with 2 decimals): within 0.01;
- seconds are not compared (they depend on the machine's load).

The marked tables were made with 2 workers of one torch thread each, the default here: with another
thread count the matrix products sum in another order, and the more chaotic rows (icarl-wa,
grown-schedule, a search's choice) move by more than the tolerance (seen on 2026-12-02: 9 of 300
values with `--workers 1`, all 300 agreeing with 2).

    python benchmarks/reproduce.py                          # every marked table
    python benchmarks/reproduce.py --tables split_mnist_class --workers 2

Exit status 1 when a compared value disagrees, so the script can gate a change of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!--\s*reproduce:\s*(\S+)(?:\s+only:\s*([^>]*?))?\s*-->")
# column header of BENCHMARKS.md -> (key of comparison.json, absolute tolerance, relative tolerance)
COLUMNS = {
    "avg acc": ("average_accuracy", 0.01, 0.0),
    "avg inc acc": ("average_incremental_accuracy", 0.01, 0.0),
    "forgetting (eq 5.2)": ("forgetting", 0.01, 0.0),
    "max forgetting": ("max_forgetting", 0.01, 0.0),
    "transfer T(S)": ("transfer", 0.01, 0.0),
    "params": ("params", 0.5, 0.0),  # a mean over seeds, published rounded to a whole number
    "inference FLOPs": ("inference_flops", 0.5, 0.0),
    "train FLOPs": ("train_flops_total", 0.0, 0.005),
    "memory MB": ("memory_mb", 0.01, 0.0),
}


@dataclass
class Table:
    """A marked table of BENCHMARKS.md: its bench file, the rows to re-run, and the published cells."""

    config: str
    only: list[str] | None
    headers: list[str]
    rows: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.config).stem


def marked_tables(text: str) -> list[Table]:
    """Every table that follows a reproduce marker (blank lines between them allowed)."""
    lines = text.splitlines()
    tables = []
    for i, line in enumerate(lines):
        match = MARKER.search(line)
        if not match:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not lines[j].startswith("|"):
            raise SystemExit(f"BENCHMARKS.md line {i + 1}: a reproduce marker must stand right above a table.")
        headers = _cells(lines[j])
        table = Table(match.group(1), match.group(2).split() if match.group(2) else None, headers)
        for row in lines[j + 2:]:
            if not row.startswith("|"):
                break
            cells = _cells(row)
            table.rows[cells[0].split(" (")[0].strip("* ")] = cells
        tables.append(table)
    return tables


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def published_value(cell: str) -> float | None:
    """The number a cell shows: bold marks, thousands separators, '± std' and '(share)' tails dropped."""
    text = cell.replace("*", "").replace(",", "").strip()
    match = re.match(r"^-?\d+(\.\d+)?(e[+-]?\d+)?", text)
    return float(match.group(0)) if match else None


def run_table(table: Table, workers: int, scratch: Path) -> dict[str, dict[str, float]]:
    """Run the table's bench (its reproducible rows) into `scratch`; method label -> key -> mean."""
    labels = [label for label in table.rows if table.only is None or label in table.only]
    output = scratch / table.name
    command = [sys.executable, "-m", "selfgrow.cli", "bench", "--config", str(ROOT / table.config),
               "--output", str(output), "--workers", str(workers), "--only", *labels]
    print(f"$ selfgrow bench --config {table.config} --only {' '.join(labels)}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    comparison = json.loads((output / "comparison.json").read_text())
    return {row["method"]: {k: v["mean"] for k, v in row["stats"].items()} for row in comparison["rows"]}


def compare(table: Table, measured: dict[str, dict[str, float]]) -> list[list[object]]:
    """One line per compared cell: table, method, column, published, measured, verdict."""
    lines: list[list[object]] = []
    for label, cells in table.rows.items():
        if label not in measured:
            lines.append([table.name, label, "", "", "", "skipped (slow row)"])
            continue
        for header, cell in zip(table.headers, cells):
            if header not in COLUMNS:
                continue
            key, absolute, relative = COLUMNS[header]
            published = published_value(cell)
            value = measured[label].get(key)
            if published is None or value is None:
                continue
            agree = abs(value - published) <= absolute + relative * abs(published) + 1e-12
            lines.append([table.name, label, header, cell, _show(value), "agrees" if agree else "DIFFERS"])
    return lines


def _show(value: float) -> str:
    if abs(value) >= 1e9:
        return f"{value:.3g}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="*", help="bench file stems to re-run (default: every marked table)")
    parser.add_argument("--workers", type=int, default=2,
                        help="parallel runs per bench (default 2, one torch thread each: how the tables were made)")
    parser.add_argument("--keep", type=Path, help="run folder to keep (default: a temporary one)")
    args = parser.parse_args()
    from selfgrow.report.table import format_table

    tables = marked_tables((ROOT / "BENCHMARKS.md").read_text())
    if args.tables:
        unknown = sorted(set(args.tables) - {t.name for t in tables})
        if unknown:
            raise SystemExit(f"No marked table for {', '.join(unknown)}; marked: {', '.join(t.name for t in tables)}.")
        tables = [t for t in tables if t.name in args.tables]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = args.keep or Path(tmp)
        lines = []
        for table in tables:
            lines += compare(table, run_table(table, args.workers, scratch))
    print(format_table(lines, ["table", "method", "column", "published", "measured", "verdict"]))
    differing = sum(1 for line in lines if line[-1] == "DIFFERS")
    compared = sum(1 for line in lines if line[-1] in ("agrees", "DIFFERS"))
    print(f"\n{compared - differing} of {compared} published values agree"
          + (f"; {differing} differ" if differing else ""))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
