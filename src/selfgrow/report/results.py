"""The results of one run: accuracy matrix, per-task costs, growth log, timings; JSON and CSV forms."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfgrow import metrics
from selfgrow.atomic import atomic_write_text


@dataclass
class Results:
    """Everything a run measured, task by task; `accuracy[i][j]` is test accuracy on task j after task i."""

    run: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    accuracy: list[list[float]] = field(default_factory=list)
    costs: list[dict[str, Any]] = field(default_factory=list)
    growth: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, float]] = field(default_factory=list)
    curves: list[list[float]] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)

    def record(
        self,
        task: dict[str, Any],
        accuracies: list[float],
        cost: dict[str, Any],
        growth: dict[str, Any],
        timing: dict[str, float],
        curve: list[float] | None = None,
    ) -> None:
        """Append the outcome of one finished task (accuracies on the tasks seen so far)."""
        self.tasks.append(task)
        self.accuracy.append([float(a) for a in accuracies])
        self.costs.append(cost)
        self.growth.append(growth)
        self.timings.append(timing)
        self.curves.append(list(curve or []))

    def first(self, n: int) -> "Results":
        """The results as they stood after the first `n` tasks (copies of the per-task lists)."""
        return Results(run=self.run, tasks=self.tasks[:n], accuracy=self.accuracy[:n], costs=self.costs[:n],
                       growth=self.growth[:n], timings=self.timings[:n], curves=self.curves[:n], reference=self.reference)

    @property
    def n_done(self) -> int:
        return len(self.accuracy)

    def matrix(self) -> list[list[float]]:
        """The square accuracy matrix with NaN where a task was not yet seen."""
        n = self.n_done
        return [row + [math.nan] * (n - len(row)) for row in self.accuracy]

    def summary(self) -> dict[str, Any]:
        """Headline metrics over the finished tasks (the numbers a paper table reports)."""
        if not self.accuracy:
            return {}
        R = self.matrix()
        last = self.costs[-1]
        out = {
            "tasks_done": self.n_done,
            "average_accuracy": metrics.average_accuracy(R),
            "average_incremental_accuracy": metrics.average_incremental_accuracy(R),
            "forgetting": metrics.forgetting(R) if self.n_done > 1 else 0.0,
            "max_forgetting": metrics.max_forgetting(R) if self.n_done > 1 else 0.0,
            "params": last.get("params"),
            "inference_flops": last.get("inference_flops"),
            "train_flops_total": sum(c.get("train_flops", 0) for c in self.costs),
            "memory_mb": last.get("bytes_total", 0) / 2**20,
            "wall_seconds": sum(t.get("total", 0.0) for t in self.timings),
        }
        alone = self.reference.get("last_task_alone_accuracy")
        if alone is not None:
            out["transfer"] = metrics.ctrl_transfer(R, alone)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Results":
        data = {k: v for k, v in data.items() if k != "summary"}
        return cls(**data)

    def save(self, run_dir: Path) -> None:
        """Write results.json and metrics.csv atomically."""
        atomic_write_text(run_dir / "results.json", json.dumps(self.to_dict(), indent=2, default=_jsonable))
        atomic_write_text(run_dir / "metrics.csv", self.to_csv())

    @classmethod
    def load(cls, run_dir: Path) -> "Results":
        return cls.from_dict(json.loads((run_dir / "results.json").read_text()))

    def to_csv(self) -> str:
        """One row per finished task: accuracy on each task, mean over seen tasks, costs and time."""
        n = self.n_done
        header = ["step", "task", "mean_seen_accuracy"] + [f"acc_task_{j}" for j in range(n)]
        header += ["params", "inference_flops", "train_flops", "bytes_total", "seconds"]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for i, row in enumerate(self.accuracy):
            cost, timing = self.costs[i], self.timings[i]
            writer.writerow(
                [i, self.tasks[i].get("name", i), f"{sum(row) / len(row):.4f}"]
                + [f"{a:.4f}" for a in row]
                + [""] * (n - len(row))
                + [cost.get("params"), cost.get("inference_flops"), cost.get("train_flops"), cost.get("bytes_total"),
                   f"{timing.get('total', 0.0):.2f}"]
            )
        return buf.getvalue()


def _jsonable(value: Any) -> Any:
    """JSON fallback for numpy/torch scalars and paths."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
