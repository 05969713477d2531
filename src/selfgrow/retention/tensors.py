"""Small helpers for the tensors strategies keep: (de)flattening nested state, counting bytes."""

from __future__ import annotations

from typing import Any

import torch


def flatten_state(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict of tensors as one flat dict with '/'-joined keys (parameter names contain dots)."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flatten_state(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def unflatten_state(flat: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `flatten_state`."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *path, leaf = key.split("/")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Total bytes of the tensors in a dict."""
    return sum(t.numel() * t.element_size() for t in tensors.values())
