"""The `firefly` grower: Firefly neural architecture descent (Wu, Liu, Stone & Liu, NeurIPS 2020) before each task.

Per task, up to `max_steps` growth steps, each one round of the paper's Algorithm 1:

1. train the net on the new task for `check_epochs` epochs (a copy trained by the run's trainer
   with copies of its retention strategies); if the new task's validation accuracy reaches
   `good_enough`, the task is solved and growth stops ("grow only if the task cannot be solved",
   section 2.4). This training is not thrown away: the last trained weights go to the learner
   in `plan.weights`, and the learner then trains its usual epochs on top;
2. build the neighbourhood (`building`: splits or unlocked copies of existing units, `new_candidates`
   ε-gated brand-new units per width group, and identity layers) and take `grad_steps` Adam steps
   (`lr`) on the gates, projected on [-eps, eps], and the candidates' weights, on minibatches of
   the task's training data (the trainer's batch size and augmentation) joined by the run's replay
   draws, on the learner's loss: cross-entropy of new and replayed rows plus the distillation
   penalties (`Neighbourhood.loss`), so that in class-IL a candidate that helps the new classes at
   the old ones' expense does not score as a good one;
3. score every candidate by its integrated gradient s_i (`score_points` nodes, on `score_samples`
   training samples) and keep the η = max(1, round(grow_ratio × units)) best by |s_i| (`selection`),
   units being the current width of the growable groups (in continual mode: the units the task
   uses, i.e. the size of f_t, not of the master net, which also holds retired units); the chosen
   net f_{ε̂,δ̃} is the plan's operator calls plus its weights (`materialise`).

Modes. `continual: false` (sections 2.2-2.3): candidates are splits of every unit
(`existing_candidates`), brand-new units, and (`max_new_layers` > 0) one identity layer per depth
point; any scenario and any retention. `continual: true` (section 2.4): task-IL only. Old neurons
are locked (the run's `freeze` retention is the lock, so it is required); candidates are unlocked
copies of every locked unit the task uses (`existing_candidates`) and brand-new units; per-task unit
masks in the net (`unit_masks: true` in the net spec, `selfgrow.nets.unit_masks`) let every task
retrieve its own sub-network: a chosen copy replaces its original for this task and the later
ones, earlier tasks keep the original, so no earlier task's function changes.

Deviations from the paper, and why:

- When to grow: the paper alternates training and growth on one data set (e.g. every 10 epochs);
  a stream gives one task at a time, so growth happens at the start of a task, at most `max_steps`
  times, each after `check_epochs` epochs of training (Algorithm 1's step 1).
- "Solved well enough" is the new task's validation accuracy >= `good_enough` (the paper names no
  criterion); None always grows.
- Constraints: |ε|_∞ <= ε by projection after each step (the paper turns constraints into
  penalties); directions of splits, copies and layer units have unit norm (|δ| = 1); brand-new
  units' weights keep their layer's initialisation scale and are not norm-bounded.
- Split gates start at ε, not 0 (a split is a saddle at 0: see `building`), so the split part of
  the neighbourhood is O(ε²) from the current function before step one; everything else starts
  exactly at it.
- The integral of s_i follows the path that scales all gates together (integrated gradients),
  one backward pass per node for all candidates (see `neighbourhood.taylor_scores`).
- Splits are eligible only when they lower the loss (their loss is even in ε; see `selection`).
- The loss scored is the learner's, except for penalties that read parameters (EWC's pull towards old
  weights): the neighbourhood's over-grown tensors do not line up with their anchors, and brand-new
  units, the bulk of the candidates, have no anchor; only strategies whose penalty reads outputs
  (`Retention.penalty_on_outputs`: LwF, feature distillation) are added. The paper has no retention.
- New layers: the paper's residual I + h_ℓ of m' new neurons becomes an identity-initialised layer
  (Net2DeeperNet, `ops.deepen`) whose units' incoming weights are ε-gated perturbations; each depth
  point is scored in a neighbourhood of its own, apart from the width candidates (at first order
  in ε a candidate's score does not depend on the others); the budget counts a layer's chosen
  units against η and layers against `max_new_layers` (the paper's η_{t,1}).
- Continual mode: the new task starts from every unit no earlier task retired (the union f_{1:t}
  of the earlier sub-networks, as the latest version of each neuron); new layers are not offered
  (the paper leaves them to future work); masks are two task indices per unit, not one bit per
  unit and task (`selfgrow.nets.unit_masks`).

Growth runs under a torch RNG forked and seeded from (`seed`, task index). The compute of the
check trainings and of the neighbourhoods is the plan's `search_flops`. The grower keeps no
state across tasks: the masks live in the net's state dict, which checkpoints carry.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import Grower, GrowthPlan, register_grower
from selfgrow.growth.candidates import CandidateTraining, LearnerView
from selfgrow.growth.firefly.batches import TaskInputs
from selfgrow.growth.firefly.building import depth_neighbourhood, width_neighbourhood
from selfgrow.growth.firefly.materialise import grow_depth, grow_width
from selfgrow.growth.firefly.neighbourhood import Neighbourhood, descend, taylor_scores
from selfgrow.growth.firefly.selection import select
from selfgrow.options import option
from selfgrow.retention.base import overriding

MAX_LOGGED = 200  # candidates logged per growth step: the best by |score| (every chosen one included)


@dataclass
class FireflyOptions:
    """Firefly descent's options (see the module docstring)."""

    continual: bool = False
    grow_ratio: float = option(0.3, above=0, note="the share of the current units added per step")
    eps: float = option(0.05, above=0, note="the step size ε bounding every gate")
    new_candidates: int = option(32, at_least=0)
    existing_candidates: bool = True
    max_new_layers: int = option(0, at_least=0)
    grad_steps: int = option(20, at_least=0)
    lr: float = option(0.01, above=0)
    score_points: int = option(3, at_least=1)
    score_samples: int = option(512, at_least=1)
    max_steps: int = option(1, at_least=1)
    check_epochs: int = option(1, at_least=0)
    good_enough: float | None = option(None, above=0, at_most=1,
                                       note="null always grows, else a validation accuracy")
    layers: list[str] | None = option(None, note="null: every width group")
    seed: int = option(0, at_least=0)

    def __post_init__(self) -> None:
        if self.good_enough is not None and self.check_epochs == 0:
            raise SelfgrowError("firefly good_enough needs check_epochs >= 1 (the accuracy is measured after that "
                                "training); set check_epochs or good_enough: null.")
        if self.continual and self.max_new_layers:
            raise SelfgrowError(f"firefly max_new_layers={self.max_new_layers!r} is invalid in continual mode; "
                                "accepted: 0 (new layers would change the function of earlier tasks).")
        if not (self.existing_candidates or self.new_candidates or self.max_new_layers):
            raise SelfgrowError("firefly has no candidates: set existing_candidates: true, new_candidates >= 1 "
                                "or max_new_layers >= 1.")


@register_grower("firefly")
class FireflyGrower(Grower):
    """Grows by Firefly descent before each task: ε-gated candidates, Taylor scores, top-η selection."""

    Options = FireflyOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.grow_ratio = float(self.grow_ratio)
        self.eps = float(self.eps)
        self.lr = float(self.lr)
        self.good_enough = None if self.good_enough is None else float(self.good_enough)
        self.layers = None if self.layers is None else list(self.layers)

    # ---- the plan ---------------------------------------------------------------------------

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        self._check_learner(learner)
        reasons: dict[str, Any] = {"task": task.index, "mode": "continual" if self.continual else "growth",
                                   "rule": self._rule(), "good_enough": self.good_enough, "rounds": []}
        branch = _Branch(learner)
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed * 1_000_003 + task.index)
            calls, logged, weights = self._descend(learner, branch, task, reasons)
        added = sum(c["kwargs"].get("by", 0) for c in calls)
        layers = sum(c["op"] == "deepen" for c in calls)
        reasons["decision"] = (f"grew {added} unit(s) and {layers} layer(s)" if calls
                               else "no growth: " + reasons["rounds"][-1]["stop"])
        return GrowthPlan(ops=calls, reasons=reasons, candidates=logged, weights=weights,
                          search_flops=branch.spent_flops)

    def _descend(self, learner: Any, branch: _Branch, task: Any, reasons: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, torch.Tensor]]:
        """Train-check-grow rounds; returns the operator calls, the logged candidates and the final weights."""
        from selfgrow.nets.cost import count_params

        calls: list[dict[str, Any]] = []
        logged: list[dict[str, Any]] = []
        for step in range(self.max_steps + 1):
            net, accuracy = self._train(branch, task)
            entry: dict[str, Any] = {"round": step, "val_accuracy": accuracy, "params": int(count_params(net))}
            reasons["rounds"].append(entry)
            solved = accuracy is not None and self.good_enough is not None and accuracy >= self.good_enough
            entry["growth_needed"] = not solved
            if solved:
                entry["stop"] = f"the task is solved (val accuracy {accuracy:.4f} >= good_enough {self.good_enough:g})"
                break
            if step == self.max_steps:
                entry["stop"] = f"{self.max_steps} growth step(s) done"
                break
            step_calls, growths, records = self._grow(net, task, learner, entry, branch)
            logged += records
            if not step_calls:
                entry["stop"] = "no candidate is eligible"
                break
            calls += step_calls
            branch.adopt(growths)
            entry["params_after"] = int(count_params(branch.net))
        return calls, logged, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    def _train(self, branch: _Branch, task: Any) -> tuple[Any, float | None]:
        """Algorithm 1's step 1 on a copy: the trained net and the new task's validation accuracy."""
        if not self.check_epochs:
            return branch.net, None
        trial = CandidateTraining(branch, task, [])
        result = trial.train_to(self.check_epochs)
        branch.spent_flops += trial.spent_flops
        branch.net, branch.optimizer_state = trial.net, trial.optimizer_state
        return trial.net, None if result.get("diverged") else result["val_accuracy"][str(task.index)]

    def _grow(self, net: Any, task: Any, learner: Any, entry: dict[str, Any],
              branch: _Branch) -> tuple[list[dict[str, Any]], list[Any], list[dict[str, Any]]]:
        """One architecture step: neighbourhoods, descent and scores, selection, the grown net."""
        head = task.index if learner.scenario == "task" else None
        groups = self._groups(net)
        units = self._units(net, groups, task.index)
        budget = max(1, round(self.grow_ratio * units))
        nbs = self._neighbourhoods(net, groups, task.index, head)
        inputs = TaskInputs(task, learner.scenario, next(net.parameters()).device, overriding(learner.retention, "replay"))
        for nb in nbs.values():  # scored on the learner's loss: replay joined above, distillation penalties here
            nb.penalties = [r for r in learner.retention if r.penalty_on_outputs]
        records, owners, details = self._score(nbs, inputs, learner.trainer.batch_size, task.index * 1009 + entry["round"],
                                               head, branch)
        selection = select(records, [r["score"] for r in records], [r["gate"] for r in records], budget,
                           self.eps, self.max_new_layers)
        chosen: dict[str, dict[int, float]] = {}
        for i in selection.chosen:
            key, local = owners[i]
            chosen.setdefault(key, {})[local] = selection.gates[i]  # a layer's candidate k is its unit k
        calls, growths = ([], []) if "width" not in chosen else grow_width(
            net, nbs["width"], chosen["width"], task.index, self.continual)
        depth_calls, depth_growths = grow_depth(growths[-1].net if growths else net, nbs,
                                                {k: v for k, v in chosen.items() if k != "width"})
        entry.update(_summary(records, selection, budget, units, details))
        return calls + depth_calls, growths + depth_growths, _log(records, selection, entry["round"])

    def _neighbourhoods(self, net: Any, groups: list[str], task: int, head: int | None) -> dict[str, Neighbourhood]:
        """The width neighbourhood ("width") and one per offered depth point (keyed by the point)."""
        nbs: dict[str, Neighbourhood] = {}
        if groups and (self.existing_candidates or self.new_candidates):
            width = width_neighbourhood(net, groups, self.new_candidates, self.eps, task, head,
                                        self.existing_candidates, self.continual)
            if width.candidates():  # continual mode on the first task: no locked unit to copy
                nbs["width"] = width
        for point in self._depth_points(net):
            nbs[point] = depth_neighbourhood(net, point, head)
        return nbs

    def _score(self, nbs: dict[str, Neighbourhood], inputs: TaskInputs, batch_size: int, stream: int,
               head: int | None, branch: _Branch) -> tuple[list[dict[str, Any]], list[tuple[str, int]], dict]:
        """Steps one and two on every neighbourhood: candidate records (score, trained gate, ε̃ s), owners, losses."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + stream)
        sample = inputs.sample(self.score_samples, generator, batch_size)
        records, owners, details = [], [], {}
        for key, nb in nbs.items():
            descent = descend(nb, inputs.batches(batch_size, generator), self.grad_steps, self.lr, self.eps)
            scores = taylor_scores(nb, sample, self.score_points)
            rows, new_rows = sum(len(step) for step in sample), sum(len(step.target) for step in sample)
            branch.spent_flops += self._flops(nb, head, batch_size * rows / max(1, new_rows), rows)
            details[key] = {"loss_before": scores.loss_before, "loss_after": scores.loss_after,
                            "taylor_sum": float((scores.gate * scores.score).sum()),
                            "descent_loss": [descent[0], descent[-1]] if descent else []}
            for i, (record, s, g) in enumerate(zip(nb.candidates(), scores.score.tolist(), scores.gate.tolist())):
                records.append({**record, "score": s, "gate": g, "change": s * g})
                owners.append((key, i))
        return records, owners, details

    # ---- checks and helpers -----------------------------------------------------------------

    def _check_learner(self, learner: Any) -> None:
        """Continual mode's requirements on the run: task-IL and the `freeze` retention (the lock)."""
        if not self.continual:
            return
        if learner.scenario != "task":
            raise SelfgrowError(f"firefly continual mode needs scenario 'task' (each task's mask is chosen by its "
                                f"task id); this run is {learner.scenario!r}: use continual: false.")
        if not any(getattr(r, "name", None) == "freeze" for r in learner.retention):
            raise SelfgrowError("firefly continual mode locks old neurons through the freeze retention; "
                                "add retention: [{name: freeze}].")

    def _groups(self, net: Any) -> list[str]:
        """The width groups Firefly may grow (gateable, not gated, not under a cosine head; `layers` if given)."""
        groups = net.width_groups()
        unknown = [n for n in self.layers or [] if n not in groups]
        if unknown:
            raise SelfgrowError(f"firefly layers {unknown!r} are not width groups of this net; "
                                f"accepted: {', '.join(groups) or 'none'}.")
        cosine = bool(net.spec["head"].get("cosine"))
        names = [n for n, g in groups.items() if (self.layers is None or n in self.layers)
                 and g.gateable and not g.gated and not (cosine and g.feeds_head)]
        if self.continual and any(groups[n].unit_mask is None for n in names):
            raise SelfgrowError("firefly continual mode needs per-task unit masks in the net; "
                                "set net.options.unit_masks: true (MLP nets).")
        if not names and not self.max_new_layers:
            raise SelfgrowError("firefly finds no width group it can grow in this net (none is gateable, ungated and "
                                "free of a cosine head); choose another net or set max_new_layers.")
        return names

    def _units(self, net: Any, groups: list[str], task: int) -> int:
        """The current size η is relative to: the units of `groups`; in continual mode those the task uses (f_t)."""
        widths = net.width_groups()
        if not self.continual:
            return sum(widths[g].width for g in groups)
        return sum(int(net.get_submodule(widths[g].unit_mask).active(task).sum()) for g in groups)

    def _depth_points(self, net: Any) -> list[str]:
        """Depth points offered as new layers (none unless `max_new_layers`; gated layers excluded)."""
        if not self.max_new_layers:
            return []
        return [p.name for p in net.depth_points() if not net.spec["gates"].get(p.name)]

    def _flops(self, nb: Neighbourhood, head: int | None, batch_size: float, n_score: int) -> float:
        """Training FLOPs of step one and step two on the neighbourhood's net (`batch_size`: rows per step, the
        replayed ones included; `n_score`: rows of the scoring sample)."""
        from selfgrow.nets.cost import inference_flops, training_flops_per_sample

        train = float(training_flops_per_sample(nb.net, head))
        return train * (self.grad_steps * batch_size + self.score_points * n_score) \
            + 2.0 * float(inference_flops(nb.net, head, sub_network=False)) * n_score

    def _rule(self) -> str:
        existing = "unlocked copies" if self.continual else "splits"
        parts = [existing] if self.existing_candidates else []
        parts += [f"{self.new_candidates} new units per layer"] if self.new_candidates else []
        parts += [f"up to {self.max_new_layers} new layer(s)"] if self.max_new_layers else []
        check = (f"after {self.check_epochs} epoch(s) of training" if self.check_epochs else "without training first")
        solved = f", unless val accuracy >= {self.good_enough:g}" if self.good_enough is not None else ""
        return (f"Firefly descent{' (continual, masks)' if self.continual else ''}: up to {self.max_steps} growth "
                f"step(s) per task {check}{solved}; candidates: {', '.join(parts)} (ε={self.eps:g}); keep the top "
                f"{self.grow_ratio:.0%} of the current units by |Taylor score|")


class _Branch(LearnerView):
    """The learner as candidate training sees it while a plan grows: its own net, retention copies, optimizer state."""

    def __init__(self, learner: Any) -> None:
        super().__init__(learner, learner.net)
        self.retention = copy.deepcopy(learner.retention)
        self.optimizer_state = copy.deepcopy(learner.optimizer_state)
        self.spent_flops = 0.0  # the plan's search compute: check trainings and neighbourhood scoring

    def adopt(self, growths: list[Any]) -> None:
        """Carry retention and optimizer state through `growths` and make the last grown net current."""
        from selfgrow.train import remap_optimizer_state

        for growth in growths:
            for strategy in self.retention:
                strategy.on_growth(growth)
            self.optimizer_state = remap_optimizer_state(self.optimizer_state, growth)
            self.net = growth.net


def _summary(records: list[dict[str, Any]], selection: Any, budget: int, units: int,
             details: dict[str, Any]) -> dict[str, Any]:
    """The round's reasons: budget, candidates and choices by kind and group, score threshold, losses."""
    by_kind: dict[str, int] = {}
    chosen_by: dict[str, dict[str, int]] = {}
    for r in records:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    for i in selection.chosen:
        group = chosen_by.setdefault(records[i]["group"], {})
        group[records[i]["kind"]] = group.get(records[i]["kind"], 0) + 1
    chosen_scores = [abs(records[i]["score"]) for i in selection.chosen]
    return {
        "units": units,
        "budget": budget,
        "candidates": by_kind,
        "chosen": chosen_by,
        "n_chosen": len(selection.chosen),
        "score_threshold": min(chosen_scores) if chosen_scores else None,
        "passed_over": selection.passed_over,
        "neighbourhoods": details,
    }


def _log(records: list[dict[str, Any]], selection: Any, step: int) -> list[dict[str, Any]]:
    """The round's candidates for `plan.candidates`: every chosen one and the best others, up to MAX_LOGGED."""
    chosen = set(selection.chosen)
    order = sorted(range(len(records)), key=lambda i: (i not in chosen, -abs(records[i]["score"])))
    return [{"round": step, **{k: _short(v) for k, v in records[i].items()}, "chosen": i in chosen,
             **({"eps_hat": selection.gates[i]} if i in chosen else {})} for i in order[:max(MAX_LOGGED, len(chosen))]]


def _short(value: Any) -> Any:
    """Floats to 6 significant digits (the log stays readable and small)."""
    return float(f"{value:.6g}") if isinstance(value, float) else value

