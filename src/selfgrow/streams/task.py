"""`Task` (one step of a stream) and `Stream` (the ordered tasks and their scenario)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

SCENARIOS = ("task", "class", "domain")


@dataclass
class Task:
    """One step of a stream.

    Images are float32 (N, C, H, W) in [0, 1]; normalisation and augmentation happen per batch
    in the trainer. Labels `y_*` are *local* (0 .. n_classes-1 within the task); `class_ids[k]`
    is the stream-wide id of local label k, used by single-head scenarios (class-IL: new ids
    per task; domain-IL: the same ids for every task). `class_names[k]` is for display.
    """

    index: int
    name: str
    class_ids: list[int]
    class_names: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    augment: dict = field(default_factory=dict)
    description: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.class_ids)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def global_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Map local labels to stream-wide class ids."""
        return torch.as_tensor(self.class_ids, dtype=torch.long, device=y.device)[y]

    def summary(self) -> dict:
        """Plain-data description (for `selfgrow list` and results files)."""
        return {
            "index": self.index,
            "name": self.name,
            "classes": list(self.class_names),
            "class_ids": list(self.class_ids),
            "train": int(self.y_train.numel()),
            "val": int(self.y_val.numel()),
            "test": int(self.y_test.numel()),
            "input_shape": list(self.input_shape),
        }


@dataclass
class Stream:
    """The ordered tasks of one experiment and the scenario they are evaluated in."""

    name: str
    scenario: str
    tasks: list[Task]
    description: str = ""

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            from selfgrow.errors import SelfgrowError

            raise SelfgrowError(f"Unknown scenario {self.scenario!r}; accepted: {', '.join(SCENARIOS)}.")

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __getitem__(self, i: int) -> Task:
        return self.tasks[i]

    def seen(self, upto: int) -> list[Task]:
        """The tasks 0..upto inclusive."""
        return self.tasks[: upto + 1]

    @property
    def num_classes(self) -> int:
        """Number of distinct stream-wide class ids over all tasks."""
        return len({c for t in self.tasks for c in t.class_ids})
