"""Growth in words: one sentence per task saying what grew and why, and the table of the candidates weighed.

The sentence is built from the task's growth record (the plan's `explain()`, the operators applied,
the spec before them) and the spec after; a grower with reasons of its own (MNTDP's kNN prior,
bindgrow's conflicts, Firefly's Taylor scores) words them in its `report.grower_figures` module.
"""

from __future__ import annotations

import importlib
from typing import Any

from selfgrow.report.architecture import Block, added_blocks, blocks_of, changes

HEAD_OPS = ("add_classes", "add_head")


def growth_sentence(growth: dict[str, Any], spec_after: dict[str, Any] | None) -> str:
    """"Task 2: widened hidden.0 from 16 to 47 units: 4 candidates tried, ...; rule: ..." for one task's record."""
    what = what_grew(growth.get("applied", []), growth.get("spec_before") or None, spec_after)
    why = why_chosen(growth)
    return f"Task {growth.get('task', '?')}: {what}" + (f": {why}" if why else "") + "."


def what_grew(applied: list[dict[str, Any]], before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """The operators applied, in words ("no growth" when only the head gained outputs)."""
    widths = {b.name: b for b in blocks_of(before)} if before else {}
    parts: list[str] = []
    widened: dict[str, dict[str, int]] = {}
    for call in applied:
        op = call.get("op")
        if op == "widen":
            entry = widened.setdefault(call["layer"], {"split": 0, "zero": 0})
            entry["split" if call.get("mode") == "split" else "zero"] += int(call.get("by", 0))
        elif op == "deepen":
            at = str(call.get("at"))
            parts.append(f"added a block to {at}" if at.startswith("stage.") else f"added a layer after {at}")
        elif op not in (*HEAD_OPS, "add_module"):
            parts.append(_other_op(call))
    modules = [f"{c.get('depth')}.{c.get('index')}" for c in applied if c.get("op") == "add_module"]
    if modules:
        parts.insert(0, f"added {len(modules)} module(s) ({', '.join(modules)})")
    ops = [c.get("op") for c in applied]
    first_deepen = ops.index("deepen") if "deepen" in ops else len(ops)
    renamed = {c["layer"] for i, c in enumerate(applied) if c.get("op") == "widen" and i > first_deepen}
    parts = [_widened(layer, counts, widths.get(layer), layer in renamed) for layer, counts in widened.items()] + parts
    if not parts and before is not None and after is not None:  # blocks a head operator brought (a PNN column, an extractor)
        changed = changes(before, after, applied)
        fresh = [b.label for b in blocks_of(after) if changed.get(b.name) == "new"]
        if fresh:
            parts.append("added " + _join(fresh))
    if before is not None and after is not None:
        parts += [f"{name} has {n} more block(s)" for name, n in added_blocks(before, after).items()
                  if not any(c.get("op") == "deepen" and c.get("at") == name for c in applied)]
    head = [_head_op(c) for c in applied if c.get("op") in HEAD_OPS]
    if not parts:
        return "no growth" + (f" ({'; '.join(head)})" if head else "")
    return _join(parts)


def why_chosen(growth: dict[str, Any]) -> str:
    """The reasons in words: the search's candidates and rule, or the grower's own reasons."""
    reasons = growth.get("reasons", {})
    grower = growth.get("grower", "")
    words = _grower_words(grower, growth)
    if words:
        return words + _prediction_words(reasons)
    searched = [c for c in growth.get("candidates", []) if "cost" in c]
    if searched:
        text = _search_words(growth, searched)
    else:
        decision, rule = str(reasons.get("decision", "")), str(reasons.get("rule", ""))
        counted = decision.endswith("operator(s)") or decision == "no growth at this task"  # the sentence says it
        text = "; ".join(p for p in (decision if not counted else "", f"rule: {rule}" if rule else "") if p)
    if growth.get("retention"):
        text += "; retention set to " + _settings(growth["retention"])
    text += _prediction_words(reasons)
    knowledge = reasons.get("knowledge") or {}
    if knowledge.get("consulted"):
        text += f"; warm-started from {len(knowledge['consulted'])} past task(s) of the knowledge base"
    elif knowledge and knowledge.get("k"):
        text += f"; knowledge base: {too_far(knowledge)}"
    budget = reasons.get("stream_budget")
    if budget:
        text += (f"; stream training budget {budget['train_budget']:.3g} FLOPs: {budget['spent']:.3g} spent before "
                 f"this task, {budget['search']:.3g} for its search")
        if "search_estimate" in budget and budget["search_estimate"] != budget["search"]:
            text += f" (bounded at {budget['search_estimate']:.3g} before it ran)"
    surrogate = (reasons.get("knowledge") or {}).get("surrogate") or {}
    if surrogate.get("proposed"):
        text += (f"; a surrogate over {surrogate['searches']} past searches proposed {len(surrogate['proposed'])} "
                 f"point(s) and screened {surrogate.get('screened', 0)}")
    zero_cost = reasons.get("zero_cost")
    if zero_cost:
        text += (f"; {zero_cost['score'].upper()} without training scored {zero_cost['scored']} point(s) and screened "
                 f"{zero_cost['screened']} below the median of those scored before them")
    return text


def too_far(knowledge: dict[str, Any]) -> str:
    """Why a consultation of the knowledge base found nothing: an empty base, or every past search too far."""
    if "searches" not in knowledge:  # a run recorded before the count was kept
        return "no past search of this grower near enough"
    if not knowledge["searches"]:
        return "no past search of this grower in it"
    return (f"none of its {knowledge['searches']} past searches of this grower within max_distance "
            f"{knowledge['max_distance']:g} (the nearest at {knowledge['nearest']:.2f})")


def _prediction_words(reasons: dict[str, Any]) -> str:
    """The settings chosen after training to predict, with every point's score ("" when none were chosen)."""
    chosen = (reasons.get("predictions") or {}).get("chosen")
    if not chosen:
        return ""
    scores = ", ".join(f"{_settings(s['settings'])} {s['accuracy']:.3f}" for s in reasons["predictions"]["scores"])
    return f"; after training, predictions by {_settings(chosen)} (validation score {scores})"


def _settings(settings: dict[str, Any]) -> str:
    """Retention settings in words: "lwf.alpha=4, replay.classifier=nme"."""
    return ", ".join(f"{k}={v if isinstance(v, str) else format(v, 'g')}" for k, v in settings.items())


def search_words(growth: dict[str, Any]) -> str:
    """The search's part of the sentence, for growers that word their own reasons around it ("" without a search)."""
    searched = [c for c in growth.get("candidates", []) if "cost" in c]
    return _search_words(growth, searched) if searched else ""


def _search_words(growth: dict[str, Any], candidates: list[dict[str, Any]]) -> str:
    reasons = growth.get("reasons", {})
    label = reasons.get("score_label", "validation accuracy")
    complete = [c for c in candidates if c.get("status") == "complete"]
    stopped = len(candidates) - len(complete)
    text = f"{len(candidates)} candidates tried" + (f" ({stopped} stopped early or over budget)" if stopped else "")
    chosen = growth.get("chosen")
    pick = growth["candidates"][chosen] if chosen is not None and chosen < len(growth.get("candidates", [])) else None
    if pick is not None and "accuracy" in pick:
        text += f", the chosen one {_score(pick)} {label} at {_cost(pick)}"
        pool = complete or candidates
        cheapest = min(pool, key=lambda c: c.get("cost", float("inf")))
        best = max(pool, key=lambda c: c.get("accuracy", float("-inf")))
        others = []
        if cheapest is not pick:
            others.append(f"{_score(cheapest)} at {_cost(cheapest)} for the cheapest")
        if best is not pick and best is not cheapest:
            others.append(f"{_score(best)} at {_cost(best)} for the highest-scoring")
        if others:
            text += " against " + " and ".join(others)
    rule = reasons.get("rule")
    return text + (f"; rule: {rule}" if rule else "")


def _grower_hook(grower: str, name: str) -> Any:
    """The function `name` of the grower's `report.grower_figures` module (None when it has none)."""
    if not grower.replace("_", "").isalnum():
        return None
    try:
        module = importlib.import_module(f"selfgrow.report.grower_figures.{grower}")
    except ModuleNotFoundError:
        return None
    return getattr(module, name, None)


def _grower_words(grower: str, growth: dict[str, Any]) -> str:
    """The words a grower's `report.grower_figures` module gives its reasons ("" when it has none)."""
    words = _grower_hook(grower, "words")
    return words(growth) if words else ""


def _widened(layer: str, counts: dict[str, int], before: Block | None, renamed: bool) -> str:
    """"widened L from A to B units"; only "by N" when the width before is unknown or a deepening renamed L first."""
    added = counts["split"] + counts["zero"]
    unit = before.unit if before else "units"
    how = []
    if counts["split"]:
        how.append(f"{counts['split']} split")
    if counts["zero"] and counts["split"]:
        how.append(f"{counts['zero']} new")
    detail = f" ({', '.join(how)})" if how else ""
    if before is not None and not renamed:
        return f"widened {layer} from {before.width} to {before.width + added} {unit}{detail}"
    return f"widened {layer} by {added} {unit}{detail}"


def _head_op(call: dict[str, Any]) -> str:
    if call.get("op") == "add_head":
        return f"a head for {call.get('n_classes', '?')} classes was added"
    return f"the head gained {call.get('n', '?')} outputs"


def _other_op(call: dict[str, Any]) -> str:
    op = call.get("op")
    if op == "bind_task":
        expand = call.get("expand") or []
        grown = f", with new copies of the modules at depth {', '.join(map(str, expand))}" if expand else ", no new module"
        return f"bound task {call.get('task')} to task {call.get('source')}'s path{grown}"
    if op == "add_module":
        return f"added module {call.get('depth')}.{call.get('index')}"
    if op == "add_adapter":
        return f"added adapter {call.get('depth')}.{call.get('index')} of module {call.get('depth')}.{call.get('base')}"
    if op in ("add_task_path", "set_task_path"):
        return f"set the task's path to modules {call.get('path')}"
    if op == "fold_gates":
        return f"folded the ε-gates of {call.get('layer')}"
    if op == "drop_unused_modules":
        return "dropped the modules no task uses"
    args = ", ".join(f"{k}={v}" for k, v in call.items() if k != "op")
    return f"{op}({args})"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _score(candidate: dict[str, Any]) -> str:
    se = candidate.get("se")
    return f"{candidate.get('accuracy', float('nan')):.3f}" + (f" ± {se:.3f}" if isinstance(se, float) else "")


def _cost(candidate: dict[str, Any]) -> str:
    flops = candidate.get("cost") == candidate.get("flops")
    return f"{short_number(candidate.get('cost', 0))} {'FLOPs' if flops else 'params'}"


def short_number(value: float) -> str:
    """1234 -> "1.2k", 3.4e6 -> "3.4M": numbers a sentence can carry."""
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def candidate_table(growth: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the candidates weighed: a search's (actions, objectives, fidelity reached, status), else
    the grower's own table (MNTDP's paths, Firefly's units per step); ([], []) when there were none."""
    candidates = growth.get("candidates", [])
    if not any("cost" in c for c in candidates):
        table = _grower_hook(growth.get("grower", ""), "table")
        return table(growth) if table and candidates else ([], [])
    label = growth.get("reasons", {}).get("score_label", "score")
    header = ["trial", "point", "operators", label, "± se", "plasticity", "stability", "FLOPs", "params",
              "epochs (rung)", "status"]
    rows = []
    for i, c in enumerate(candidates):
        status = "chosen" if i == growth.get("chosen") else str(c.get("status", ""))
        rows.append([
            str(c.get("trial", i)),
            ", ".join(f"{k}={_plain(v)}" for k, v in (c.get("params") or {}).items()),
            "; ".join(_op_words(op) for op in c.get("ops", [])) or "none",
            _num(c.get("accuracy")), _num(c.get("se")), _num(c.get("plasticity")), _num(c.get("stability")),
            short_number(c["flops"]) if "flops" in c else "", short_number(c["n_params"]) if "n_params" in c else "",
            f"{c.get('epochs', '')} ({c.get('rung', '')})" if "epochs" in c else "",
            status + (f": {c['reason']}" if c.get("reason") and status != "chosen" else ""),
        ])
    return header, rows


def _op_words(op: dict[str, Any]) -> str:
    kwargs = op.get("kwargs", {})
    if op.get("op") == "widen":
        return f"widen {kwargs.get('layer')} +{kwargs.get('by')}"
    if op.get("op") == "deepen":
        return f"deepen at {kwargs.get('at')}"
    return _other_op({"op": op.get("op"), **kwargs})


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
