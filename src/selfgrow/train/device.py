"""Pick the torch device a run trains on: `auto` prefers CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from selfgrow.errors import SelfgrowError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """The device for `name` (auto|cpu|cuda|cuda:N|mps); an unavailable explicit choice is an error."""
    base = str(name).split(":", 1)[0]
    if base not in DEVICES or (":" in str(name) and base != "cuda"):
        raise SelfgrowError(f"Unknown device {name!r}; accepted: {', '.join(DEVICES)} (or cuda:N).")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise SelfgrowError(f"Device {name!r} was requested but CUDA is not available here; use 'auto' or 'cpu'.")
    if base == "mps" and not _mps_available():
        raise SelfgrowError("Device 'mps' was requested but Apple MPS is not available here; use 'auto' or 'cpu'.")
    return torch.device(name)
