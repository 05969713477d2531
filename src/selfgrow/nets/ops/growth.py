"""`Growth` (the result of every operator) and the generic weight transplant behind them.

Every operator edits the spec, builds a fresh net from it (new weights get PyTorch's default
random initialisation from the global RNG) and copies each old tensor into the leading slice
of its counterpart; the operator then fixes up the new slices so the function is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet, build

Index = tuple[slice, ...]


@dataclass
class Growth:
    """A grown copy of a net and where each old parameter's values now sit.

    `param_map[old_name] = (new_name, index)`: `new_param[index]` holds the old values (before
    any function-preserving rescaling the operator applied, e.g. Net2Net splitting).
    `partial_map[old_name] = (new_name, dim, rows)` is for parameters that lost entries (units
    pruned by `fold_gates(keep=...)`): `old.index_select(dim, rows)` sits in the leading slice
    of `new_param`. Old parameters in neither map were removed. `op` records the call for
    logs; `source` is the (untouched) input net, used to find old parameters by name.
    """

    net: GrowableNet
    param_map: dict[str, tuple[str, Index]]
    op: dict = field(default_factory=dict)
    source: GrowableNet | None = field(default=None, repr=False)
    partial_map: dict[str, tuple[str, int, torch.Tensor]] = field(default_factory=dict)

    def new_parameter_names(self) -> set[str]:
        """Parameters of the grown net that did not exist before (partly new ones excluded)."""
        mapped = {new for new, _ in self.param_map.values()}
        mapped |= {new for new, _, _ in self.partial_map.values()}
        return {n for n, _ in self.net.named_parameters()} - mapped

    def carried(self, old_name: str, tensor: torch.Tensor) -> tuple[str, Index, torch.Tensor] | None:
        """Where per-parameter state `tensor` of old parameter `old_name` goes in the grown net:
        (new name, index, values to write there), or None when the parameter was removed."""
        if old_name in self.param_map:
            new_name, index = self.param_map[old_name]
            return new_name, index, tensor
        if old_name in self.partial_map:
            new_name, dim, rows = self.partial_map[old_name]
            kept = tensor.index_select(dim, rows.to(tensor.device))
            return new_name, leading_index(kept.shape), kept
        return None


def leading_index(shape: torch.Size) -> Index:
    """The slices covering a tensor of `shape` at the start of a larger tensor."""
    return tuple(slice(0, s) for s in shape)


def transplant(
    old: GrowableNet, spec: dict, rename: Callable[[str], str | None] = lambda n: n
) -> tuple[GrowableNet, dict[str, tuple[str, Index]]]:
    """Build `spec` and copy every old tensor (parameters and buffers) into its leading slice.

    Returns the new net (same device, dtype and train/eval mode as `old`) and the map of every
    copied state-dict entry, old name -> (new name, index).
    """
    new = build(spec)
    reference = next(iter(old.state_dict().values()), None)
    if reference is not None:
        new = new.to(device=reference.device)
        dtype = next((p.dtype for p in old.parameters() if p.is_floating_point()), None)
        if dtype is not None:
            new = new.to(dtype=dtype)
    new.train(old.training)
    targets = new.state_dict()
    copied = {}
    with torch.no_grad():
        for old_name, tensor in old.state_dict().items():
            new_name = rename(old_name)
            if new_name is None:
                continue
            target = targets.get(new_name)
            if target is None or target.dim() != tensor.dim() or any(
                a > b for a, b in zip(tensor.shape, target.shape)
            ):
                raise SelfgrowError(
                    f"Cannot place {old_name!r} {tuple(tensor.shape)} into {new_name!r} "
                    f"{None if target is None else tuple(target.shape)}; the spec edit is inconsistent."
                )
            index = leading_index(tensor.shape)
            target[index].copy_(tensor)
            copied[old_name] = (new_name, index)
    return new, copied


def growth_from(old: GrowableNet, new: GrowableNet, copied: dict, op: dict, partial: dict | None = None) -> Growth:
    """A `Growth` whose maps keep the parameters (not buffers) of the copied entries."""
    params = {n for n, _ in old.named_parameters()}
    partial = {k: v for k, v in (partial or {}).items() if k in params}
    return Growth(new, {k: v for k, v in copied.items() if k in params}, op, old, partial)


def compose(first: Growth, second: Growth) -> Growth:
    """One `Growth` equivalent to applying `first` then `second` (maps chained; operators
    always place old values at the start of each dim, which is what chaining relies on)."""
    param_map, partial_map = {}, {}
    shapes = {n: p.shape for n, p in first.source.named_parameters()} if first.source else {}
    for old, (mid, index) in first.param_map.items():
        if mid in second.param_map:
            new, outer = second.param_map[mid]
            param_map[old] = (new, tuple(slice(o.start + i.start, o.start + i.stop)
                                         for o, i in zip(outer, index)))
        elif mid in second.partial_map:
            new, dim, rows = second.partial_map[mid]
            partial_map[old] = (new, dim, rows[rows < shapes[old][dim]])
    for old, (mid, dim, rows) in first.partial_map.items():
        if mid in second.param_map:
            partial_map[old] = (second.param_map[mid][0], dim, rows)
    ops = first.op.get("ops", [first.op]) + second.op.get("ops", [second.op])
    return Growth(second.net, param_map, {"op": "sequence", "ops": ops}, first.source, partial_map)


def set_path(spec: dict, path: tuple, value) -> dict:
    """A copy of `spec` with the entry at `path` (keys / list indices) replaced by `value`."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(spec, list):
        out = list(spec)
        out[head] = set_path(spec[head], rest, value)
        return out
    return {**spec, head: set_path(spec[head], rest, value)}
