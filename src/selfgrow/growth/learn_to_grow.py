"""The `learn-to-grow` grower: Learn to Grow (Li, Zhou, Wu, Socher & Xiong, ICML 2019) on the modular net.

Before each task after the first, every depth l of the modular net offers the choices of the paper's
search space: **reuse** an existing module of that depth (frozen, shared), **adapt** an existing plain
module (the module plus a small additive function of its input, `ops.add_adapter`: a 1x1 convolution
for conv modules, a rank-r linear map for linear ones), or **new** (a fresh module of the depth's
template). The structure search is DARTS's continuous relaxation (Liu, Simonyan & Yang 2019): the
output of depth l is sum_c softmax(α_l)_c o_c(h_{l-1}), one architecture weight α_l,c per choice,
and the new task's head reads the mixed features. Weights (the fresh modules, the adapters, the
task's head) and α are learnt alternately (first-order DARTS): a weight step on a batch of one half of
the task's training set, then an α step on a batch of the other half, minimising

    L_α = cross-entropy + β Σ_l Σ_c softmax(α_l)_c · params_c / params_new,l

where params_c is what choice c adds (0 to reuse, the adapter's size to adapt, a module's to grow
new), so β (`cost_weight`) makes the search pay for the parameters it adds. After `steps` pairs of
steps (a count, not epochs: a small task's few batches would barely move α), each depth keeps its
largest α; the plan adds only the chosen fresh
modules and adapters, routes the task through them with the searched weights, and the learner then
trains the chosen structure with its trainer (the paper's parameter optimisation). The first task
trains the initial path (module 0 at every depth). Modules an earlier task uses stay frozen, and so
does an adapted module, so no earlier task's function changes.

Deviations from the paper, and why:
- α is learnt on a held-out half of the training set instead of the validation split, so the
  validation split stays untouched for the trainer's early stopping and the reported scores
  (DARTS itself splits the training set this way).
- Reused modules are never fine-tuned (no earlier task's function may change here; the modular
  net freezes what earlier tasks use).
- The cost term β above is this implementation's form of a search that favours reuse; β = 0 is
  plain DARTS; the default 0.03 is a measurement on tiny digits streams, not a tuning: at 0.1 a task
  on permuted pixels reused the first task's modules (0.6 accuracy against 0.95 with new ones), at
  0.03 it took new ones while a task with the first task's inputs reused them all. Adapters of linear modules are rank-r maps (`net.spec["adapter_rank"]`, default 8):
  a small parameter overhead, as the paper asks of adaptation.
- Search compute (the supernet's weight and α steps) is the plan's `search_flops`, counted by
  `torch.utils.flop_counter` on the first step of each kind and scaled by the batch count.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import Grower, GrowthPlan, path_net, register_grower
from selfgrow.options import option


@dataclass(frozen=True)
class Choice:
    """One choice at one depth: `kind` reuse / adapt / new, `module` the existing module reused or adapted (None:
    new), `index` the module that runs it in the supernet, `params` what it adds."""

    kind: str
    module: int | None
    index: int
    params: int

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "module": self.module, "params": self.params}


@dataclass
class LearnToGrowOptions:
    """Learn to Grow's options (see `LearnToGrowGrower`)."""

    steps: int = option(300, at_least=1, note="pairs of a weight step and an α step")
    arch_lr: float = option(0.01, above=0, note="Adam's lr on the architecture weights α")
    cost_weight: float = option(0.03, at_least=0, note="β: weight of the expected share of new parameters in L_α")
    adapt: bool = True
    seed: int | None = option(None, at_least=0, note="null: the run's seed")


@register_grower("learn-to-grow")
class LearnToGrowGrower(Grower):
    """Learn to Grow: per depth reuse / adapt / new, chosen by a DARTS relaxation (see the module docstring)."""

    Options = LearnToGrowOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.arch_lr = float(self.arch_lr)
        self.cost_weight = float(self.cost_weight)

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        net = _check(learner)
        if not learner.seen:
            return GrowthPlan(reasons={"task": task.index, "path": list(net.path(task.index)),
                                       "decision": "first task: it trains the initial path, module 0 at every depth"})
        supernet, choices = _supernet(net, self.adapt)
        seed = (learner.trainer.seed if self.seed is None else self.seed) * 1_000_003 + task.index
        alphas, flops = self._search(learner, task, supernet, choices, seed)
        weights = [F.softmax(a, dim=0).tolist() for a in alphas]
        picked = [max(range(len(w)), key=lambda i: (w[i], -i)) for w in weights]
        ops, path = _ops(net, task.index, [c[i] for c, i in zip(choices, picked)])
        grown = GrowthPlan(ops=ops).apply(net)[0]
        _take_searched(grown, supernet, [c[i] for c, i in zip(choices, picked)], path, task.index)
        words = [f"depth {d}: {_word(c[i])}" for d, (c, i) in enumerate(zip(choices, picked))]
        candidates = [{"depth": d, **choice.describe(), "weight": w, "chosen": i == picked[d]}
                      for d, (depth_choices, depth_weights) in enumerate(zip(choices, weights))
                      for i, (choice, w) in enumerate(zip(depth_choices, depth_weights))]
        reasons = {"task": task.index, "rule": f"DARTS relaxation over reuse / adapt / new per depth, β={self.cost_weight:g}",
                   "decision": "; ".join(words), "path": path, "architecture_weights": weights,
                   "added_params": sum(c[i].params for c, i in zip(choices, picked))}
        return GrowthPlan(ops=ops, reasons=reasons, candidates=candidates, weights=grown.state_dict(),
                          search_flops=flops)

    def _search(self, learner: Any, task: Any, supernet: Any, choices: list[list[Choice]],
                seed: int) -> tuple[list[torch.Tensor], float]:
        """First-order DARTS: alternate weight steps (one half of the training set) and α steps (the other)."""
        from torch.utils.flop_counter import FlopCounterMode

        from selfgrow.data import stratified_split
        from selfgrow.train import resolve_device
        from selfgrow.train.batches import endless_batches, to_input
        from selfgrow.train.interrupt import check as check_interrupt

        trainer = learner.trainer
        device = resolve_device(trainer.device)
        supernet.to(device).train()
        trained = _trained_names(supernet, choices, task.index)
        for name, p in supernet.named_parameters():
            p.requires_grad_(name in trained)
        theta = [p for name, p in supernet.named_parameters() if name in trained]
        weight_optimizer = trainer._optimizer([{"scale": 1.0, "params": theta}], trainer.lr, trainer.weight_decay)
        alphas = [torch.zeros(len(c), device=device, requires_grad=True) for c in choices]
        arch_optimizer = torch.optim.Adam(alphas, lr=self.arch_lr, betas=(0.5, 0.999))
        shares = [torch.tensor([c.params / max(1, max(o.params for o in depth)) for c in depth], device=device)
                  for depth in choices]
        weight_half, arch_half = stratified_split(task.y_train, 0.5, seed)
        if min(len(weight_half), len(arch_half)) < 2:
            raise SelfgrowError(f"learn-to-grow splits the training set in two halves of at least 2 samples; task "
                                f"{task.name!r} has {len(task.y_train)}.")
        generator = torch.Generator().manual_seed(seed + 1)
        augment = torch.Generator().manual_seed(seed + 2)
        batch_size = max(2, trainer.batch_size)  # BatchNorm needs 2 samples in train mode
        flops, per_sample = 0.0, {}

        def loss_on(idx: torch.Tensor, arch: bool) -> torch.Tensor:
            x = to_input(task.x_train[idx].to(device), task, augment)
            mix = [F.softmax(a if arch else a.detach(), dim=0) for a in alphas]
            loss = F.cross_entropy(supernet.head(_mixed_features(supernet, x, choices, mix), task.index),
                                   task.y_train[idx].to(device))
            if arch and self.cost_weight:
                loss = loss + self.cost_weight * sum((m * s).sum() for m, s in zip(mix, shares))
            return loss

        def step(idx: torch.Tensor, arch: bool) -> None:
            optimizer = arch_optimizer if arch else weight_optimizer
            counter = FlopCounterMode(display=False) if arch not in per_sample else None
            with counter or contextlib.nullcontext():
                optimizer.zero_grad(set_to_none=True)
                loss_on(idx, arch).backward()
            optimizer.step()
            if counter is not None:
                per_sample[arch] = counter.get_total_flops() / len(idx)

        weight_batches = endless_batches(weight_half, batch_size, generator)
        arch_batches = endless_batches(arch_half, batch_size, generator)
        for _ in range(self.steps):
            check_interrupt()
            idx, arch_idx = next(weight_batches), next(arch_batches)
            step(idx, arch=False)
            step(arch_idx, arch=True)
            flops += per_sample[False] * len(idx) + per_sample[True] * len(arch_idx)
        return [a.detach().cpu() for a in alphas], flops


def _check(learner: Any) -> Any:
    """The learner's modular net, after checking that Learn to Grow applies to this learner."""
    from selfgrow.nets.modular import ModularNet

    net = path_net(learner, ModularNet, "learn-to-grow", "modular net (e.g. net preset modular-resnet-ctrl)")
    if learner.retention:
        names = ", ".join(r.name for r in learner.retention)
        raise SelfgrowError(f"learn-to-grow keeps old tasks by freezing the modules they use and takes no retention "
                            f"strategy; remove {names}.")
    return net


def _supernet(net: Any, adapt: bool) -> tuple[Any, list[list[Choice]]]:
    """The net with a fresh module and an adapter of every plain module at every depth, and each depth's choices."""
    from selfgrow.nets import ops

    choices: list[list[Choice]] = []
    grown = net
    for d, count in enumerate(net.spec["library"]):
        adapted = {m for depth, m, _ in net.spec["adapters"] if depth == d}
        depth = [Choice("reuse", m, m, 0) for m in range(count)]
        new = ops.add_module(grown, d)
        grown = new.net
        depth.append(Choice("new", None, new.op["index"], _module_params(grown, d, new.op["index"])))
        for m in range(count) if adapt else ():
            if m not in adapted:
                growth = ops.add_adapter(grown, d, m)
                grown = growth.net
                depth.append(Choice("adapt", m, growth.op["index"], _module_params(grown, d, growth.op["index"])))
        choices.append(depth)
    return grown, choices


def _module_params(net: Any, depth: int, index: int) -> int:
    return sum(p.numel() for p in net.library[depth][index].parameters())


def _mixed_features(net: Any, x: torch.Tensor, choices: list[list[Choice]], mix: list[torch.Tensor]) -> torch.Tensor:
    """The supernet's features: at each depth the softmax(α)-weighted sum of every choice's output."""
    h = x
    for d, (depth, weights) in enumerate(zip(choices, mix)):
        h = sum(w * net.run_module(d, c.index, h) for c, w in zip(depth, weights))
    return h.mean(dim=(2, 3)) if h.dim() == 4 else h


def _trained_names(supernet: Any, choices: list[list[Choice]], task: int) -> set[str]:
    """Parameters the search trains: the fresh modules, the adapters and the task's head."""
    prefixes = tuple(f"library.{d}.{c.index}." for d, depth in enumerate(choices) for c in depth if c.kind != "reuse")
    prefixes += (f"head.heads.{task}.",)
    return {n for n, _ in supernet.named_parameters() if n.startswith(prefixes)}


def _ops(net: Any, task: int, picked: list[Choice]) -> tuple[list[dict[str, Any]], list[int]]:
    """Operator calls that add the picked fresh modules and adapters and route `task` through them, and the path."""
    ops, path = [], []
    for d, choice in enumerate(picked):
        if choice.kind == "reuse":
            path.append(choice.module)
            continue
        path.append(net.spec["library"][d])  # appended at the end of the depth
        ops.append({"op": "add_module", "kwargs": {"depth": d}} if choice.kind == "new"
                   else {"op": "add_adapter", "kwargs": {"depth": d, "base": choice.module}})
    return ops + [{"op": "set_task_path", "kwargs": {"task": task, "path": path}}], path


@torch.no_grad()
def _take_searched(grown: Any, supernet: Any, picked: list[Choice], path: list[int], task: int) -> None:
    """Load the searched weights of the picked fresh modules and adapters, and of the task's head, into `grown`."""
    for d, (choice, index) in enumerate(zip(picked, path)):
        if choice.kind != "reuse":
            grown.library[d][index].load_state_dict(supernet.library[d][choice.index].state_dict())
    grown.head.heads[task].load_state_dict(supernet.head.heads[task].state_dict())


def _word(choice: Choice) -> str:
    return {"reuse": f"reuse module {choice.module}", "adapt": f"adapt module {choice.module}",
            "new": "new module"}[choice.kind]


__all__ = ["LearnToGrowGrower"]
