"""The `den` grower: Dynamically Expandable Networks (Yoon, Yang, Lee & Hwang, ICLR 2018) on an MLP with unit masks.

Per task (Algorithm 1), on a copy of the learner's net, each phase a run of the learner's trainer on the
task (`phase.Phase`: the entries it trains and its regulariser):

- first task: train the whole net with L1 (eq. 2: L + μ Σ ||W_l||_1), so that later tasks find a sparse
  net; entries below `prune_threshold` are then set to 0.
- later tasks, **selective retraining** (Algorithm 2): train the new task's head alone with L1 (eq. 3)
  and keep its nonzero weights; the top hidden units with a nonzero weight into the new head, then by
  breadth-first search the units of each lower layer with a nonzero weight into a selected unit, form
  the sub-network S; retrain only S's incoming weights and the head, with L2 (eq. 4: L + μ₂ ||W_S||²).
- **dynamic expansion** (Algorithm 3), when the new task's validation loss after selective retraining
  is still above τ (`loss_threshold`): add `expand_by` units to every hidden layer and train only
  their weights with L1 and group lasso over each new unit's incoming weights (eq. 5); new units whose
  group went to 0 are not needed and are dropped.
- **split / duplication** (Algorithm 4): train every weight the task uses with an L2 pull towards the
  weights before the task (eq. 6: L + λ ||W - W^{t-1}||²); every old unit whose incoming weights drifted
  by ρ_i = ||w_i^t - w_i^{t-1}||₂ > σ (`drift_threshold`) is duplicated: the copy keeps the new weights
  and serves this task and the later ones, the original gets its old weights back for the earlier tasks.
- **timestamps**: the net's unit masks (`unit_masks: true`) hold them: units added at task t are born
  at t, so no earlier task sees them, and a duplicated original is retired from t on.

The plan widens each hidden layer by its kept new units and duplicates (`widen` mode "zero", so it
replays), hands over the weights and the last phase's fit (the learner does not train again); the
other phases' compute is the plan's `search_flops`.

Deviations from the paper, and why:
- τ compares the validation loss (cross-entropy of the new head), not the training loss, which an
  over-parameterised net drives near 0 whatever it learnt.
- Sparsity is L1 and group lasso under the trainer's optimizer (no proximal step): entries below
  `prune_threshold` then become exact zeros, which the breadth-first search needs, and a new unit is
  not needed when its incoming weights' norm fell below `DROP_RATIO` (0.1) of its start (an adaptive
  optimizer leaves a driven-out weight oscillating at about its step size, not at 0).
- The net is not retrained after the split (the copies already hold this task's trained weights, so
  the task's function is unchanged by it); weight decay is turned off in every phase (it would move
  the entries a phase must keep), and its regulariser takes its place.
- Hyper-parameters (μ, μ₂, γ, λ, τ, σ, k) are this implementation's defaults, not the paper's
  cross-validated values. σ = 0.1 is a measurement (Split-MNIST task-IL, 784-400-400, seed 0): at 0.5
  no unit was duplicated (largest drift 0.36) and the earlier tasks lost 0.04; at 0.1 they lost
  0.0006 with 1.65x the parameters; at 0.05, 2.9x for 0.002 more accuracy.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import Grower, GrowthPlan, register_grower
from selfgrow.growth.den.phase import Group, Phase, Regulariser, prune_small, unit_norm
from selfgrow.options import option

DROP_RATIO = 0.1  # a new unit whose incoming weights shrank below this share of their start is not needed


@dataclass
class DENOptions:
    """DEN's options (see the module docstring)."""

    l1: float = option(1e-4, at_least=0, note="μ: L1 weight of the sparse phases")
    l2: float = option(1e-4, at_least=0, note="μ₂: L2 weight of selective retraining")
    group: float = option(1e-2, at_least=0, note="γ: group-lasso weight on the new units")
    pull: float = option(1e-2, at_least=0, note="λ: pull towards the weights before the task (split phase)")
    loss_threshold: float = option(0.1, at_least=0, note="τ: expand when the validation loss stays above it")
    drift_threshold: float = option(0.1, at_least=0, note="σ: duplicate units whose weights drifted more")
    expand_by: int = option(10, at_least=1, note="k: units added to every hidden layer")
    prune_threshold: float = option(1e-3, above=0, note="entries below it are zeros after an L1 phase")
    seed: int | None = option(None, at_least=0, note="null: the run's seed")


@register_grower("den")
class DENGrower(Grower):
    """DEN: selective retraining, dynamic expansion, split/duplication with timestamps (see the module docstring)."""

    Options = DENOptions

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        net = _check(learner)
        seed = (learner.trainer.seed if self.seed is None else self.seed) * 1_000_003 + task.index
        trainer = dataclasses.replace(learner.trainer, weight_decay=0.0, lr_grid=None, wd_grid=None, progress=False)
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            work = copy.deepcopy(net)
            if not learner.seen:
                return self._first(work, task, trainer)
            return self._later(net, work, task, trainer)

    def _rule(self) -> str:
        return (f"DEN: L1 μ={self.l1:g}, expand by {self.expand_by} when the validation loss > τ={self.loss_threshold:g}, "
                f"duplicate units drifted > σ={self.drift_threshold:g}")

    def _first(self, work: Any, task: Any, trainer: Any) -> GrowthPlan:
        """Eq. 2: the whole net with L1, then small entries set to 0."""
        everything = {n: torch.ones_like(p, dtype=torch.bool) for n, p in work.named_parameters()}
        fit = trainer.fit(work, task, "task", [Phase(everything, Regulariser(l1=self.l1, sparse=_weights(everything)))])
        pruned = prune_small(work, _weights(everything), self.prune_threshold)
        reasons = {"task": task.index, "rule": self._rule(), "decision": "first task: the whole net trained with L1",
                   "pruned_entries": pruned, "zero_share": _zero_share(work)}
        return GrowthPlan(reasons=reasons, weights=_state(work), fit=fit)

    def _later(self, net: Any, work: Any, task: Any, trainer: Any) -> GrowthPlan:
        t, depth = task.index, len(work.layers)
        head, head_bias = f"head.heads.{t}.weight", f"head.heads.{t}.bias"
        spent = 0.0
        # Algorithm 2: the new head with L1, then the sub-network its nonzero weights reach
        own_head = {head: _full(work, head), head_bias: _full(work, head_bias)}
        fit = trainer.fit(work, task, "task", [Phase(own_head, Regulariser(l1=self.l1, sparse={head: own_head[head]}))])
        spent += fit.train_flops
        prune_small(work, {head: own_head[head]}, self.prune_threshold)
        selected = _selected(work, t)
        trainable = {**_rows_and_columns(work, selected), **own_head}
        fit = trainer.fit(work, task, "task", [Phase(trainable, Regulariser(l2=self.l2))])
        spent += fit.train_flops
        loss = _val_loss(work, task)
        reasons: dict[str, Any] = {"task": t, "rule": self._rule(), "selected": [int(s.sum()) for s in selected], "val_loss": loss,
                                   "loss_threshold": self.loss_threshold}
        # Algorithm 3: expansion, new units' weights with L1 and group lasso, unneeded units dropped
        old_widths = [g.width for g in _groups(work)]
        kept = [[] for _ in range(depth)]
        if loss > self.loss_threshold:
            work = _expand(work, self.expand_by, t)
            new = _new_entries(work, old_widths, t)
            groups = [Group((f"layers.{l}.weight", f"layers.{l}.bias"), u)
                      for l in range(depth) for u in range(old_widths[l], old_widths[l] + self.expand_by)]
            regulariser = Regulariser(l1=self.l1, group=self.group, sparse=_weights(new), groups=groups)
            start = _norms(work, groups)
            fit = trainer.fit(work, task, "task", [Phase(new, regulariser)])
            spent += fit.train_flops
            prune_small(work, _weights(new), self.prune_threshold)
            kept = _needed(work, groups, start, old_widths, DROP_RATIO)
            _silence(work, old_widths, kept)
        reasons["expanded"] = loss > self.loss_threshold
        reasons["added"] = [len(k) for k in kept]
        # Algorithm 4: every weight of the task with a pull towards the old ones, then drifted units duplicated
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        used = {**_rows_and_columns(work, [_active(work, l, t) for l in range(depth)]),  # its old and kept units
                head: _full(work, head), head_bias: _full(work, head_bias)}  # the head, widened by the expansion
        pulled = {n: _old_block(work, n, before[n]) for n in used if n in before and n != head and n != head_bias}
        anchor = {n: _padded(before[n], work.get_parameter(n)) for n in pulled}
        fit = trainer.fit(work, task, "task", [Phase(used, Regulariser(pull=self.pull, anchor=anchor, pulled=pulled))])
        drift = _drift(work, before, old_widths, t)
        duplicated = [[u for u, rho in enumerate(layer) if rho > self.drift_threshold] for layer in drift]
        reasons.update({"duplicated": [len(d) for d in duplicated],
                        "max_drift": [max(layer, default=0.0) for layer in drift],
                        "drift_threshold": self.drift_threshold})
        ops = [{"op": "widen", "kwargs": {"layer": f"hidden.{l}", "by": len(kept[l]) + len(duplicated[l]), "mode": "zero"}}
               for l in range(depth) if kept[l] or duplicated[l]]
        final = GrowthPlan(ops=ops).apply(net)[0]
        _assemble(final, work, before, old_widths, kept, duplicated, t)
        reasons["decision"] = _sentence(reasons)
        return GrowthPlan(ops=ops, reasons=reasons, weights=_state(final), fit=fit, search_flops=spent)


# ---- the net ------------------------------------------------------------------------------------


def _check(learner: Any) -> Any:
    """The learner's MLP with unit masks and plain task heads, learning task-incrementally with no retention."""
    from selfgrow.nets.mlp import MLP

    net = learner.net
    if learner.scenario != "task":
        raise SelfgrowError(f"den is task-incremental (a head per task id); got scenario {learner.scenario!r}.")
    if learner.independent or not isinstance(net, MLP) or not net.spec.get("unit_masks"):
        raise SelfgrowError("den grows one shared MLP with unit masks (its timestamps): set net kind mlp, "
                            "net.options.unit_masks: true and mode shared.")
    if net.spec["gates"] or net.spec["head"].get("cosine"):
        raise SelfgrowError("den needs an MLP without ε-gates and with a plain (not cosine) head.")
    if learner.retention:
        names = ", ".join(r.name for r in learner.retention)
        raise SelfgrowError(f"den keeps old tasks by its own regularisers and timestamps; remove {names}.")
    return net


def _groups(net: Any) -> list[Any]:
    return [net.width_groups()[f"hidden.{l}"] for l in range(len(net.layers))]


def _full(net: Any, name: str) -> torch.Tensor:
    return torch.ones_like(net.get_parameter(name), dtype=torch.bool)


def _weights(entries: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weight matrices among `entries` (biases are not made sparse)."""
    return {n: m for n, m in entries.items() if n.endswith(".weight")}


def _state(net: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _zero_share(net: Any) -> float:
    weights = [p for n, p in net.named_parameters() if n.endswith(".weight")]
    return float(sum(int((p == 0).sum()) for p in weights) / max(1, sum(p.numel() for p in weights)))


def _active(net: Any, layer: int, task: int) -> torch.Tensor:
    return net.unit_masks[layer].active(task)


def _selected(net: Any, task: int) -> list[torch.Tensor]:
    """Algorithm 2's breadth-first search: the top units with a nonzero weight into the new head, then each lower
    layer's units with a nonzero weight into a selected unit (only units the task may use)."""
    depth = len(net.layers)
    head = net.get_parameter(f"head.heads.{task}.weight")
    selected = [None] * depth
    selected[-1] = (head != 0).any(0) & _active(net, depth - 1, task)
    for l in range(depth - 1, 0, -1):
        into = net.layers[l].weight[selected[l]]
        selected[l - 1] = (into != 0).any(0) & _active(net, l - 1, task)
    return selected


def _rows_and_columns(net: Any, selected: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The incoming weights and biases of the selected units (a mask per layer) from selected units (the input for
    layer 0)."""
    out = {}
    for l, rows in enumerate(selected):
        cols = torch.ones(net.layers[l].weight.shape[1], dtype=torch.bool) if l == 0 else selected[l - 1]
        out[f"layers.{l}.weight"] = rows[:, None] & cols[None, :]
        out[f"layers.{l}.bias"] = rows.clone()
    return out


@torch.no_grad()
def _val_loss(net: Any, task: Any) -> float:
    from selfgrow.train.batches import to_input

    was = net.training
    net.eval()
    device = next(net.parameters()).device
    x = to_input(task.x_val.to(device), task)
    loss = float(F.cross_entropy(net(x, task.index), task.y_val.to(device)))
    net.train(was)
    return loss


def _expand(net: Any, by: int, task: int) -> Any:
    """`by` new units (random incoming, zero outgoing weights) in every hidden layer, born at `task`."""
    from selfgrow.nets import ops

    for l in range(len(net.layers)):
        start = net.width_groups()[f"hidden.{l}"].width
        net = ops.widen(net, f"hidden.{l}", by, mode="zero").net
        net.unit_masks[l].born[start:] = task
    return net


def _new_entries(net: Any, old: list[int], task: int) -> dict[str, torch.Tensor]:
    """The new units' incoming rows and outgoing columns (into the next layer and into the task's head)."""
    depth = len(net.layers)
    out = {}
    for l in range(depth):
        weight = torch.zeros_like(net.layers[l].weight, dtype=torch.bool)
        weight[old[l]:] = True  # incoming rows of layer l's new units
        if l > 0:
            weight[:, old[l - 1]:] = True  # outgoing columns of layer l-1's new units
        bias = torch.zeros_like(net.layers[l].bias, dtype=torch.bool)
        bias[old[l]:] = True
        out[f"layers.{l}.weight"], out[f"layers.{l}.bias"] = weight, bias
    head = torch.zeros_like(net.get_parameter(f"head.heads.{task}.weight"), dtype=torch.bool)
    head[:, old[-1]:] = True
    out[f"head.heads.{task}.weight"] = head
    return out


@torch.no_grad()
def _norms(net: Any, groups: list[Group]) -> list[float]:
    params = dict(net.named_parameters())
    return [float(unit_norm(params, g)) for g in groups]


def _needed(net: Any, groups: list[Group], start: list[float], old: list[int], ratio: float) -> list[list[int]]:
    """Per layer, the new units (indices) whose incoming weights group lasso did not drive towards 0: their norm
    is still at least `ratio` times what it was before the phase."""
    kept: list[list[int]] = [[] for _ in old]
    for g, before, after in zip(groups, start, _norms(net, groups)):
        if after >= ratio * before:
            kept[int(g.names[0].split(".")[1])].append(g.unit)
    return kept


@torch.no_grad()
def _silence(net: Any, old: list[int], kept: list[list[int]]) -> None:
    """Zero the incoming and outgoing weights of the dropped new units and mask them out (they are not kept)."""
    from selfgrow.nets.unit_masks import NEVER

    depth = len(net.layers)
    for l in range(depth):
        dropped = [u for u in range(old[l], net.layers[l].weight.shape[0]) if u not in kept[l]]
        if not dropped:
            continue
        net.layers[l].weight[dropped] = 0
        net.layers[l].bias[dropped] = 0
        net.unit_masks[l].born[dropped] = NEVER
        consumers = [net.layers[l + 1].weight] if l + 1 < depth else [h.weight for h in net.head.heads]
        for w in consumers:
            w[:, dropped] = 0


def _old_block(net: Any, name: str, before: torch.Tensor) -> torch.Tensor:
    """The entries of `name` that existed before the task (its leading block of `before`'s shape)."""
    mask = torch.zeros_like(net.get_parameter(name), dtype=torch.bool)
    mask[tuple(slice(0, s) for s in before.shape)] = True
    return mask


def _padded(before: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`before` in the leading block of a zero tensor shaped like `like`."""
    out = torch.zeros_like(like)
    out[tuple(slice(0, s) for s in before.shape)] = before.to(like)
    return out


@torch.no_grad()
def _drift(net: Any, before: dict[str, torch.Tensor], old: list[int], task: int) -> list[list[float]]:
    """Per layer, ρ_i = ||w_i^t - w_i^{t-1}||₂ of every old unit's incoming weights and bias (0 for units the task
    does not use)."""
    out = []
    for l in range(len(net.layers)):
        w_old, b_old = before[f"layers.{l}.weight"], before[f"layers.{l}.bias"]
        w_new = net.layers[l].weight[: old[l], : w_old.shape[1]]
        b_new = net.layers[l].bias[: old[l]]
        rho = torch.sqrt((w_new - w_old).pow(2).sum(1) + (b_new - b_old).pow(2))
        rho = torch.where(_active(net, l, task)[: old[l]], rho, torch.zeros_like(rho))
        out.append([float(r) for r in rho])
    return out


@torch.no_grad()
def _assemble(final: Any, work: Any, before: dict[str, torch.Tensor], old: list[int], kept: list[list[int]],
              duplicated: list[list[int]], task: int) -> None:
    """Fill the grown net: old units as trained (the duplicated ones with their old weights, retired from `task`),
    then the kept new units and the copies of the duplicated ones (born at `task`, with the trained weights)."""
    from selfgrow.nets.unit_masks import NEVER

    depth = len(final.layers)
    sources = [list(range(old[l])) + kept[l] + duplicated[l] for l in range(depth)]
    for l in range(depth):
        src = torch.tensor(sources[l])
        cols = torch.arange(work.layers[l].weight.shape[1]) if l == 0 else torch.tensor(sources[l - 1])
        weight = work.layers[l].weight[src][:, cols].clone()
        bias = work.layers[l].bias[src].clone()
        for u in duplicated[l]:  # the original serves the earlier tasks with its old weights
            weight[u] = 0
            weight[u, : before[f"layers.{l}.weight"].shape[1]] = before[f"layers.{l}.weight"][u]
            bias[u] = before[f"layers.{l}.bias"][u]
        final.layers[l].weight.copy_(weight)
        final.layers[l].bias.copy_(bias)
        mask = final.unit_masks[l]
        mask.born.copy_(work.unit_masks[l].born[src])
        mask.retired.copy_(work.unit_masks[l].retired[src])
        mask.born[old[l]:] = task
        mask.retired[old[l]:] = NEVER
        mask.retired[duplicated[l]] = task
    last = torch.tensor(sources[-1])
    for j, head in enumerate(final.head.heads):
        weight = work.head.heads[j].weight[:, last].clone()
        if j < task:
            weight[:, old[-1]:] = 0  # earlier tasks never see the new units
        else:
            weight[:, duplicated[-1]] = 0  # this task reads the copies instead
        head.weight.copy_(weight)
        head.bias.copy_(work.head.heads[j].bias)


def _sentence(reasons: dict[str, Any]) -> str:
    """The plan's decision in words."""
    parts = [f"selective retraining of {sum(reasons['selected'])} unit(s), validation loss {reasons['val_loss']:.3f}"]
    if reasons["expanded"]:
        parts.append(f"above τ={reasons['loss_threshold']:g}: expanded, kept {sum(reasons['added'])} new unit(s)")
    else:
        parts.append(f"within τ={reasons['loss_threshold']:g}: no expansion")
    parts.append(f"{sum(reasons['duplicated'])} unit(s) drifted above σ={reasons['drift_threshold']:g} and were duplicated")
    return "; ".join(parts)


__all__ = ["DENGrower"]
