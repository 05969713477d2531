"""One self-contained HTML page for a run: summary, accuracy matrix, costs, growth log, plots inline."""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path

from selfgrow.atomic import atomic_write_text
from selfgrow.report import plots
from selfgrow.report.architecture_figure import architecture_figure
from selfgrow.report.explain import candidate_table, too_far
from selfgrow.report.grower_figures import grower_figures
from selfgrow.report.results import Results


def write_report(run_dir: Path, results: Results) -> Path:
    """Draw the plots into run_dir/plots and write run_dir/report.html embedding them."""
    run_dir = Path(run_dir)
    plots_dir = run_dir / "plots"
    figures = {
        "Accuracy matrix": plots.accuracy_heatmap(results, plots_dir / "accuracy_matrix.png"),
        "Accuracy and cost over tasks": plots.accuracy_and_cost(results, plots_dir / "accuracy_cost.png"),
        "Growth timeline": plots.growth_timeline(results, plots_dir / "growth_timeline.png"),
    }
    drawing = architecture_figure(results, plots_dir / "architecture.png")
    if drawing is not None:
        figures["Architecture after each task"] = drawing
    pareto = plots.pareto_fronts(results, plots_dir / "pareto_fronts.png")
    if pareto is not None:
        figures["Growth search: candidates and Pareto front per task"] = pareto
    page = _page(results, figures, grower_figures(results, plots_dir))
    path = run_dir / "report.html"
    atomic_write_text(path, page)
    return path


STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}"
    "table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;"
    "font-size:13px}td.words{text-align:left}th{background:#f3f3f3}.wide{overflow-x:auto;max-width:100%}pre{background:#f8f8f8;padding:8px;"
    "overflow-x:auto;font-size:12px;max-height:30em}img{max-width:100%;height:auto}p.growth{font-size:15px;"
    "background:#f4f8fb;border-left:4px solid #fd8d3c;padding:6px 10px}figure{margin:1em 0}"
    "figcaption{font-weight:bold;margin-bottom:0.3em}"
)


def _page(results: Results, figures: dict[str, Path], reasons: dict[str, Path]) -> str:
    title = html.escape(str(results.run.get("name", "selfgrow run")))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{title}</title><style>{STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>{html.escape(str(results.run.get('description', '')))}</p>",
        "<h2>Summary</h2>",
        _table([[k, _fmt(v)] for k, v in results.summary().items()], ["metric", "value"]),
        "<h2>Growth in one line per task</h2>",
        "<ul>" + "".join(f"<li>{html.escape(g.get('summary', ''))}</li>" for g in results.growth) + "</ul>",
        "<h2>Accuracy matrix</h2>",
        _accuracy_table(results),
        "<h2>Cost per task</h2>",
        _cost_table(results),
    ]
    parts += [_figure(name, path) for name, path in figures.items()]
    parts.append("<h2>Growth, task by task</h2>")
    parts += [_figure(name, path) for name, path in reasons.items()]
    for i, plan in enumerate(results.growth):
        parts.append(_growth_section(i, plan, results))
    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(results.run.get('config', {}), indent=1, default=str))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure(name: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    label = html.escape(name)
    return f"<figure><figcaption>{label}</figcaption><img alt='{label}' src='data:image/png;base64,{data}'></figure>"


def _growth_section(i: int, plan: dict, results: Results) -> str:
    """One task's growth: the sentence, the past searches consulted, the candidates, the raw record folded away."""
    parts = [f"<h3>Task {i}: {html.escape(str(results.tasks[i].get('name', '')))}</h3>",
             f"<p class='growth'>{html.escape(plan.get('summary', ''))}</p>",
             _knowledge_table(plan.get("reasons", {}).get("knowledge"))]
    header, rows = candidate_table(plan)
    if rows:
        parts.append(f"<p>The {len(rows)} candidates weighed:</p>" + _table(rows, header))
    parts.append(f"<details><summary>growth record of task {i} (JSON)</summary>"
                 f"<pre>{html.escape(json.dumps(plan, indent=1, default=str))}</pre></details>")
    arch = results.costs[i].get("spec")
    if arch is not None:
        parts.append(f"<details><summary>architecture after task {i} (spec)</summary>"
                     f"<pre>{html.escape(json.dumps(arch, indent=1))}</pre></details>")
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
    """The past tasks a meta warm start consulted before this task and the points they proposed ("" without)."""
    if knowledge is None:
        return ""
    by_scores, pooled = knowledge.get("similar") == "scores", knowledge.get("pooled")
    rows = [[c["entry"].split("/", 1)[-1], c.get("task_key") or str(c["task"]), _fmt(c["distance"]),
             *([_fmt(c["tau"])] if by_scores else []),
             _points_text(c["proposed"]) if "proposed" in c and not pooled else f"{c['searches']} pooled",
             _fmt(c["outcome"].get("after_task")), _fmt(c["outcome"].get("latest"))] for c in knowledge["consulted"]]
    base = html.escape(str(knowledge["base"]))
    surrogate = (_own_first_text(knowledge.get("own")) + _target_text(knowledge.get("transfer"))
                 + _other_net_text(knowledge.get("earlier runs from another net"))
                 + _consensus_text(knowledge.get("consensus")) + _surrogate_text(knowledge.get("surrogate"))
                 + _prior_text(knowledge.get("prior")) + _follow_text(knowledge.get("follow")))
    if not rows:
        none = f" {html.escape(_none_consulted(knowledge))}, so none proposed its points."
        return f"<p>Warm start from the knowledge base {base}:{'' if knowledge.get('k') == 0 else none}{surrogate}</p>"
    own = knowledge.get("own")  # `own: first`: the earlier runs' row comes first, the others' after it
    proposed_column = "proposed (chosen; best)" + (" or searches pooled" if own else "")
    header = ["past search", "its task", "distance", *(["tau with the first trials"] if by_scores else []),
              "searches pooled" if pooled else proposed_column, "its outcome after task", "at its end"]
    others = (f"the {len(rows) - own['tasks']} most similar other tasks" if own
              else f"the {len(rows)} most similar past tasks")
    if pooled:
        which = "this very task's earlier runs" if pooled["same task"] else others
        proposed = _points_text(pooled["proposed"]) or "nothing"
        return (f"<p>Warm start from the knowledge base {base}: {html.escape(which)} (every search of each pooled "
                f"into a model of its scores) proposed the points predicted best on average over them: "
                f"{html.escape(proposed)}.{_guard_text(pooled.get('guard'))}{surrogate}</p>" + _table(rows, header))
    each = "its search whose run ended best" if knowledge.get("by") == "outcome" else "its nearest search"
    how = (f"whose scores rank this search's first {knowledge['after']} trials as they scored (Kendall tau), each by "
           f"{each}, proposed their chosen and most accurate points, tried next" if by_scores else
           f"(each by {each}) proposed their chosen and most accurate points")
    return (f"<p>Warm start from the knowledge base {base}: {others} {how}."
            f"{surrogate}</p>" + _table(rows, header))


def _points_text(points: list[dict]) -> str:
    """Growth points as the knowledge sentences list them: each as sorted JSON, separated by semicolons."""
    return "; ".join(json.dumps(p, sort_keys=True) for p in points)


def _follow_text(follow: dict | None) -> str:
    """The sentence on whether the search took the base's first point (`follow`; "" without)."""
    if not follow:
        return ""
    point = html.escape(_points_text([follow["point"]]))
    if follow["followed"]:
        return (f" The search took the first proposed point, {point} (trial {follow['trial']}): no candidate scored "
                "distinguishably above it (follow).")
    why = ("a candidate scored distinguishably above it" if follow["trial"] is not None
           else "it did not finish among the candidates the rule may choose")
    return f" The search did not take the first proposed point, {point}: {why} (follow)."


def _own_first_text(own: dict | None) -> str:
    """The sentence on this very task's earlier runs' pooled points, tried before the other tasks' (`own: first`;
    "" without)."""
    if not own:
        return ""
    proposed = _points_text(own["proposed"]) or "nothing"
    return (" This very task's earlier runs (every search pooled into a model of its scores) proposed their points "
            f"predicted best, tried before the other tasks': {html.escape(proposed)}.")


def _target_text(transfer: str | None) -> str:
    """The sentence saying past factors were carried as target widths (`transfer: target`; "" otherwise)."""
    if transfer != "target":
        return ""
    return " Past widening factors were carried as the widths they grew to (transfer: target)."


def _other_net_text(count: int | None) -> str:
    """The sentence on earlier runs of this task left out of its own past, their net of another size ("" without)."""
    from selfgrow.search.meta.transfer import SAME_NET_RATIO

    if not count:
        return ""
    return (f" {count} earlier run{'s' if count > 1 else ''} of this very task grew a net of another size (beyond "
            f"{SAME_NET_RATIO:g}x its parameters), whose relative growth means other nets here: not consulted as its "
            "own past.")


def _guard_text(guard: dict | None) -> str:
    """The sentence on the pooled points held back until the first trials agreed with the pool, or until the pool's
    first point led the sampler's ("" without)."""
    if not guard:
        return ""
    against_sampler = guard.get("against") == "sampler"
    held = f" The last {len(guard['held back'])} were held back until " + (
        "the pool's first point was scored beside the sampler's first points" if against_sampler
        else f"the first {guard['after']} trials were scored")
    found = guard.get("lead" if against_sampler else "tau")
    if found is None:
        return held + ": the search ended before."
    if isinstance(found, str):
        return f"{held}: {html.escape(found)}."
    verdict = "so they were tried next" if guard["enqueued"] else "so they were never tried, the sampler went on"
    if against_sampler:
        return (f"{held}: that point scored {found[0]:.3f} first, the best other growth {found[1]:.3f}, "
                f"{verdict}.")
    return f"{held}: the pool's predictions ranked those as they scored at Kendall tau {found:.2f}, {verdict}."


def _none_consulted(knowledge: dict) -> str:
    """Why no past task proposed points: none near enough, or (by scores) none ranks the first trials rightly."""
    agreement = knowledge.get("agreement")
    if knowledge.get("similar") != "scores" or not knowledge.get("searches") or knowledge.get("nearest", 0) > knowledge[
            "max_distance"]:
        return too_far(knowledge)
    if agreement is None:  # the search had no trial left once `after` of them were trained
        return f"the search ended before past tasks were compared on its first {knowledge['after']} trials"
    if isinstance(agreement, str):
        return agreement
    return (f"no past task of {len(agreement or {})} ranks the first {knowledge['after']} trials as they scored "
            "(Kendall tau > 0)")


def _surrogate_text(surrogate: dict | None) -> str:
    """What the knowledge base's surrogate proposed and screened, in a sentence ("" without one)."""
    if surrogate is None:
        return ""
    if not surrogate.get("searches"):
        return " No surrogate: fewer than two past searches to fit it on."
    proposed = _points_text(surrogate.get("proposed", []))
    return html.escape(f" A surrogate fitted on {surrogate['searches']} past searches ({surrogate['candidates']} "
                       f"candidates) proposed {proposed}, tried first, and screened {surrogate.get('screened', 0)} "
                       "of the sampler's points untrained.")


def _consensus_text(consensus: dict | None) -> str:
    """The points predicted best over every past task, in a sentence ("" without a consensus)."""
    if consensus is None:
        return ""
    proposed = _points_text(consensus["proposed"]) or "nothing"
    return html.escape(f" The consensus of {consensus['tasks']} past tasks (the points predicted best on average "
                       f"over them) proposed {proposed}, tried right after no growth.")


def _prior_text(prior: dict | None) -> str:
    """How many past candidates the cost-gp sampler took as its prior, in a sentence ("" without a prior)."""
    if prior is None:
        return ""
    return html.escape(f" The sampler's prior: {prior['candidates']} candidates of the nearest past searches, "
                       "with their scores relative to their searches' means.")


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows)
    return f"<div class='wide'><table><tr>{head}</tr>{body}</table></div>"


NUMBER = re.compile(r"^[-+]?[\d,.]+(e[-+]?\d+)?[kMG%]?( \(\d+\))?$")


def _cell(value: object) -> str:
    """A table cell: numbers right-aligned so their digits line up, words left-aligned."""
    text = str(value)
    align = "" if not text or NUMBER.match(text) else " class='words'"
    return f"<td{align}>{html.escape(text)}</td>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)
