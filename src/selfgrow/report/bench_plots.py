"""Figures of a bench comparison: accuracy against parameters and FLOPs (with the Pareto front), accuracy over tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from selfgrow.report.plots import save_figure  # noqa: E402


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when minimising cost (x) and maximising accuracy (y), by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_vs_cost(comparison: dict[str, Any], cost_key: str, label: str, path: Path) -> Path:
    """Scatter of average accuracy against a cost, one point per method, the Pareto front drawn."""
    rows = [r for r in comparison["rows"] if cost_key in r["stats"] and "average_accuracy" in r["stats"]]
    points = [(r["stats"][cost_key]["mean"], r["stats"]["average_accuracy"]["mean"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for r, (x, y) in zip(rows, points):
        ax.errorbar(x, y, yerr=r["stats"]["average_accuracy"]["std"], fmt="o", capsize=3)
        ax.annotate(r["method"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = [points[i] for i in pareto_front(points)]
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="grey", ls="--", label="Pareto front")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("average accuracy (final)")
    return save_figure(fig, path)


def accuracy_over_tasks(comparison: dict[str, Any], path: Path) -> Path:
    """Mean accuracy over the tasks seen so far, after each task, one line per method."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for r in comparison["rows"]:
        curve = r["mean_seen_accuracy"]
        ax.plot(range(len(curve)), curve, marker="o", label=r["method"])
    ax.set_xlabel("after task")
    ax.set_ylabel("mean accuracy over seen tasks")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def bench_figures(comparison: dict[str, Any], folder: Path) -> list[Path]:
    """All figures of a comparison into `folder`."""
    return [
        accuracy_vs_cost(comparison, "params", "parameters (final)", folder / "accuracy_vs_params.png"),
        accuracy_vs_cost(comparison, "inference_flops", "inference FLOPs per input", folder / "accuracy_vs_flops.png"),
        accuracy_over_tasks(comparison, folder / "accuracy_over_tasks.png"),
    ]
