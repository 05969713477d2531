"""Distillation from a frozen copy of the network as it was after the previous task: LwF and feature KD."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfgrow.nets import build
from selfgrow.options import option
from selfgrow.retention.base import Batch, Retention
from selfgrow.retention.registry import register_retention
from selfgrow.streams.task import Task


def frozen_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of `net` in eval mode with gradients switched off (the teacher)."""
    teacher = copy.deepcopy(net).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Li & Hoiem's distillation loss: -sum softmax(teacher/T) * log softmax(student/T), batch mean."""
    target = torch.softmax(teacher / temperature, dim=1)
    return -(target * torch.log_softmax(student / temperature, dim=1)).sum(1).mean()


class _Distillation(Retention):
    """Keeps the teacher: the net captured at the end of each task, used while learning the next one."""

    penalty_on_outputs = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.teacher: torch.nn.Module | None = None
        self.teacher_tasks = 0
        self.old_classes: list[int] = []
        self.scenario = "class"

    def before_task(self, learner: Any, task: Task) -> None:
        self.scenario = learner.scenario

    def after_task(self, learner: Any, task: Task) -> None:
        self.scenario = learner.scenario
        self.teacher = frozen_copy(learner.net)
        self.teacher_tasks = task.index + 1
        self.old_classes = sorted({*self.old_classes, *task.class_ids})

    def memory_bytes(self) -> int:
        if self.teacher is None:
            return 0
        tensors = [*self.teacher.parameters(), *self.teacher.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def state_dict(self) -> dict[str, Any]:
        """The teacher (spec and weights) and what it was trained on: a checkpoint between tasks needs it."""
        if self.teacher is None:
            return {}
        return {"teacher_spec": self.teacher.spec, "teacher_tasks": self.teacher_tasks,
                "old_classes": list(self.old_classes),
                **{f"teacher/{k}": v for k, v in self.teacher.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        teacher = build(state["teacher_spec"])
        teacher.load_state_dict({k[len("teacher/"):]: v for k, v in state.items() if k.startswith("teacher/")})
        self.teacher = frozen_copy(teacher)
        self.teacher_tasks = int(state["teacher_tasks"])
        self.old_classes = [int(c) for c in state["old_classes"]]


@dataclass
class LwFOptions:
    """LwF's options: the loss weight `alpha` and the temperature."""

    alpha: float = option(1.0, at_least=0)
    temperature: float = option(2.0, above=0)


@dataclass
class FeatureKDOptions:
    """Feature distillation's options: the loss weight `alpha` and the distance."""

    alpha: float = option(1.0, at_least=0)
    distance: str = option("l2", choices=("l2", "cosine"))


@register_retention("lwf")
class LwF(_Distillation):
    """Learning without Forgetting (Li & Hoiem 2016): distil the old net's outputs with temperature T.

    The loss is alpha * soft cross-entropy (no T^2 factor, as in the paper); the paper's warm-up
    (training the new head alone before joint training) is not done. Which outputs are distilled
    depends on the scenario: task-IL, every old task's head (one forward per old head); class-IL, the
    logits of the classes seen before the current task (by stream-wide id, so a head
    pre-sized for future classes is handled); domain-IL, all logits (the classes are shared).
    """

    Options = LwFOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.alpha, self.temperature = float(self.alpha), float(self.temperature)

    def penalty(self, net: torch.nn.Module, batch: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        if self.teacher is None:
            return None
        T = self.temperature
        with torch.no_grad():
            if self.scenario == "task":
                old = [self.teacher(batch.x, t) for t in range(self.teacher_tasks)]
            else:
                old = [self.teacher(batch.x)]
        if self.scenario == "task":
            loss = sum(soft_cross_entropy(net(batch.x, t), o, T) for t, o in enumerate(old))
        else:
            seen = torch.as_tensor(self.old_classes, device=logits.device)
            loss = soft_cross_entropy(logits[:, seen], old[0][:, seen], T)
        return self.alpha * loss


@register_retention("feature_kd")
class FeatureKD(_Distillation):
    """Feature distillation: keep `net.features(x)` close to the old net's features on new data.

    `distance="l2"` is the squared Euclidean distance (batch mean); `"cosine"` is 1 - cos, the
    less-forget constraint of Hou et al. 2019 (UCIR). When the net was widened, the new features
    are compared on the old feature dimensions, which growth operators keep first (new units are
    appended), so the comparison is exact at the moment of growth.
    """

    Options = FeatureKDOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.alpha = float(self.alpha)

    def penalty(self, net: torch.nn.Module, batch: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        if self.teacher is None:
            return None
        with torch.no_grad():
            old = self.teacher.features(batch.x)
        new = net.features(batch.x)[:, : old.shape[1]]
        if self.distance == "cosine":
            loss = (1 - F.cosine_similarity(new, old, dim=1)).mean()
        else:
            loss = (new - old).pow(2).sum(1).mean()
        return self.alpha * loss
