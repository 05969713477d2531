"""Bias correction for class-incremental single heads: weight aligning (Zhao et al. 2020)."""

from __future__ import annotations

from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.retention.base import Retention
from selfgrow.retention.registry import register_retention
from selfgrow.retention.scenario import require_scenario
from selfgrow.streams.task import Task


def linear_classifier(net: torch.nn.Module) -> torch.nn.Linear:
    """The linear classifier of a net's single head (the layer whose rows are per-class weights)."""
    classifier = getattr(getattr(net, "head", None), "classifier", None)
    if not isinstance(classifier, torch.nn.Linear):
        raise SelfgrowError(
            "bias_correction needs a net with a linear single head (head kind 'single', cosine false); "
            f"got head {getattr(net, 'spec', {}).get('head')!r}."
        )
    return classifier


def align_weights(classifier: torch.nn.Linear, old: list[int], new: list[int]) -> float:
    """Scale the new classes' rows (and biases) by gamma = mean |w_old| / mean |w_new|; returns gamma."""
    with torch.no_grad():
        norms = classifier.weight.norm(dim=1)
        old_idx = torch.as_tensor(old, device=norms.device)
        new_idx = torch.as_tensor(new, device=norms.device)
        gamma = norms[old_idx].mean() / norms[new_idx].mean().clamp_min(1e-12)
        classifier.weight[new_idx] *= gamma
        if classifier.bias is not None:
            classifier.bias[new_idx] *= gamma
    return float(gamma)


@register_retention("bias_correction")
class WeightAligning(Retention):
    """Weight aligning (Zhao et al. 2020, "Maintaining discrimination and fairness in class incremental learning").

    After training on each task after the first, the new classes' classifier rows are rescaled so
    their mean norm equals the old classes' mean norm, removing the bias of an imbalanced head
    towards new classes. The bias terms of new classes are scaled by the same gamma, so the new
    classes' logits are exactly multiplied by gamma (the paper's head has no bias). Only the
    aligning step is implemented; the paper's weight clipping and distillation are separate choices
    (combine with `lwf`). Class-IL only.
    """

    decides_predictions_after_task = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.old_classes: list[int] = []
        self.gammas: list[float] = []

    def before_task(self, learner: Any, task: Task) -> None:
        require_scenario(self.name, learner.scenario, ("class",))

    def after_task(self, learner: Any, task: Task) -> None:
        new = [c for c in task.class_ids if c not in self.old_classes]
        if self.old_classes and new:
            self.gammas.append(align_weights(linear_classifier(learner.net), self.old_classes, new))
        self.old_classes = sorted({*self.old_classes, *new})

    def state_dict(self) -> dict[str, Any]:
        return {"old_classes": list(self.old_classes), "gammas": list(self.gammas)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.old_classes = [int(c) for c in state["old_classes"]]
        self.gammas = [float(g) for g in state["gammas"]]
