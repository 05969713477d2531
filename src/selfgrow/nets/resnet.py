"""ResNet family for small images: 3x3 stem + stages of BasicBlocks (BatchNorm), global pooling.

Spec: `{"kind": "resnet", "input_shape": [C, H, W],
"stem": {"kernel": 3, "stride": 1, "pool": false},
"stages": [{"width": w, "blocks": n, "stride": s, "hidden": [h0, .., h(n-1)]}, ...], "head": {...}}`.
The stem outputs the first stage's width (any channel count C in; a larger kernel/stride or
a max-pool can be asked for big inputs). `hidden` (the inner width of each block, default the
stage width) is filled in by `build`. The first block of every later stage (and of the first
stage when its stride is not 1) has a 1x1 convolution + BN projection shortcut, always, so
widening never adds or removes one; the other blocks have identity shortcuts.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet, register_net
from selfgrow.nets.groups import Deepening, DepthPoint, Port, WidthGroup
from selfgrow.nets.heads import build_head
from selfgrow.nets.naming import shift_gate_keys, shift_index

BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def bn_ports(prefix: str) -> list[Port]:
    """The per-channel tensors of the BatchNorm at `prefix` (affine and running statistics)."""
    return [Port(f"{prefix}.{t}", 0) for t in BN_TENSORS]


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """Conv (no bias, BN follows) + BatchNorm, named `conv` and `bn`."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        bn=nn.BatchNorm2d(c_out),
    ))


class BasicBlock(nn.Module):
    """out = ReLU(BN(conv3x3(gate(ReLU(BN(conv3x3(x)))))) + shortcut(x))."""

    def __init__(self, c_in: int, hidden: int, c_out: int, stride: int, projection: bool, gate: nn.Module):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, hidden, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.gate = gate
        self.conv2 = nn.Conv2d(hidden, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.proj = conv_bn(c_in, c_out, 1, stride) if projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gate(torch.relu(self.bn1(self.conv1(x))))
        return torch.relu(self.bn2(self.conv2(h)) + self.proj(x))


class Stage(nn.Module):
    """A sequence of BasicBlocks at one width (ModuleList `blocks`)."""

    def __init__(self, blocks: list[BasicBlock]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def _positive_int(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SelfgrowError(f"{what} must be a positive int; got {value!r}.")
    return value


@register_net("resnet")
class ResNet(GrowableNet):
    """Stem + stages of BasicBlocks; widen stage streams or block interiors, deepen stages."""

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        stem = {"kernel": 3, "stride": 1, "pool": False, **spec.get("stem", {})}
        _positive_int(stem["kernel"], "resnet stem kernel")
        _positive_int(stem["stride"], "resnet stem stride")
        spec["stem"] = stem
        stages = spec.get("stages")
        if not isinstance(stages, list) or not stages:
            raise SelfgrowError(f"resnet 'stages' must be a non-empty list; got {stages!r}.")
        normal = []
        for i, stage in enumerate(stages):
            if not isinstance(stage, dict):
                raise SelfgrowError(f"resnet stage {i} must be a dict; got {stage!r}.")
            width = _positive_int(stage.get("width"), f"resnet stage {i} width")
            blocks = _positive_int(stage.get("blocks"), f"resnet stage {i} blocks")
            stride = _positive_int(stage.get("stride", 1 if i == 0 else 2), f"resnet stage {i} stride")
            hidden = stage.get("hidden", [width] * blocks)
            if not isinstance(hidden, list) or len(hidden) != blocks:
                raise SelfgrowError(f"resnet stage {i} 'hidden' must list {blocks} widths; got {hidden!r}.")
            for h in hidden:
                _positive_int(h, f"resnet stage {i} hidden width")
            normal.append({"width": width, "blocks": blocks, "stride": stride, "hidden": list(hidden)})
        spec["stages"] = normal
        return spec

    def __init__(self, spec: dict):
        super().__init__(spec)
        stem, stages = spec["stem"], spec["stages"]
        self.stem = conv_bn(spec["input_shape"][0], stages[0]["width"], stem["kernel"], stem["stride"])
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if stem["pool"] else nn.Identity()
        c_in = stages[0]["width"]
        built = []
        for s, stage in enumerate(stages):
            blocks = []
            for b, hidden in enumerate(stage["hidden"]):
                stride = stage["stride"] if b == 0 else 1
                gate = self.gate_module(f"stage.{s}.block.{b}", hidden)
                blocks.append(BasicBlock(c_in, hidden, stage["width"], stride, self._projects(s, b), gate))
                c_in = stage["width"]
            built.append(Stage(blocks))
        self.stages = nn.ModuleList(built)
        self.feature_dim = c_in
        self.head = build_head(spec["head"], self.feature_dim)

    def _projects(self, stage: int, block: int) -> bool:
        """Whether block `block` of `stage` has a projection shortcut (see module docstring)."""
        return block == 0 and (stage > 0 or self.spec["stages"][0]["stride"] != 1)

    def features(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        h = self.stem_pool(torch.relu(self.stem(x)))
        for stage in self.stages:
            h = stage(h)
        return h.mean(dim=(2, 3))

    def width_groups(self) -> dict[str, WidthGroup]:
        groups = {}
        stages = self.spec["stages"]
        for s, stage in enumerate(stages):
            groups[f"stage.{s}"] = self._stream_group(s)
            for b, hidden in enumerate(stage["hidden"]):
                name, prefix = f"stage.{s}.block.{b}", f"stages.{s}.blocks.{b}"
                gated = int(self.spec["gates"].get(name, 0))
                groups[name] = WidthGroup(
                    name=name,
                    width=hidden,
                    spec_path=("stages", s, "hidden", b),
                    producers=[Port(f"{prefix}.conv1.weight", 0), *bn_ports(f"{prefix}.bn1")],
                    consumers=[Port(f"{prefix}.conv2.weight", 1)],
                    gated=gated,
                    gate_param=f"{prefix}.gate.eps" if gated else None,
                )
        return groups

    def _stream_group(self, s: int) -> WidthGroup:
        """The residual stream of stage s: every tensor writing it and every conv reading it."""
        stages = self.spec["stages"]
        producers = [Port("stem.conv.weight", 0), *bn_ports("stem.bn")] if s == 0 else []
        consumers = []
        for b in range(stages[s]["blocks"]):
            prefix = f"stages.{s}.blocks.{b}"
            producers += [Port(f"{prefix}.conv2.weight", 0), *bn_ports(f"{prefix}.bn2")]
            if self._projects(s, b):
                producers += [Port(f"{prefix}.proj.conv.weight", 0), *bn_ports(f"{prefix}.proj.bn")]
            if b > 0 or s == 0:
                consumers.append(Port(f"{prefix}.conv1.weight", 1))
            if b == 0 and s == 0 and self._projects(0, 0):
                consumers.append(Port(f"{prefix}.proj.conv.weight", 1))
        if s + 1 < len(stages):
            nxt = f"stages.{s + 1}.blocks.0"
            consumers += [Port(f"{nxt}.conv1.weight", 1), Port(f"{nxt}.proj.conv.weight", 1)]
        else:
            consumers += self.head_consumers()
        return WidthGroup(
            name=f"stage.{s}",
            width=stages[s]["width"],
            spec_path=("stages", s, "width"),
            producers=producers,
            consumers=consumers,
            gateable=False,
            feeds_head=s + 1 == len(stages),
        )

    def depth_points(self) -> list[DepthPoint]:
        return [DepthPoint(f"stage.{s}", f"identity BasicBlock({st['width']}) in stage {s} (option position)")
                for s, st in enumerate(self.spec["stages"])]

    def deepening(self, at: str, position: int | None = None, **options) -> Deepening:
        """Insert a BasicBlock at `position` of stage `at` (default: at its end).

        The new block's last BN has weight and bias 0, so its branch outputs exactly 0 in train
        and eval mode (Goyal et al.'s zero-init residual) and the block computes ReLU(x) = x, x
        being a ReLU output. Position 0 of a stage with a projection block is not allowed (the
        projection must stay first).
        """
        names = [p.name for p in self.depth_points()]
        if at not in names:
            raise SelfgrowError(f"Unknown depth point {at!r} of this resnet; accepted: {', '.join(names)}.")
        if options:
            raise SelfgrowError(f"resnet deepen accepts only 'position'; got {sorted(options)}.")
        s = int(at.split(".")[1])
        stage = self.spec["stages"][s]
        lowest = 1 if self._projects(s, 0) else 0
        position = stage["blocks"] if position is None else position
        if not isinstance(position, int) or not lowest <= position <= stage["blocks"]:
            raise SelfgrowError(
                f"deepen {at!r}: position must be an int in {lowest}..{stage['blocks']}; got {position!r}."
            )
        hidden = stage["hidden"][:position] + [stage["width"]] + stage["hidden"][position:]
        stages = list(self.spec["stages"])
        stages[s] = {**stage, "blocks": stage["blocks"] + 1, "hidden": hidden}
        spec = {**self.spec, "stages": stages,
                "gates": shift_gate_keys(self.spec["gates"], f"stage.{s}.block.", after=position - 1)}

        def make_identity(net: GrowableNet) -> None:
            bn2 = net.stages[s].blocks[position].bn2
            nn.init.zeros_(bn2.weight)
            nn.init.zeros_(bn2.bias)

        rename = lambda name: shift_index(name, f"stages.{s}.blocks.", after=position - 1)  # noqa: E731
        return Deepening(spec, rename, make_identity)
