"""Turn raw task tensors into network inputs and scenario-specific logits (shared by training and evaluation)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from selfgrow.data.transforms import augment_batch, normalize
from selfgrow.errors import SelfgrowError
from selfgrow.streams.task import SCENARIOS, Task


def check_scenario(scenario: str) -> str:
    """`scenario` itself when it is one of task|class|domain, else a clear error."""
    if scenario not in SCENARIOS:
        raise SelfgrowError(f"Unknown scenario {scenario!r}; accepted: {', '.join(SCENARIOS)}.")
    return scenario


def to_input(x: torch.Tensor, task: Task, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment (only when a generator is given and the task asks for it) and normalise a raw [0, 1] batch."""
    if generator is not None and task.augment:
        x = augment_batch(x, generator, **task.augment)
    if task.mean:
        x = normalize(x, task.mean, task.std)
    return x


def single_head_mask(width: int, seen_class_ids: list[int] | None, device: torch.device) -> torch.Tensor | None:
    """Additive logit mask hiding the columns of classes not seen yet (None when every column counts)."""
    if seen_class_ids is None:
        return None
    if seen_class_ids and max(seen_class_ids) >= width:
        raise SelfgrowError(f"Class id {max(seen_class_ids)} is outside the single head's {width} outputs.")
    mask = torch.full((width,), float("-inf"), device=device)
    mask[torch.as_tensor(seen_class_ids, dtype=torch.long, device=device)] = 0.0
    return mask


def endless_batches(indices: torch.Tensor, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Mini-batches (of 2 samples or more, as BatchNorm needs in train mode) of `indices` without end, reshuffled
    at each pass."""
    while True:
        order = indices[torch.randperm(len(indices), generator=generator)]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) > 1:  # a trailing single sample would break BatchNorm in train mode
                yield batch
