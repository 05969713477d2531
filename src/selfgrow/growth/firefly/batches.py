"""The data Firefly's neighbourhood is scored on, as the learner trains: minibatches of the new task joined by the
run's replay samples, and a fixed scoring sample of the same kind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from selfgrow.retention.base import Batch
from selfgrow.streams.task import Task
from selfgrow.train.batches import to_input


@dataclass
class Step:
    """One batch of the learner's loss: the new task's rows (normalised and augmented as in training, with
    `target` the scenario's labels) and the replayed rows of earlier tasks (None without a memory)."""

    new: Batch
    target: torch.Tensor
    replay: Batch | None = None
    replay_target: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.target) + (0 if self.replay_target is None else len(self.replay_target))


class TaskInputs:
    """Training images on `device` with the targets of the scenario's loss (local labels in task-IL, else class
    ids), and the strategies whose `replay` the trainer would join to each batch (`replay_from`)."""

    def __init__(self, task: Task, scenario: str, device: torch.device, replay_from: Sequence[Any] = ()) -> None:
        self.task, self.scenario, self.device = task, scenario, device
        self.x = task.x_train.to(device)
        self.y = task.y_train.to(device)
        self.y_global = task.global_labels(self.y)
        self.replay_from = list(replay_from)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Step]:
        """Endless shuffled minibatches, augmented and normalised as in training, each with its replay draw."""
        while True:
            order = torch.randperm(len(self.y), generator=generator).to(self.y.device)
            for start in range(0, len(order), batch_size):
                yield self._step(order[start:start + batch_size], generator, augment=True)

    def sample(self, n: int, generator: torch.Generator, chunk: int) -> list[Step]:
        """A fixed random subset of `n` samples (all when fewer) in chunks, normalised, not augmented, each chunk
        with a fixed replay draw of its size."""
        idx = torch.randperm(len(self.y), generator=generator)[:n].to(self.y.device)
        return [self._step(part, generator, augment=False) for part in idx.split(chunk)]

    def _step(self, idx: torch.Tensor, generator: torch.Generator, augment: bool) -> Step:
        new = Batch(to_input(self.x[idx], self.task, generator if augment else None), self.y[idx],
                    torch.full_like(self.y[idx], self.task.index), self.y_global[idx])
        target = new.y if self.scenario == "task" else new.y_global
        parts = [b for b in (r.replay(len(idx), generator) for r in self.replay_from) if b is not None and len(b.y)]
        if not parts:
            return Step(new, target)
        raw = Batch(*(torch.cat([getattr(b, f) for b in parts]).to(self.device) for f in ("x", "y", "task", "y_global")))
        replay = Batch(to_input(raw.x, self.task, generator if augment else None), raw.y, raw.task, raw.y_global)
        return Step(new, target, replay, replay.y if self.scenario == "task" else replay.y_global)
