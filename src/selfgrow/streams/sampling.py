"""Seeded per-class sample selection: caps on samples per class, and disjoint draws across tasks."""

from __future__ import annotations

import torch

from selfgrow.errors import SelfgrowError


def class_ranks(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A uniformly random rank (0, 1, ...) of every sample among the samples of its class."""
    shuffled = torch.randperm(len(y), generator=generator)
    order = shuffled[torch.sort(y[shuffled], stable=True).indices]  # grouped by class, random inside
    sorted_y = y[order]
    first_of_class = torch.searchsorted(sorted_y, sorted_y)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(y)) - first_of_class
    return ranks


def cap_per_class(idx: torch.Tensor, y: torch.Tensor, cap: int | None, generator: torch.Generator) -> torch.Tensor:
    """Keep at most `cap` randomly chosen indices of each class (labels `y[idx]`); order is kept."""
    if cap is None or len(idx) == 0:
        return idx
    return idx[class_ranks(y[idx], generator) < cap]


def val_cap(max_train_per_class: int | None, max_val_per_class: int | None, val_fraction: float) -> int | None:
    """The validation samples kept per class: `max_val_per_class` when given; else, when training is
    capped, round(max_train_per_class * val_fraction / (1 - val_fraction)), so that train:val stays what
    `val_fraction` says instead of a reduced training set beside the full-size validation set; else no cap."""
    if max_val_per_class is not None or max_train_per_class is None:
        return max_val_per_class
    return round(max_train_per_class * val_fraction / (1 - val_fraction))


def check_cap(name: str, value: int | None) -> None:
    """Reject a per-class limit that is not a positive integer (None means no limit)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SelfgrowError(f"{name} {value!r} is not accepted; give a positive integer or leave it unset.")


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded random permutation of range(n) that moves every element (no fixed point)."""
    if n < 2:
        raise SelfgrowError(f"Shuffling labels so that none keeps its id needs at least 2 classes; got {n}.")
    while True:  # about e = 2.72 draws on average
        perm = torch.randperm(n, generator=generator)
        if not bool((perm == torch.arange(n)).any()):
            return perm


class ClassPool:
    """The training indices of one dataset in a fixed seeded order per class.

    Tasks draw consecutive chunks, so two tasks of a stream that use the same class get disjoint
    samples while the class has enough of them (the draw restarts from the beginning of the
    class when it runs out). A request larger than the whole class is scaled down in proportion,
    keeping "whatever is the maximum available" as the CTrL benchmark does.
    """

    def __init__(self, y: torch.Tensor, seed: int) -> None:
        shuffled = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        labels = y[shuffled]
        self._by_class = {int(c): shuffled[labels == c] for c in torch.unique(y)}
        self._cursor = dict.fromkeys(self._by_class, 0)

    def size(self, c: int) -> int:
        """Number of training samples of class c."""
        return len(self._by_class.get(c, ()))

    def draw(self, c: int, counts: list[int]) -> list[torch.Tensor]:
        """Disjoint chunks of class c's indices, one per entry of `counts` (e.g. [n_train, n_val])."""
        pool = self._by_class.get(c)
        if pool is None:
            raise SelfgrowError(f"Class {c!r} has no training samples in this dataset.")
        counts = fit_counts(counts, len(pool))
        start = self._cursor[c]
        if start + sum(counts) > len(pool):
            start = 0
        self._cursor[c] = start + sum(counts)
        bounds = torch.tensor([0, *counts]).cumsum(0).tolist()
        return [pool[start + lo : start + hi] for lo, hi in zip(bounds[:-1], bounds[1:])]


def fit_counts(counts: list[int], available: int) -> list[int]:
    """Scale sample counts down in proportion when their sum exceeds what is available."""
    total = sum(counts)
    if total <= available:
        return list(counts)
    return [count * available // total for count in counts]
