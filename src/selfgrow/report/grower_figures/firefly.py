"""Figures of the `firefly` grower: the Taylor scores of the candidate neurons of every growth step and which
were chosen, and the growth per task against its budget and the "solved" test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfgrow.report.grower_figures import plans_of
from selfgrow.report.plots import plt, save_figure
from selfgrow.report.results import Results

KINDS = {"new": ("^", "tab:blue"), "split": ("o", "tab:orange"), "copy": ("s", "tab:green"), "layer": ("D", "tab:red")}


def figures(results: Results, plots_dir: Path) -> dict[str, Path]:
    """Both figures when the run holds Firefly plans, else none."""
    plans = plans_of(results, "firefly")
    if not plans:
        return {}
    return {
        "Firefly: Taylor scores of candidate neurons": taylor_scores(plans, plots_dir / "firefly_scores.png"),
        "Firefly: growth per task": growth_per_task(plans, plots_dir / "firefly_growth.png"),
    }


def taylor_scores(plans: list[dict[str, Any]], path: Path) -> Path:
    """Per task (and growth step), the logged candidates' |s_i| in decreasing order; chosen ones filled, with the threshold.

    Candidates are spread over [task - 0.4, task + 0.4] by rank, so each step reads as a falling
    curve whose left end holds the chosen neurons; marker and colour give the kind.
    """
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * len(plans), 4.0))
    floor = min((abs(c["score"]) for p in plans for c in p["candidates"] if c["score"]), default=1e-12)
    seen: set[str] = set()
    for plan in plans:
        rounds = sorted({c["round"] for c in plan["candidates"]})
        for r in rounds:
            cands = sorted((c for c in plan["candidates"] if c["round"] == r), key=lambda c: -abs(c["score"]))
            width = 0.8 / len(rounds)
            left = plan["task"] - 0.4 + width * rounds.index(r)
            for rank, c in enumerate(cands):
                marker, colour = KINDS.get(c["kind"], ("x", "grey"))
                label = c["kind"] if c["kind"] not in seen and c["chosen"] else None
                seen.update([c["kind"]] if label else [])
                ax.scatter(left + width * rank / max(len(cands), 1), max(abs(c["score"]), floor), marker=marker, s=16,
                           facecolors=colour if c["chosen"] else "none", edgecolors=colour, lw=0.7, label=label)
            threshold = plan["reasons"]["rounds"][r].get("score_threshold")
            if threshold:
                ax.hlines(threshold, left, left + width, colors="black", linestyles=":", lw=1)
    ax.set_yscale("log")
    ax.set_xticks([p["task"] for p in plans])
    ax.set_xlabel("task (candidates by rank within each growth step)")
    ax.set_ylabel("|Taylor score| |s_i|")
    ax.set_title("Firefly: candidate neurons' scores (filled: chosen; dotted: lowest chosen)")
    if seen:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return save_figure(fig, path)


def growth_per_task(plans: list[dict[str, Any]], path: Path) -> Path:
    """Units chosen per task by kind (stacked) against the summed budget; validation accuracy of each check."""
    tasks = [p["task"] for p in plans]
    fig, ax = plt.subplots(figsize=(2.5 + 0.9 * len(plans), 3.4))
    bottom = [0] * len(plans)
    for kind, (_, colour) in KINDS.items():
        counts = [sum(g.get(kind, 0) for r in p["reasons"]["rounds"] for g in r.get("chosen", {}).values())
                  for p in plans]
        if any(counts):
            ax.bar(tasks, counts, bottom=bottom, color=colour, label=kind, width=0.6)
            bottom = [b + c for b, c in zip(bottom, counts)]
    budgets = [sum(r.get("budget", 0) for r in p["reasons"]["rounds"]) for p in plans]
    ax.scatter(tasks, budgets, marker="_", s=400, color="black", label="budget η", zorder=3)
    ax.set_xticks(tasks)
    ax.set_xlabel("task")
    ax.set_ylabel("units chosen")
    twin = ax.twinx()
    for p in plans:
        accs = [r["val_accuracy"] for r in p["reasons"]["rounds"] if r.get("val_accuracy") is not None]
        if accs:
            offsets = [p["task"] - 0.3 + 0.6 * i / max(len(accs) - 1, 1) for i in range(len(accs))]
            twin.plot(offsets, accs, marker="o", ms=4, color="tab:purple", lw=1)
    twin.set_ylim(0, 1.02)
    twin.set_ylabel("val accuracy at each check", color="tab:purple")
    solved = plans[0]["reasons"].get("good_enough")
    if solved is not None:
        twin.axhline(solved, color="tab:purple", ls=":", lw=1)
    ax.set_title("Firefly: growth per task (bars) vs budget; new task's validation accuracy before each step")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.12, 1.0))
    fig.tight_layout()
    return save_figure(fig, path)


def words(plan: dict[str, Any]) -> str:
    """Firefly's reasons for one task in words: per growth step the candidates scored, the ones kept, the loss."""
    steps = []
    for rnd in plan["reasons"].get("rounds", []):
        if "chosen" not in rnd:
            steps.append(f"then stopped: {rnd.get('stop', 'no growth needed')}")
            continue
        offered = " and ".join(f"{n} {kind}" for kind, n in rnd.get("candidates", {}).items())
        kept = "; ".join(f"{layer}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())
                         for layer, kinds in rnd["chosen"].items())
        text = (f"step {rnd['round']}: {offered} candidate units scored by |Taylor score|, the {rnd['n_chosen']} "
                f"above {rnd['score_threshold']:.3g} kept ({kept})")
        width = rnd.get("neighbourhoods", {}).get("width")
        if width:
            text += f", loss in the neighbourhood {width['loss_before']:.3f} -> {width['loss_after']:.3f}"
        steps.append(text)
    return "; ".join(steps) or str(plan["reasons"].get("decision", ""))


def table(plan: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per growth step and layer: candidates of each kind, how many were kept, the best |Taylor score|, the threshold."""
    rows = []
    thresholds = {r["round"]: r.get("score_threshold") for r in plan["reasons"].get("rounds", []) if "chosen" in r}
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for c in plan.get("candidates", []):
        groups.setdefault((c["round"], c["group"], c["kind"]), []).append(c)
    for (rnd, group, kind), cands in sorted(groups.items()):
        best = max(abs(c["score"]) for c in cands)
        rows.append([str(rnd), group, kind, str(len(cands)), str(sum(bool(c.get("chosen")) for c in cands)),
                     f"{best:.3g}", f"{thresholds.get(rnd, float('nan')):.3g}"])
    header = ["step", "layer", "kind", "candidates", "kept", "best |score|", "threshold"]
    return (header, rows) if rows else ([], [])
