"""Function-preserving widening of a width group, and folding of Firefly ε-gates."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet
from selfgrow.nets.groups import Port, WidthGroup
from selfgrow.nets.ops.growth import Growth, growth_from, set_path, transplant

WIDEN_MODES = ("zero", "split", "gated")
SPLIT_SHARE_RANGE = (0.5, 1.5)


def width_group(net: GrowableNet, layer: str) -> WidthGroup:
    """The width group `layer` of `net` (unknown name -> SelfgrowError listing the groups)."""
    groups = net.width_groups()
    if layer not in groups:
        accepted = ", ".join(groups) or "none (this net has no width groups)"
        raise SelfgrowError(f"Unknown width group {layer!r}; accepted: {accepted}.")
    return groups[layer]


def channels(state: dict[str, torch.Tensor], port: Port) -> torch.Tensor:
    """A view of a state tensor with the group's channels on dim 0 (flattened dims unfolded)."""
    return state[port.name].unflatten(port.dim, (-1, port.inner)).movedim(port.dim, 0)


def split_shares(
    width: int, sources: torch.Tensor, break_symmetry: bool, generator: torch.Generator | None
) -> torch.Tensor:
    """Per-unit factors for the outgoing weights after splitting: each old unit and its copies
    share its old outgoing weight, shares summing to 1.

    Equal shares keep copies identical forever under gradient descent (their gradients stay
    equal); with `break_symmetry` the shares are drawn from U(0.5, 1.5) and normalised, which
    is just as exact but gives each copy a different gradient on its incoming weights.
    """
    owner = torch.cat([torch.arange(width), sources])
    if break_symmetry:
        low, high = SPLIT_SHARE_RANGE
        raw = low + (high - low) * torch.rand(owner.numel(), generator=generator)
    else:
        raw = torch.ones(owner.numel())
    totals = torch.zeros(width).index_add_(0, owner, raw)
    return raw / totals[owner]


def widen(
    net: GrowableNet,
    layer: str,
    by: int,
    mode: str = "zero",
    sources: Sequence[int] | None = None,
    break_symmetry: bool = True,
    generator: torch.Generator | None = None,
) -> Growth:
    """Add `by` units to width group `layer`, keeping the function exactly.

    mode "zero": new units with random incoming and zero outgoing weights (the outgoing ones
    get gradients at once). mode "split" (Net2Net / splitting descent): new unit j copies the
    incoming weights (and BN entries) of old unit `sources[j]` (random when None), and the
    outgoing weights are divided among the copies (see `split_shares`). mode "gated" (Firefly
    brand-new neurons): random incoming and outgoing weights, contribution multiplied by an
    ε-gate parameter initialised to 0. New weights come from the global RNG; `generator`
    drives only the split choices.
    """
    group = width_group(net, layer)
    if not isinstance(by, int) or by < 1:
        raise SelfgrowError(f"widen 'by' must be a positive int; got {by!r}.")
    if mode not in WIDEN_MODES:
        raise SelfgrowError(f"Unknown widen mode {mode!r}; accepted: {', '.join(WIDEN_MODES)}.")
    if mode == "gated" and not group.gateable:
        raise SelfgrowError(f"Width group {layer!r} cannot be ε-gated; use mode 'zero' or 'split'.")
    if group.gated and mode != "gated":
        raise SelfgrowError(
            f"Width group {layer!r} has ε-gated units; fold them (ops.fold_gates) before widening in mode {mode!r}."
        )
    if group.feeds_head and net.spec["head"]["cosine"]:
        raise SelfgrowError(
            f"Width group {layer!r} feeds a cosine head, which normalises features and weights: "
            "new features cannot be both exactly silent and trainable; widen earlier layers instead."
        )
    spec = set_path(net.spec, group.spec_path, group.width + by)
    if mode == "gated":
        spec["gates"] = {**net.spec["gates"], layer: group.gated + by}
    new, copied = transplant(net, spec)
    state = new.state_dict()
    old_width = group.width
    with torch.no_grad():
        if mode == "zero":
            for port in group.consumers:
                channels(state, port)[old_width:] = 0
        elif mode == "split":
            src = _split_sources(old_width, by, sources, generator)
            for port in group.producers:
                view = channels(state, port)
                view[old_width:] = view[src]
            shares = split_shares(old_width, src, break_symmetry, generator)
            for port in group.consumers:
                view = channels(state, port)
                view[old_width:] = view[src]
                view.mul_(shares.to(view).view(-1, *[1] * (view.dim() - 1)))
    op = {"op": "widen", "layer": layer, "by": by, "mode": mode}
    if mode == "split":
        op.update(sources=src.tolist(), break_symmetry=break_symmetry)
    return growth_from(net, new, copied, op)


def _split_sources(width: int, by: int, sources, generator) -> torch.Tensor:
    """The old units to copy: given, or drawn uniformly with replacement (Net2Net)."""
    if sources is None:
        return torch.randint(width, (by,), generator=generator)
    src = torch.as_tensor(list(sources), dtype=torch.long)
    if src.numel() != by or (src.numel() and (src.min() < 0 or src.max() >= width)):
        raise SelfgrowError(f"split sources must be {by} unit indices in 0..{width - 1}; got {list(sources)!r}.")
    return src


def widen_to(net: GrowableNet, layer: str, width: int, **options) -> Growth:
    """Widen group `layer` to exactly `width` units (same options as `widen`)."""
    current = width_group(net, layer).width
    if not isinstance(width, int) or width <= current:
        raise SelfgrowError(f"widen_to {layer!r}: width must be an int above the current {current}; got {width!r}.")
    return widen(net, layer, width - current, **options)


def fold_gates(net: GrowableNet, layer: str, keep: Sequence[int] | None = None) -> Growth:
    """Remove the ε-gate of `layer`, multiplying the gated units' outgoing weights by ε.

    Exact when every gated unit is kept (`keep=None`). With `keep` (indices among the gated
    units, 0-based) the other gated units are removed, as Firefly keeps only its top-scored new
    neurons: the function then loses exactly their contribution, i.e. none if their ε is 0.
    Tensors that lose entries are listed in `Growth.partial_map`.
    """
    group = width_group(net, layer)
    if not group.gated:
        raise SelfgrowError(f"Width group {layer!r} has no ε-gates to fold.")
    old_width = group.width - group.gated
    kept = _kept_units(group.gated, keep)
    rows = torch.cat([torch.arange(old_width), old_width + kept])
    pruning = kept.numel() < group.gated
    ports = {p.name: p for p in group.producers + group.consumers}
    spec = set_path(net.spec, group.spec_path, rows.numel())
    spec["gates"] = {k: v for k, v in net.spec["gates"].items() if k != layer}
    new, copied = transplant(
        net, spec, rename=lambda n: None if n == group.gate_param or (pruning and n in ports) else n
    )
    old_state, state = net.state_dict(), new.state_dict()
    scale = torch.cat([torch.ones(old_width), old_state[group.gate_param].detach().cpu()[kept]])
    partial = {}
    with torch.no_grad():
        if pruning:
            for port in ports.values():
                channels(state, port).copy_(channels(old_state, port)[rows.to(state[port.name].device)])
                flat = (rows[:, None] * port.inner + torch.arange(port.inner)).flatten()
                partial[port.name] = (port.name, port.dim, flat)
        for port in group.consumers:
            view = channels(state, port)
            view.mul_(scale.to(view).view(-1, *[1] * (view.dim() - 1)))
    op = {"op": "fold_gates", "layer": layer, "keep": None if keep is None else kept.tolist()}
    return growth_from(net, new, copied, op, partial)


def _kept_units(n_gated: int, keep: Sequence[int] | None) -> torch.Tensor:
    """Sorted unique indices of the gated units to keep (all when None)."""
    if keep is None:
        return torch.arange(n_gated)
    try:
        kept = sorted({operator.index(k) for k in keep})
    except TypeError:
        kept = [-1]
    if not all(0 <= k < n_gated for k in kept):
        raise SelfgrowError(f"fold_gates keep must list gated-unit indices in 0..{n_gated - 1}; got {list(keep)!r}.")
    return torch.tensor(kept, dtype=torch.long)
