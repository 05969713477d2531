"""Turn numpy image stacks into the uint8 (N, C, H, W) tensors `DatasetArrays` holds."""

from __future__ import annotations

import numpy as np
import torch

from selfgrow.errors import SelfgrowError


def as_nchw_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) grey or (N, H, W, C) channels-last images -> contiguous uint8 (N, C, H, W) tensor."""
    if x.dtype != np.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    if x.ndim == 3:
        return torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)
    if x.ndim == 4:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    raise ValueError(f"expected images of shape (N, H, W) or (N, H, W, C), got {x.shape}")


def require_every_class(y: torch.Tensor, classes: list[str], source: str) -> None:
    """Refuse training labels that leave a named class without samples (its task could not be learned)."""
    counts = torch.bincount(y, minlength=len(classes))[: len(classes)]
    empty = [f"{classes[i]!r} (label {i})" for i in torch.nonzero(counts == 0).flatten().tolist()]
    if empty:
        raise SelfgrowError(
            f"{source} has no training samples of class {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}; "
            "every class needs training samples (fix the labels, or drop the class from the class names)."
        )


def labels_tensor(y: np.ndarray) -> torch.Tensor:
    """Labels of any integer dtype -> int64 (N,) tensor."""
    return torch.from_numpy(np.asarray(y).astype(np.int64, copy=False).reshape(-1))
