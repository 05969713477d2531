"""Figures of the `bindgrow` grower (L2BG): RSA conflicts per layer and old task, the JointNet's paths
with each task's binding and expanded nucleus, and the δ search's Δ-vs-cost candidates and Pareto front."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from selfgrow.report.explain import search_words
from selfgrow.report.grower_figures import plans_of
from selfgrow.report.plots import plt, save_figure
from selfgrow.report.results import Results


def figures(results: Results, plots_dir: Path) -> dict[str, Path]:
    """The three bindgrow figures of the run (none when no plan of the run is a bindgrow one)."""
    plans = [plan for plan in plans_of(results, "bindgrow") if "rsa_binding" in plan.get("reasons", {})]
    if not plans:
        return {}
    drawn = {
        "bindgrow: RSA conflict per layer and old task (bound task boxed, expanded layers marked)":
            conflicts_figure(plans, plots_dir / "bindgrow_conflicts.png"),
        "bindgrow: JointNet paths (module per depth; new copies outlined, bindings and δ on the left)":
            paths_figure(results.growth, plots_dir / "bindgrow_paths.png"),
    }
    searched = [plan for plan in plans if any(c.get("status") == "complete" for c in plan.get("candidates", []))]
    if searched:
        drawn["bindgrow: δ search, average multi-task gain Δ against cost, Pareto front"] = \
            search_figure(searched, plots_dir / "bindgrow_search.png")
    return drawn


def _grid(n: int) -> tuple[Any, list[Any]]:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.6 * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def conflicts_figure(plans: list[dict[str, Any]], path: Path) -> Path:
    """One heatmap per task: rows the old tasks, columns the depths, colour the conflict C_t,b(l)."""
    fig, axes = _grid(len(plans))
    for ax, plan in zip(axes, plans):
        r = plan["reasons"]
        conflicts, old = r["conflicts"], r["old_tasks"]
        image = ax.imshow(conflicts, vmin=0.0, vmax=max(0.5, max(max(row) for row in conflicts)), cmap="magma_r",
                          aspect="auto")
        for i, row in enumerate(conflicts):
            for d, value in enumerate(row):
                mark = " ▲" if old[i] == r["binding"] and d in r["nucleus"] else ""
                ax.text(d, i, f"{value:.2f}{mark}", ha="center", va="center", fontsize=7,
                        color="white" if value > 0.6 * image.get_clim()[1] else "black")
        bound = old.index(r["binding"])
        ax.add_patch(plt.Rectangle((-0.5, bound - 0.5), len(conflicts[0]), 1, fill=False, edgecolor="tab:cyan", lw=2))
        ax.set_xticks(range(len(conflicts[0])))
        ax.set_yticks(range(len(old)), [f"task {b} ({c:.2f})" for b, c in zip(old, r["task_conflicts"])], fontsize=7)
        ax.set_xlabel("depth (layer)", fontsize=8)
        ax.set_title(f"task {r['task']}: bind to {r['binding']}, δ={r['delta']:g}, expand {r['nucleus']}", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_figure(fig, path)


def paths_figure(growth: list[dict[str, Any]], path: Path) -> Path:
    """Rows are tasks, columns depths, each cell the module index the task's path runs through."""
    depth = next(len(p["reasons"]["conflicts"][0]) for p in growth if "rsa_binding" in p.get("reasons", {}))
    rows, labels, new_cells = [], [], []
    for t, plan in enumerate(growth):
        r = plan.get("reasons", {})
        bind = [op for op in plan.get("applied", []) if op.get("op") == "bind_task"]
        rows.append(bind[-1]["path"] if bind else [0] * depth)
        if "rsa_binding" in r:
            labels.append(f"task {t} ← {r['binding']}  δ={r['delta']:g}")
            new_cells += [(t, d) for d in r["nucleus"]]
        else:
            labels.append(f"task {t}")
    fig, ax = plt.subplots(figsize=(1.6 + 0.8 * depth, 0.8 + 0.38 * len(rows)))
    ax.imshow(rows, cmap="tab20", vmin=0, vmax=19, aspect="auto")
    for t, row in enumerate(rows):
        for d, module in enumerate(row):
            ax.text(d, t, str(module), ha="center", va="center", fontsize=8)
    for t, d in new_cells:
        ax.add_patch(plt.Rectangle((d - 0.5, t - 0.5), 1, 1, fill=False, edgecolor="black", lw=2))
    ax.set_xticks(range(depth))
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlabel("depth: module index on the task's path")
    ax.set_title("JointNet: shared and expanded layers", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def search_figure(plans: list[dict[str, Any]], path: Path) -> Path:
    """Per searched task: every trained candidate's (cost, Δ) labelled by its δ values, the Pareto front, the choice."""
    fig, axes = _grid(len(plans))
    for ax, plan in zip(axes, plans):
        r, candidates = plan["reasons"], plan["candidates"]
        done = [c for c in candidates if c.get("status") == "complete"]
        by_trial = {c["trial"]: c for c in candidates}
        points: dict[tuple[float, float], list[str]] = {}
        for c in done:  # several δ often give the same nucleus, hence the same grown net
            label = f"{c['params']['delta']:.2f}" + (f"/b{c['params']['bind']}" if "bind" in c["params"] else "")
            points.setdefault((c["cost"], c["accuracy"]), [])
            if label not in points[(c["cost"], c["accuracy"])]:
                points[(c["cost"], c["accuracy"])].append(label)
        ax.scatter([x for x, _ in points], [y for _, y in points], s=18, color="tab:blue", label="candidates")
        for (x, y), labels in points.items():
            ax.annotate("δ=" + ", ".join(sorted(labels)), (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
        front = sorted({(by_trial[t]["cost"], by_trial[t]["accuracy"]) for t in r.get("pareto_front", []) if t in by_trial})
        ax.plot([x for x, _ in front], [y for _, y in front], color="tab:orange", lw=1.2, label="Pareto front")
        pick = candidates[plan["chosen"]]
        ax.scatter([pick["cost"]], [pick["accuracy"]], marker="*", s=140, color="tab:red", zorder=4, label="chosen")
        ax.set_xlabel("parameters" if all(c["cost"] == c.get("n_params") for c in done) else "inference FLOPs", fontsize=8)
        ax.set_ylabel("average multi-task gain Δ", fontsize=8)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.margins(x=0.3, y=0.15)
        ax.set_title(f"task {r['task']}", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def words(plan: dict[str, Any]) -> str:
    """bindgrow's reasons for one task in words: conflicts with the old tasks, the binding, δ and the nucleus grown."""
    r = plan["reasons"]
    if "rsa_binding" not in r:
        return str(r.get("decision", r.get("rule", "")))
    if r.get("guide") == "random":
        return (f"random growth (control): bound to task {r['binding']} and grew depth(s) {r['nucleus']} drawn at "
                f"random, as many as the RSA nucleus of δ = {r['delta']:g} holds")
    conflicts = ", ".join(f"task {t} {c:.2f}" for t, c in zip(r["old_tasks"], r["task_conflicts"]))
    bound = r["old_tasks"].index(r["binding"]) if r["binding"] in r["old_tasks"] else None
    per_layer = ", ".join(f"{c:.2f}" for c in r["conflicts"][bound]) if bound is not None else ""
    text = (f"RSA conflict with the old tasks {conflicts}: bound to task {r['binding']}"
            + (f" (conflict per depth {per_layer})" if per_layer else "")
            + f"; δ = {r['delta']:g} grew the nucleus at depth(s) {r['nucleus']}")
    search = search_words(plan)
    return text + (f"; δ search: {search}" if search else f"; rule: {r['rule']}" if r.get("rule") else "")
