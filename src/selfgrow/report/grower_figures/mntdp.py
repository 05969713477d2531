"""Figures of the `mntdp` grower: the graph of modules and each task's path (as thesis figures 5.18-5.19),
and the kNN prior and candidate scores behind each choice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from selfgrow.report.grower_figures import plans_of
from selfgrow.report.plots import plt, save_figure
from selfgrow.report.results import Results


def figures(results: Results, plots_dir: Path) -> dict[str, Path]:
    """Both figures when the run holds MNTDP plans, else none."""
    plans = plans_of(results, "mntdp")
    if not plans:
        return {}
    return {
        "MNTDP: modules and task paths": path_graph(plans, plots_dir / "mntdp_paths.png"),
        "MNTDP: kNN prior and candidate paths": prior_and_candidates(plans, plots_dir / "mntdp_search.png"),
    }


def module_creators(plans: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """(depth, index) of every module -> the task whose plan created it."""
    return {(d, m): plan["task"] for plan in plans for d, m in plan["reasons"]["new_modules"]}


def path_graph(plans: list[dict[str, Any]], path: Path) -> Path:
    """Input, modules by depth (coloured by the task that created them), one head per task; each task's path a line.

    A head copied from an earlier task's (the whole predictor reused) is drawn hollow, named after its source.
    """
    creators = module_creators(plans)
    depth = len(plans[0]["reasons"]["path"])
    n_tasks = len(plans)
    colours = plt.get_cmap("tab10" if n_tasks <= 10 else "tab20")
    top = max([m for _, m in creators] + [n_tasks - 1, 1])
    fig, ax = plt.subplots(figsize=(2.0 + 1.3 * (depth + 2), 1.5 + 0.5 * (top + 1)))
    for i, plan in enumerate(plans):
        t, reasons = plan["task"], plan["reasons"]
        offset = (i - (n_tasks - 1) / 2) * 0.06
        xs = list(range(depth + 2))
        ys = [top / 2] + [m + offset for m in reasons["path"]] + [t]
        copied = reasons.get("head_from") is not None
        ax.plot(xs, ys, color=colours(t % colours.N), lw=1.6, alpha=0.85, label=f"task {t}",
                linestyle="--" if copied else "-")
        ax.scatter([depth + 1], [t], s=260, marker="s", zorder=3, edgecolors=colours(t % colours.N),
                   facecolors="white" if copied else colours(t % colours.N))
        ax.annotate(f"h{reasons['head_from']}" if copied else f"h{t}", (depth + 1, t), ha="center", va="center", fontsize=7)
    for (d, m), t in creators.items():
        ax.scatter([d + 1], [m], s=320, zorder=3, color=colours(t % colours.N), edgecolors="black")
        ax.annotate(f"t{t}", (d + 1, m), ha="center", va="center", fontsize=7, color="white")
    ax.scatter([0], [top / 2], s=320, marker="D", color="grey", zorder=3)
    ax.set_xticks(range(depth + 2), ["in"] + [f"depth {d}" for d in range(depth)] + ["head"])
    ax.set_ylabel("module index (heads: task)")
    ax.set_ylim(-0.7, top + 0.7)
    ax.set_title("MNTDP: library of modules (labelled by the task that created them) and each task's path")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, path)


def prior_and_candidates(plans: list[dict[str, Any]], path: Path) -> Path:
    """Left: kNN accuracy of each task's data in each past task's features. Right: each candidate's score
    (validation accuracy for MNTDP-D, path probability for MNTDP-S) by modules reused; the chosen one starred."""
    searched = [p for p in plans if p.get("candidates")]
    n_tasks = len(plans)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 2.2 + 0.35 * n_tasks), layout="constrained")
    grid = [[math.nan] * n_tasks for _ in range(n_tasks)]
    for plan in searched:
        for j, acc in plan["reasons"]["knn_accuracy"].items():
            grid[plan["task"]][int(j)] = acc
    image = left.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis")
    for plan in searched:
        for j, acc in plan["reasons"]["knn_accuracy"].items():
            kept = int(j) in plan["reasons"]["sources"]
            left.text(int(j), plan["task"], f"{acc:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if acc < 0.6 else "black", fontweight="bold" if kept else "normal")
    left.set_xlabel("past task (feature space)")
    left.set_ylabel("new task")
    left.set_title("kNN accuracy (bold: sources kept)")
    fig.colorbar(image, ax=left, fraction=0.046)
    depth = len(plans[0]["reasons"]["path"])
    colours = plt.get_cmap("tab10" if n_tasks <= 10 else "tab20")
    variant = plans[0]["reasons"]["variant"]
    for plan in searched:
        t = plan["task"]
        xs = [depth + 1 if c["head"] != "new" else c["reuse"] for c in plan["candidates"]]
        ys = [c["val_acc"] if variant == "D" else c["probability"] for c in plan["candidates"]]
        right.scatter(xs, ys, color=colours(t % colours.N), label=f"task {t}", s=18)
        best = plan["chosen"]
        right.scatter([xs[best]], [ys[best]], marker="*", s=160, color=colours(t % colours.N), edgecolors="black")
    right.set_xticks(range(depth + 2), [str(r) for r in range(depth + 1)] + ["all + head"])
    right.set_xlabel("modules reused from the source's path")
    right.set_ylabel("validation accuracy" if variant == "D" else "path probability")
    right.set_title(f"MNTDP-{variant} candidates (star: chosen)")
    if searched:
        right.legend(fontsize=7)
    return save_figure(fig, path)


def words(plan: dict[str, Any]) -> str:
    """MNTDP's reasons for one task in words: the kNN prior's ranking, the sources kept, the candidates and the pick."""
    r = plan["reasons"]
    if "knn_accuracy" not in r:
        return str(r.get("rule", ""))
    ranking = sorted(r["knn_accuracy"].items(), key=lambda kv: -kv[1])
    prior = ", ".join(f"task {j} {acc:.2f}" for j, acc in ranking)
    text = f"the kNN prior ranked the past tasks' features {prior} and kept task(s) {r['sources']} as source"
    candidates, chosen = plan.get("candidates", []), plan.get("chosen")
    if candidates and chosen is not None:
        pick = candidates[chosen]
        key, name = ("val_acc", "validation accuracy") if r.get("variant") == "D" else ("probability", "path probability")
        best_other = max((c for i, c in enumerate(candidates) if i != chosen), key=lambda c: c.get(key, 0.0), default=None)
        text += (f"; MNTDP-{r.get('variant')} weighed {len(candidates)} paths and kept the one reusing {pick['reuse']} "
                 f"module(s) with head {pick['head']} ({name} {pick.get(key, float('nan')):.3f}")
        if best_other is not None:
            text += f" against {best_other.get(key, float('nan')):.3f} for the next best"
        text += ")"
    return text


def table(plan: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The candidate paths MNTDP weighed for one task: source, modules reused, head, score, status."""
    candidates = plan.get("candidates", [])
    key = "val_acc" if plan["reasons"].get("variant") == "D" else "probability"
    rows = [[str(c["source"]), str(c["reuse"]), str(c["path"]), c["head"], f"{c.get(key, float('nan')):.3f}",
             str(c.get("epochs", "")), f"{c.get('new_params', 0):,}", "chosen" if i == plan.get("chosen") else ""]
            for i, c in enumerate(candidates)]
    header = ["source task", "modules reused", "path", "head", key.replace("_", " "), "epochs", "new params", ""]
    return (header, rows) if rows else ([], [])
