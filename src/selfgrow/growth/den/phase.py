"""One training phase of DEN: which weight entries train, and the phase's regulariser (Yoon et al. 2018).

Every phase of DEN trains a subset of the network's entries (the new task's head; the sub-network
selected for it; the new units; everything) under its own penalty: L1 (sparsity), group lasso over
units' incoming weights (units that are not needed go to zero as a whole), L2 on the trained entries
(selective retraining), or an L2 pull towards the weights before the task (the split phase). A
`Phase` is a retention strategy for the trainer: its `penalty` adds the regulariser and its
`after_backward` zeroes the gradients of every entry outside the phase, so the trainer's optimizer
(without weight decay, which the grower turns off) moves nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from selfgrow.retention.base import Batch, Retention


@dataclass
class Group:
    """The incoming weights of one unit: rows `unit` of every tensor in `names` (a layer's weight and bias)."""

    names: tuple[str, ...]
    unit: int


@dataclass
class Regulariser:
    """L1 weight `l1` on the `sparse` entries, group lasso `group` on `groups`, L2 `l2` on the `trainable` entries,
    and the pull `pull` * ||W - anchor||^2 on the entries `pulled[name]` (the anchor holds the old values there)."""

    l1: float = 0.0
    group: float = 0.0
    l2: float = 0.0
    pull: float = 0.0
    sparse: dict[str, torch.Tensor] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)
    anchor: dict[str, torch.Tensor] = field(default_factory=dict)
    pulled: dict[str, torch.Tensor] = field(default_factory=dict)


class Phase(Retention):
    """Train only the entries `trainable[name]` (boolean masks; missing names stay fixed) under `regulariser`."""

    name = "den-phase"

    def __init__(self, trainable: dict[str, torch.Tensor], regulariser: Regulariser | None = None) -> None:
        self.trainable = trainable
        self.regulariser = regulariser or Regulariser()

    def penalty(self, net: torch.nn.Module, batch: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        reg = self.regulariser
        params = dict(net.named_parameters())
        total = logits.new_zeros(())
        if reg.l1:
            total = total + reg.l1 * sum(params[n][m].abs().sum() for n, m in reg.sparse.items())
        if reg.group:
            total = total + reg.group * sum(unit_norm(params, g) for g in reg.groups)
        if reg.l2:
            total = total + reg.l2 * sum(params[n][m].pow(2).sum() for n, m in self.trainable.items())
        if reg.pull:
            total = total + reg.pull * sum((params[n] - a)[reg.pulled[n]].pow(2).sum() for n, a in reg.anchor.items())
        return total

    def after_backward(self, net: torch.nn.Module, params: list[torch.nn.Parameter]) -> int | None:
        for name, p in net.named_parameters():
            if p.grad is None:
                continue
            mask = self.trainable.get(name)
            if mask is None:
                p.grad = None
            else:
                p.grad.mul_(mask.to(p.grad.dtype))
        return None


def unit_norm(params: dict[str, torch.Tensor], group: Group) -> torch.Tensor:
    """The L2 norm of one unit's incoming weights (its rows in every tensor of the group)."""
    return torch.sqrt(sum(params[n][group.unit].pow(2).sum() for n in group.names) + 1e-12)


@torch.no_grad()
def prune_small(net: torch.nn.Module, entries: dict[str, torch.Tensor], threshold: float) -> int:
    """Set the `entries` whose magnitude is below `threshold` to exactly 0 (what L1 drove towards it); the count."""
    params = dict(net.named_parameters())
    pruned = 0
    for name, mask in entries.items():
        small = mask & (params[name].abs() < threshold)
        params[name][small] = 0.0
        pruned += int(small.sum())
    return pruned
