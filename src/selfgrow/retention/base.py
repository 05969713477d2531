"""The retention protocol: anti-forgetting strategies as hooks the trainer and learner call.

A strategy may add a loss term (`penalty`), provide replay samples (`replay`), scale or freeze
the learning rate of parameters (`param_lr_scale`), and update its state around each task.
Every hook has a neutral default so a strategy only overrides what it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from selfgrow.options import Configurable

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from selfgrow.nets.ops import Growth
    from selfgrow.streams.task import Task


@dataclass
class Batch:
    """A training batch. `x` is normalised and augmented when given to `penalty`; replay returns raw [0, 1] images."""

    x: torch.Tensor
    y: torch.Tensor  # local labels within each sample's task
    task: torch.Tensor  # task index of each sample
    y_global: torch.Tensor  # stream-wide class ids


class Retention(Configurable):
    """Base class of anti-forgetting strategies; subclasses declare `Options` and override the hooks they need."""

    component = "retention strategy"
    name = "retention"
    # True when `penalty` reads the net only through its forward passes (`net(x, task)`, `net.features`) and the
    # logits it is given, as distillation does: a grower may then score candidates on it with a functional copy
    penalty_on_outputs: bool = False
    # True when `after_task` fits how the net's outputs become predictions (a bias correction, aligned head rows):
    # growth candidates then run it on copies before they are scored, so their scores are the evaluation's
    decides_predictions_after_task: bool = False
    # Attributes that change only how the trained net's outputs become predictions, nothing in training (the replay
    # memory's classifier): a grower may choose them after a task's training (`selfgrow.growth.prediction_choice`)
    prediction_settings: tuple[str, ...] = ()

    def before_task(self, learner: Any, task: "Task") -> None:
        """Called after growth and before training on `task`."""

    def penalty(self, net: torch.nn.Module, batch: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        """An extra loss term for the current batch of new-task data (None adds nothing)."""
        return None

    def replay_penalty(self, net: torch.nn.Module, replayed: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        """An extra loss term on replayed samples, given their logits (DER-style logit matching; None adds nothing).

        Called once per batch with every replayed sample (class- and domain-IL), or once per earlier
        task with that task's replayed samples and its head's logits (task-IL); the terms add.
        """
        return None

    def after_backward(self, net: torch.nn.Module, params: list[torch.nn.Parameter]) -> int | None:
        """Gradient surgery (GEM, A-GEM): change `params`' `.grad` in place after backward, before the step.

        The gradients are those the optimizer will apply: the group's mean under data parallelism and
        unscaled under float16 loss scaling (`params` holds what the optimizer trains; a `.grad` may be None).
        Returns how many samples the hook itself passed forward and backward (its memory gradients), which
        the trainer counts in the run's training FLOPs; None for none.
        """

    def replay(self, batch_size: int, generator: torch.Generator) -> Batch | None:
        """Raw samples of earlier tasks to mix into the batch (None when there is no memory)."""
        return None

    def classification_loss(self, x: torch.Tensor, logits: torch.Tensor, y_global: torch.Tensor) -> torch.Tensor | None:
        """Per-sample losses that replace the cross-entropy of the batch's new and replayed rows (class- and
        domain-IL: one shared head, stream-wide ids), e.g. iCaRL's sigmoid binary cross-entropy with
        distilled targets; `x` is the normalised, augmented input of `logits`. None keeps cross-entropy."""
        return None

    def predict(self, net: torch.nn.Module, x: torch.Tensor, task: "Task", scenario: str,
                seen_class_ids: list[int] | None) -> torch.Tensor | None:
        """Predicted labels of a normalised test batch by a classifier of the strategy's own (iCaRL's
        nearest mean of exemplars), in the scenario's label space as `train.evaluate.predict` gives them;
        None lets the net's head decide."""
        return None

    def param_lr_scale(self, net: torch.nn.Module) -> dict[str, float]:
        """Learning-rate factor per parameter name; 0 freezes, missing names keep factor 1."""
        return {}

    def frozen_share(self, net: torch.nn.Module) -> dict[str, float]:
        """Share of each parameter's entries this strategy keeps fixed while the task trains (for the report's
        architecture drawing); by default the tensors `param_lr_scale` gives factor 0."""
        return {name: 1.0 for name, factor in self.param_lr_scale(net).items() if float(factor) == 0.0}

    def after_task(self, learner: Any, task: "Task") -> None:
        """Called after training on `task` (compute importances, fill memory, correct bias)."""

    def prepare_predictions(self, learner: Any, task: "Task") -> None:
        """Make the predictions of the present `prediction_settings` ready after `task` (e.g. compute the nearest
        means once the classifier is set to them); the strategy's own `after_task` calls it, and so does a choice
        among settings after training."""

    def on_growth(self, growth: "Growth") -> None:
        """Carry per-parameter state over to the grown network (`growth.param_map`)."""

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain data needed to resume; tensors are saved without pickle."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def memory_bytes(self) -> int:
        """Bytes held by the strategy beyond the network (replay memory, importances, old nets)."""
        return 0


def overriding(retention: "Sequence[Retention]", hook: str) -> list[Retention]:
    """The strategies whose class overrides `hook` of `Retention` (the others are not called: no cost per step)."""
    return [r for r in retention if getattr(type(r), hook) is not getattr(Retention, hook)]
