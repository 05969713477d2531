"""Freezing or slowing the weights learned on earlier tasks, exact down to slices of widened tensors."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from selfgrow.nets.ops import Growth, remap_tensors
from selfgrow.options import option
from selfgrow.retention.base import Retention
from selfgrow.retention.registry import register_retention
from selfgrow.streams.task import Task


class _OldWeightsFactor(Retention):
    """Scales the learning of entries that existed before the current task by `factor`.

    Which entries are old is tracked as a boolean mask per parameter: all true after a task, carried
    through growth with the growth's `param_map`. Old is decided per output unit (dim 0 of a weight):
    a unit that existed before the task keeps all its incoming weights old, including those from
    units added below it by widening, so old units compute exactly what they did; only new units'
    rows are new.
    Entirely old tensors get the factor through `param_lr_scale`; partially old ones (widened) get a
    gradient hook multiplying the old entries' gradient by the factor. For SGD the hook equals an lr
    factor; for Adam-like optimisers, which are invariant to gradient scale, a factor in (0, 1) does
    not slow those entries (a factor of 0 still stops them).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.factor = float(self.factor)
        self.masks: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def after_task(self, learner: Any, task: Task) -> None:
        self._release()
        self.masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in learner.net.named_parameters()}

    def on_growth(self, growth: Growth) -> None:
        self.masks = {n: old_units(m.bool()) for n, m in remap_tensors(self.masks, growth).items()}

    def before_task(self, learner: Any, task: Task) -> None:
        self._release()
        for name, p in learner.net.named_parameters():
            if self._partially_old(name):
                keep = torch.where(self.masks[name], self.factor, 1.0).to(p.device, p.dtype)
                self._handles.append(p.register_hook(lambda g, keep=keep: g * keep))

    def param_lr_scale(self, net: torch.nn.Module) -> dict[str, float]:
        return {n: self.factor for n in self.masks if self._fully_old(n)}

    def frozen_share(self, net: torch.nn.Module) -> dict[str, float]:
        if self.factor != 0.0:
            return {}
        return {n: float(m.float().mean()) for n, m in self.masks.items() if bool(m.any())}

    def _fully_old(self, name: str) -> bool:
        return name in self.masks and bool(self.masks[name].all())

    def _partially_old(self, name: str) -> bool:
        mask = self.masks.get(name)
        return mask is not None and bool(mask.any()) and not bool(mask.all())

    def _release(self) -> None:
        """Remove the hooks installed for the previous task."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def state_dict(self) -> dict[str, Any]:
        return {f"mask/{n}": m for n, m in self.masks.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks = {k[len("mask/"):]: v for k, v in state.items() if k.startswith("mask/")}

    def memory_bytes(self) -> int:
        return sum(m.numel() * m.element_size() for m in self.masks.values())


_RESTORE_HOOKS: list[tuple[weakref.ref, Any]] = []  # (owner, handle) of every restore hook registered


def _restore_after_every_step(freeze: Freeze) -> Any:
    """A global optimizer post-step hook calling `freeze._restore`, holding `freeze` weakly.

    Copies discarded mid-task (growth-search candidates never reach `after_task`) thus keep neither
    their net alive nor any work per step; their hooks are removed when the next one is registered
    (not from inside the hook: the optimizer iterates over the hooks while it calls them).
    """
    for entry in [e for e in _RESTORE_HOOKS if e[0]() is None]:
        entry[1].remove()
        _RESTORE_HOOKS.remove(entry)
    owner = weakref.ref(freeze)

    def restore(*_: Any) -> None:
        alive = owner()
        if alive is not None:
            alive._restore()

    handle = register_optimizer_step_post_hook(restore)
    _RESTORE_HOOKS.append((owner, handle))
    return handle


@register_retention("freeze")
class Freeze(_OldWeightsFactor):
    """Freeze every weight (and slice of a widened weight) learned on earlier tasks.

    Entirely old tensors get learning-rate factor 0 (the trainer leaves them out of the optimiser).
    Old slices of widened tensors get a zero gradient and, so that weight decay or momentum carried
    across tasks cannot move them either, are copied back to their values at the start of the task
    after every optimiser step while the task trains (a global `torch.optim` step post-hook) and once
    more at the end of the task. Modules whose parameters are all old run in eval mode, so BatchNorm
    statistics of frozen layers stay as they were; a widened BatchNorm layer updates its statistics
    in training, and the old channels' running statistics are restored like the old weights. With
    growth that adds heads, units, channels or columns this gives exactly zero forgetting in
    task-IL (deepening inserts new layers on the old path, which is not freezing). Under the trainer's lr/wd
    grid, trials train deep copies that carry neither the gradient masks nor the restore; the old
    slices of the chosen weights are restored in `after_task` (list `freeze` first when another
    strategy reads the weights in its own `after_task`).
    """

    factor = 0.0  # frozen: the old entries' factor, fixed

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._saved: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._net: torch.nn.Module | None = None

    def before_task(self, learner: Any, task: Task) -> None:
        super().before_task(learner, task)
        net = learner.net
        self._net = net
        tensors = {**dict(net.named_parameters()), **dict(net.named_buffers())}
        self._saved = {}
        for name, mask in self._old_entries(net).items():
            old = mask.to(tensors[name].device)
            self._saved[name] = (old, tensors[name].detach()[old].clone())
        if self._saved:
            self._handles.append(_restore_after_every_step(self))
        for prefix, module in net.named_modules():
            own = [f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False)]
            has_buffers = any(True for _ in module.buffers(recurse=False))
            if own and has_buffers and all(self._fully_old(n) for n in own):
                self._handles.append(module.register_forward_pre_hook(_eval_mode))

    def _old_entries(self, net: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Masks of the old entries of widened parameters and of the per-channel buffers beside them.

        A buffer (e.g. BatchNorm running mean / variance) shares the mask of a widened parameter of
        the same module and shape, as widening appends channels after the old ones.
        """
        masks = {n: self.masks[n] for n, _ in net.named_parameters() if self._partially_old(n)}
        for prefix, module in net.named_modules():
            qualified = lambda n: f"{prefix}.{n}" if prefix else n
            widened = [masks[qualified(n)] for n, _ in module.named_parameters(recurse=False) if qualified(n) in masks]
            for name, buffer in module.named_buffers(recurse=False):
                mask = next((m for m in widened if m.shape == buffer.shape), None)
                if mask is not None:
                    masks[qualified(name)] = mask
        return masks

    def after_task(self, learner: Any, task: Task) -> None:
        self._restore()
        self._saved, self._net = {}, None
        super().after_task(learner, task)

    def _restore(self) -> None:
        """Copy the saved old entries back into the trained net's parameters."""
        if self._net is None:
            return
        tensors = {**dict(self._net.named_parameters()), **dict(self._net.named_buffers())}
        with torch.no_grad():
            for name, (old, values) in self._saved.items():
                tensors[name][old] = values


@dataclass
class SlowLROptions:
    """slow_lr's option: the learning-rate factor of the old weights."""

    factor: float = option(0.1, at_least=0, at_most=1)


@register_retention("slow_lr")
class SlowLR(_OldWeightsFactor):
    """Learn-to-Bind-and-Grow's slow-lr retention: old weights keep learning with a small factor (new: 1)."""

    Options = SlowLROptions


def _eval_mode(module: torch.nn.Module, args: Any) -> None:
    """Forward pre-hook running a frozen module with its stored statistics."""
    module.training = False


def old_units(mask: torch.Tensor) -> torch.Tensor:
    """Extend a mask of old entries to whole output units: every row (dim 0) holding an old entry."""
    if mask.dim() < 2:
        return mask
    rows = mask.flatten(1).any(1)
    return rows.view(-1, *[1] * (mask.dim() - 1)).expand_as(mask).clone()
