"""The in-memory form every dataset loader returns: uint8 images, int64 labels, class names."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DatasetArrays:
    """A whole dataset as tensors: `x_*` uint8 (N, C, H, W), `y_*` int64 (N,), line i of `classes` is label i."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)
