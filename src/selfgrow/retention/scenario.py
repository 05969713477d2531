"""What 'the outputs for a task' mean in each scenario, shared by the strategies that compute losses."""

from __future__ import annotations

from typing import NamedTuple

import torch

from selfgrow.data.transforms import normalize
from selfgrow.errors import SelfgrowError
from selfgrow.streams.task import Task


def task_outputs(net: torch.nn.Module, x: torch.Tensor, task_index: int, scenario: str) -> torch.Tensor:
    """Logits for inputs of task `task_index`: that task's head in task-IL, the shared head otherwise."""
    return net(x, task_index) if scenario == "task" else net(x)


def task_targets(y_local: torch.Tensor, y_global: torch.Tensor, scenario: str) -> torch.Tensor:
    """Labels matching `task_outputs`: local labels in task-IL, stream-wide class ids otherwise."""
    return y_local if scenario == "task" else y_global


class Normalisation(NamedTuple):
    """A task's per-channel input statistics, kept without its data."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def model_input(x: torch.Tensor, task: Task | Normalisation) -> torch.Tensor:
    """Raw [0, 1] images of `task` (or of its `Normalisation`) normalised as the trainer does, without augmentation."""
    return normalize(x, task.mean, task.std) if task.mean else x


def net_device(net: torch.nn.Module) -> torch.device:
    """The device holding the net's parameters."""
    return next(net.parameters()).device


def require_scenario(strategy: str, scenario: str, accepted: tuple[str, ...]) -> None:
    """Raise a clear error when a strategy is used in a scenario it does not support."""
    if scenario not in accepted:
        raise SelfgrowError(
            f"Retention {strategy!r} does not apply to scenario {scenario!r}; accepted: {', '.join(accepted)}."
        )
