"""The architecture drawing: the net after each task as blocks (width and depth), new parts and frozen parts marked.

One row per task, read top to bottom as a timeline of the growth. In a row the input is on the left
and the head on the right; a block's height grows with its width (square root, so a 64-unit layer
is not lost beside a 2048-unit one). What the task added is orange (the new units on top of a
widened block, or the whole of a new block); hatching covers the share of a block's weights that
stayed fixed while the task trained (frozen by the net or by a retention strategy). For nets with
several modules per depth (MNTDP, bindgrow, PNN columns, expandable extractors) the blocks the
task's own path runs through have a dark outline, and the path is drawn through them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from selfgrow.report.architecture import Block, blocks_of, changes, task_path
from selfgrow.report.plots import plt, save_figure
from selfgrow.report.results import Results

MAX_ROWS = 12  # tasks drawn; longer streams show this many, evenly spaced, first and last included
OLD, NEW, FROZEN = "#9ecae1", "#fd8d3c", "#555555"


def architecture_figure(results: Results, path: Path) -> Path | None:
    """Draw the net after every task (at most MAX_ROWS of them); None when no spec of the run is drawable."""
    specs = [c.get("spec") or {} for c in results.costs]
    if not specs or not any(blocks_of(s) for s in specs):
        return None
    rows = shown_tasks(len(specs))
    widest = max(b.width for s in specs for b in blocks_of(s)) or 1
    depth = max(b.depth for s in specs for b in blocks_of(s)) + 1
    tall = [max((b.index for b in blocks_of(specs[t])), default=0) + 1 for t in rows]
    fig, axes = plt.subplots(len(rows), 1, figsize=(min(11.0, 2.4 + 1.45 * depth), 0.75 * sum(tall) + 0.3 * len(rows) + 0.8),
                             squeeze=False, gridspec_kw={"height_ratios": [t + 0.4 for t in tall]})
    for ax, task, n in zip(axes[:, 0], rows, tall):
        growth = results.growth[task] if task < len(results.growth) else {}
        _draw_row(ax, task, specs[task], growth, results.costs[task].get("frozen") or {}, widest, depth, n)
    handles = [plt.Rectangle((0, 0), 1, 1, color=OLD), plt.Rectangle((0, 0), 1, 1, color=NEW),
               plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor=FROZEN, hatch="///")]
    fig.legend(handles, ["kept", "new this task", "frozen while the task trained"], fontsize=7, loc="lower center",
               ncol=3, frameon=False)
    skipped = "" if len(rows) == len(specs) else f" ({len(rows)} of {len(specs)} tasks shown)"
    fig.suptitle(f"architecture after each task{skipped}", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, path)


def shown_tasks(n: int) -> list[int]:
    """The task indices drawn: all up to MAX_ROWS, else MAX_ROWS evenly spaced from the first to the last."""
    if n <= MAX_ROWS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_ROWS - 1)) for i in range(MAX_ROWS)})


def frozen_share(block: Block, frozen: dict[str, list[int]]) -> float:
    """The share of the block's parameter entries kept fixed (0 when the run recorded none)."""
    mine = [v for name, v in frozen.items() if name.startswith(block.params)]
    total = sum(v[1] for v in mine)
    return sum(v[0] for v in mine) / total if total else 0.0


def _draw_row(ax: Any, task: int, spec: dict[str, Any], growth: dict[str, Any], frozen: dict[str, list[int]],
              widest: int, depth: int, tall: int) -> None:
    blocks = blocks_of(spec)
    new = changes(growth.get("spec_before") or None, spec, growth.get("applied", []))
    path = sorted(task_path(spec, task), key=lambda b: b.depth)
    on_path = {b.name for b in path}
    for b in blocks:
        height = 0.6 * math.sqrt(b.width / widest)
        x, y = b.depth - 0.38, b.index - height / 2
        added = new.get(b.name, 0)
        fresh = added == "new"
        share_new = 1.0 if fresh else (added / b.width if b.width else 0.0)
        kept_h = height * (1 - share_new)
        faded = bool(on_path) and b.name not in on_path
        alpha = 0.35 if faded else 1.0
        ax.add_patch(plt.Rectangle((x, y), 0.76, kept_h, color=OLD, alpha=alpha, lw=0))
        if share_new:
            ax.add_patch(plt.Rectangle((x, y + kept_h), 0.76, height - kept_h, color=NEW, alpha=alpha, lw=0))
        share_frozen = frozen_share(b, frozen)
        if share_frozen:
            ax.add_patch(plt.Rectangle((x, y), 0.76, height * share_frozen, fill=False, hatch="///",
                                       edgecolor=FROZEN, lw=0, alpha=alpha))
        edge = "black" if b.name in on_path else "#777777"
        ax.add_patch(plt.Rectangle((x, y), 0.76, height, fill=False, edgecolor=edge,
                                   lw=1.4 if b.name in on_path else 0.6))
        grown = "" if not added or fresh else f" (+{added})"
        ax.text(b.depth, b.index + height / 2 + 0.03, b.label + grown, ha="center", va="bottom", fontsize=6.5,
                color="#222222" if not faded else "#888888")
    if len(path) > 1 and spec.get("kind") in ("modular", "jointnet"):  # one module per depth: a path to draw
        ax.plot([b.depth for b in path], [b.index for b in path], color="black", lw=0.8, ls="--", zorder=0)
    ax.text(-0.9, (tall - 1) / 2, "input", ha="center", va="center", fontsize=7)
    ax.text(depth - 0.1, (tall - 1) / 2, _head_words(spec), ha="left", va="center", fontsize=7)
    ax.set_xlim(-1.3, depth + 0.9)
    ax.set_ylim(-0.45, tall - 0.25)
    ax.set_ylabel(f"task {task}", rotation=0, ha="right", va="center", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _head_words(spec: dict[str, Any]) -> str:
    head = spec.get("head", {})
    if head.get("kind") == "multi":
        return f"heads: {len(head.get('classes', []))}"
    return f"head: {head.get('classes', '?')} outputs"
