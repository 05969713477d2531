"""GEM and A-GEM: an episodic memory per task whose gradients constrain each update (gradient surgery)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from selfgrow.options import option
from selfgrow.retention.base import Batch
from selfgrow.retention.projection import agem_project, gem_project
from selfgrow.retention.registry import register_retention
from selfgrow.retention.replay import DTYPES, Replay
from selfgrow.retention.scenario import model_input, net_device
from selfgrow.streams.task import Task


@dataclass
class MemoryOptions:
    """The per-task episodic memory's options, shared by GEM and A-GEM."""

    per_task: int = option(100, at_least=1, note="memory samples kept of each task")
    dtype: str = option("uint8", choices=tuple(DTYPES))
    seed: int = 0


@dataclass
class GEMOptions(MemoryOptions):
    """GEM's options (see `GEM`)."""

    margin: float = option(0.5, at_least=0, note="the lower bound gamma of the dual variables (memory strength)")


@dataclass
class AGEMOptions(MemoryOptions):
    """A-GEM's options (see `AGEM`)."""

    sample_size: int = option(256, at_least=1, note="memory samples drawn for each reference gradient")


class _GradientMemory(Replay):
    """`per_task` random training samples of every earlier task, never mixed into batches: their loss
    gradients, taken after each backward, are what the update is projected against.

    The memory is a `Replay` of task-balanced reservoir keys whose budget grows by `per_task` with
    every task, so each task keeps exactly `per_task` samples (GEM and A-GEM store a fixed number per
    task; a uniform sample of the task stands for the papers' "last m samples" of a stream read once).
    A memory gradient is the mean cross-entropy of the samples, normalised like training inputs without
    augmentation, on their task's head (task-IL) or the shared head with stream-wide labels; the forward
    pass is in the net's mode (batch statistics while training) and running statistics are restored after it.
    """

    selection, balance, replay_batch_size, batch_size = "reservoir", "task", None, 256  # Replay's settings
    draw, mix, classifier = "uniform", "batch", "head"

    def __init__(self, **options: Any) -> None:
        self.budget = 0
        super().__init__(**options)
        self.scenario, self.task = "class", None
        self._inputs: torch.Tensor | None = None  # the memory's model inputs on the net's device, for this task

    def before_task(self, learner: Any, task: Task) -> None:
        self.scenario, self.task, self._inputs = learner.scenario, task, None

    def after_task(self, learner: Any, task: Task) -> None:
        """Keep `per_task` samples of `task` beside the earlier tasks' (the budget is per task, not shared)."""
        self.budget = self.per_task * len(set(self.memory["task"].tolist()) | {task.index})
        super().after_task(learner, task)

    def replay(self, batch_size: int, generator: torch.Generator) -> Batch | None:
        return None

    def after_backward(self, net: torch.nn.Module, params: list[torch.nn.Parameter]) -> int | None:
        """Replace the gradients by their projection; returns the memory samples passed for it."""
        trained = [p for p in params if p.grad is not None]
        if len(self) == 0 or not trained:
            return None
        g = torch.cat([p.grad.reshape(-1) for p in trained])
        projected, samples = self._project(g, net, trained)
        for p, part in zip(trained, projected.split([p.numel() for p in trained])):
            p.grad.copy_(part.view_as(p.grad))
        return samples

    def _project(self, g: torch.Tensor, net: torch.nn.Module,
                 trained: list[torch.nn.Parameter]) -> tuple[torch.Tensor, int]:
        """The update to apply instead of the flat gradient `g`, and how many memory samples it took."""
        raise NotImplementedError

    def _gradient(self, net: torch.nn.Module, trained: list[torch.nn.Parameter], rows: torch.Tensor) -> torch.Tensor:
        """The flat gradient of the mean cross-entropy of memory samples `rows` with respect to `trained`."""
        device = net_device(net)
        if self._inputs is None or self._inputs.device != device:  # the memory only changes between tasks
            x = self.memory["x"]
            self._inputs = model_input((x.float() / 255 if x.dtype == torch.uint8 else x).to(device), self.task)
        x = self._inputs[rows.to(device)]
        tasks = self.memory["task"][rows]
        with _running_statistics_kept(net):
            if self.scenario == "task":
                loss = sum(F.cross_entropy(net(x[tasks == t], task=int(t)), self.memory["y"][rows][tasks == t].to(device),
                                           reduction="sum") for t in torch.unique(tasks).tolist()) / len(rows)
            else:
                loss = F.cross_entropy(net(x), self.memory["y_global"][rows].to(device))
            grads = torch.autograd.grad(loss, trained, allow_unused=True)
        return torch.cat([(torch.zeros_like(p) if d is None else d).reshape(-1) for p, d in zip(trained, grads)])


@register_retention("gem")
class GEM(_GradientMemory):
    """Gradient Episodic Memory (Lopez-Paz and Ranzato 2017): each update is the closest one to the
    loss gradient whose dot product with every earlier task's memory gradient is >= 0 (a QP solved in
    its dual, `selfgrow.retention.projection.gem_project`), so no step raises an old task's memory loss
    to first order. One memory gradient per earlier task, on all its `per_task` samples, every step:
    the cost grows with the number of tasks, as in the paper. `margin` is the paper's gamma (0.5 in its
    experiments' "memory strength"), applied as a lower bound on the dual variables (see `gem_project`).
    """

    Options = GEMOptions

    def _project(self, g: torch.Tensor, net: torch.nn.Module, trained: list[torch.nn.Parameter]) -> torch.Tensor:
        tasks = self.memory["task"]
        memory = torch.stack([self._gradient(net, trained, (tasks == t).nonzero().squeeze(1))
                              for t in torch.unique(tasks).tolist()])
        return gem_project(g, memory, self.margin), len(self)


@register_retention("agem")
class AGEM(_GradientMemory):
    """Averaged GEM (Chaudhry et al. 2019): one constraint, the gradient on `sample_size` memory samples
    drawn uniformly without replacement from all earlier tasks each step; when the update points against
    it, its component along that reference gradient is removed (`agem_project`). Draws come from the
    strategy's own generator (seeded by `seed`), so every data-parallel rank projects alike.
    """

    Options = AGEMOptions

    def _project(self, g: torch.Tensor, net: torch.nn.Module, trained: list[torch.nn.Parameter]) -> torch.Tensor:
        rows = torch.randperm(len(self), generator=self.generator)[: self.sample_size]
        return agem_project(g, self._gradient(net, trained, rows)), len(rows)


@contextmanager
def _running_statistics_kept(net: torch.nn.Module) -> Iterator[None]:
    """Restore every buffer (BatchNorm's running statistics) after the block: a memory pass is not training."""
    saved = [b.clone() for b in net.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(net.buffers(), saved):
                buffer.copy_(value)
