"""One self-contained HTML page for a run: summary, accuracy matrix, costs, growth log, plots inline."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from selfgrow.atomic import atomic_write_text
from selfgrow.report import plots
from selfgrow.report.grower_figures import grower_figures
from selfgrow.report.results import Results


def write_report(run_dir: Path, results: Results) -> Path:
    """Draw the plots into run_dir/plots and write run_dir/report.html embedding them."""
    run_dir = Path(run_dir)
    figures = {
        "Accuracy matrix": plots.accuracy_heatmap(results, run_dir / "plots" / "accuracy_matrix.png"),
        "Accuracy and cost over tasks": plots.accuracy_and_cost(results, run_dir / "plots" / "accuracy_cost.png"),
        "Growth timeline": plots.growth_timeline(results, run_dir / "plots" / "growth_timeline.png"),
    }
    pareto = plots.pareto_fronts(results, run_dir / "plots" / "pareto_fronts.png")
    if pareto is not None:
        figures["Growth search: candidates and Pareto front per task"] = pareto
    figures.update(grower_figures(results, run_dir / "plots"))
    page = _page(results, figures)
    path = run_dir / "report.html"
    atomic_write_text(path, page)
    return path


def _page(results: Results, figures: dict[str, Path]) -> str:
    title = html.escape(str(results.run.get("name", "selfgrow run")))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right;font-size:13px}th{background:#f3f3f3}pre{background:#f8f8f8;padding:8px;"
        "overflow-x:auto;font-size:12px}img{max-width:100%}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>{html.escape(str(results.run.get('description', '')))}</p>",
        "<h2>Summary</h2>",
        _table([[k, _fmt(v)] for k, v in results.summary().items()], ["metric", "value"]),
        "<h2>Accuracy matrix</h2>",
        _accuracy_table(results),
        "<h2>Cost per task</h2>",
        _cost_table(results),
    ]
    for name, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>Growth log</h2>")
    for i, plan in enumerate(results.growth):
        arch = results.costs[i].get("spec")
        parts.append(f"<h3>Task {i}: {html.escape(str(results.tasks[i].get('name', '')))}</h3>")
        parts.append(_knowledge_table(plan.get("reasons", {}).get("knowledge")))
        parts.append(f"<pre>{html.escape(json.dumps(plan, indent=1, default=str))}</pre>")
        if arch is not None:
            parts.append(f"<details><summary>architecture after task {i}</summary>"
                         f"<pre>{html.escape(json.dumps(arch, indent=1))}</pre></details>")
    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(results.run.get('config', {}), indent=1, default=str))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _accuracy_table(results: Results) -> str:
    R = results.matrix()
    header = ["after task"] + [f"task {j}" for j in range(len(R))] + ["mean seen"]
    rows = []
    for i, row in enumerate(R):
        seen = [v for v in row if not math.isnan(v)]
        rows.append([str(i)] + ["" if math.isnan(v) else f"{v:.3f}" for v in row] + [f"{sum(seen) / len(seen):.3f}"])
    return _table(rows, header)


def _cost_table(results: Results) -> str:
    header = ["task", "params", "inference FLOPs", "train FLOPs", "memory MB", "seconds"]
    rows = [
        [str(i), _fmt(c.get("params")), _fmt(c.get("inference_flops")), _fmt(c.get("train_flops")),
         _fmt(c.get("bytes_total", 0) / 2**20), _fmt(results.timings[i].get("total"))]
        for i, c in enumerate(results.costs)
    ]
    return _table(rows, header)


def _knowledge_table(knowledge: dict | None) -> str:
    """The past searches a meta warm start consulted before this task and the points they proposed ("" without)."""
    if knowledge is None:
        return ""
    rows = [[c["entry"].split("/", 1)[-1], str(c["task"]), _fmt(c["distance"]),
             "; ".join(json.dumps(p, sort_keys=True) for p in c["proposed"]), _fmt(c["outcome"].get("after_task")),
             _fmt(c["outcome"].get("latest"))] for c in knowledge["consulted"]]
    base = html.escape(str(knowledge["base"]))
    if not rows:
        return f"<p>Warm start from the knowledge base {base}: no past search of this grower to consult.</p>"
    header = ["past search", "its task", "distance", "proposed (chosen; best)", "its outcome after task", "at its end"]
    return (f"<p>Warm start from the knowledge base {base}: the {len(rows)} most similar past searches proposed "
            f"their chosen and most accurate points, tried first.</p>" + _table(rows, header))


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)
