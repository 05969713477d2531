"""Elastic weight consolidation: a quadratic pull of important weights towards their values after old tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from selfgrow.nets.ops import Growth, remap_tensors
from selfgrow.options import option
from selfgrow.retention.base import Batch, Retention
from selfgrow.retention.fisher import diagonal_fisher
from selfgrow.retention.registry import register_retention
from selfgrow.retention.scenario import model_input, net_device, task_targets
from selfgrow.retention.tensors import flatten_state, tensor_bytes, unflatten_state
from selfgrow.streams.task import Task

Anchor = dict[str, dict[str, torch.Tensor]]  # {"fisher": {param: F}, "star": {param: theta*}}


@dataclass
class EWCOptions:
    """EWC's options (see `EWC`)."""

    lam: float = option(100.0, at_least=0)
    online: bool = False
    gamma: float = option(1.0, at_least=0, at_most=1)
    empirical: bool = False
    fisher_samples: int | None = option(1024, at_least=1, note="null uses every training sample")
    batch_size: int = option(32, at_least=1)
    seed: int = 0


@register_retention("ewc")
class EWC(Retention):
    """EWC (Kirkpatrick et al. 2017): penalty lam/2 * sum_i F_i (theta_i - theta*_i)^2 per old task.

    `online=True` is online EWC (Schwarz et al. 2018, "Progress & Compress"): one running Fisher
    F <- gamma * F + F_t and theta* <- theta after the latest task, so memory does not grow with tasks.
    The Fisher diagonal is computed after each task on its training data (un-augmented, normalised) from
    per-sample gradients (`selfgrow.retention.fisher`); by default labels are sampled from the model
    (true Fisher, as in the paper), `empirical=True` uses the true labels instead. `fisher_samples` caps
    the number of training samples used (a random subset; default 1024, None = all) to bound the cost:
    on Split-MNIST the whole task (12k samples) costs ~20x the task's training time; `batch_size` samples'
    per-sample gradients are held at once (batch_size x parameters floats). After growth, F and theta*
    are carried to the grown net through the growth's `param_map`; new weights get importance 0.

    Offline EWC keeps its per-task terms merged: sum_t F_t (theta - theta*_t)^2 equals
    F (theta - theta*)^2 + c with F = sum_t F_t, theta* = sum_t F_t theta*_t / F and a constant c, so
    one anchor and one scalar hold every old task exactly (same penalty, same gradient). Each step
    then costs one pass over the weights instead of one per old task (benchmarks/ewc_penalty.py),
    and memory no longer grows with the number of tasks.
    """

    Options = EWCOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.lam, self.gamma = float(self.lam), float(self.gamma)
        self.generator = torch.Generator().manual_seed(int(self.seed))
        self.anchors: list[Anchor] = []
        self.offset = 0.0  # the constant c of the merged offline terms (keeps the penalty's value exact)

    def after_task(self, learner: Any, task: Task) -> None:
        """Estimate the Fisher diagonal on the task's training data and store the anchor weights."""
        net = learner.net
        device = net_device(net)
        x, y_local = task.x_train, task.y_train
        if self.fisher_samples is not None and self.fisher_samples < x.shape[0]:
            keep = torch.randperm(x.shape[0], generator=self.generator)[: self.fisher_samples]
            x, y_local = x[keep], y_local[keep]
        y = task_targets(y_local, task.global_labels(y_local), learner.scenario).to(device)
        x = model_input(x.to(device), task)
        fisher = diagonal_fisher(
            net, x, y, task.index, learner.scenario,
            empirical=self.empirical, batch_size=self.batch_size, generator=self.generator,
        )
        star = {n: p.detach().clone() for n, p in net.named_parameters() if n in fisher}
        if self.online and self.anchors:
            old = self.anchors[0]["fisher"]
            fisher = {n: f + self.gamma * old[n] if n in old else f for n, f in fisher.items()}
        elif self.anchors:
            fisher, star = self._merged(self.anchors[0], fisher, star)
        self.anchors = [{"fisher": fisher, "star": star}]

    def _merged(self, old: Anchor, fisher: dict[str, torch.Tensor],
                star: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One anchor equal to the old anchor's term plus the new one (see the class docstring); updates `offset`."""
        merged_fisher, merged_star = {}, {}
        for name, f_new in fisher.items():
            f_old, s_old, s_new = old["fisher"].get(name), old["star"].get(name), star[name]
            if f_old is None:
                merged_fisher[name], merged_star[name] = f_new, s_new
                continue
            total = f_old + f_new
            weighted = f_old * s_old + f_new * s_new
            mean = torch.where(total > 0, weighted / total.clamp_min(torch.finfo(total.dtype).tiny), s_new)
            self.offset += float((f_old * s_old.square() + f_new * s_new.square() - total * mean.square()).sum())
            merged_fisher[name], merged_star[name] = total, mean
        return merged_fisher, merged_star

    def penalty(self, net: torch.nn.Module, batch: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        """lam/2 * sum over anchors and parameters of F * (theta - theta*)^2."""
        if not self.anchors:
            return None
        params = dict(net.named_parameters())
        total = logits.new_zeros(())
        for anchor in self.anchors:
            for name, f in anchor["fisher"].items():
                total = total + (f * (params[name] - anchor["star"][name]).pow(2)).sum()
        return 0.5 * self.lam * (total + self.offset)

    def on_growth(self, growth: Growth) -> None:
        """Carry F and theta* to the grown net (new weights: importance 0)."""
        self.anchors = [{k: remap_tensors(v, growth) for k, v in a.items()} for a in self.anchors]

    def state_dict(self) -> dict[str, Any]:
        state = flatten_state({str(i): a for i, a in enumerate(self.anchors)})
        state["generator"] = self.generator.get_state()
        state["offset"] = self.offset
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.generator.set_state(state.pop("generator"))
        self.offset = float(state.pop("offset", 0.0))
        nested = unflatten_state(state)
        self.anchors = [nested[k] for k in sorted(nested, key=int)]

    def memory_bytes(self) -> int:
        return sum(tensor_bytes(d) for a in self.anchors for d in a.values())
