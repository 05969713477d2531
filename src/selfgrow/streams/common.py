"""Pieces every stream builder uses: option checks, class lookup, statistics, augmentation, labels."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.transforms import channel_stats
from selfgrow.errors import SelfgrowError, unknown_name

# Augmentation of CIFAR-like inputs (RGB 32x32): random 32x32 crops of the image padded by 4
# pixels and random horizontal flips, as for CIFAR in the literature and in CTrL (thesis 5.4).
CIFAR_AUGMENT = {"crop_padding": 4, "hflip": True}


def check_scenario(stream: str, scenario: str, accepted: Sequence[str]) -> str:
    """Reject a scenario this stream cannot be evaluated in."""
    if scenario not in accepted:
        raise SelfgrowError(f"Scenario {scenario!r} is not accepted for stream {stream!r}; accepted: {', '.join(accepted)}.")
    return scenario


def check_fraction(name: str, value: float) -> float:
    """Reject a fraction outside [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise SelfgrowError(f"{name} {value!r} is not accepted; give a number in [0, 1).")
    return float(value)


def default_augment(shape: Sequence[int]) -> dict:
    """Training augmentation for inputs of this (C, H, W) shape: CIFAR's for RGB 32x32, else none."""
    return dict(CIFAR_AUGMENT) if tuple(shape) == (3, 32, 32) else {}


def class_index(data: DatasetArrays, value: int | str) -> int:
    """The label of a class given by index or by name in `data.classes`."""
    if isinstance(value, str) and value in data.classes:
        return data.classes.index(value)
    if isinstance(value, str) and not value.isdigit():
        raise unknown_name(f"{data.name} class", value, data.classes)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SelfgrowError(f"Class {value!r} is not accepted; give a class index or a class name of {data.name!r}.")
    index = int(value)
    if not 0 <= index < data.num_classes:
        raise SelfgrowError(f"Class {value!r} is not in dataset {data.name!r}; accepted: 0 .. {data.num_classes - 1} or a class name.")
    return index


def class_indices(data: DatasetArrays, values: Sequence[int | str] | None) -> list[int]:
    """Labels of the listed classes (all classes when None); each class at most once."""
    if values is None:
        return list(range(data.num_classes))
    indices = [class_index(data, v) for v in values]
    if len(set(indices)) != len(indices):
        raise SelfgrowError(f"Classes {list(values)!r} name a class more than once; list each class once.")
    return indices


def local_labels(y: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Dataset labels -> position in `classes` (the task's local labels)."""
    size = max([*classes, int(y.max()) if len(y) else 0]) + 1
    lookup = torch.full((size,), -1, dtype=torch.long)
    lookup[torch.as_tensor(list(classes), dtype=torch.long)] = torch.arange(len(classes))
    return lookup[y]


def in_classes(y: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Indices of the samples whose label is one of `classes`."""
    return torch.nonzero(torch.isin(y, torch.as_tensor(list(classes), dtype=y.dtype))).flatten()


def normalisation(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images (uint8 read as /255); a constant channel gets std 1.

    A zero std would make normalisation divide by zero (e.g. a background colour filling a
    channel); as in scikit-learn's StandardScaler, such a channel is then only centred.
    """
    mean, std = channel_stats(x)
    return mean, tuple(s if s > 1e-6 else 1.0 for s in std)
