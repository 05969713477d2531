"""Freezing or slowing the weights learned on earlier tasks, exact down to slices of widened tensors."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from selfgrow.errors import SelfgrowError
from selfgrow.nets.ops import remap_tensors
from selfgrow.retention.base import Retention
from selfgrow.retention.registry import register_retention


class _OldWeightsFactor(Retention):
    """Scales the learning of entries that existed before the current task by `factor`.

    Which entries are old is tracked as a boolean mask per parameter: all true after a task, carried
    through growth with the growth's `param_map` (entries a growth operator adds are new: false).
    Entirely old tensors get the factor through `param_lr_scale`; partially old ones (widened) get a
    gradient hook multiplying the old entries' gradient by the factor. For SGD the hook equals an lr
    factor; for Adam-like optimisers, which are invariant to gradient scale, a factor in (0, 1) does
    not slow those entries (a factor of 0 still stops them).
    """

    def __init__(self, factor: float) -> None:
        self.factor = float(factor)
        self.masks: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def after_task(self, learner: Any, task) -> None:
        self._release()
        self.masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in learner.net.named_parameters()}

    def on_growth(self, growth) -> None:
        self.masks = {n: m.bool() for n, m in remap_tensors(self.masks, growth).items()}

    def before_task(self, learner: Any, task) -> None:
        self._release()
        for name, p in learner.net.named_parameters():
            if self._partially_old(name):
                keep = torch.where(self.masks[name], self.factor, 1.0).to(p.device, p.dtype)
                self._handles.append(p.register_hook(lambda g, keep=keep: g * keep))

    def param_lr_scale(self, net: torch.nn.Module) -> dict[str, float]:
        return {n: self.factor for n in self.masks if self._fully_old(n)}

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


@register_retention("freeze")
class Freeze(_OldWeightsFactor):
    """Freeze every weight (and slice of a widened weight) learned on earlier tasks.

    Entirely old tensors get learning-rate factor 0 (the trainer leaves them out of the optimiser).
    Old slices of widened tensors get a zero gradient and, so that weight decay or momentum carried
    across tasks cannot move them either, are copied back to their values at the start of the task
    after every optimiser step while the task trains (a global `torch.optim` step post-hook) and once
    more at the end of the task. Modules whose parameters are all old run in eval mode, so BatchNorm
    statistics of frozen layers stay as they were (a widened BatchNorm layer still updates the
    statistics of its old channels). With growth that only adds heads, units or columns and no
    widened BatchNorm, this gives exactly zero forgetting in task-IL. Under the trainer's lr/wd
    grid, trials train deep copies that carry neither the gradient masks nor the restore; the old
    slices of the chosen weights are restored in `after_task` (list `freeze` first when another
    strategy reads the weights in its own `after_task`).
    """

    def __init__(self) -> None:
        super().__init__(factor=0.0)
        self._saved: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._net: torch.nn.Module | None = None

    def before_task(self, learner: Any, task) -> None:
        super().before_task(learner, task)
        net = learner.net
        self._net = net
        self._saved = {}
        for name, p in net.named_parameters():
            if self._partially_old(name):
                old = self.masks[name].to(p.device)
                self._saved[name] = (old, p.detach()[old].clone())
        if self._saved:
            self._handles.append(register_optimizer_step_post_hook(lambda *_: self._restore()))
        for prefix, module in net.named_modules():
            own = [f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False)]
            has_buffers = any(True for _ in module.buffers(recurse=False))
            if own and has_buffers and all(self._fully_old(n) for n in own):
                self._handles.append(module.register_forward_pre_hook(_eval_mode))

    def after_task(self, learner: Any, task) -> None:
        self._restore()
        self._saved, self._net = {}, None
        super().after_task(learner, task)

    def _restore(self) -> None:
        """Copy the saved old entries back into the trained net's parameters."""
        if self._net is None:
            return
        params = dict(self._net.named_parameters())
        with torch.no_grad():
            for name, (old, values) in self._saved.items():
                params[name][old] = values


@register_retention("slow_lr")
class SlowLR(_OldWeightsFactor):
    """Learn-to-Bind-and-Grow's slow-lr retention: old weights keep learning with a small factor (new: 1)."""

    def __init__(self, factor: float = 0.1) -> None:
        if not 0 <= factor <= 1:
            raise SelfgrowError(f"slow_lr factor must be in [0, 1], got {factor!r}.")
        super().__init__(factor=factor)


def _eval_mode(module: torch.nn.Module, args: Any) -> None:
    """Forward pre-hook running a frozen module with its stored statistics."""
    module.training = False

