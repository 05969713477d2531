"""Deterministic stratified splits (validation sets, and test sets for data that comes without one)."""

from __future__ import annotations

import numpy as np
import torch

from selfgrow.data.arrays import DatasetArrays
from selfgrow.errors import SelfgrowError


def stratified_split(y: torch.Tensor | np.ndarray, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sample indices into (train_idx, val_idx), sorted int64 tensors, stratified per class.

    Each class contributes round(n_c * val_fraction) samples to the validation side, capped so
    that every class keeps at least one training sample. Which samples go is drawn from a
    `torch.Generator` seeded with `seed`, so the split depends only on (y, val_fraction, seed).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise SelfgrowError(f"Split fraction {val_fraction!r} is outside the accepted range [0, 1).")
    labels = torch.as_tensor(np.asarray(y)).reshape(-1).long()
    if len(labels) and int(labels.min()) < 0:
        raise SelfgrowError(f"Labels must be non-negative class indices; got {int(labels.min())}.")
    generator = torch.Generator().manual_seed(int(seed))
    # Shuffle, then group by class (stable sort keeps the shuffled order inside each class):
    # a sample's rank within its class is uniformly random, and the lowest ranks go to validation.
    shuffled = torch.randperm(len(labels), generator=generator)
    order = shuffled[torch.sort(labels[shuffled], stable=True).indices]
    sorted_labels = labels[order]
    counts = torch.bincount(labels) if len(labels) else torch.zeros(0, dtype=torch.long)
    class_start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(labels)) - class_start[sorted_labels]
    n_val = torch.minimum(torch.round(counts * val_fraction).long(), (counts - 1).clamp(min=0))
    is_val = rank < n_val[sorted_labels]
    return torch.sort(order[~is_val]).values, torch.sort(order[is_val]).values


def split_dataset(
    name: str, x: torch.Tensor, y: torch.Tensor, classes: list[str], test_fraction: float, seed: int
) -> DatasetArrays:
    """`DatasetArrays` whose test split is a stratified `test_fraction` of (x, y), for data without a test set."""
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    return DatasetArrays(name, x[train_idx], y[train_idx], x[test_idx], y[test_idx], classes)
