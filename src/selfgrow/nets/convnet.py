"""Small ConvNet: [Conv -> ReLU -> MaxPool (-> ε-gate)] per conv layer, flatten, [Linear -> ReLU] per fc.

Spec: `{"kind": "convnet", "input_shape": [C, H, W],
"conv": [{"width": 64, "kernel": 4, "padding": 0, "pool": 2}, ...], "fc": [2048, 2048], "head": {...}}`
(`padding` defaults to 0, `pool` to 2; pool 1 means no pooling). This is the 3-conv + 2-fc
net of Learn-to-Grow / L2BG on Split-CIFAR-100 (preset "convnet-l2g"). The flattened conv
output is channel-major, so new channels of the last conv append whole blocks of fc inputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet, register_net
from selfgrow.nets.groups import Deepening, DepthPoint, Port, WidthGroup
from selfgrow.nets.heads import build_head
from selfgrow.nets.mlp import positive_int_list
from selfgrow.nets.naming import shift_gate_keys, shift_index


def _conv_layer(layer, i: int) -> dict:
    """Validate conv layer i and fill its defaults."""
    if not isinstance(layer, dict):
        raise SelfgrowError(f"convnet conv layer {i} must be a dict; got {layer!r}.")
    layer = {"padding": 0, "pool": 2, **layer}
    for key, low in (("width", 1), ("kernel", 1), ("padding", 0), ("pool", 1)):
        if not isinstance(layer.get(key), int) or layer[key] < low:
            raise SelfgrowError(f"convnet conv layer {i} {key!r} must be an int >= {low}; got {layer.get(key)!r}.")
    return layer


@register_net("convnet")
class ConvNet(GrowableNet):
    """Plain conv stack + fully connected layers; every layer widens, deepens after any layer."""

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        conv = spec.get("conv")
        if not isinstance(conv, list) or not conv:
            raise SelfgrowError(f"convnet 'conv' must be a non-empty list of layers; got {conv!r}.")
        spec["conv"] = [_conv_layer(layer, i) for i, layer in enumerate(conv)]
        spec["fc"] = positive_int_list(spec.get("fc", []), "convnet 'fc'")
        cls.spatial_sizes(spec)
        return spec

    @staticmethod
    def spatial_sizes(spec: dict) -> list[tuple[int, int]]:
        """(H, W) after each conv layer's pooling; too small an input -> SelfgrowError."""
        h, w = spec["input_shape"][1:]
        sizes = []
        for i, layer in enumerate(spec["conv"]):
            h = (h + 2 * layer["padding"] - layer["kernel"] + 1) // layer["pool"]
            w = (w + 2 * layer["padding"] - layer["kernel"] + 1) // layer["pool"]
            if h < 1 or w < 1:
                raise SelfgrowError(
                    f"Input {spec['input_shape']} is too small for convnet layer {i} {layer}; "
                    "use a larger input or fewer/smaller layers."
                )
            sizes.append((h, w))
        return sizes

    def __init__(self, spec: dict):
        super().__init__(spec)
        c_in = spec["input_shape"][0]
        convs = []
        for layer in spec["conv"]:
            convs.append(nn.Conv2d(c_in, layer["width"], layer["kernel"], padding=layer["padding"]))
            c_in = layer["width"]
        self.convs = nn.ModuleList(convs)
        self.conv_gates = nn.ModuleList(
            self.gate_module(f"conv.{i}", layer["width"]) for i, layer in enumerate(spec["conv"])
        )
        self.flat_positions = math.prod(self.spatial_sizes(spec)[-1])
        widths = [c_in * self.flat_positions] + spec["fc"]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.fc_gates = nn.ModuleList(self.gate_module(f"fc.{i}", w) for i, w in enumerate(spec["fc"]))
        self.feature_dim = widths[-1]
        self.head = build_head(spec["head"], self.feature_dim)

    def features(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        h = x
        for layer, conv, gate in zip(self.spec["conv"], self.convs, self.conv_gates):
            h = torch.relu(conv(h))
            if layer["pool"] > 1:
                h = F.max_pool2d(h, layer["pool"])
            h = gate(h)
        h = h.flatten(1)
        for fc, gate in zip(self.fcs, self.fc_gates):
            h = gate(torch.relu(fc(h)))
        return h

    def width_groups(self) -> dict[str, WidthGroup]:
        conv, fc = self.spec["conv"], self.spec["fc"]
        groups = {}
        for i, layer in enumerate(conv):
            if i + 1 < len(conv):
                consumers = [Port(f"convs.{i + 1}.weight", 1)]
            elif fc:
                consumers = [Port("fcs.0.weight", 1, self.flat_positions)]
            else:
                consumers = [Port(p.name, p.dim, self.flat_positions) for p in self.head_consumers()]
            groups[f"conv.{i}"] = self._group(f"conv.{i}", layer["width"], ("conv", i, "width"),
                                              f"convs.{i}", f"conv_gates.{i}", consumers, not fc and i + 1 == len(conv))
        for i, width in enumerate(fc):
            last = i + 1 == len(fc)
            consumers = self.head_consumers() if last else [Port(f"fcs.{i + 1}.weight", 1)]
            groups[f"fc.{i}"] = self._group(f"fc.{i}", width, ("fc", i), f"fcs.{i}", f"fc_gates.{i}", consumers, last)
        return groups

    def _group(self, name, width, path, layer, gate, consumers, feeds_head) -> WidthGroup:
        gated = int(self.spec["gates"].get(name, 0))
        return WidthGroup(
            name=name,
            width=width,
            spec_path=path,
            producers=[Port(f"{layer}.weight", 0), Port(f"{layer}.bias", 0)],
            consumers=consumers,
            gated=gated,
            gate_param=f"{gate}.eps" if gated else None,
            feeds_head=feeds_head,
        )

    def depth_points(self) -> list[DepthPoint]:
        points = [DepthPoint(f"conv.{i}", f"identity (Dirac) 3x3 conv + ReLU after conv layer {i}")
                  for i in range(len(self.spec["conv"]))]
        return points + [DepthPoint(f"fc.{i}", f"identity Linear + ReLU after fc layer {i}")
                         for i in range(len(self.spec["fc"]))]

    def deepening(self, at: str, **options) -> Deepening:
        """Insert an identity layer + ReLU after conv or fc layer i (Net2DeeperNet).

        A conv gets a 3x3 Dirac kernel, padding 1 and no pooling; an fc gets the identity
        matrix; biases are 0. Exact because the input is a ReLU (or max-pool of ReLU) output.
        """
        names = [p.name for p in self.depth_points()]
        if at not in names:
            raise SelfgrowError(f"Unknown depth point {at!r} of this convnet; accepted: {', '.join(names)}.")
        if options:
            raise SelfgrowError(f"convnet deepen takes no options; got {sorted(options)}.")
        if self.spec["gates"].get(at):
            raise SelfgrowError(f"Layer {at!r} has ε-gates; fold them (ops.fold_gates) before deepening there.")
        part, i = at.split(".")[0], int(at.split(".")[1])
        spec = dict(self.spec)
        if part == "conv":
            inserted = {"width": self.spec["conv"][i]["width"], "kernel": 3, "padding": 1, "pool": 1}
            spec["conv"] = self.spec["conv"][: i + 1] + [inserted] + self.spec["conv"][i + 1:]
            modules, init = ("convs.", "conv_gates."), nn.init.dirac_
        else:
            spec["fc"] = self.spec["fc"][: i + 1] + self.spec["fc"][i:]
            modules, init = ("fcs.", "fc_gates."), nn.init.eye_
        spec["gates"] = shift_gate_keys(self.spec["gates"], f"{part}.", after=i)

        def make_identity(net: GrowableNet) -> None:
            layer = getattr(net, modules[0].rstrip("."))[i + 1]
            init(layer.weight)
            nn.init.zeros_(layer.bias)

        rename = lambda name: shift_index(name, modules, after=i)  # noqa: E731
        return Deepening(spec, rename, make_identity)
