"""The growable-network base class, the registry of net kinds and `build(spec)`.

A net is fully described by its **spec** (plain JSON data) plus its state dict. Every kind
subclasses `GrowableNet`, registers itself with `@register_net("kind")`, implements
`features()` and declares its *width groups* (sets of channels that must grow together) and
*depth points* (where a layer can be inserted). The growth operators in `selfgrow.nets.ops`
work on these declarations only, so a new kind gets widen/deepen/head operators for free.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from selfgrow.errors import SelfgrowError, unknown_name
from selfgrow.registry import Registry
from selfgrow.nets.groups import Deepening, DepthPoint, GrowthPoint, Port, WidthGroup
from selfgrow.nets.heads import normalize_head

NET_KINDS = Registry("net kind", attribute="kind")
register_net = NET_KINDS.register


def normalize_spec(spec: dict) -> dict:
    """A deep copy of `spec` with every default filled in (the form stored in `net.spec`)."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise SelfgrowError(f"A net spec must be a dict with a 'kind' key; got {spec!r}.")
    if spec["kind"] not in NET_KINDS:
        raise unknown_name("net kind", spec["kind"], NET_KINDS)
    cls = NET_KINDS[spec["kind"]]
    spec = copy.deepcopy(spec)
    spec["input_shape"] = _input_shape(spec.get("input_shape"))
    spec["head"] = normalize_head(spec.get("head"))
    spec["gates"] = _gates(spec.get("gates", {}))
    return cls.normalize_spec(spec)


def build(spec: dict) -> GrowableNet:
    """Build a freshly initialised net from its spec (unknown kind -> SelfgrowError)."""
    spec = normalize_spec(spec)
    return NET_KINDS[spec["kind"]](spec)


def _input_shape(shape) -> list[int]:
    """Validate `input_shape` as [C, H, W] of positive ints."""
    if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(
        isinstance(s, int) and s > 0 for s in shape
    ):
        raise SelfgrowError(f"input_shape must be [C, H, W] of positive ints; got {shape!r}.")
    return list(shape)


def _gates(gates) -> dict[str, int]:
    """Validate the ε-gate counts: width-group name -> number of trailing gated units."""
    if not isinstance(gates, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in gates.items()
    ):
        raise SelfgrowError(f"spec 'gates' must map width-group names to positive ints; got {gates!r}.")
    return dict(gates)


class GrowableNet(nn.Module):
    """Base of every growable net.

    Subclasses set `self.feature_dim` and `self.head = build_head(spec["head"], feature_dim)`
    and implement `features(x, task)` -> (B, D). `forward` applies the head. `spec` is always up to date
    (operators build a new net from an edited spec; they never mutate a net in place).
    """

    kind: str = ""

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        """Validate the kind-specific keys and fill defaults (called on a deep copy)."""
        return spec

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.spec["input_shape"])  # type: ignore[return-value]

    def features(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        """Penultimate features (B, D) of a batch (B, C, H, W)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        """Logits: `head(features(x, task), task)`; multi-head nets need `task`."""
        return self.head(self.features(x, task), task)

    def width_groups(self) -> dict[str, WidthGroup]:
        """The groups `ops.widen` can grow, by name (empty for kinds that do not widen)."""
        return {}

    def depth_points(self) -> list[DepthPoint]:
        """The places `ops.deepen` can insert an identity layer (empty when none)."""
        return []

    def deepening(self, at: str, **options) -> Deepening:
        """The spec edit and identity initialisation for inserting a layer at `at`."""
        raise SelfgrowError(f"Net kind {self.kind!r} cannot be deepened.")

    def growth_points(self) -> list[GrowthPoint]:
        """Everything growers may grow: width groups with their sizes, then depth points."""
        points = [
            GrowthPoint("width", g.name, g.width, {"gated": g.gated, "gateable": g.gateable})
            for g in self.width_groups().values()
        ]
        points += [GrowthPoint("depth", p.name, None, {"description": p.description})
                   for p in self.depth_points()]
        return points

    def task_parameter_names(self, task: int | None) -> set[str]:
        """Names of the parameters one task's forward pass uses (all, minus other tasks' heads)."""
        names = {n for n, _ in self.named_parameters()}
        if task is None:
            return names
        other_heads = self.head.parameter_names_of_other_tasks(task, prefix="head.")
        return names - other_heads

    def frozen_parameter_names(self) -> set[str]:
        """Parameters this kind never updates again (old modules / columns / extractors);
        empty for plain nets. Trainers and freezing retention give them learning rate 0."""
        return set()

    def head_consumers(self) -> list[Port]:
        """The head weights that read the features (consumers of the last width group)."""
        return self.head.feature_consumers(prefix="head.")

    def gate_module(self, group: str, width: int) -> nn.Module:
        """An ε-gate for `group` when the spec marks trailing units as gated, else Identity."""
        n = int(self.spec["gates"].get(group, 0))
        return Gate(width, n) if n else nn.Identity()


class Gate(nn.Module):
    """Firefly ε-gate: multiplies the last `n_gated` channels by a learnable `eps` (init 0).

    New units start contributing nothing (the function is kept) while `eps` still gets a
    gradient; Firefly ranks candidate neurons by |dL/d eps|.
    """

    def __init__(self, width: int, n_gated: int):
        super().__init__()
        if not 0 < n_gated <= width:
            raise SelfgrowError(f"Gate of {n_gated} units does not fit a layer of width {width}.")
        self.width = width
        self.eps = nn.Parameter(torch.zeros(n_gated))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(self.width - self.eps.numel(), device=x.device, dtype=x.dtype)
        scale = torch.cat([ones, self.eps.to(x.dtype)])
        return x * scale.view(1, -1, *([1] * (x.dim() - 2)))
