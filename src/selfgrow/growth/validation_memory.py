"""The validation memory of a search grower: what it keeps of earlier tasks' validation splits to score candidates.

Scoring a candidate's stability needs labelled data of the earlier tasks after they are over. The
learner may keep at most `per_class` validation samples of each class of each earlier task (None:
the whole split); those bytes are memory the learner holds, so they count in `memory_mb` (as
`bytes_memory`) like a replay memory. The samples kept are a seeded random draw of `per_class`
per class (`selfgrow.streams.sampling.cap_per_class`), the same for a task from one search to the
next and on resume.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from selfgrow.streams.sampling import cap_per_class

MEMORY_SEED = 0


def kept_indices(y: torch.Tensor, per_class: int | None) -> torch.Tensor:
    """Indices of `per_class` samples of every class of `y` (None: all), in their order; a draw seeded by
    `MEMORY_SEED`, so the same split always keeps the same samples."""
    return cap_per_class(torch.arange(len(y)), y, per_class, torch.Generator().manual_seed(MEMORY_SEED))


def memory_view(task: Any, per_class: int | None) -> Any:
    """The task with its validation split cut to what the validation memory keeps of it."""
    if per_class is None:
        return task
    keep = kept_indices(task.y_val, per_class)
    return dataclasses.replace(task, x_val=task.x_val[keep], y_val=task.y_val[keep])


def memory_bytes(tasks: Sequence[Any], per_class: int | None) -> int:
    """Bytes of the validation memory kept of `tasks` (images and labels as stored)."""
    total = 0
    for task in tasks:
        keep = kept_indices(task.y_val, per_class)
        n = len(keep)
        if n:
            total += n * (task.x_val[0].numel() * task.x_val.element_size() + task.y_val.element_size())
    return total


__all__ = ["kept_indices", "memory_bytes", "memory_view"]
