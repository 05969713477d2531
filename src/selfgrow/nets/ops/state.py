"""Carry per-parameter state across a growth: retention tensors and optimizer moments."""

from __future__ import annotations

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.nets.ops.growth import Growth


def remap_tensors(tensors: dict[str, torch.Tensor], growth: Growth) -> dict[str, torch.Tensor]:
    """Per-parameter tensors (EWC importances, anchors...) re-indexed for the grown net.

    Each old entry is placed at its mapped index in a zero tensor of the new shape; parameters
    that are new in the grown net get all-zero entries; entries of removed parameters are dropped.
    """
    new_params = dict(growth.net.named_parameters())
    out = {}
    for name, tensor in tensors.items():
        placement = growth.carried(name, tensor)
        if placement is None:
            continue
        new_name, index, values = placement
        target = torch.zeros_like(new_params[new_name], dtype=tensor.dtype, device=tensor.device)
        target[index] = values
        out[new_name] = target
    for name in growth.new_parameter_names():
        out.setdefault(name, torch.zeros_like(new_params[name]))
    return out


def carry_optimizer_state(
    old_optimizer: torch.optim.Optimizer, growth: Growth, new_optimizer: torch.optim.Optimizer
) -> None:
    """Copy the state of every old parameter (SGD momentum, Adam exp_avg / exp_avg_sq / step...)
    into `new_optimizer` for its grown counterpart.

    Tensors shaped like the parameter are placed at the mapped index with zeros for the new
    entries; other entries (Adam's `step`) are copied as they are. Note that Adam's bias
    correction then treats the new entries' zero moments as old, so their first steps are up
    to ~sqrt(1 - beta2) / (1 - beta1) times larger than a fresh Adam's.
    """
    if growth.source is None:
        raise SelfgrowError("carry_optimizer_state needs a Growth made by a selfgrow operator (it has no source net).")
    old_names = {id(p): n for n, p in growth.source.named_parameters()}
    new_params = dict(growth.net.named_parameters())
    optimised = {id(p) for group in new_optimizer.param_groups for p in group["params"]}
    for param, state in old_optimizer.state.items():
        name = old_names.get(id(param))
        if name is None or growth.carried(name, param) is None:
            continue
        target = new_params[growth.carried(name, param)[0]]
        if id(target) not in optimised:
            continue
        new_optimizer.state[target] = {
            key: _placed(growth, name, value, param, target) for key, value in state.items()
        }


def _placed(growth: Growth, name: str, value, param: torch.Tensor, target: torch.Tensor) -> object:
    """One optimizer state entry moved to the grown parameter."""
    if isinstance(value, torch.Tensor) and value.shape == param.shape and value.dim() > 0:
        _, index, values = growth.carried(name, value)
        placed = torch.zeros(target.shape, dtype=value.dtype, device=value.device)
        placed[index] = values
        return placed
    return value.clone() if isinstance(value, torch.Tensor) else value
