"""iCaRL's representation learning loss (Rebuffi et al. 2017, Algorithm 3): sigmoid binary cross-entropy in which
the new classes take one-hot targets and the old classes the old net's sigmoid outputs (distillation)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from selfgrow.retention.distill import _Distillation
from selfgrow.retention.registry import register_retention
from selfgrow.retention.scenario import require_scenario
from selfgrow.streams.task import Task


@register_retention("icarl_bce")
class ICaRLLoss(_Distillation):
    """iCaRL's loss on every training sample x_i (new data and exemplars alike), in place of cross-entropy:

        l(x_i) = - sum_{y new} [d(y = y_i) log g_y(x_i) + d(y != y_i) log(1 - g_y(x_i))]
                 - sum_{y old} [q_i^y log g_y(x_i) + (1 - q_i^y) log(1 - g_y(x_i))],

    g_y = sigmoid of logit y, q_i^y = g_y of the net as it was after the previous task on the same
    (augmented) input (the paper's eq. in Algorithm 3, with q computed on the fly instead of stored
    once per task: the same values for a deterministic teacher, without keeping a table of them).
    "New" are the current task's classes, "old" every class seen before; the sum runs over the
    classes seen so far, and the trainer averages it over the batch. Class-incremental only (the
    paper's setting). Pair it with a replay memory whose `mix` is "dataset" and `classifier` "nme" for
    the whole method (the method preset `icarl`).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.new_classes: list[int] = []

    def before_task(self, learner: Any, task: Task) -> None:
        require_scenario(self.name, learner.scenario, ("class",))
        super().before_task(learner, task)
        self.new_classes = sorted(task.class_ids)

    def classification_loss(self, x: torch.Tensor, logits: torch.Tensor, y_global: torch.Tensor) -> torch.Tensor:
        classes = torch.as_tensor(sorted({*self.old_classes, *self.new_classes}), device=logits.device)
        targets = F.one_hot(y_global, logits.shape[1]).to(logits.dtype)
        if self.teacher is not None and self.old_classes:
            old = torch.as_tensor(self.old_classes, device=logits.device)
            with torch.no_grad():
                targets[:, old] = torch.sigmoid(self.teacher(x)[:, old].to(logits.dtype))
        return F.binary_cross_entropy_with_logits(logits[:, classes], targets[:, classes], reduction="none").sum(1)
