"""Accuracy of a net on one task's split under a scenario's test protocol (batched, no grad, eval mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.streams.task import Task
from selfgrow.train.batches import check_scenario, single_head_mask, to_input

SPLITS = ("train", "val", "test")


def split_tensors(task: Task, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The (images, local labels) of `split`."""
    if split not in SPLITS:
        raise SelfgrowError(f"Unknown split {split!r}; accepted: {', '.join(SPLITS)}.")
    return getattr(task, f"x_{split}"), getattr(task, f"y_{split}")


@torch.no_grad()
def predict(
    net: torch.nn.Module,
    x: torch.Tensor,
    task: Task,
    scenario: str,
    seen_class_ids: list[int] | None = None,
) -> torch.Tensor:
    """Predicted labels of one normalised batch: local labels (task-IL) or stream-wide class ids (class/domain-IL).

    Task-IL uses the head of `task.index`; class- and domain-IL take the argmax of the single head,
    restricted to `seen_class_ids` when given.
    """
    if check_scenario(scenario) == "task":
        return net(x, task=task.index).argmax(1)
    logits = net(x)
    mask = single_head_mask(logits.shape[1], seen_class_ids, logits.device)
    return (logits if mask is None else logits + mask).argmax(1)


@torch.no_grad()
def accuracy(
    net: torch.nn.Module,
    task: Task,
    scenario: str,
    split: str = "test",
    seen_class_ids: list[int] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 512,
    classifiers: Sequence[Any] = (),
) -> float:
    """Fraction of `split` of `task` predicted right (NaN for an empty split); the net's mode is restored.

    `classifiers`: strategies whose `predict` may decide instead of the net's head (the first that answers).
    """
    x_all, y_all = split_tensors(task, split)
    if len(y_all) == 0:
        return float("nan")
    device = torch.device(device) if device is not None else next(net.parameters()).device
    was_training = net.training
    net.eval()
    correct = 0
    try:
        for start in range(0, len(y_all), batch_size):
            x = to_input(x_all[start : start + batch_size].to(device), task)
            y = y_all[start : start + batch_size].to(device)
            target = y if scenario == "task" else task.global_labels(y)
            own = next((p for p in (c.predict(net, x, task, scenario, seen_class_ids) for c in classifiers)
                        if p is not None), None)
            guess = own if own is not None else predict(net, x, task, scenario, seen_class_ids)
            correct += int((guess == target).sum())
    finally:
        net.train(was_training)
    return correct / len(y_all)
